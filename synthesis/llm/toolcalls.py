"""Parse tool calls out of a model's text.

Understood forms, tried in this order:

* Hermes / Qwen blocks: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; several
  blocks are parallel calls, text outside them stays as content.  A last block the model
  did not close (it ran out of tokens) is read to the end of the text.
* Bare JSON making up the whole reply (optionally in a ```json fence): one call
  ``{"name": ..., "arguments": ...}``, a list of calls, or ``{"tool_calls": [...]}``;
  OpenAI's ``{"function": {"name", "arguments": "<json string>"}}`` shape is accepted too.

``parameters`` is an alias of ``arguments``; arguments given as a JSON string are decoded.
A reply that is plainly a call attempt but does not parse raises
:class:`~synthesis.llm.base.InvalidModelOutput` carrying the raw text.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from .base import ChatResult, InvalidModelOutput, ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

_BLOCK_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL)
# A reply starting like this is an attempt at a call even when it fails to parse.
_CALL_START_RE = re.compile(r'\A\s*(\[\s*)?\{\s*"(name|tool_calls|function)"\s*:')


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _call_from_obj(obj: Any, raw: str) -> ToolCall:
    if not isinstance(obj, dict):
        raise InvalidModelOutput("tool call is not a JSON object", raw=raw)
    if isinstance(obj.get("function"), dict):  # OpenAI shape
        call_id = obj.get("id") or ""
        obj = obj["function"]
    else:
        call_id = obj.get("id") or ""
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidModelOutput("tool call has no name", raw=raw)
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            raise InvalidModelOutput(
                f"arguments of {name!r} are not valid JSON ({e})", raw=raw
            ) from e
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise InvalidModelOutput(f"arguments of {name!r} are not a JSON object", raw=raw)
    return ToolCall(
        name=name,
        arguments=args,
        id=call_id if isinstance(call_id, str) and call_id else new_call_id(),
    )


def _calls_from_json(obj: Any, raw: str) -> list[ToolCall] | None:
    """The calls that ``obj`` spells, or None when it is not call-shaped."""
    if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
        return [_call_from_obj(o, raw) for o in obj["tool_calls"]]
    if isinstance(obj, dict) and ("name" in obj or isinstance(obj.get("function"), dict)):
        if "name" in obj and not any(k in obj for k in ("arguments", "parameters")):
            return None  # e.g. {"name": "Alice"}: an answer, not a call
        return [_call_from_obj(obj, raw)]
    if isinstance(obj, list) and obj and all(isinstance(o, dict) for o in obj):
        if all(
            ("name" in o and ("arguments" in o or "parameters" in o))
            or isinstance(o.get("function"), dict)
            for o in obj
        ):
            return [_call_from_obj(o, raw) for o in obj]
    return None


@dataclass
class ParsedReply:
    content: str
    tool_calls: list[ToolCall]
    # With ``truncated=True``: the text of a last, unclosed call that was cut off and dropped.
    dropped_tail: str | None = None


def parse_reply(text: str, *, truncated: bool = False) -> ParsedReply:
    """Split ``text`` into content and tool calls.

    ``truncated`` says the model was stopped by the token limit: a last ``<tool_call>``
    block it never closed and that does not parse is then dropped (reported in
    ``dropped_tail``) instead of failing the calls before it.
    """
    if TOOL_CALL_OPEN in text:
        calls: list[ToolCall] = []
        dropped = None
        matches = list(_BLOCK_RE.finditer(text))
        for k, m in enumerate(matches):
            body = m.group(1).strip()
            try:
                obj = json.loads(body)
            except json.JSONDecodeError as e:
                last_unclosed = k == len(matches) - 1 and not m.group(0).endswith(TOOL_CALL_CLOSE)
                if truncated and last_unclosed and calls:
                    dropped = m.group(0)
                    text = text[: m.start()]
                    break
                raise InvalidModelOutput(
                    f"invalid JSON in <tool_call> block ({e})", raw=text
                ) from e
            found = _calls_from_json(obj, text)
            if found is None:
                # A block holding a bare object: read it as a call anyway (it must have a name).
                found = (
                    [_call_from_obj(obj, text)]
                    if not isinstance(obj, list)
                    else [_call_from_obj(o, text) for o in obj]
                )
            calls.extend(found)
        content = _BLOCK_RE.sub("", text).replace(TOOL_CALL_CLOSE, "").strip()
        return ParsedReply(content, calls, dropped)

    stripped = text.strip()
    fenced = _FENCE_RE.match(stripped)
    candidate = fenced.group(1) if fenced else stripped
    if candidate[:1] in ("{", "["):
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError as e:
            if _CALL_START_RE.match(candidate):
                raise InvalidModelOutput(f"invalid JSON in tool call ({e})", raw=text) from e
            return ParsedReply(text, [])
        found = _calls_from_json(obj, text)
        if found is not None:
            return ParsedReply("", found)
    return ParsedReply(text, [])


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Split ``text`` into (content, tool calls); see :func:`parse_reply`.

    >>> parse_tool_calls('Sure.<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>')[1][0].arguments
    {'x': 1}
    >>> parse_tool_calls("Hello!")
    ('Hello!', [])
    """
    parsed = parse_reply(text)
    return parsed.content, parsed.tool_calls


