"""One parser: a call synthesis accepts (in any form it accepts) scores the same in the
execution reward and in BFCL; a reply synthesis rejects scores in neither."""

from __future__ import annotations

import json

import pytest

from synthesis.llm.base import ChatResult, InvalidModelOutput
from synthesis.llm.toolcalls import apply_tool_call_parsing, format_tool_call, parse_reply
from training import bfcl
from training.rewards import execution_reward, format_reward, score_completion

NAME = "math_factorial"


def _forms(args: dict) -> dict[str, str]:
    call = {"name": NAME, "arguments": args}
    openai = {
        "id": "c1",
        "type": "function",
        "function": {"name": NAME, "arguments": json.dumps(args)},
    }
    return {
        "hermes block": "I compute it.\n" + format_tool_call(call),
        "bare json": json.dumps(call),
        "fenced json": "```json\n" + json.dumps(call) + "\n```",
        "parameters alias": json.dumps({"name": NAME, "parameters": args}),
        "openai shape": json.dumps(openai),
        "tool_calls wrapper": json.dumps({"tool_calls": [openai]}),
        "list of calls": json.dumps([call]),
        "openai shape in a block": f"<tool_call>{json.dumps(openai)}</tool_call>",
        "string arguments in a block": "<tool_call>"
        + json.dumps({"name": NAME, "arguments": json.dumps(args)})
        + "</tool_call>",
    }


@pytest.fixture(scope="module")
def simple_1():
    entry = next(e for e in bfcl.load_entries("simple") if e["id"] == "simple_1")
    answer = bfcl.load_answers("simple")["simple_1"]
    ((name, params),) = answer[0].items()
    assert name.replace(".", "_") == NAME
    right = {k: v[0] for k, v in params.items() if v and v[0] != ""}
    return entry, answer, right


def _bfcl_valid(entry, answer, result: ChatResult) -> bool:
    return bfcl.score_single_turn(entry, "simple", result, answer, "m").valid


@pytest.mark.parametrize("form", list(_forms({"number": 5})))
def test_a_call_synthesis_accepts_scores_the_same_in_the_reward_and_in_bfcl(simple_1, form):
    entry, answer, right = simple_1
    reference = [json.dumps([{"name": NAME, "arguments": right}])]
    for args, correct in ((right, True), ({**right, "number": right["number"] + 1}, False)):
        text = _forms(args)[form]
        accepted = parse_reply(text).tool_calls
        assert [(c.name, c.arguments) for c in accepted] == [(NAME, args)]
        reward = execution_reward([text], reference_calls=reference)[0]
        # BFCL on the raw text (a backend that did not parse it) and on the backend's parse.
        raw = _bfcl_valid(entry, answer, ChatResult(text=text))
        parsed = _bfcl_valid(entry, answer, apply_tool_call_parsing(ChatResult(text=text)))
        assert (reward == 1.0, raw, parsed) == (correct, correct, correct), form
        assert score_completion(text, reference[0]).execution == reward
    # The format term alone grades the trained layout: the Hermes blocks.
    fmt = format_reward([_forms(right)[form]])[0]
    assert (fmt == 1.0) == (form in ("hermes block", "string arguments in a block")), form


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name": "math_factorial", "arguments": {"number": }</tool_call>',
        '{"name": "math_factorial", "arguments": "{broken"}',
        '[{"name": "math_factorial", "arguments": {',
    ],
)
def test_a_reply_synthesis_rejects_scores_in_neither(simple_1, text):
    entry, answer, right = simple_1
    with pytest.raises(InvalidModelOutput):
        parse_reply(text)
    reference = [json.dumps([{"name": NAME, "arguments": right}])]
    assert execution_reward([text], reference_calls=reference) == [0.0]
    assert not _bfcl_valid(entry, answer, ChatResult(text=text))
    assert not _bfcl_valid(entry, answer, apply_tool_call_parsing(ChatResult(text=text)))
