"""Single-turn tasks with reference calls, and their conversations.

Modes (the reference is the ground truth a trained model should produce):

* ``single``: one call to one offered tool;
* ``parallel``: several calls in one reply: the same tool with different arguments, or
  several tools at once;
* ``multiple``: one call to the right tool among several offered ones;
* ``irrelevance``: no offered tool fits; the reference is no call.

Reference arguments come first: a forced, schema-bound call per reference tool (checked
and repaired like any agent step; a deterministic schema instance if it cannot be
repaired), then the user's query is written around those values and checked to mention
them.  The Tool Agent then answers the query (with self-consistency samples); its calls
run through the MCP Server Simulator and it answers from the results.
"""

from __future__ import annotations

import json
from typing import Any

from synthesis.llm.base import ChatRequest, ChatResult, ToolCall
from synthesis.schema_utils import (
    NoValidValue,
    synthesize_instance,
    unknown_argument_names,
    validation_errors,
)

from . import phrasing, prompts
from .agent import agent_step, assistant_message, execute_calls, final_answer
from .config import RoleplayConfig
from .personas import SEED_PERSONAS
from .reflection import Problem, reflect
from .runtime import Gen, ask_first, parse_json_reply, rng_for, seed_for
from .scoring import execution_consistency, split_for
from .server_sim import ServerSimulator
from .steps import FinishStep, MessageStep, Persona, ScenarioStep, StepLog, TrajectorySpec
from .values import (
    cap_strings,
    implausible_arguments,
    is_request,
    overlap,
    polish_arguments,
    query_problems,
)
from .verify import (
    _stems,
    intent_problems,
    single_turn_transcript,
    tool_intent,
    value_coverage,
    verify,
)

# Least share of the plain request's content words a model's rewrite must keep.
MIN_REWRITE_OVERLAP = 0.4


def pick_persona(spec: TrajectorySpec) -> Persona:
    if spec.persona is not None:
        return spec.persona
    return rng_for(spec.seed, "persona").choice(SEED_PERSONAS)


def pick_targets(spec: TrajectorySpec, cfg: RoleplayConfig) -> list[dict[str, Any]]:
    """The reference tools (a tool twice = two calls to it)."""
    by_name = {t["name"]: t for t in spec.tools}
    rng = rng_for(spec.seed, "targets")
    if spec.mode == "irrelevance":
        return []
    if spec.target_tools:
        names = list(spec.target_tools)
        if spec.mode == "parallel" and len(names) == 1:
            names = names * rng.randint(2, cfg.max_parallel_calls)
        elif spec.mode in ("single", "multiple"):
            names = names[:1]
        return [by_name[n] for n in names]
    if spec.mode in ("single", "multiple"):
        return [rng.choice(spec.tools)]
    # parallel
    if len(spec.tools) == 1 or rng.random() < 0.5:
        return [rng.choice(spec.tools)] * rng.randint(2, cfg.max_parallel_calls)
    k = min(len(spec.tools), rng.randint(2, cfg.max_parallel_calls))
    return rng.sample(spec.tools, k)