def format_tool_call(call: ToolCall | dict[str, Any]) -> str:
    """The Hermes block for one call, as the model is asked to write it.

    >>> format_tool_call(ToolCall(name="f", arguments={"x": 1}))
    '<tool_call>\\n{"name": "f", "arguments": {"x": 1}}\\n</tool_call>'
    """
    name, args = call_name_and_arguments(call)
    body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}\n{body}\n{TOOL_CALL_CLOSE}"


def call_name_and_arguments(call: ToolCall | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Name and decoded arguments of a call given as ToolCall, OpenAI dict or plain dict."""
    if isinstance(call, ToolCall):
        return call.name, call.arguments
    tc = _call_from_obj(call, json.dumps(call, ensure_ascii=False, default=str))
    return tc.name, tc.arguments


def apply_tool_call_parsing(result: ChatResult) -> ChatResult:
    """Move the calls in ``result.text`` into ``result.tool_calls`` (in place).

    On unparseable output the raw text stays in ``text`` and ``error`` is set; nothing is
    raised, so one bad reply in a batch leaves the others alone.
    """
    try:
        parsed = parse_reply(result.text, truncated=result.finish_reason == "length")
    except InvalidModelOutput as e:
        result.error = e
        if result.finish_reason != "length":
            result.finish_reason = "error"
        return result
    if parsed.tool_calls:
        result.text = parsed.content
        result.tool_calls = parsed.tool_calls
        if result.finish_reason == "stop":
            result.finish_reason = "tool_calls"
    if parsed.dropped_tail:
        result.warnings.append(
            f"dropped a tool call cut off by max_tokens: {parsed.dropped_tail[:200]!r}"
        )
    return result


def ends_with_repeated_call(text: str) -> bool:
    """Whether the last closed ``<tool_call>`` block of ``text`` repeats an earlier one.

    >>> call = '<tool_call>\\n{"name": "f", "arguments": {"x": 1}}\\n</tool_call>'
    >>> ends_with_repeated_call(call + "\\n" + call)
    True
    >>> ends_with_repeated_call(call + "\\n" + call.replace("1", "2"))
    False
    >>> ends_with_repeated_call(call)
    False
    """
    blocks = [b.strip() for b in re.findall(r"<tool_call>(.*?)</tool_call>", text, re.DOTALL)]
    if len(blocks) < 2 or not text.rstrip().endswith(TOOL_CALL_CLOSE):
        return False
    return blocks[-1] in blocks[:-1]


def ends_repeating_a_call(text: str) -> bool:
    """Whether what follows the last closed ``<tool_call>`` block of ``text`` is the start of
    a block repeating an earlier one (a reply cut off while it repeated itself).

    >>> call = '<tool_call>\\n{"name": "f", "arguments": {"x": 1}}\\n</tool_call>'
    >>> ends_repeating_a_call(call + '\\n<tool_call>\\n{"name": "f", "argu')
    True
    >>> ends_repeating_a_call(call + '\\n<tool_call>\\n{"name": "g"')
    False
    >>> ends_repeating_a_call(call + "\\n")
    False
    """
    end = text.rfind(TOOL_CALL_CLOSE)
    if end < 0:
        return False
    tail = text[end + len(TOOL_CALL_CLOSE) :].lstrip()
    if not tail:
        return False
    blocks = re.findall(
        r"<tool_call>.*?</tool_call>", text[: end + len(TOOL_CALL_CLOSE)], re.DOTALL
    )
    return any(block.startswith(tail) for block in blocks)
