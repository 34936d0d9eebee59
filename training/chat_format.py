"""Hermes-style tool prompts for chat templates that know nothing about tools.

SmolLM2's ChatML template ignores ``tools=`` and requires every message to have string
content, so tool definitions go into the system prompt and tool calls/results become text:

- tools: ``<tools>`` JSON lines inside the system prompt (the Qwen2.5/Hermes wording);
- an assistant call: ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``;
- tool results: one user message of ``<tool_response>`` blocks per run of tool messages.

The rendering is the embedded backend's own (``synthesis.llm.prompting``), so training
rows, GRPO prompts and inference prompts are the same text.  Parsing here is stricter
than the backend's: the format reward needs to know which blocks were malformed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import ToolCall
from synthesis.llm.prompting import to_hermes_messages
from synthesis.llm.toolcalls import format_tool_call  # noqa: F401 - re-exported for callers

_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def render_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> list[dict[str, str]]:
    """Turn OpenAI-format messages (tool_calls, tool results) plus tools into plain
    ``{"role", "content"}`` messages that any ChatML template renders.

    >>> msgs = [{"role": "user", "content": "hi"},
    ...         {"role": "assistant", "content": None,
    ...          "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]},
    ...         {"role": "tool", "content": "ok"}]
    >>> [m["role"] for m in render_messages(msgs, [{"name": "f"}])]
    ['system', 'user', 'assistant', 'user']
    """
    return to_hermes_messages(messages, tools)


@dataclass
class ParsedCompletion:
    """What a completion says: its calls, the text around them and what was malformed."""

    calls: list[ToolCall] = field(default_factory=list)
    text_before: str = ""
    text_after: str = ""
    blocks: int = 0
    malformed: list[str] = field(default_factory=list)
    unclosed: bool = False

    @property
    def well_formed(self) -> bool:
        return not self.malformed and not self.unclosed


def parse_tool_calls(text: str) -> ParsedCompletion:
    """Parse ``<tool_call>`` JSON blocks from model text.

    >>> p = parse_tool_calls('Look it up.\\n<tool_call>\\n{"name": "f", "arguments": {"q": "x"}}\\n</tool_call>')
    >>> p.calls[0].name, p.calls[0].arguments, p.text_before, p.well_formed
    ('f', {'q': 'x'}, 'Look it up.', True)
    >>> parse_tool_calls('<tool_call>{"name": "f"').well_formed
    False
    """
    result = ParsedCompletion()
    first = text.find("<tool_call>")
    if first < 0:
        result.text_before = text.strip()
        return result
    result.text_before = text[:first].strip()
    last_end = text.rfind("</tool_call>")
    if last_end >= 0 and last_end > text.rfind("<tool_call>"):
        result.text_after = text[last_end + len("</tool_call>") :].strip()
    else:
        result.unclosed = True
    for match in _TOOL_CALL_RE.finditer(text, first):
        result.blocks += 1
        body = match.group(1).strip()
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as exc:
            result.malformed.append(f"invalid JSON in <tool_call>: {exc.msg}")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            result.malformed.append("a <tool_call> must be a JSON object with a string 'name'")
            continue
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                result.malformed.append("'arguments' is a string that is not JSON")
                continue
        if not isinstance(args, dict):
            result.malformed.append("'arguments' must be a JSON object")
            continue
        result.calls.append(ToolCall(name=obj["name"], arguments=args))
    return result