def reference_call(
    persona: Persona,
    tool: dict[str, Any],
    cfg: RoleplayConfig,
    *,
    nth: int,
    total: int,
    previous: list[dict[str, Any]],
    seed: int,
    tool_names: tuple[str, ...] = (),
) -> Gen[tuple[dict[str, Any], dict[str, Any]]]:
    """One reference call ``{"name", "arguments"}`` and notes on how it was obtained."""
    req = ChatRequest(
        messages=prompts.reference_args_messages(
            persona, tool, nth=nth, total=total, previous=previous
        ),
        tools=[tool],
        decode_tools=[cap_strings(tool)],
        tool_choice={"name": tool["name"]},
        temperature=cfg.scenario_temperature,
        max_tokens=cfg.scenario_max_tokens,
        seed=seed,
    )

    def not_a_repeat(result: Any) -> list[Problem]:
        return [
            Problem("duplicate_call", f"this repeats planned call {i + 1}; use different values", 0)
            for i, c in enumerate(previous)
            if result.tool_calls
            and same_values(c, {"name": result.tool_calls[0].name, "arguments": result.tool_calls[0].arguments})
        ]

    first = yield from ask_first("scenario", req)
    outcome = yield from reflect(
        first,
        req,
        [tool],
        role="scenario",
        max_repairs=cfg.max_repair_attempts,
        expect_call=True,
        extra_check=not_a_repeat,
    )
    notes: dict[str, Any] = {"action": outcome.action, "attempts": outcome.attempts}
    if outcome.problems:
        notes["problems"] = outcome.problems
    calls = [
        tc
        for tc in (outcome.result.tool_calls if outcome.result else [])
        if tc.name == tool["name"]
    ]
    if calls:
        args, changes = polish_arguments(
            calls[0].arguments, tool.get("inputSchema"), rng_for(seed, "polish"), tool_names=tool_names
        )
        if changes:
            notes["polished"] = changes
        return {"name": tool["name"], "arguments": args}, notes
    # The model could not produce valid arguments: fall back to a schema instance, so the
    # task still exists; the verifiers judge whether it makes sense.
    args: dict[str, Any] = {}
    for k in range(10):
        try:
            args = synthesize_instance(
                tool.get("inputSchema") or {"type": "object"},
                rng=rng_for(seed, "fallback", k),
                optional_ratio=0.3,
            )
        except NoValidValue as exc:
            # the rule checks reject the task (its reference call does not validate)
            notes["fallback"], notes["fallback_invalid"] = "none", str(exc)[:300]
            return {"name": tool["name"], "arguments": {}}, notes
        args, _ = polish_arguments(
            args, tool.get("inputSchema"), rng_for(seed, "polish", k), tool_names=tool_names
        )
        if not any(same_values(c, {"name": tool["name"], "arguments": args}) for c in previous):
            break
    notes["fallback"] = "schema_instance"
    if validation_errors(args, tool.get("inputSchema")):
        notes["fallback_invalid"] = True
    return {"name": tool["name"], "arguments": args}, notes


def write_query(
    persona: Persona,
    calls: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    cfg: RoleplayConfig,
    *,
    mode: str,
    seed: int,
    absent: dict[str, Any] | None = None,
) -> Gen[tuple[str, dict[str, Any]]]:
    """The user's query: the model rewrites a plain request built from the calls
    (:func:`phrasing.request_text`) in the persona's words; a rewrite that leaves out a
    reference value or reads like junk (:func:`values.query_problems`) is retried, and
    when none passes the plain request itself is the query.

    For ``irrelevance`` the request is for ``absent``, a call of a tool that is *not*
    offered (from another domain), so no offered tool can serve it; without one the model
    invents the request.
    """
    tool_names = tuple(t["name"] for t in tools) + ((absent["name"],) if absent else ())
    wanted = calls if mode != "irrelevance" else ([absent] if absent else [])
    by_name = {t["name"]: t for t in tools}
    if absent is not None:
        by_name[absent["name"]] = absent.get("tool") or {"name": absent["name"]}
    plain = (
        phrasing.request_text(wanted, list(by_name.values()), rng_for(seed, "plain"), style=persona.style)
        if wanted
        else ""
    )
    if plain:
        base = prompts.rewrite_query_messages(persona, plain)
        schema = (
            prompts.query_schema(prompts.query_values(wanted, text=plain))
            if cfg.constrain_query_values
            else prompts.QUERY_SCHEMA
        )
    else:
        base = prompts.irrelevant_query_messages(persona, tools)
        schema = prompts.QUERY_SCHEMA
    notes: dict[str, Any] = {"attempts": 0, "plain": plain}
    rejected: list[dict[str, Any]] = []
    messages = base
    for attempt in range(cfg.query_attempts):
        req = ChatRequest(
            messages=messages,
            json_schema=schema,
            temperature=cfg.scenario_temperature,
            max_tokens=cfg.scenario_max_tokens,
            seed=seed + attempt,
        )
        reply = yield from ask_first("scenario", req)
        notes["attempts"] += 1
        try:
            query = " ".join(str(parse_json_reply(reply).get("query", "")).split())
        except Exception:
            query = ""
        problems = query_problems(query, tool_names)
        if query and not is_request(query):
            problems.append("asks for nothing (a user's request asks)")
        if wanted:
            cov, missing = value_coverage(query, wanted)
            if cov < 1.0:
                problems.append("leaves out " + ", ".join(missing[:4]))
        if plain and query:
            if not (0.5 * len(plain) <= len(query) <= 2.5 * len(plain) + 40):
                problems.append("much shorter or longer than the request it rewrites")
            # a rewrite keeps the request's subject (and its language)
            if overlap(query, plain) < MIN_REWRITE_OVERLAP:
                problems.append("drifts away from the request it rewrites")
            made_up = phrasing.new_values(query, plain)
            if made_up:
                problems.append("adds values the request does not have: " + ", ".join(made_up[:4]))
            if mode != "irrelevance":
                problems += intent_problems(query, calls, tools)
        if not problems:
            notes["source"] = "model"
            notes["rejected"] = rejected
            notes["value_coverage"] = 1.0 if wanted else None
            return query, notes
        rejected.append({"query": query[:300], "problems": problems})
        messages = [
            *base,
            {"role": "assistant", "content": json.dumps({"query": query}, ensure_ascii=False)},
            {"role": "user", "content": "Not usable: " + "; ".join(problems) + ". Write it again."},
        ]
    notes["rejected"] = rejected
    if plain:
        notes["source"] = "plain"
        notes["value_coverage"] = value_coverage(plain, wanted)[0] if mode != "irrelevance" else None
        return plain, notes
    notes["source"] = "model"
    return (rejected[-1]["query"] if rejected else ""), notes


