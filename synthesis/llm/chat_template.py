"""A ChatML chat template that renders tools, tool calls and tool results (Hermes / Qwen2.5).

Every checkpoint InfTool writes (the converted embedded model, SFT and GRPO outputs)
carries this template, so that plain Hugging Face tooling works on InfTool's exports
without our code: ``tokenizer.apply_chat_template(messages, tools=tools)`` and TRL's
``SFTTrainer`` render OpenAI-format conversations (``tools``, assistant ``tool_calls``
with ``content: null``, ``role: "tool"`` results) as the model was taught:

* the tool definitions are JSON lines in ``<tools>...</tools>`` in the system prompt,
  with the Qwen2.5 instruction to answer with ``<tool_call>`` blocks;
* an assistant's calls are ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``
  blocks after its text;
* a run of tool results is one user turn of ``<tool_response>...</tool_response>`` blocks.

The text is the same, byte for byte, as :func:`synthesis.llm.prompting.to_hermes_messages`
rendered through plain ChatML (a test holds the two together), so a model trained through
either path sees one layout.  Call arguments given as a JSON string (OpenAI's form) are
written as they are; given as an object, they are written as ``json.dumps`` writes them.

Assistant turns are wrapped in ``{% generation %}`` markers so that TRL's
``assistant_only_loss`` can mask the loss to them; each ends with ``<|im_end|>``, the
model's end-of-turn (eos) token, which is what generation stops on.
"""

from __future__ import annotations

import logging
from typing import Any

from .prompting import DEFAULT_SYSTEM, TOOLS_POSTAMBLE, TOOLS_PREAMBLE

logger = logging.getLogger(__name__)

# Where a template is missing, SmolLM2's own default system prompt (what its template says
# when a conversation has none).
SMOLLM2_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# SmolLM2-135M-Instruct's own template, as the GGUF ships it (plain ChatML: no tools, and
# string content required); checkpoints converted before version 2 carry it.
SMOLLM2_CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Bump when the template's rendering changes: checkpoints record it, and the embedded
# checkpoint is converted again when its recorded version is older.
TEMPLATE_VERSION = 1

_TEMPLATE = r"""{#- InfTool tool-use ChatML template, version @VERSION@ (Hermes / Qwen2.5 layout) -#}
{%- macro text(c) -%}
{%- if c is none or c is undefined -%}
{%- elif c is string -%}{{ c }}
{%- elif c is sequence and c is not mapping and (c | selectattr('type', 'defined') | list | length) == (c | length) -%}
{%- for p in c if p.type == 'text' -%}{{ p.text if p.text is defined and p.text is not none else '' }}{%- endfor -%}
{%- else -%}{{ c | tojson }}
{%- endif -%}
{%- endmacro -%}
{%- macro call_block(tc) -%}
{%- set fn = tc.function if tc.function is mapping else tc -%}
{%- set args = fn.arguments if fn.arguments is defined and fn.arguments is not none else (fn.parameters if fn.parameters is defined and fn.parameters is not none else {}) -%}
{{- '<tool_call>\n{"name": ' + (fn.name | tojson) + ', "arguments": ' -}}
{%- if args is string -%}{{ args | trim if args | trim else '{}' }}{%- else -%}{{ args | tojson }}{%- endif -%}
{{- '}\n</tool_call>' -}}
{%- endmacro -%}
{%- set ns = namespace(system='', first=0) -%}
{%- for m in messages -%}
{%- if ns.first == loop.index0 and m.role in ['system', 'developer'] -%}
{%- set t = text(m.content) -%}
{%- if t -%}{%- set ns.system = ns.system + ('\n\n' if ns.system else '') + t -%}{%- endif -%}
{%- set ns.first = loop.index -%}
{%- endif -%}
{%- endfor -%}
{%- if tools -%}
{%- set ns.system = (ns.system or @DEFAULT_SYSTEM@) + '\n\n' + @PREAMBLE@ -%}
{%- for tool in tools -%}
{%- if tool.type == 'function' and tool.function is mapping -%}
{%- set f = tool.function -%}
{%- set params = f.parameters or {'type': 'object', 'properties': {}} -%}
{%- else -%}
{%- set f = tool -%}
{%- set params = f.inputSchema or f.parameters or {'type': 'object', 'properties': {}} -%}
{%- endif -%}
{%- set ns.system = ns.system + ('\n' if not loop.first else '') + ({'name': f.name, 'description': f.description or '', 'parameters': params} | tojson) -%}
{%- endfor -%}
{%- set ns.system = ns.system + @POSTAMBLE@ -%}
{%- endif -%}
{%- if ns.system -%}
{{- '<|im_start|>system\n' + ns.system + '<|im_end|>\n' -}}
{%- elif messages | length > 0 and @MODEL_DEFAULT_SYSTEM@ -%}
{{- '<|im_start|>system\n' + @MODEL_DEFAULT_SYSTEM@ + '<|im_end|>\n' -}}
{%- endif -%}
{%- for m in messages[ns.first:] -%}
{%- if m.role == 'tool' -%}
{%- if loop.first or loop.previtem.role != 'tool' -%}{{- '<|im_start|>user\n' -}}{%- else -%}{{- '\n' -}}{%- endif -%}
{{- '<tool_response>\n' + text(m.content) + '\n</tool_response>' -}}
{%- if loop.last or loop.nextitem.role != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- elif m.role == 'assistant' -%}
{%- set body = text(m.content) | trim -%}
{{- '<|im_start|>assistant\n' -}}
{%- generation -%}
{{- body -}}
{%- if m.tool_calls -%}
{%- for tc in m.tool_calls -%}
{%- if body or not loop.first -%}{{- '\n' -}}{%- endif -%}
{{- call_block(tc) -}}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>' -}}
{%- endgeneration -%}
{{- '\n' -}}
{%- elif m.role in ['user', 'system', 'developer'] -%}
{{- '<|im_start|>' + ('system' if m.role == 'developer' else m.role) + '\n' + text(m.content) + '<|im_end|>\n' -}}
{%- else -%}
{{- raise_exception('unknown message role ' ~ m.role ~ '; valid: system, user, assistant, tool') -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""


def _jinja_str(s: str) -> str:
    """``s`` as a Jinja string literal."""
    import json

    return json.dumps(s)


def tool_chat_template(model_default_system: str = SMOLLM2_DEFAULT_SYSTEM) -> str:
    """The template, with ``model_default_system`` as the system prompt of conversations
    that bring none and offer no tools (a model's own default, kept)."""
    return (
        _TEMPLATE.replace("@VERSION@", str(TEMPLATE_VERSION))
        .replace("@DEFAULT_SYSTEM@", _jinja_str(DEFAULT_SYSTEM))
        .replace("@PREAMBLE@", _jinja_str(TOOLS_PREAMBLE))
        .replace("@POSTAMBLE@", _jinja_str(TOOLS_POSTAMBLE))
        .replace("@MODEL_DEFAULT_SYSTEM@", _jinja_str(model_default_system))
    )


TOOL_CHAT_TEMPLATE = tool_chat_template()
TEMPLATE_MARK = "InfTool tool-use ChatML template"

# A conversation with every part the template must render, to probe a tokenizer's template.
PROBE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
PROBE_MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    {"role": "assistant", "content": "It is 21 °C in Paris."},
]


