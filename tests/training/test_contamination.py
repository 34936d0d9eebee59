"""The contamination check flags synthesized items that copy or paraphrase BFCL items."""

from __future__ import annotations

import pytest

from training import contamination
from training.bfcl import load_entries


def _item(item_id: str, text: str) -> dict:
    return {
        "id": item_id,
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}],
    }


def test_copied_and_edited_bfcl_items_are_flagged_without_embeddings():
    bfcl_item = load_entries("simple")[0]
    question = bfcl_item["question"][0][-1]["content"]
    items = [
        _item("copy", "  " + question.upper() + "  "),
        _item("edit", question.replace("Find", "Please find")),
        _item("fresh", "Convert 30 euros to yen using today's rate."),
    ]
    flags = {f.item_id: f for f in contamination.check_contamination(items, use_embeddings=False)}
    assert flags["copy"].method == "exact" and flags["copy"].bfcl_id == bfcl_item["id"]
    assert flags["edit"].method == "near" and flags["edit"].bfcl_id == bfcl_item["id"]
    assert "fresh" not in flags


def test_trajectory_records_are_checked_as_dicts_are():
    """The database hands training typed records (synthesis.records)."""
    from synthesis.records import TrajectoryRecord

    question = load_entries("simple")[0]["question"][0][-1]["content"]
    records = [TrajectoryRecord.from_dict(_item("copy", question)), TrajectoryRecord.from_dict(_item("fresh", "Convert 30 euros to yen using today's rate."))]
    assert [f.item_id for f in contamination.check_contamination(records, use_embeddings=False)] == ["copy"]


@pytest.mark.slow
def test_paraphrase_is_flagged_by_embedding_similarity():
    reference = [
        ("simple_0", "Find the area of a triangle with a base of 10 units and height of 5 units.")
    ]
    items = [
        _item(
            "para",
            "What is the area of a triangle whose base is 10 units and whose height is 5 units?",
        ),
        _item("other", "Book a table for two at an Italian restaurant tonight."),
    ]
    flags = contamination.check_contamination(items, reference=reference, embedding_threshold=0.85)
    assert [(f.item_id, f.bfcl_id, f.method) for f in flags] == [("para", "simple_0", "embedding")]
    assert flags[0].similarity >= 0.85