def build_scenario(spec: TrajectorySpec, cfg: RoleplayConfig) -> Gen[ScenarioStep]:
    persona = pick_persona(spec)
    targets = pick_targets(spec, cfg)
    names = tuple(t["name"] for t in spec.tools)
    calls: list[dict[str, Any]] = []
    ref_notes = []
    for i, tool in enumerate(targets):
        call, notes = yield from reference_call(
            persona,
            tool,
            cfg,
            nth=i + 1,
            total=len(targets),
            previous=calls,
            seed=seed_for(spec.seed, "ref", i),
            tool_names=names,
        )
        if call in calls:  # no distinct values left (a small enum): one call fewer
            notes["dropped_duplicate"] = True
        else:
            calls.append(call)
        ref_notes.append(notes)
    absent = None
    meta: dict[str, Any] = {"reference": ref_notes, "tool_group": spec.tool_group}
    if spec.mode == "irrelevance" and spec.absent_tool is not None:
        call, notes = yield from reference_call(
            persona,
            spec.absent_tool,
            cfg,
            nth=1,
            total=1,
            previous=[],
            seed=seed_for(spec.seed, "absent"),
            tool_names=(*names, spec.absent_tool["name"]),
        )
        call = asked_for(call, spec.absent_tool)
        absent = {**call, "tool": spec.absent_tool}
        meta["absent_call"] = call
    query, qnotes = yield from write_query(
        persona,
        calls,
        spec.tools,
        cfg,
        mode=spec.mode,
        seed=seed_for(spec.seed, "query"),
        absent=absent,
    )
    meta["query"] = qnotes
    return ScenarioStep(
        mode=spec.mode,
        persona=persona.to_dict(),
        tools=spec.tools,
        query=query,
        reference_calls=calls,
        meta=meta,
    )


