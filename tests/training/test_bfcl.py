"""BFCL V3 scoring through the package's own checkers, with a scripted model."""

from __future__ import annotations

import ast
import json

import pytest

from synthesis.llm.base import ChatRequest, ChatResult, ToolCall
from synthesis.llm.scripted import ScriptedBackend
from training import bfcl


def _answer_to_call(answer: dict) -> ToolCall:
    """The first acceptable value of every parameter of a possible_answer entry."""
    ((name, params),) = answer.items()
    args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
    return ToolCall(name=name.replace(".", "_"), arguments=args)


def _reply_with(calls: list[ToolCall]):
    return lambda req: ChatResult(text="", tool_calls=list(calls), finish_reason="tool_calls")


def _entry(category: str, entry_id: str) -> dict:
    return next(e for e in bfcl.load_entries(category) if e["id"] == entry_id)


def test_tools_follow_bfcl_conversion():
    tools = bfcl.bfcl_functions_to_tools(_entry("simple", "simple_1")["function"], "simple")
    assert tools[0]["name"] == "math_factorial"  # dots are not allowed in FC tool names
    assert tools[0]["inputSchema"]["type"] == "object"  # BFCL's "dict"


def test_known_correct_and_wrong_answers_are_scored_by_the_ast_checker():
    answers = bfcl.load_answers("simple")
    entry = _entry("simple", "simple_1")
    right = _answer_to_call(answers["simple_1"][0])
    wrong = ToolCall(name=right.name, arguments={"number": 6})
    backend = ScriptedBackend(replies=[_reply_with([right]), _reply_with([wrong])])

    ok = bfcl.score_single_turn(
        entry, "simple", backend.complete(ChatRequest(messages=[])), answers["simple_1"], "m"
    )
    bad = bfcl.score_single_turn(
        entry, "simple", backend.complete(ChatRequest(messages=[])), answers["simple_1"], "m"
    )

    assert ok.valid, ok.error
    assert not bad.valid and bad.error_type == "value_error:others"


def test_run_on_parallel_and_irrelevance_with_a_scripted_model():
    answers = bfcl.load_answers("parallel")
    by_question = {}
    for e in bfcl.select_entries("parallel", 2, seed=0):
        by_question[e["question"][0][-1]["content"]] = [
            _answer_to_call(a) for a in answers[e["id"]]
        ]

    def reply(req: ChatRequest):
        calls = by_question.get(req.messages[-1]["content"])
        if calls is None:  # irrelevance: answer in words
            return ChatResult(text="None of these functions can help with that.")
        return ChatResult(text="", tool_calls=list(reversed(calls)), finish_reason="tool_calls")

    events = []
    result = bfcl.run_bfcl_eval(
        ScriptedBackend(default=reply),
        categories=["parallel", "irrelevance"],
        limit=2,
        progress=events.append,
    )
    assert result.categories["parallel"].correct == 2  # order of parallel calls does not matter
    assert result.categories["irrelevance"].accuracy == 1.0
    assert [e["done"] for e in events if e.get("event") == "item"][-1] == 2
    assert result.overall["overall"]["complete"] is False
    json.dumps(result.to_dict(), default=str)


def _gt_to_calls(ground_truth: list[str], functions: list[dict]) -> list[ToolCall]:
    params = {f["name"]: list(f["parameters"]["properties"]) for f in functions}
    calls = []
    for text in ground_truth:
        node = ast.parse(text, mode="eval").body
        name = node.func.id
        args = {params[name][i]: ast.literal_eval(a) for i, a in enumerate(node.args)}
        args.update({kw.arg: ast.literal_eval(kw.value) for kw in node.keywords})
        calls.append(ToolCall(name=name, arguments=args))
    return calls


@pytest.mark.parametrize("entry_id", ["multi_turn_base_0", "multi_turn_miss_func_0"])
def test_multi_turn_ground_truth_sequence_scores_correct(entry_id):
    category = entry_id.rsplit("_", 1)[0]
    entry = _entry(category, entry_id)
    ground_truth = bfcl.load_answers(category)[entry_id]
    all_docs = entry["function"] + [
        d for docs in entry.get("missed_function", {}).values() for d in docs
    ]
    turn_calls = [_gt_to_calls(turn, all_docs) for turn in ground_truth]

    def reply(req: ChatRequest):
        if req.messages[-1]["role"] == "tool":
            return ChatResult(text="Done.")
        turn = sum(1 for m in req.messages if m["role"] == "user") - 1
        if not turn_calls[turn]:
            return ChatResult(text="I cannot do that with the functions I have.")
        return ChatResult(text="", tool_calls=turn_calls[turn], finish_reason="tool_calls")

    episode = bfcl._multi_turn_episode(entry, category, 64, "inftool_test", 20)
    backend = ScriptedBackend(default=reply)
    turns = bfcl._drive([episode], backend, 1, lambda i, out: None)[0]
    item = bfcl.score_multi_turn(entry, category, turns, ground_truth, "inftool_test")
    bfcl._forget_instances("inftool_test")
    assert item.valid, (item.error_type, item.error)

    # The same conversation with one wrong argument fails the state check.
    turn_calls[0][0] = ToolCall(name="cd", arguments={"folder": "archive"})
    episode = bfcl._multi_turn_episode(entry, category, 64, "inftool_test2", 20)
    turns = bfcl._drive([episode], ScriptedBackend(default=reply), 1, lambda i, out: None)[0]
    item = bfcl.score_multi_turn(entry, category, turns, ground_truth, "inftool_test2")
    bfcl._forget_instances("inftool_test2")
    assert not item.valid


def test_aggregation_follows_bfcl_groupings():
    S = bfcl.BFCLCategoryScore
    full = {c: S(correct=1, total=1, accuracy=1.0) for c in bfcl.CATEGORIES}
    assert bfcl.aggregate_scores(full)["overall"] == {"accuracy": 1.0, "complete": True}
    half = dict(full, multi_turn_base=S(0, 1, 0.0), multi_turn_miss_func=S(0, 1, 0.0))
    agg = bfcl.aggregate_scores(half)
    assert agg["multi_turn"]["accuracy"] == 0.5
    assert agg["overall"]["accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    # live is weighted by count: 1 wrong of 10 live_multiple items, 1 right of 1 elsewhere.
    live = dict(full, live_multiple=S(9, 10, 0.9))
    assert bfcl.aggregate_scores(live)["live"]["accuracy"] == pytest.approx(14 / 15)


def test_unknown_category_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: simple"):
        bfcl.run_bfcl_eval(ScriptedBackend(), categories=["simpel"])
