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

from . import prompts
from .runtime import Gen, ask_first
from .schema_utils import schema_properties, unknown_argument_names, validation_errors

# A text reply that pastes tool output or chat-template markup instead of answering.
RAW_ECHO = re.compile(r"</?tool_(response|call)>|<\|im_(start|end)\|>|^\s*[\[{]\s*\"", re.S)


@dataclass
class Problem:
    code: str  # invalid_output | unknown_tool | arguments_not_object | unknown_argument | schema_violation | missing_call | empty_reply | raw_output | ungrounded_answer | duplicate_call
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
        wants_call = (
            bool(expect_call)
            or (current.error is None and bool(current.tool_calls))
            or current.error is not None
            and request.tool_choice != "none"
        )
        req = repair_request(request, current, problems, by_name, expect_call=wants_call)
        current = yield from ask_first(role, req)
        out.attempts += 1
