"""The one tool-call parser: synthesis, the rewards and BFCL scoring all read calls here.

Two modes (:func:`parse_completion`):

* ``strict``: the layout the models are trained to write (Hermes / Qwen blocks):
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; several blocks are parallel
  calls, text outside them stays as content.  Each block must hold one JSON object with a
  string ``name`` and an object ``arguments`` (``parameters`` is an alias; arguments given
  as a JSON string are decoded).  Anything else in a block is *malformed*.  The format
  reward grades this.
* ``lenient`` (synthesis, the execution reward, BFCL): also what other models and servers
  write: inside a block, a list of calls, ``{"tool_calls": [...]}`` or OpenAI's
  ``{"function": {"name", "arguments": "<json string>"}}``; without blocks, bare JSON making
  up the whole reply (optionally in a ```json fence) in any of those shapes.

In both modes a last block the model did not close (it ran out of tokens) is read to the
end of the text and reported as ``unclosed``; with ``truncated=True`` (the model stopped
at the token limit) such a block that does not parse is dropped (``dropped_tail``) rather
than counted as malformed, when calls came before it.

:func:`parse_completion` never raises: what did not parse is listed in ``malformed``.
:func:`parse_reply` (the backends' parser) is its lenient mode, and raises
:class:`~synthesis.llm.base.InvalidModelOutput`, carrying the raw text, when a reply is
plainly a call attempt that does not parse.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from .base import ChatResult, InvalidModelOutput, ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
MODES = ("strict", "lenient")
ParseMode = Literal["strict", "lenient"]

_BLOCK_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL)
# A reply starting like this is an attempt at a call even when it fails to parse.
_CALL_START_RE = re.compile(r'\A\s*(\[\s*)?\{\s*"(name|tool_calls|function)"\s*:')


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class _Malformed(ValueError):
    """One call that does not parse (internal: collected into ``malformed``)."""


def _call_from_obj(obj: Any, *, openai_shape: bool = True) -> ToolCall:
    if not isinstance(obj, dict):
        raise _Malformed("a tool call must be a JSON object")
    call_id = obj.get("id") or ""
    if openai_shape and isinstance(obj.get("function"), dict):  # OpenAI shape
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise _Malformed("a tool call must have a string 'name'")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            raise _Malformed(f"arguments of {name!r} are a string that is not JSON ({e})") from e
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _Malformed(f"arguments of {name!r} must be a JSON object")
    return ToolCall(
        name=name,
        arguments=args,
        id=call_id if isinstance(call_id, str) and call_id else new_call_id(),
    )


def _calls_from_json(obj: Any) -> list[ToolCall] | None:
    """The calls that ``obj`` spells, or None when it is not call-shaped."""
    if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
        return [_call_from_obj(o) for o in obj["tool_calls"]]
    if isinstance(obj, dict) and ("name" in obj or isinstance(obj.get("function"), dict)):
        if "name" in obj and not any(k in obj for k in ("arguments", "parameters")):
            return None  # e.g. {"name": "Alice"}: an answer, not a call
        return [_call_from_obj(obj)]
    if isinstance(obj, list) and obj and all(isinstance(o, dict) for o in obj):
        if all(
            ("name" in o and ("arguments" in o or "parameters" in o))
            or isinstance(o.get("function"), dict)
            for o in obj
        ):
            return [_call_from_obj(o) for o in obj]
    return None


def _calls_in_block(obj: Any, mode: ParseMode) -> list[ToolCall]:
    if mode == "strict":
        return [_call_from_obj(obj, openai_shape=False)]
    found = _calls_from_json(obj)
    if found is not None:
        return found
    # A block holding a bare object: read it as a call anyway (it must have a name).
    if isinstance(obj, list):
        return [_call_from_obj(o) for o in obj]
    return [_call_from_obj(obj)]


@dataclass
class ParsedCompletion:
    """What a model's text says: its calls, the text around them and what was malformed."""

    calls: list[ToolCall] = field(default_factory=list)
    # The text with the calls taken out.
    content: str = ""
    # Text before the first call and after the last closed one.
    text_before: str = ""
    text_after: str = ""
    # Call attempts: <tool_call> blocks, or (lenient) one bare-JSON reply.
    blocks: int = 0
    malformed: list[str] = field(default_factory=list)
    unclosed: bool = False
    # With ``truncated=True``: the text of a last, unclosed call that was cut off and dropped.
    dropped_tail: str | None = None
    # How the calls were written: "blocks", "json" (bare), "fence" (```json), or "" for none.
    form: str = ""

    @property
    def well_formed(self) -> bool:
        return not self.malformed and not self.unclosed


