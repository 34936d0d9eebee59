"""Self-reflection: check every model step that produces tool calls, repair or reject it.

Checks on a reply (deterministic, no model):

* the reply parsed (``ChatResult.error`` is None);
* every called tool exists among the offered tools (no hallucinated tool);
* the arguments are a JSON object, use no parameter names the schema does not declare
  (no invented arguments), and validate against the tool's ``inputSchema``;
* a reply that must call a tool calls one; any reply has content or calls.

A failing reply is sent back to the model with the validator's messages, up to
``max_repairs`` times; it is then ``repaired`` or, still failing, ``rejected``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import ChatRequest, ChatResult
from synthesis.schema_utils import (
    is_id_key,
    resolve,
    schema_properties,
    unknown_argument_names,
    validation_errors,
)

from . import prompts
from .phrasing import mentions
from .runtime import Gen, ask_first
from .values import implausible, repeats_itself, shown

# A text reply that pastes tool output or chat-template markup instead of answering.
RAW_ECHO = re.compile(r"</?tool_(response|call)>|<\|im_(start|end)\|>|^\s*[\[{]\s*\"", re.S)


@dataclass
class Problem:
    code: str  # invalid_output | unknown_tool | arguments_not_object | unknown_argument | schema_violation | implausible_argument | invented_id | repeated_call | missing_call | empty_reply | degenerate_reply | raw_output | ungrounded_answer | duplicate_call | unasked_call | changed_value
    message: str
    call: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_call(
    name: str, arguments: Any, tools: dict[str, dict[str, Any]], *, call: int | None = None
) -> list[Problem]:
    """Problems of one call against the offered tools (empty when it is fine).

    >>> tools = {"f": {"name": "f", "inputSchema": {"type": "object", "properties": {"x": {"type": "integer"}}}}}
    >>> [p.code for p in check_call("g", {}, tools)]
    ['unknown_tool']
    >>> [p.code for p in check_call("f", {"x": "1", "y": 2}, tools)]
    ['unknown_argument', 'schema_violation']
    """
    tool = tools.get(name)
    if tool is None:
        offered = ", ".join(sorted(tools)) or "none"
        return [
            Problem("unknown_tool", f"tool {name!r} does not exist; offered tools: {offered}", call)
        ]
    if not isinstance(arguments, dict):
        return [Problem("arguments_not_object", f"arguments of {name} must be a JSON object", call)]
    schema = tool.get("inputSchema") or {}
    problems = []
    unknown = unknown_argument_names(arguments, schema)
    if unknown:
        declared = ", ".join(schema_properties(schema)) or "none"
        problems.append(
            Problem(
                "unknown_argument",
                f"{name} has no parameter(s) {', '.join(map(repr, unknown))}; its parameters: {declared}",
                call,
            )
        )
    for err in validation_errors(arguments, schema):
        if unknown and "Additional properties" in err:
            continue  # already reported, by name
        problems.append(Problem("schema_violation", f"{name} arguments {err}", call))
    return problems


def check_reply(
    result: ChatResult, tools: dict[str, dict[str, Any]], *, expect_call: bool | None = None
) -> list[Problem]:
    if result.error is not None:
        return [
            Problem("invalid_output", f"the reply could not be parsed: {str(result.error)[:200]}")
        ]
    problems: list[Problem] = []
    if expect_call and not result.tool_calls:
        problems.append(Problem("missing_call", "a tool call was required, but the reply has none"))
    if not result.tool_calls and not result.text.strip():
        problems.append(Problem("empty_reply", "the reply is empty"))
    elif not result.tool_calls and repeats_itself(result.text):
        problems.append(Problem("degenerate_reply", "the reply says the same thing over and over; say it once"))
    elif not result.tool_calls and RAW_ECHO.search(result.text):
        problems.append(
            Problem(
                "raw_output",
                "the reply repeats raw tool output or markup; answer the user in plain sentences",
            )
        )
    seen: list[tuple[str, Any]] = []
    for i, tc in enumerate(result.tool_calls):
        problems += check_call(tc.name, tc.arguments, tools, call=i)
        key = (tc.name, tc.arguments)
        if key in seen:
            problems.append(
                Problem(
                    "duplicate_call",
                    f"call {i} repeats an earlier call {tc.name} with the same arguments",
                    i,
                )
            )
        seen.append(key)
    return problems


def value_problems(
    result: ChatResult, tools: dict[str, dict[str, Any]], context: str | None = None
) -> list[Problem]:
    """What a person would not have typed into the agent's calls (the Tool Agent's own check;
    scenario reference calls are polished instead).

    * ``implausible_argument``: a placeholder, a type word, a tool name, punctuation, a
      sequential run of digits (see :func:`values.implausible`);
    * ``invented_id``: an identifier (``order_id``, ``userId``) that appears nowhere in
      ``context`` (what the user said and the tools returned) - the agent must ask for it
      or take it from an earlier result;
    * ``repeated_call``: a call identical to one already made in the conversation
      (its ``[call] name {args}`` lines in ``context``);
    * ``same_id_twice``: two identifiers of one call with the same value (an asset's
      ``Sid`` copied into its ``ServiceSid``), which name two different things.

    >>> tools = {"get_order": {"name": "get_order", "inputSchema": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}
    >>> from synthesis.llm.base import ToolCall
    >>> r = ChatResult(text="", tool_calls=[ToolCall(id="c", name="get_order", arguments={"order_id": "ord_123"})])
    >>> [p.code for p in value_problems(r, tools, "Where is my order ord_999?")]
    ['invented_id']
    >>> value_problems(r, tools, "Where is my order ord_123?")
    []
    >>> [p.code for p in value_problems(r, tools, "Where is my order xord_1234?")]  # not said as itself
    ['invented_id']
    >>> tools = {"DeleteAsset": {"name": "DeleteAsset", "inputSchema": {"type": "object", "properties": {
    ...     "Sid": {"type": "string"}, "ServiceSid": {"type": "string"}}}}}
    >>> r = ChatResult(text="", tool_calls=[ToolCall(id="c", name="DeleteAsset", arguments={"Sid": "ZH12ab", "ServiceSid": "ZH12ab"})])
    >>> [p.code for p in value_problems(r, tools, "Delete asset ZH12ab for service SD34cd.")]
    ['same_id_twice']
    """
    problems: list[Problem] = []
    said = " ".join((context or "").lower().split())
    for i, tc in enumerate(result.tool_calls):
        tool = tools.get(tc.name)
        if tool is None or not isinstance(tc.arguments, dict):
            continue
        schema = tool.get("inputSchema") or {}
        props = schema_properties(schema)
        name, call, arguments = tc.name, i, tc.arguments
        for key, value in arguments.items():
            if key not in props:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            why = implausible(value, key, resolve(props[key], schema) or {}, tool_names=tuple(tools))
            if why:
                problems.append(
                    Problem(
                        "implausible_argument",
                        f"{name} argument {key} = {shown(value)} is {why}; use a real value from the conversation",
                        call,
                    )
                )
            elif context is not None and is_id_key(key) and isinstance(value, str | int) and not isinstance(value, bool):
                if not mentions(context, value):
                    problems.append(
                        Problem(
                            "invented_id",
                            f"{name} argument {key} = {str(value)[:60]!r} appears nowhere in the conversation;"
                            " ask the user for it or use one from an earlier result",
                            call,
                        )
                    )
        first_key: dict[str, str] = {}
        for key, value in arguments.items():
            if key in props and is_id_key(key) and isinstance(value, str) and len(value) >= 4:
                if value in first_key:
                    problems.append(
                        Problem(
                            "same_id_twice",
                            f"{name} gives {first_key[value]} and {key} the same value {shown(value)}, but each "
                            "names a different thing; take each from where the conversation names it",
                            call,
                        )
                    )
                first_key.setdefault(value, key)
        if context is not None:
            line = "[call] " + name + " " + json.dumps(arguments, sort_keys=True)
            if " ".join(line.lower().split()) in said:
                problems.append(
                    Problem("repeated_call", f"{name} was already called with these arguments; use its result", call)
                )
    return problems


@dataclass
class ReflectionOutcome:
    action: str  # ok | repaired | rejected
    attempts: int
    problems: list[list[dict[str, Any]]] = field(default_factory=list)
    raw_attempts: list[str] = field(default_factory=list)
    result: ChatResult | None = None


def render_attempt(result: ChatResult) -> str:
    if result.error is not None:
        return result.text
    parts = [result.text.strip()] if result.text.strip() else []
    parts += [
        json.dumps({"name": tc.name, "arguments": tc.arguments}, ensure_ascii=False)
        for tc in result.tool_calls
    ]
    return "\n".join(parts)


def repair_request(
    request: ChatRequest,
    result: ChatResult,
    problems: list[Problem],
    tools: dict[str, dict[str, Any]],
    *,
    expect_call: bool,
) -> ChatRequest:
    """The original request plus the rejected reply and the validator's feedback."""
    attempt: dict[str, Any] = {
        "role": "assistant",
        "content": result.text if result.error is not None else (result.text or None),
    }
    if result.error is None and result.tool_calls:
        attempt["tool_calls"] = [tc.to_openai() for tc in result.tool_calls]
    feedback = {
        "role": "user",
        "content": prompts.repair_feedback([p.message for p in problems], expect_call=expect_call),
    }
    choice: str | dict[str, Any] = request.tool_choice
    if expect_call:
        names = [tc.name for tc in result.tool_calls] if result.error is None else []
        if isinstance(request.tool_choice, dict):
            choice = request.tool_choice
        elif len(names) == 1 and names[0] in tools:
            choice = {"name": names[0]}
        else:
            choice = "required"
    return dataclasses.replace(
        request, messages=[*request.messages, attempt, feedback], tool_choice=choice, n=1
    )


def reflect(
    result: ChatResult,
    request: ChatRequest,
    tools: list[dict[str, Any]],
    *,
    role: str,
    max_repairs: int,
    expect_call: bool | None = None,
    extra_check: Callable[[ChatResult], list[Problem]] | None = None,
) -> Gen[ReflectionOutcome]:
    """Check ``result`` (the reply to ``request``); re-ask up to ``max_repairs`` times.
    ``extra_check`` adds problems of the caller's own (run only on otherwise valid replies)."""
    by_name = {t["name"]: t for t in tools}
    out = ReflectionOutcome(action="ok", attempts=1)
    current = result
    while True:
        problems = check_reply(current, by_name, expect_call=expect_call)
        if not problems and extra_check is not None:
            problems = extra_check(current)
        if not problems:
            out.action = "ok" if out.attempts == 1 else "repaired"
            out.result = current
            return out
        out.problems.append([p.to_dict() for p in problems])
        out.raw_attempts.append(render_attempt(current)[:2000])
        if out.attempts > max_repairs:
            out.action = "rejected"
            return out
        # An invented id or a repeated call is fixed by asking the user or answering from
        # the results: the repair may answer in text.
        text_will_do = not expect_call and all(p.code in ("invented_id", "repeated_call") for p in problems)
        wants_call = not text_will_do and (
            bool(expect_call)
            or (current.error is None and bool(current.tool_calls))
            or current.error is not None
            and request.tool_choice != "none"
        )
        req = repair_request(request, current, problems, by_name, expect_call=wants_call)
        current = yield from ask_first(role, req)
        out.attempts += 1
