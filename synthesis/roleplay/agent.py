"""The Tool Agent (an MCP client) and the execution of its calls.

One agent step = one assistant message.  It is produced either natively (one request with
the tools and ``tool_choice``) or, for small models, "planned": a schema-bound decision
(which tools to call now / ask the user / answer), then one forced call per planned tool,
each constrained to that tool's ``inputSchema``, then merged into one assistant message.
The message passes self-reflection (a :class:`ReflectionStep` is stored right before it).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from synthesis.llm.base import ChatRequest, ChatResult, ToolCall

from . import phrasing, prompts
from .config import RoleplayConfig
from .reflection import Problem, reflect, value_problems
from .runtime import Gen, ask_first, gather, parse_json_reply, seed_for
from .server_sim import ServerSimulator, response_text, rpc_request
from .steps import MessageStep, ReflectionStep, StepLog
from .values import cap_strings


def rpc_ids_used(log: StepLog) -> int:
    return sum(
        len(s.tool_calls) for s in log.steps if isinstance(s, MessageStep) and s.role == "assistant"
    )


def _planned_reply(
    history: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    cfg: RoleplayConfig,
    *,
    temperature: float,
    seed: int | None,
) -> Gen[ChatResult]:
    names = [t["name"] for t in tools]
    plan_req = ChatRequest(
        messages=[*history, {"role": "system", "content": prompts.PLAN_INSTRUCTION}],
        tools=tools,
        json_schema=prompts.plan_schema(names, max_calls=cfg.max_parallel_calls),
        temperature=temperature,
        max_tokens=96,
        seed=seed,
    )
    plan = yield from ask_first("agent", plan_req)
    try:
        obj = parse_json_reply(plan)
        action = obj.get("action")
        planned = [n for n in obj.get("tools") or [] if n in names]
    except Exception:
        action, planned = "answer", []
    if action == "call_tools" and planned:
        calls: list[ToolCall] = []
        for i, name in enumerate(planned):
            note = prompts.next_call_instruction(
                i + 1, len(planned), [{"name": c.name, "arguments": c.arguments} for c in calls]
            )
            req = ChatRequest(
                messages=[*history, {"role": "system", "content": note}],
                tools=tools,
                decode_tools=[cap_strings(t) for t in tools],
                tool_choice={"name": name},
                temperature=temperature,
                max_tokens=cfg.agent_max_tokens,
                seed=None if seed is None else seed + i + 1,
            )
            res = yield from ask_first("agent", req)
            if res.error is not None:
                return res
            # The plan is scaffolding: a planned call that comes out identical to an earlier
            # one is planning noise, not part of the answer.
            calls += [
                tc
                for tc in res.tool_calls[:1]
                if (tc.name, tc.arguments) not in [(c.name, c.arguments) for c in calls]
            ]
        return ChatResult(text="", tool_calls=calls, finish_reason="tool_calls")
    req = ChatRequest(
        messages=history,
        tools=tools,
        tool_choice="none",
        temperature=temperature,
        max_tokens=cfg.agent_max_tokens,
        seed=seed,
    )
    return (yield from ask_first("agent", req))


def _reply(
    history: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    cfg: RoleplayConfig,
    *,
    tool_choice: str | dict[str, Any],
    temperature: float,
    seed: int | None,
) -> Gen[ChatResult]:
    if cfg.agent_protocol == "planned" and tool_choice == "auto":
        return (yield from _planned_reply(history, tools, cfg, temperature=temperature, seed=seed))
    req = ChatRequest(
        messages=history,
        tools=tools,
        tool_choice=tool_choice,
        temperature=temperature,
        max_tokens=cfg.agent_max_tokens,
        seed=seed,
    )
    return (yield from ask_first("agent", req))


def conversation_context(history: list[dict[str, Any]]) -> str:
    """What the user said, what the tools returned and which calls were made (``[call] name
    {args}`` lines): the text an agent's argument values must come from."""
    parts = []
    for m in history:
        if m.get("role") in ("user", "tool") and isinstance(m.get("content"), str):
            parts.append(m["content"])
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    continue
            parts.append("[call] " + str(fn.get("name")) + " " + json.dumps(args, sort_keys=True))
    return "\n".join(parts)