def parse_completion(
    text: str, *, mode: ParseMode = "lenient", truncated: bool = False
) -> ParsedCompletion:
    """Parse the tool calls in ``text``; never raises (see the module docstring).

    >>> p = parse_completion('Look it up.\\n<tool_call>\\n{"name": "f", "arguments": {"q": "x"}}\\n</tool_call>')
    >>> p.calls[0].name, p.calls[0].arguments, p.text_before, p.well_formed
    ('f', {'q': 'x'}, 'Look it up.', True)
    >>> parse_completion('<tool_call>{"name": "f"', mode="strict").well_formed
    False
    >>> [c.name for c in parse_completion('{"name": "f", "arguments": {}}').calls]
    ['f']
    >>> parse_completion('{"name": "f", "arguments": {}}', mode="strict").calls
    []
    """
    if mode not in MODES:
        raise ValueError(f"unknown parse mode {mode!r}; valid: {', '.join(MODES)}")
    out = ParsedCompletion()
    first = text.find(TOOL_CALL_OPEN)
    if first >= 0:
        out.form = "blocks"
        out.text_before = text[:first].strip()
        last_close = text.rfind(TOOL_CALL_CLOSE)
        if last_close >= 0 and last_close > text.rfind(TOOL_CALL_OPEN):
            out.text_after = text[last_close + len(TOOL_CALL_CLOSE) :].strip()
        else:
            out.unclosed = True
        kept = text
        matches = list(_BLOCK_RE.finditer(text))
        for k, m in enumerate(matches):
            out.blocks += 1
            body = m.group(1).strip()
            last_unclosed = k == len(matches) - 1 and not m.group(0).endswith(TOOL_CALL_CLOSE)
            try:
                try:
                    obj = json.loads(body)
                except json.JSONDecodeError as e:
                    raise _Malformed(f"invalid JSON in <tool_call> block ({e})") from e
                out.calls.extend(_calls_in_block(obj, mode))
            except _Malformed as e:
                if truncated and last_unclosed and out.calls:
                    out.dropped_tail = m.group(0)
                    out.blocks -= 1
                    out.unclosed = False
                    kept = text[: m.start()]
                    break
                out.malformed.append(str(e))
        out.content = _BLOCK_RE.sub("", kept).replace(TOOL_CALL_CLOSE, "").strip()
        return out

    out.content, out.text_before = text, text.strip()
    if mode == "strict":
        return out
    stripped = text.strip()
    fenced = _FENCE_RE.match(stripped)
    candidate = fenced.group(1) if fenced else stripped
    if candidate[:1] not in ("{", "["):
        return out
    try:
        obj = json.loads(candidate)
    except json.JSONDecodeError as e:
        if _CALL_START_RE.match(candidate):
            out.blocks = 1
            out.form = "fence" if fenced else "json"
            out.malformed.append(f"invalid JSON in tool call ({e})")
        return out
    try:
        found = _calls_from_json(obj)
    except _Malformed as e:
        out.blocks = 1
        out.form = "fence" if fenced else "json"
        out.malformed.append(str(e))
        return out
    if found is not None:
        out.blocks = 1
        out.form = "fence" if fenced else "json"
        out.calls = found
        out.content = out.text_before = ""
    return out


@dataclass
class ParsedReply:
    content: str
    tool_calls: list[ToolCall]
    # With ``truncated=True``: the text of a last, unclosed call that was cut off and dropped.
    dropped_tail: str | None = None


def parse_reply(text: str, *, truncated: bool = False) -> ParsedReply:
    """Split ``text`` into content and tool calls (lenient mode).

    ``truncated`` says the model was stopped by the token limit: a last ``<tool_call>``
    block it never closed and that does not parse is then dropped (reported in
    ``dropped_tail``) instead of failing the calls before it.  Raises
    :class:`InvalidModelOutput` when a call attempt does not parse.
    """
    parsed = parse_completion(text, mode="lenient", truncated=truncated)
    if parsed.malformed:
        raise InvalidModelOutput(parsed.malformed[0], raw=text)
    return ParsedReply(parsed.content, parsed.calls, parsed.dropped_tail)


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
    try:
        tc = _call_from_obj(call)
    except _Malformed as e:
        raise InvalidModelOutput(
            str(e), raw=json.dumps(call, ensure_ascii=False, default=str)
        ) from e
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
