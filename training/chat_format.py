"""Hermes-style tool prompts for chat templates that know nothing about tools.

SmolLM2's ChatML template ignores ``tools=`` and requires every message to have string
content, so tool definitions go into the system prompt and tool calls/results become text:

- tools: ``<tools>`` JSON lines inside the system prompt (the Qwen2.5/Hermes wording);
- an assistant call: ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``;
- tool results: one user message of ``<tool_response>`` blocks per run of tool messages.

Training rows, GRPO prompts and BFCL evaluation all go through :func:`render_messages`,
so the model sees the same text at training and inference time.  When the synthesis
package provides its own renderer (``synthesis.llm.prompting.render_messages``), that one
is used instead, so the embedded backend and training can never drift apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import ToolCall, to_openai_tool

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_POSTAMBLE = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def render_tools_system_prompt(tools: list[dict[str, Any]], system: str | None = None) -> str:
    """Return the system prompt text that offers ``tools`` (MCP or OpenAI definitions).

    >>> text = render_tools_system_prompt([{"name": "f", "inputSchema": {"type": "object"}}])
    >>> text.splitlines()[0], '"name": "f"' in text
    ('You are a helpful assistant.', True)
    """
    head = (system or DEFAULT_SYSTEM_PROMPT).rstrip()
    if not tools:
        return head
    lines = "".join("\n" + json.dumps(to_openai_tool(t), ensure_ascii=False) for t in tools)
    return f"{head}\n\n{TOOLS_PREAMBLE}{lines}{TOOLS_POSTAMBLE}"


def format_tool_call(name: str, arguments: dict[str, Any] | str) -> str:
    """Render one call as the model should write it.

    >>> print(format_tool_call("f", {"x": 1}))
    <tool_call>
    {"name": "f", "arguments": {"x": 1}}
    </tool_call>
    """
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _assistant_text(message: dict[str, Any]) -> str:
    parts = []
    content = message.get("content") or ""
    if isinstance(content, list):  # OpenAI content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content.strip():
        parts.append(content.strip())
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call)
        parts.append(format_tool_call(fn["name"], fn.get("arguments", {})))
    return "\n".join(parts)


def _tool_response_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    return f"<tool_response>\n{content}\n</tool_response>"


def _render_messages_builtin(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    system = None
    rest = messages
    if messages and messages[0].get("role") == "system":
        system = messages[0].get("content") or ""
        rest = messages[1:]
    if tools or system is not None:
        out.append({"role": "system", "content": render_tools_system_prompt(tools or [], system)})
    for message in rest:
        role = message.get("role")
        if role == "tool":
            block = _tool_response_text(message)
            if out and out[-1].get("_tool_run"):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool_run": True})  # type: ignore[dict-item]
        elif role == "assistant":
            out.append({"role": "assistant", "content": _assistant_text(message)})
        else:
            content = message.get("content") or ""
            if not isinstance(content, str):
                content = json.dumps(content, ensure_ascii=False)
            out.append({"role": role or "user", "content": content})
    for m in out:
        m.pop("_tool_run", None)  # type: ignore[misc]
    return out


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
    external = _external_renderer()
    if external is not None:
        return external(messages, tools)
    return _render_messages_builtin(messages, tools)


def _external_renderer():
    try:
        from synthesis.llm import prompting  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(prompting, "render_messages", None)


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
