"""SFT and GRPO rows from trajectories given as plain dicts."""

from __future__ import annotations

import json

import pytest

from synthesis.records import REFUSAL
from training.dataset import DatasetConfig, build_grpo_rows, build_sft_rows, is_accepted


def test_audit_overrides_verdict(trajectories):
    by_id = {t["id"]: t for t in trajectories}
    assert is_accepted(by_id["par0"])  # rejected by verifiers, accepted by audit
    assert not is_accepted(by_id["bad0"])  # accepted by verifiers, rejected by audit
    # One vocabulary (synthesis.records): "pass", "true" or "1" are not verdicts.
    for bad in ("maybe", "pass", "true", "accept"):
        with pytest.raises(ValueError, match="valid: accepted, rejected"):
            is_accepted({"messages": [{"role": "user", "content": "hi"}], "verdict": bad})
    with pytest.raises(ValueError, match="valid: accept, reject, flag"):
        is_accepted({"messages": [{"role": "user", "content": "hi"}], "verdict": "accepted", "audit": "approve"})


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
    broken = {"id": "broken", "verdict": "accepted", "messages": [{"role": "user", "content": "hi"}]}
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


def _single(mode, reference, agent_calls, content=None):
    calls = [{"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
             for i, (n, a) in enumerate(agent_calls)]
    return {
        "id": f"{mode}-1", "mode": mode, "difficulty": "hard", "verdict": "accepted",
        "tools": [{"name": "get_weather", "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "reference_calls": reference,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": content, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "c0", "content": "{\"t\": 3}"} if calls else {"role": "user", "content": "ok"},
            {"role": "assistant", "content": "It is 3 degrees."},
        ],
    }


def test_a_single_turn_answer_that_differs_from_the_reference_teaches_the_reference():
    wrong = _single("single", [{"name": "get_weather", "arguments": {"city": "Oslo"}}], [("get_weather", {"city": "Bergen"})])
    right = _single("single", [{"name": "get_weather", "arguments": {"city": "Oslo"}}], [("get_weather", {"city": "Oslo"})])
    rows, stats = build_sft_rows([wrong, right], DatasetConfig(hard_weight=1))
    assert stats.corrected == 1
    texts = [json.dumps(r["messages"]) for r in rows]
    assert sum("Bergen" in t for t in texts) == 0 and all("Oslo" in t for t in texts)
    # the corrected row ends at the reference call; the right one keeps its whole conversation
    # (each after the system message that carries the tools)
    assert sorted(len(r["messages"]) for r in rows) == [3, 5]
    grpo, gstats = build_grpo_rows([wrong], DatasetConfig())
    assert gstats.corrected == 1 and json.loads(grpo[0]["reference_calls"])[0]["arguments"] == {"city": "Oslo"}


def test_an_irrelevance_answer_that_calls_a_tool_teaches_the_refusal():
    t = _single("irrelevance", [], [("get_weather", {"city": "Oslo"})])
    rows, stats = build_sft_rows([t], DatasetConfig(hard_weight=1))
    assert stats.corrected == 1
    last = rows[0]["messages"][-1]
    assert last["role"] == "assistant" and "cannot help" in last["content"]


def _with_tools(tid, request, tools, call):
    return {
        "id": tid, "mode": "single", "difficulty": "easy", "verdict": "accepted",
        "tools": [{"name": n, "description": d, "inputSchema": {"type": "object", "properties": {p: {"type": "string"}}}}
                  for n, d, p in tools],
        "reference_calls": [{"name": call[0], "arguments": call[1]}],
        "messages": [
            {"role": "user", "content": request},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": call[0], "arguments": json.dumps(call[1])}}]},
            {"role": "tool", "tool_call_id": "c0", "content": "{}"},
            {"role": "assistant", "content": "Done."},
        ],
    }


def test_swap_negatives_pair_a_request_with_unrelated_tools_and_teach_the_refusal():
    weather = _with_tools("w", "What is the weather forecast in Oslo?",
                          [("getForecast", "Weather forecast for a city", "city")], ("getForecast", {"city": "Oslo"}))
    rain = _with_tools("r", "Will it rain in Bergen tomorrow?",
                       [("getPrecipitation", "Rain and snow forecast", "city")], ("getPrecipitation", {"city": "Bergen"}))
    invoice = _with_tools("i", "Send invoice INV-7 to the customer.",
                          [("sendInvoice", "Email an invoice to its customer", "invoice_number")],
                          ("sendInvoice", {"invoice_number": "INV-7"}))
    rows, stats = build_sft_rows([weather, rain, invoice], DatasetConfig(swap_negatives=1))
    negatives = [r for r in rows if "~" in r["id"]]
    assert stats.swap_negatives == len(negatives) == 3
    pairs = {r["id"] for r in negatives}
    # the two weather requests share a topic ("forecast", "city") with each other's tools: never paired
    assert not pairs & {"w~r", "r~w"}
    assert pairs <= {"w~i", "r~i", "i~w", "i~r"} and {"w~i", "r~i"} <= pairs
    for r in negatives:
        assert r["mode"] == "irrelevance"
        system, user, answer = r["messages"]
        donor = r["id"].split("~")[1]
        donor_tool = {"w": "getForecast", "r": "getPrecipitation", "i": "sendInvoice"}[donor]
        assert donor_tool in system["content"]
        assert answer == {"role": "assistant", "content": REFUSAL}
    # none by default: the mix is a choice
    plain, plain_stats = build_sft_rows([weather, rain, invoice], DatasetConfig())
    assert plain_stats.swap_negatives == 0 and not any("~" in r["id"] for r in plain)


def test_swap_negatives_skip_requests_without_calls_and_reject_a_negative_rate():
    irrelevant = _single("irrelevance", [], [])
    rows, stats = build_sft_rows([irrelevant, _with_tools("i", "Send invoice INV-7.", [("sendInvoice", "Email", "x")],
                                                          ("sendInvoice", {"x": "1"}))], DatasetConfig(swap_negatives=3))
    assert stats.swap_negatives == 1 and [r["id"] for r in rows if "~" in r["id"]] == ["i~irrelevance-1"]
    with pytest.raises(ValueError, match="swap_negatives"):
        DatasetConfig(swap_negatives=-1)


def test_the_refusal_share_is_capped_repeats_first():
    from tests.training.conftest import make_trajectories

    refusing = []
    for i in range(6):
        t = _single("irrelevance", [], [])
        t["id"] = f"irr-{i}"
        refusing.append(t)
    calling = [_with_tools(f"w{i}", f"Forecast for city {i}?", [("getForecast", "Weather forecast", "city")],
                           ("getForecast", {"city": f"C{i}"})) for i in range(4)]
    rows, stats = build_sft_rows(refusing + calling, DatasetConfig(hard_weight=2))
    assert sum(r["mode"] == "irrelevance" for r in rows) == 12 and stats.refusals_capped == 0
    rows, stats = build_sft_rows(refusing + calling, DatasetConfig(hard_weight=2, irrelevance_share=0.5))
    refusals = [r for r in rows if r["mode"] == "irrelevance"]
    # 4 calling rows allow 4 refusals at a half share: repeats go first, so four trajectories stay
    assert len(refusals) == 4 and len({r["id"] for r in refusals}) == 4 and stats.refusals_capped == 8
    assert sum(r["mode"] == "single" for r in rows) == 4  # the rest is untouched
    assert stats.sft_rows == 8
    # swap negatives count as refusals too
    rows, _ = build_sft_rows(calling + [make_trajectories()[0]], DatasetConfig(swap_negatives=1, irrelevance_share=0.2))
    assert sum(r["mode"] == "irrelevance" for r in rows) <= 0.2 * len(rows)
    with pytest.raises(ValueError, match="irrelevance_share"):
        DatasetConfig(irrelevance_share=1.0)


def test_refusals_can_be_written_in_several_wordings_that_name_the_offered_tools():
    from synthesis.records import REFUSAL_WORDINGS
    from training.rewards import _REFUSAL_RE

    refusing = []
    for i in range(12):
        t = _single("irrelevance", [], [("get_weather", {"city": "Oslo"})])  # the agent called: corrected
        t["id"] = f"irr-{i}"
        t["messages"][0]["content"] = f"Book table {i} at the bistro."
        refusing.append(t)
    invoice = _with_tools("i", "Send invoice INV-7 to the customer.",
                          [("sendInvoice", "Email an invoice to its customer", "invoice_number")],
                          ("sendInvoice", {"invoice_number": "INV-7"}))
    weather = _with_tools("w", "What is the weather forecast in Oslo?",
                          [("getForecast", "Weather forecast for a city", "city")], ("getForecast", {"city": "Oslo"}))

    def answers(config):
        rows, _ = build_sft_rows([*refusing, invoice, weather], config)
        return {r["id"]: r["messages"][-1]["content"] for r in rows if r["mode"] == "irrelevance"}

    same = answers(DatasetConfig(hard_weight=1, swap_negatives=1))
    assert set(same.values()) == {REFUSAL}  # the default: one sentence
    varied = answers(DatasetConfig(hard_weight=1, swap_negatives=1, refusal_wordings=6))
    assert varied.keys() == same.keys() and len(set(varied.values())) >= 3
    for rid, text in varied.items():
        # each still reads as a refusal to the reward, and names the tools it was offered where it names any
        assert _REFUSAL_RE.search(text), text
        offered = "getForecast" if rid.endswith("~w") else "sendInvoice" if rid.endswith("~i") else "get_weather"
        named = [n for n in ("getForecast", "sendInvoice", "get_weather") if n in text]
        assert named in ([], [offered]), (rid, text)
    # a request is always refused the same way
    assert answers(DatasetConfig(hard_weight=1, swap_negatives=1, refusal_wordings=6)) == varied
    # tools in OpenAI's shape are named too
    from training.dataset import reworded_refusals

    msgs = [{"role": "user", "content": "Book table 3 at the bistro."}, {"role": "assistant", "content": REFUSAL}]
    openai_tools = [{"type": "function", "function": {"name": "sendInvoice", "parameters": {}}}]
    texts = {reworded_refusals([{**msgs[0], "content": f"Book table {i}."}, msgs[1]], openai_tools, 6)[1]["content"]
             for i in range(30)}
    assert any("sendInvoice" in t for t in texts) and not any("the tools offered" in t for t in texts)
    with pytest.raises(ValueError, match="refusal_wordings"):
        DatasetConfig(refusal_wordings=len(REFUSAL_WORDINGS) + 1)