def same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two calls are one tool with the same values, however nested or padded
    with empty objects: asking for them twice asks for one thing.

    >>> same_values({"name": "mark", "arguments": {}}, {"name": "mark", "arguments": {"body": {}}})
    True
    >>> same_values({"name": "get", "arguments": {"page": 1}}, {"name": "get", "arguments": {"page": 2}})
    False
    """
    def values(call: dict[str, Any]) -> list[str]:
        return sorted(json.dumps(v, sort_keys=True) for v in prompts._scalars(call.get("arguments") or {}))

    return a.get("name") == b.get("name") and values(a) == values(b)


def rule_problems(scenario: ScenarioStep, cfg: RoleplayConfig) -> list[str]:
    problems = []
    if len(scenario.query) < 8:
        problems.append("the query is empty or too short")
    else:
        problems += [
            f"the query {p}"
            for p in query_problems(scenario.query, tuple(t["name"] for t in scenario.tools))
        ]
        plain_query = ((scenario.meta or {}).get("query") or {}).get("plain") or ""
        if scenario.query != plain_query and not is_request(scenario.query):
            problems.append("the query asks for nothing")
    plain = ((scenario.meta or {}).get("query") or {}).get("plain") or ""
    if plain and scenario.query != plain:
        made_up = phrasing.new_values(scenario.query, plain)
        if made_up:
            problems.append("the query adds values its reference does not have: " + ", ".join(made_up[:4]))
    by_name = {t["name"]: t for t in scenario.tools}
    names = tuple(by_name)
    for c in scenario.reference_calls:
        problems += [f"reference value {p}" for p in implausible_arguments(c, by_name.get(c["name"]), tool_names=names)]
        schema = (by_name.get(c["name"]) or {}).get("inputSchema")
        errs = validation_errors(c["arguments"], schema)
        unknown = unknown_argument_names(c["arguments"], schema) if isinstance(c["arguments"], dict) else []
        if c["name"] not in by_name or errs or unknown:
            problems.append(
                f"reference call {c['name']} is invalid: "
                + ("; ".join(errs + [f"no parameter {u!r}" for u in unknown]) or "unknown tool")
            )
    if scenario.mode == "irrelevance":
        if scenario.reference_calls:
            problems.append("an irrelevance task has no reference call, but this one has "
                            + ", ".join(c["name"] for c in scenario.reference_calls))
        asked = _stems(scenario.query)
        for t in scenario.tools:
            own = tool_intent(t)
            if len(own & asked) >= 2 and len(own & asked) * 2 >= len(own):
                problems.append(f"the offered tool {t['name']} seems to serve the request ({', '.join(sorted(own & asked))})")
    else:
        problems += intent_problems(scenario.query, scenario.reference_calls, scenario.tools)
        cov, missing = value_coverage(scenario.query, scenario.reference_calls)
        if cov < cfg.min_value_coverage:
            problems.append(
                f"the query mentions only {cov:.0%} of the reference values (missing: "
                f"{', '.join(m if m.strip() else repr(m) for m in missing[:6])})"
            )
        if scenario.mode == "parallel" and len(scenario.reference_calls) < 2:
            problems.append("a parallel task needs at least two reference calls")
        calls = scenario.reference_calls
        for j, c in enumerate(calls):
            if any(same_values(c, calls[i]) for i in range(j)):
                problems.append(f"reference call {j + 1} repeats an earlier one with no value of its own")
                break
    return problems


def single_turn_conversation(
    spec: TrajectorySpec, cfg: RoleplayConfig, log: StepLog
) -> Gen[FinishStep]:
    scenario: ScenarioStep | None = log.take(ScenarioStep)
    if scenario is None:
        scenario = log.emit((yield from build_scenario(spec, cfg)))
    tools = scenario.tools

    system = log.take(MessageStep, role="system") or log.emit(
        MessageStep(role="system", content=prompts.agent_system_message(tools))
    )
    user = log.take(MessageStep, role="user") or log.emit(
        MessageStep(role="user", content=scenario.query)
    )
    history = [system.to_openai(), user.to_openai()]

    answer = yield from agent_step(
        log, history, tools, cfg, seed=spec.seed, samples=cfg.consistency_samples
    )
    model_failed = answer is None
    if answer is None:
        if not cfg.reference_fallback:
            return finish_rejected_by_reflection(log)
        # What a single-turn example teaches is the request and its reference calls (the
        # ground truth exports and training use); the Tool Agent failing self-reflection
        # makes the task hard, not wrong. The reference answer carries the conversation on.
        answer = log.take(MessageStep, role="assistant") or log.emit(
            reference_answer(scenario.reference_calls, log.next_index)
        )
    history.append(answer.to_openai())
    tool_msgs: list[MessageStep] = []
    if answer.tool_calls and cfg.single_turn_execute:
        server = ServerSimulator(
            tools,
            seed=spec.seed,
            use_model=cfg.server_uses_model,
            temperature=cfg.server_temperature,
            max_tokens=cfg.server_max_tokens,
        )
        tool_msgs = yield from execute_calls(log, answer, server)
        history += [m.to_openai() for m in tool_msgs]
        yield from final_answer(log, history, tools, cfg, seed=spec.seed, results=tool_msgs)

    verdict = yield from verify(
        log,
        transcript=single_turn_transcript(scenario),
        rule_problems=rule_problems(scenario, cfg),
        settings=cfg.verify_settings(),
    )
    score = execution_consistency(
        # the model gave no usable answer: it agrees with no reference, not even "no call"
        agent_calls=[FAILED_CALL] if model_failed else answer.calls(),
        reference_calls=scenario.reference_calls,
        samples=answer.meta.get("samples") or [],
        server_errors=[m.is_error() for m in tool_msgs],
        tools=tools,
        weights=cfg.score_weights,
    )
    return finish(log, verdict, score, cfg)


FAILED_CALL = {"name": "<no usable answer>", "arguments": {}}


def reference_answer(calls: list[dict[str, Any]], index: int) -> MessageStep:
    """The assistant message that makes the reference calls (for irrelevance, no call: the
    refusal), marked ``meta["source"] = "reference"``; ``index`` is the step index it will get."""
    if not calls:
        return MessageStep(role="assistant", content=phrasing.REFUSAL, meta={"source": "reference"})
    message = assistant_message(
        ChatResult(text="", tool_calls=[ToolCall(name=c["name"], arguments=c["arguments"]) for c in calls]),
        index,
        first_rpc_id=1,
    )
    message.meta["source"] = "reference"
    return message


def finish_rejected_by_reflection(log: StepLog) -> FinishStep:
    existing = log.take(FinishStep)
    if existing is not None:
        return existing
    last = next((s for s in reversed(log.steps) if s.kind == "reflection"), None)
    reason = "self-reflection rejected an agent step" + (
        f": {last.problem[:300]}" if last is not None else ""
    )
    return log.emit(FinishStep(status="rejected", reason=reason, stats=stats_of(log)))


def finish(
    log: StepLog, verdict: str, score: Any, cfg: RoleplayConfig, **extra_stats: Any
) -> FinishStep:
    existing = log.take(FinishStep)
    if existing is not None:
        return existing
    return log.emit(
        FinishStep(
            status="accepted" if verdict == "accept" else "rejected",
            reason="" if verdict == "accept" else "verification rejected the trajectory",
            verdict=verdict,
            score=score.value,
            score_components=score.components(),
            split=split_for(score.value, cfg.hard_threshold),
            stats={**stats_of(log), **extra_stats},
        )
    )


def stats_of(log: StepLog) -> dict[str, Any]:
    msgs = [s for s in log.steps if isinstance(s, MessageStep)]
    refl = [s for s in log.steps if s.kind == "reflection"]
    return {
        "messages": len(msgs),
        "user_turns": sum(1 for m in msgs if m.role == "user"),
        "tool_calls": sum(len(m.tool_calls) for m in msgs if m.role == "assistant"),
        "server_errors": sum(1 for m in msgs if m.role == "tool" and m.is_error()),
        "repairs": sum(1 for r in refl if r.action == "repaired"),
        "votes": sum(1 for s in log.steps if s.kind == "vote"),
    }


def asked_for(call: dict[str, Any], tool: dict[str, Any]) -> dict[str, Any]:
    """What a user asks of a tool it does not have: the call with its required arguments
    only (one argument where none is required).  An irrelevance request spelt out every
    optional argument of the absent tool ("... with notification level default, last
    consumed message index -1, last consumption timestamp ..., please") and read like a
    form, not a person; no tool runs it, so nothing needs the rest.

    >>> tool = {"inputSchema": {"properties": {"to": {}, "cc": {}, "body": {}}, "required": ["to"]}}
    >>> asked_for({"name": "send", "arguments": {"to": "a@b.c", "cc": "d@e.f", "body": "Hi"}}, tool)["arguments"]
    {'to': 'a@b.c'}
    >>> asked_for({"name": "list", "arguments": {"page": 2, "q": "jazz"}}, {"inputSchema": {}})["arguments"]
    {'page': 2}
    """
    args = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
    required = set(((tool or {}).get("inputSchema") or {}).get("required") or ())
    kept = {k: v for k, v in args.items() if k in required} or dict(list(args.items())[:1])
    return {**call, "arguments": kept}

