"""The tool-use chat template every checkpoint carries: it renders tools, tool calls with
``content: null`` and tool results exactly as the embedded backend's own rendering, and
the converted checkpoint carries it with its stop tokens."""

from __future__ import annotations

import json

import pytest

from synthesis.llm.chat_template import (
    PROBE_MESSAGES,
    PROBE_TOOLS,
    SMOLLM2_CHATML_TEMPLATE,
    SMOLLM2_DEFAULT_SYSTEM,
    TEMPLATE_MARK,
    chatml_default_system,
    install_tool_template,
    renders_tools,
    stop_token_ids,
    tool_chat_template,
)
from synthesis.llm.prompting import to_hermes_messages
from synthesis.llm.toolcalls import parse_completion

SMOLLM2_TEMPLATE = SMOLLM2_CHATML_TEMPLATE

MCP_TOOLS = [
    {
        "name": "search_books",
        "description": "Find books by title — ünïcode kept",
        "inputSchema": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["title"],
        },
    },
    {"name": "ping", "description": "", "inputSchema": {}},
]


def _call(cid, name, args):
    return {
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


CONVERSATIONS = {
    "plain": (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}],
        None,
    ),
    "system": (
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        None,
    ),
    "empty tools": ([{"role": "user", "content": "hi"}], []),
    "probe": (PROBE_MESSAGES, PROBE_TOOLS),
    "mcp tools, parallel calls, text, results in a row": (
        [
            {"role": "system", "content": "You help readers."},
            {"role": "developer", "content": "Stay on topic."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Find "}, {"type": "text", "text": "Dune"}],
            },
            {
                "role": "assistant",
                "content": "  Searching both.  ",
                "tool_calls": [
                    _call("a", "search_books", {"title": "Dune", "limit": 2}),
                    {"name": "ping", "arguments": {}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": [{"title": "Dune", "année": 1965}]},
            {"role": "tool", "tool_call_id": "b", "content": "pong"},
            {"role": "system", "content": "Answer in one line."},
            {"role": "assistant", "content": "Dune (1965)."},
            {"role": "user", "content": "And ping again?"},
            {"role": "assistant", "content": None, "tool_calls": [_call("c", "ping", {})]},
        ],
        MCP_TOOLS,
    ),
}


@pytest.fixture(scope="module")
def tokenizer(embedded_tokenizer):
    return embedded_tokenizer


@pytest.mark.parametrize("name", list(CONVERSATIONS))
@pytest.mark.parametrize("generation_prompt", [False, True])
def test_the_template_renders_as_the_backend_renders(tokenizer, name, generation_prompt):
    messages, tools = CONVERSATIONS[name]
    expected = tokenizer.apply_chat_template(
        to_hermes_messages(messages, tools),
        tokenize=False,
        add_generation_prompt=generation_prompt,
        chat_template=SMOLLM2_TEMPLATE,
    )
    got = tokenizer.apply_chat_template(
        messages,
        tools=tools,
        tokenize=False,
        add_generation_prompt=generation_prompt,
        chat_template=tool_chat_template(),
    )
    assert got == expected


def test_the_converted_checkpoint_carries_the_template_and_stops_at_end_of_turn(tokenizer):
    from transformers import GenerationConfig

    from synthesis.llm.embedded import ensure_embedded_checkpoint

    assert TEMPLATE_MARK in tokenizer.chat_template
    assert renders_tools(tokenizer)
    assert chatml_default_system(tokenizer) == SMOLLM2_DEFAULT_SYSTEM
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.eos_token_id == end_of_turn
    gen = GenerationConfig.from_pretrained(ensure_embedded_checkpoint())
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    assert end_of_turn in eos and set(stop_token_ids(tokenizer)) <= set(eos)
    # Each assistant turn ends with the token generation stops on, so training teaches it.
    text = tokenizer.apply_chat_template(PROBE_MESSAGES, tools=PROBE_TOOLS, tokenize=False)
    turns = text.split("<|im_start|>assistant\n")[1:]
    assert len(turns) == 2 and all(
        t.split("<|im_start|>")[0].endswith("<|im_end|>\n") for t in turns
    )


def test_assistant_turns_are_marked_for_assistant_only_loss(tokenizer):
    out = tokenizer.apply_chat_template(
        PROBE_MESSAGES, tools=PROBE_TOOLS, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    marked = tokenizer.decode(ids)
    assert marked == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>It is 21 °C in Paris.<|im_end|>"
    )


def test_rendered_calls_parse_back(tokenizer):
    messages, tools = CONVERSATIONS["mcp tools, parallel calls, text, results in a row"]
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    turns = [t.split("<|im_end|>")[0] for t in text.split("<|im_start|>assistant\n")[1:]]
    parsed = [parse_completion(t, mode="strict") for t in turns]
    assert [[(c.name, c.arguments) for c in p.calls] for p in parsed] == [
        [("search_books", {"title": "Dune", "limit": 2}), ("ping", {})],
        [],
        [("ping", {})],
    ]
    assert all(p.well_formed for p in parsed)


def test_install_keeps_a_template_that_renders_tools_and_replaces_plain_chatml(tokenizer):
    class Tok:
        def __init__(self, template):
            self.chat_template = template

        def apply_chat_template(self, messages, **kwargs):
            return tokenizer.apply_chat_template(
                messages, chat_template=self.chat_template, **kwargs
            )

    plain = Tok(SMOLLM2_TEMPLATE)
    assert not renders_tools(plain)
    assert install_tool_template(plain) is True
    assert renders_tools(plain) and TEMPLATE_MARK in plain.chat_template
    assert install_tool_template(plain) is False  # already ours, same version
    no_default = Tok(SMOLLM2_TEMPLATE.replace("loop.first and", "false and"))
    assert install_tool_template(no_default) is True
    assert (
        tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}],
            chat_template=no_default.chat_template,
            tokenize=False,
        )
        == "<|im_start|>user\nx<|im_end|>\n"
    )
    other = Tok("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")
    assert install_tool_template(other) is False  # not ChatML: kept, with a warning


@pytest.mark.slow
def test_plain_generate_with_the_template_stops_at_the_end_of_the_turn():
    """transformers' own generate, with nothing but the checkpoint's files, stops on
    ``<|im_end|>`` (the generation config's eos) instead of running to the token limit."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from synthesis.llm.embedded import ensure_embedded_checkpoint

    torch.set_num_threads(2)
    path = str(ensure_embedded_checkpoint())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    inputs = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**inputs, max_new_tokens=48, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    assert len(new) < 48 and new[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    assert "Paris" in tok.decode(new)
