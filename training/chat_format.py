"""Hermes-style tool prompts for chat templates that know nothing about tools.

SmolLM2's ChatML template ignores ``tools=`` and requires every message to have string
content, so tool definitions go into the system prompt and tool calls/results become text:

- tools: ``<tools>`` JSON lines inside the system prompt (the Qwen2.5/Hermes wording);
- an assistant call: ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``;
- tool results: one user message of ``<tool_response>`` blocks per run of tool messages.

The rendering is the embedded backend's own (``synthesis.llm.prompting``), so training
rows, GRPO prompts and inference prompts are the same text.  Parsing is the one parser of
``synthesis.llm.toolcalls``: its strict mode (``<tool_call>`` blocks only, each checked)
grades the format reward; its lenient mode reads the calls that synthesis accepts, for
the execution reward and BFCL.
"""

from __future__ import annotations

from typing import Any

from synthesis.llm.prompting import to_hermes_messages
from synthesis.llm.toolcalls import (  # noqa: F401 - re-exported for callers
    ParsedCompletion,
    ParseMode,
    format_tool_call,
    parse_completion,
)


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


def parse_tool_calls(text: str, mode: ParseMode = "strict") -> ParsedCompletion:
    """Parse ``<tool_call>`` JSON blocks from model text (strict mode by default; see
    :func:`synthesis.llm.toolcalls.parse_completion`).

    >>> p = parse_tool_calls('Look it up.\\n<tool_call>\\n{"name": "f", "arguments": {"q": "x"}}\\n</tool_call>')
    >>> p.calls[0].name, p.calls[0].arguments, p.text_before, p.well_formed
    ('f', {'q': 'x'}, 'Look it up.', True)
    >>> parse_tool_calls('<tool_call>{"name": "f"').well_formed
    False
    >>> len(parse_tool_calls('{"name": "f", "arguments": {}}').calls), len(parse_tool_calls('{"name": "f", "arguments": {}}', "lenient").calls)
    (0, 1)
    """
    return parse_completion(text, mode=mode)