def agent_step(
    log: StepLog,
    history: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    cfg: RoleplayConfig,
    *,
    seed: int,
    tool_choice: str | dict[str, Any] = "auto",
    samples: int = 0,
    meta: dict[str, Any] | None = None,
    check: Callable[[ChatResult], list[Problem]] | None = None,
) -> Gen[MessageStep | None]:
    """One assistant message (None when self-reflection rejected it); ``check`` adds the
    caller's own problems to self-reflection."""
    refl: ReflectionStep | None = log.take(ReflectionStep, subject="agent")
    if refl is None:
        step_seed = seed_for(seed, "agent", log.next_index)
        gens = [
            _reply(
                history,
                tools,
                cfg,
                tool_choice=tool_choice,
                temperature=cfg.agent_temperature,
                seed=step_seed,
            )
        ]
        gens += [
            _reply(
                history,
                tools,
                cfg,
                tool_choice=tool_choice,
                temperature=cfg.sample_temperature,
                seed=step_seed + 1000 * (k + 1),
            )
            for k in range(samples)
        ]
        main, *sampled = yield from gather(gens)
        base = ChatRequest(
            messages=history,
            tools=tools,
            tool_choice=tool_choice,
            temperature=cfg.agent_temperature,
            max_tokens=cfg.agent_max_tokens,
        )
        by_name = {t["name"]: t for t in tools}
        context = conversation_context(history)

        def checks(result: ChatResult) -> list[Problem]:
            return value_problems(result, by_name, context) + (check(result) if check else [])

        outcome = yield from reflect(
            main, base, tools, role="agent", max_repairs=cfg.max_repair_attempts, extra_check=checks
        )
        message = None
        target = log.next_index + 1
        if outcome.result is not None:
            message = assistant_message(outcome.result, target, first_rpc_id=rpc_ids_used(log) + 1)
            message.meta.update(meta or {})
            if samples:
                message.meta["samples"] = [
                    [{"name": tc.name, "arguments": tc.arguments} for tc in s.tool_calls]
                    if s.error is None
                    else []
                    for s in sampled
                ]
        refl = log.emit(
            ReflectionStep(
                subject="agent",
                target_index=target,
                action=outcome.action,
                attempts=outcome.attempts,
                problems=outcome.problems,
                raw_attempts=outcome.raw_attempts,
                message=None if message is None else _message_payload(message),
            )
        )
    if refl.action == "rejected" or refl.message is None:
        return None
    msg = log.take(MessageStep, role="assistant")
    if msg is None:
        msg = log.emit(MessageStep(**refl.message))
    return msg


def final_answer(
    log: StepLog,
    history: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    cfg: RoleplayConfig,
    *,
    seed: int,
    results: list[MessageStep],
) -> Gen[MessageStep]:
    """The agent's answer to the user once tool results are in (no further calls).

    A model answer that fails self-reflection (empty, or echoing raw tool output) is
    replaced by a plain summary of the results (:func:`phrasing.answer_text`), marked
    ``meta["source"] = "plain"``: the calls before it are the valuable part of the example
    and stay."""
    answer = yield from agent_step(
        log, history, tools, cfg, seed=seed, tool_choice="none", check=answer_check(results)
    )
    if answer is not None:
        return answer
    stored = log.take(MessageStep, role="assistant")
    if stored is not None:
        return stored
    text = phrasing.answer_text([(m.name or "", m.mcp or {}) for m in results])
    return log.emit(MessageStep(role="assistant", content=text, meta={"source": "plain"}))


