"""SFT and GRPO rows from trajectories given as plain dicts."""

from __future__ import annotations

import json

import pytest

from training.dataset import DatasetConfig, build_grpo_rows, build_sft_rows, is_accepted


def test_audit_overrides_verdict(trajectories):
    by_id = {t["id"]: t for t in trajectories}
    assert is_accepted(by_id["par0"])  # rejected by verifiers, accepted by audit
    assert not is_accepted(by_id["bad0"])  # accepted by verifiers, rejected by audit
    with pytest.raises(ValueError, match="valid: accept"):
        is_accepted({"verdict": "maybe"})


def test_sft_rows_render_tools_and_calls_as_text(trajectories):
    rows, stats = build_sft_rows(trajectories, DatasetConfig(hard_weight=1, easy_weight=1))
    assert stats.accepted == 6 and stats.rejected == 1 and stats.audit_overrides == 2
    assert {r["id"] for r in rows} == {"w0", "w1", "w2", "w3", "irr0", "par0"}
    row = next(r for r in rows if r["id"] == "w0")
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert (
        "<tools>" in row["messages"][0]["content"]
        and "get_weather" in row["messages"][0]["content"]
    )
    assert (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        in row["messages"][2]["content"]
    )
    assert row["messages"][3]["content"].startswith("<tool_response>")
    assert all(isinstance(m["content"], str) for r in rows for m in r["messages"])


def test_hard_rows_are_weighted(trajectories):
    rows, _ = build_sft_rows(trajectories, DatasetConfig(hard_weight=3, easy_weight=1))
    counts = {i: sum(r["id"] == i for r in rows) for i in {r["id"] for r in rows}}
    assert counts["w1"] == 3 and counts["w0"] == 1
    assert next(r for r in rows if r["id"] == "w1")["weight"] == 3.0


def test_excluded_and_invalid_trajectories_are_left_out(trajectories):
    broken = {"id": "broken", "verdict": "accept", "messages": [{"role": "user", "content": "hi"}]}
    rows, stats = build_sft_rows(trajectories + [broken], exclude_ids={"w0"})
    assert "w0" not in {r["id"] for r in rows} and stats.excluded == 1
    assert stats.invalid == 1 and "broken" in stats.errors[0]


def test_grpo_rows_come_from_hard_samples(trajectories):
    rows, stats = build_grpo_rows(trajectories)
    assert {r["id"] for r in rows} == {"w1:1", "w3:1", "irr0:1", "par0:1"}
    by_id = {r["id"]: r for r in rows}
    assert by_id["w1:1"]["prompt"][-1] == {
        "role": "user",
        "content": "What's the weather in Tokyo?",
    }
    ref = json.loads(by_id["w1:1"]["reference_calls"])
    assert ref == [
        {"name": "get_weather", "arguments": {"city": "Tokyo"}, "defaults": {"unit": "c"}}
    ]
    assert (
        json.loads(by_id["irr0:1"]["reference_calls"]) == []
        and by_id["irr0:1"]["mode"] == "irrelevance"
    )
    assert len(json.loads(by_id["par0:1"]["reference_calls"])) == 2
