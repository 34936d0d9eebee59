"""BFCL mini (a committed, seeded, versioned subset) and the paired before/after comparison."""

from __future__ import annotations

import json

import pytest

from synthesis.llm.base import ChatRequest, ChatResult, ToolCall
from synthesis.llm.scripted import ScriptedBackend
from training import bfcl, bfcl_compare, bfcl_subsets


def _ids_of(category: str) -> list[str]:
    return [e["id"] for e in bfcl.load_entries(category)]


def test_mini_v1_holds_240_single_turn_items_40_of_each_category_from_its_seeded_draw():
    ids = bfcl_subsets.subset_ids("mini-v1")
    assert {c: len(v) for c, v in ids.items()} == {
        "simple": 40, "multiple": 40, "parallel": 40, "parallel_multiple": 40, "irrelevance": 40, "live_simple": 40,
    }
    assert all(len(set(v)) == len(v) for v in ids.values())
    # The committed file is what the seeded draw gives on the pinned bfcl-eval data.
    assert bfcl_subsets.draw("mini-v1", _ids_of) == ids
    # Another seed draws other items: the file is not any sample, it is this one.
    other = bfcl_subsets.Subset("x", seed=1, counts={"simple": 40}, bfcl_eval=bfcl.BFCL_VERSION)
    bfcl_subsets.SUBSETS["x"] = other
    try:
        assert bfcl_subsets.draw("x", _ids_of)["simple"] != ids["simple"]
    finally:
        del bfcl_subsets.SUBSETS["x"]


def test_a_subset_file_that_does_not_match_its_definition_is_refused(tmp_path, monkeypatch):
    doc = json.loads(bfcl_subsets.get_subset("mini-v1").path.read_text())
    doc["items"]["simple"] = doc["items"]["simple"][:39]
    monkeypatch.setattr(bfcl_subsets, "DATA_DIR", tmp_path)
    (tmp_path / "bfcl-mini-v1.json").write_text(json.dumps(doc))
    bfcl_subsets._read.cache_clear()
    try:
        with pytest.raises(bfcl_subsets.SubsetError, match="does not hold"):
            bfcl_subsets.subset_ids("mini-v1")
    finally:
        bfcl_subsets._read.cache_clear()
    with pytest.raises(bfcl_subsets.SubsetError, match="known: mini-v1"):
        bfcl_subsets.subset_ids("mini-v9")


def test_an_evaluation_on_the_subset_scores_exactly_its_committed_items():
    ids = bfcl_subsets.subset_ids("mini-v1")
    answers = bfcl.load_answers("simple")
    asked: list[str] = []

    def reply(req: ChatRequest) -> ChatResult:
        asked.append(req.messages[-1]["content"])
        # Answer every simple item right, from its possible answer; words elsewhere.
        for i in ids["simple"][:3]:
            entry = next(e for e in bfcl.load_entries("simple") if e["id"] == i)
            if entry["question"][0][-1]["content"] == req.messages[-1]["content"]:
                ((name, params),) = answers[i][0].items()
                args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
                call = ToolCall(name=name.replace(".", "_"), arguments=args)
                return ChatResult(text="", tool_calls=[call], finish_reason="tool_calls")
        return ChatResult(text="I cannot help with that with these functions.")

    result = bfcl.run_bfcl_eval(
        ScriptedBackend(default=reply), subset="mini-v1", categories=["simple", "irrelevance"], limit=3
    )
    assert [i.id for i in result.items] == ids["simple"][:3] + ids["irrelevance"][:3]
    assert result.categories["simple"].correct == 3
    assert result.categories["irrelevance"].accuracy == 1.0
    assert result.settings["subset"] == "mini-v1"
    sub = result.overall["subset"]
    assert sub["non_live_ast"] == 1.0 and sub["irrelevance"] == 1.0 and sub["complete"] is False
    assert len(asked) == 6


def test_the_comparison_pairs_items_and_its_interval_covers_the_difference():
    before = {"simple": {str(i): i < 10 for i in range(40)}, "irrelevance": {str(i): True for i in range(40)}}
    # 20 more simple items right, none lost; irrelevance unchanged.
    after = {"simple": {str(i): i < 30 for i in range(40)}, "irrelevance": {str(i): True for i in range(40)}}
    out = bfcl_compare.compare(before, after, resamples=2000, seed=3)
    simple = out["categories"]["simple"]
    assert (simple["n"], simple["before"], simple["after"]) == (40, 0.25, 0.75)
    assert simple["diff"] == pytest.approx(0.5)
    assert 0.0 < simple["ci_low"] < 0.5 < simple["ci_high"] <= 0.75
    irr = out["categories"]["irrelevance"]
    assert irr["diff"] == 0 and irr["ci_low"] == irr["ci_high"] == 0  # nothing changed: no spread
    assert out["groups"]["non_live_ast"]["diff"] == pytest.approx(0.5)
    assert out["groups"]["all"]["diff"] == pytest.approx(0.25)


def test_a_change_that_is_only_noise_has_an_interval_across_zero():
    # Ten items gained and ten lost: the accuracy is the same, the items are not.
    before = {"simple": {str(i): i < 20 for i in range(40)}}
    after = {"simple": {str(i): 10 <= i < 30 for i in range(40)}}
    row = bfcl_compare.compare(before, after, resamples=2000)["categories"]["simple"]
    assert row["diff"] == 0 and row["ci_low"] < 0 < row["ci_high"]


def test_items_only_one_side_measured_are_left_out_and_counted():
    before = {"simple": {"a": False, "b": True}}
    after = {"simple": {"a": True, "c": True}}
    out = bfcl_compare.compare(before, after, resamples=200)
    assert out["categories"]["simple"]["n"] == 1 and out["unpaired"] == 2
    assert "| simple | 1 | 0.0% | 100.0% | +100.0 pts |" in bfcl_compare.table(out)


def test_outcomes_reads_item_results_and_stored_dicts_alike():
    items = [bfcl.BFCLItemResult(id="a", category="simple", valid=True), {"id": "b", "category": "simple", "valid": 0}]
    assert bfcl_compare.outcomes(items) == {"simple": {"a": True, "b": False}}