def answer_check(results: list[MessageStep], *, questions_ok: bool = False) -> Callable[[ChatResult], list[Problem]]:
    """Self-reflection's check of a text answer to tool ``results``: it reports them (names
    something they hold), does not say the request failed when every call succeeded, and
    speaks to the user, not about them.  A reply that calls tools is not an answer: it
    passes; with ``questions_ok`` (a conversation that goes on) neither does a question
    for what the next call needs have to quote the results."""
    values = _result_values(results)
    all_succeeded = bool(results) and not any(m.is_error() for m in results)

    def check(result: ChatResult) -> list[Problem]:
        if result.tool_calls:
            return []
        text = " ".join(result.text.lower().split())
        if all_succeeded and claims_failure(text):
            return [Problem("contradicts_results",
                            "every call succeeded, but the answer says it could not be done; report the results")]
        asks = questions_ok and text.rstrip().endswith("?")
        if values and not asks and not any(v in text for v in values):
            return [Problem("ungrounded_answer", "the answer mentions nothing from the tool results; use them")]
        if re.search(r"\bthe user\b", text):
            return [Problem("ungrounded_answer", "the answer talks about the user; speak to them")]
        return []

    return check


_FAILURE_CLAIM = re.compile(
    r"\b(?:not available|unavailable|no (?:such |suitable |matching )?tools?\b|"
    r"(?:do not|don't|does not|doesn't) have (?:a|any|the|access)|"
    r"(?:cannot|can't|can not|could not|couldn't|unable to|am not able to|was not able to) "
    r"(?:help|do|perform|complete|access|find|fulfil|process|handle|carry)|"
    r"(?:failed|an error occurred|went wrong)|i'?m sorry|apolog)"
)


def claims_failure(text: str) -> bool:
    """Whether an answer says the request could not be done (a tool missing, a failure).

    >>> claims_failure("The tool is not available.")
    True
    >>> claims_failure("I'm unable to perform that action with the tools I have.")
    True
    >>> claims_failure("Here is what I found: the status is active and no errors were reported.")
    False
    """
    return bool(_FAILURE_CLAIM.search(" ".join(text.lower().split())))


def _result_values(results: list[MessageStep], limit: int = 40) -> list[str]:
    """Scalar values of successful tool results, lower-cased, as an answer would quote them."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if len(out) >= limit:
            return
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v[:5]:
                walk(x)
        elif isinstance(v, str | int | float) and not isinstance(v, bool):
            text = " ".join(str(v).lower().split())
            if 2 <= len(text) <= 80:
                out.append(text)

    for m in results:
        res = (m.mcp or {}).get("result") or {}
        if not m.is_error():
            walk(res.get("structuredContent"))
    return out


def _message_payload(m: MessageStep) -> dict[str, Any]:
    d = dataclasses.asdict(m)
    d.pop("trajectory_id", None)
    d.pop("index", None)
    return d


def assistant_message(result: ChatResult, index: int, *, first_rpc_id: int) -> MessageStep:
    calls = []
    requests = []
    for i, tc in enumerate(result.tool_calls):
        call = ToolCall(name=tc.name, arguments=tc.arguments, id=f"call_{index}_{i}")
        calls.append(call.to_openai())
        requests.append(rpc_request(first_rpc_id + i, tc.name, tc.arguments))
    content = result.text.strip() or None
    return MessageStep(role="assistant", content=content, tool_calls=calls, mcp=requests or None)


def execute_calls(
    log: StepLog, message: MessageStep, server: ServerSimulator
) -> Gen[list[MessageStep]]:
    """One tool message per call of ``message`` (stored ones replayed), then the server
    state updated from each response in order."""
    requests = message.mcp or []
    calls = message.calls()
    out: list[MessageStep] = []
    for tc in message.tool_calls:
        stored = log.take(MessageStep, role="tool", tool_call_id=tc["id"])
        if stored is None:
            break
        out.append(stored)
    for i, m in enumerate(out):
        server.observe(calls[i]["name"], calls[i]["arguments"], m.mcp)
    todo = list(range(len(out), len(calls)))
    responses = yield from gather(
        [server.handle(requests[i]["id"], calls[i]["name"], calls[i]["arguments"]) for i in todo]
    )
    for i, resp in zip(todo, responses, strict=True):
        msg = log.emit(
            MessageStep(
                role="tool",
                content=response_text(resp),
                tool_call_id=message.tool_calls[i]["id"],
                name=calls[i]["name"],
                mcp=resp,
            )
        )
        server.observe(calls[i]["name"], calls[i]["arguments"], resp)
        out.append(msg)
    return out
