"""Render tool-use conversations for chat models whose template knows no tools.

The format is Hermes / Qwen2.5 style, inside ChatML:

* the system prompt gets the tool definitions as JSON lines in ``<tools>...</tools>`` and
  the instruction to answer with ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
* an assistant message's ``tool_calls`` become such blocks after its text;
* ``role="tool"`` results become ``<tool_response>...</tool_response>`` blocks in a user turn
  (consecutive results share one turn).

Training data is rendered with the same functions, so that a fine-tuned model sees at
inference exactly the layout it was trained on.
"""

from __future__ import annotations

import json
from typing import Any

from .base import normalize_tool
from .toolcalls import format_tool_call

TOOLS_PREAMBLE = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
TOOLS_POSTAMBLE = (
    "\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n"
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
DEFAULT_SYSTEM = "You are a helpful assistant."


def tools_system_prompt(tools: list[dict[str, Any]]) -> str:
    lines = []
    for t in tools:
        nt = normalize_tool(t)
        lines.append(
            json.dumps(
                {
                    "name": nt["name"],
                    "description": nt["description"],
                    "parameters": nt["inputSchema"],
                },
                ensure_ascii=False,
            )
        )
    return TOOLS_PREAMBLE + "\n".join(lines) + TOOLS_POSTAMBLE


def content_text(content: Any) -> str:
    """Text of a message's content: a string, OpenAI content parts, or any JSON value."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return json.dumps(content, ensure_ascii=False)


def to_hermes_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> list[dict[str, str]]:
    """Plain ``{"role", "content"}`` ChatML messages (system/user/assistant only).

    >>> to_hermes_messages([{"role": "user", "content": "hi"}])
    [{'role': 'user', 'content': 'hi'}]
    """
    out: list[dict[str, str]] = []
    system_parts: list[str] = []
    rest = list(messages)
    while rest and rest[0].get("role") in ("system", "developer"):
        system_parts.append(content_text(rest.pop(0).get("content")))
    system = "\n\n".join(p for p in system_parts if p)
    if tools:
        system = (system or DEFAULT_SYSTEM) + "\n\n" + tools_system_prompt(tools)
    if system:
        # Without one, the model's own template supplies its default system prompt.
        out.append({"role": "system", "content": system})

    for msg in rest:
        role = msg.get("role")
        if role == "tool":
            block = f"<tool_response>\n{content_text(msg.get('content'))}\n</tool_response>"
            if (
                out
                and out[-1]["role"] == "user"
                and out[-1]["content"].startswith("<tool_response>")
            ):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block})
        elif role == "assistant":
            parts = [content_text(msg.get("content")).strip()]
            parts += [format_tool_call(tc) for tc in msg.get("tool_calls") or []]
            out.append({"role": "assistant", "content": "\n".join(p for p in parts if p)})
        elif role in ("system", "developer"):
            # A system message mid-conversation: keep it in the conversation's flow.
            out.append({"role": "system", "content": content_text(msg.get("content"))})
        elif role == "user":
            out.append({"role": "user", "content": content_text(msg.get("content"))})
        else:
            raise ValueError(f"unknown message role {role!r}; valid: system, user, assistant, tool")
    return out