def renders_tools(tokenizer: Any) -> bool:
    """True when ``tokenizer``'s chat template renders tools, tool calls and tool results in
    the Hermes layout our parser reads (``<tools>``, ``<tool_call>``, ``<tool_response>``)."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    try:
        text = tokenizer.apply_chat_template(PROBE_MESSAGES, tools=PROBE_TOOLS, tokenize=False)
    except Exception:  # noqa: BLE001 - any template error means "does not render tools"
        return False
    return all(
        s in text
        for s in ("<tools>", "get_weather", "<tool_call>", '"Paris"', "<tool_response>", "21")
    )


def chatml_default_system(tokenizer: Any) -> str | None:
    """The system prompt a ChatML template adds to a conversation without one, '' when it
    adds none, or None when the template is not ChatML."""
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(text, str) or "<|im_start|>user\nx<|im_end|>" not in text:
        return None
    head = text.split("<|im_start|>user\n", 1)[0]
    prefix = "<|im_start|>system\n"
    if head.startswith(prefix) and head.endswith("<|im_end|>\n"):
        return head[len(prefix) : -len("<|im_end|>\n")]
    return ""


def install_tool_template(tokenizer: Any) -> bool:
    """Give ``tokenizer`` the tool-rendering template where its own does not render tools.

    A ChatML template is replaced by ours (keeping its default system prompt); a template
    that renders tools already (Qwen2.5's, ours) is kept.  Returns True when it changed.
    A template that is neither is kept, with a warning: our layout would not match that
    model's own turn tokens.
    """
    own = getattr(tokenizer, "chat_template", None)
    ours = bool(own) and TEMPLATE_MARK in own
    if ours and f"version {TEMPLATE_VERSION} " in own:
        return False
    if own and not ours and renders_tools(tokenizer):
        return False
    default = SMOLLM2_DEFAULT_SYSTEM
    if own:
        found = chatml_default_system(tokenizer)
        if found is None and not ours:
            logger.warning(
                "the chat template renders no tools and is not ChatML; kept as it is (give the "
                "checkpoint a template that renders tools, e.g. Qwen2.5's)"
            )
            return False
        if found is not None:
            default = found
    tokenizer.chat_template = tool_chat_template(default)
    return True


END_OF_TURN = "<|im_end|>"


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The ids generation must stop on: the tokenizer's eos and ChatML's end of turn."""
    ids: list[int] = []
    for tid in (
        getattr(tokenizer, "eos_token_id", None),
        tokenizer.convert_tokens_to_ids(END_OF_TURN)
        if END_OF_TURN in tokenizer.get_vocab()
        else None,
    ):
        if isinstance(tid, int) and tid not in ids:
            ids.append(tid)
    return ids


def set_stop_tokens(model: Any, tokenizer: Any) -> list[int]:
    """Make ``model.generation_config`` stop on every id of :func:`stop_token_ids` (kept
    with the ones it has), so that a generation with this template ends with the turn."""
    gen = getattr(model, "generation_config", None)
    if gen is None:
        return []
    have = gen.eos_token_id
    ids = [] if have is None else ([have] if isinstance(have, int) else list(have))
    for tid in stop_token_ids(tokenizer):
        if tid not in ids:
            ids.append(tid)
    if ids:
        gen.eos_token_id = ids[0] if len(ids) == 1 else ids
        if gen.pad_token_id is None:
            gen.pad_token_id = ids[0]
    return ids
