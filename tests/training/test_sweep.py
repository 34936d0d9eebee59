"""The SFT sweep: split by trajectory, validation scored with the reward's terms, the best
point chosen on our own data only."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.training.conftest import make_trajectories
from training.config import SFTRunConfig, with_overrides
from training.sweep import (
    SweepPoint,
    markdown_table,
    run_sweep,
    score_replies,
    split_records,
    validation_items,
)


def _records(n_single: int = 8, n_irr: int = 4) -> list[dict]:
    base = make_trajectories()
    single, irr = base[0], base[4]
    out = []
    for i in range(n_single):
        city = f"City{i}"
        t = json.loads(json.dumps(single))
        t["id"] = f"s{i}"
        t["messages"][0]["content"] = f"What's the weather in {city}?"
        t["messages"][1]["tool_calls"][0]["function"]["arguments"] = json.dumps({"city": city})
        out.append(t)
    for i in range(n_irr):
        t = json.loads(json.dumps(irr))
        t["id"] = f"i{i}"
        out.append(t)
    rejected = json.loads(json.dumps(single))
    rejected.update(id="r0", verdict="rejected", audit=None)
    return out + [rejected]


def test_split_keeps_trajectories_whole_stratified_and_seeded():
    recs = _records()
    train, val = split_records(recs, val_fraction=0.25, seed=3)
    train_ids, val_ids = {r.id for r in train}, {r.id for r in val}
    assert not train_ids & val_ids
    assert "r0" not in train_ids | val_ids  # rejected trajectories train nothing
    assert len(train_ids | val_ids) == 12
    assert {str(r.mode) for r in val} == {"single", "irrelevance"}
    assert [r.id for r in split_records(recs, val_fraction=0.25, seed=3)[1]] == [r.id for r in val]
    assert [r.id for r in split_records(recs, val_fraction=0.25, seed=4)[1]] != [r.id for r in val]
    with pytest.raises(ValueError):
        split_records(recs, val_fraction=1.0)


def test_validation_items_carry_prompt_and_reference():
    _, val = split_records(_records(), val_fraction=0.25, seed=0)
    items = validation_items(val)
    single = [i for i in items if i["mode"] == "single"]
    assert single and all(i["prompt"][-1]["role"] == "user" for i in items)
    ref = json.loads(single[0]["reference_calls"])
    assert ref[0]["name"] == "get_weather" and ref[0]["arguments"]["city"].startswith("City")
    assert any(json.loads(i["reference_calls"]) == [] for i in items if i["mode"] == "irrelevance")


def _reply_for(item: dict, right: bool) -> str:
    ref = json.loads(item["reference_calls"])
    if not ref:
        return "None of these tools can do that." if right else '<tool_call>\n{"name": "get_weather", "arguments": {"city": "x"}}\n</tool_call>'
    call = ref[0] if right else {"name": ref[0]["name"], "arguments": {"city": "Nowhere"}}
    return "<tool_call>\n" + json.dumps({"name": call["name"], "arguments": call["arguments"]}) + "\n</tool_call>"


def test_scores_use_the_reward_terms():
    _, val = split_records(_records(), val_fraction=0.25, seed=0)
    items = validation_items(val)
    right = score_replies(items, [_reply_for(i, True) for i in items])
    wrong = score_replies(items, [_reply_for(i, False) for i in items])
    assert right["exact"] == 1.0 and right["format"] == 1.0
    assert wrong["exact"] == 0.0 and 0 < wrong["execution"] < 1  # right names, wrong values
    assert set(right["by_mode"]) == {"single", "irrelevance"}
    with pytest.raises(ValueError):
        score_replies(items, [])


def test_run_sweep_trains_each_point_and_picks_the_best_on_validation(tmp_path):
    trained: list[SFTRunConfig] = []

    def train(config, rows):
        trained.append(config)
        assert rows and all("messages" in r for r in rows)
        assert not {r["id"] for r in rows} & val_ids  # validation never trains
        return SimpleNamespace(checkpoint_dir=config.output_dir, metrics={"train_loss": 0.5},
                               log_history=[{"step": 1, "loss": 0.9}, {"step": 3, "loss": 0.5}, {"train_loss": 0.5}])

    def generate(model_path, prompts):
        ok = model_path is not None and model_path.endswith("p-good")
        by_prompt = {json.dumps(i["prompt"]): i for i in items}
        return [_reply_for(by_prompt[json.dumps(p)], ok) for p in prompts]

    recs = _records()
    _, val = split_records(recs, val_fraction=0.25, seed=1)
    val_ids = {r.id for r in val}
    items = validation_items(val)
    base = SFTRunConfig(output_dir=str(tmp_path / "unused"), learning_rate=1e-5)
    points = [SweepPoint("p-bad", {"learning_rate": 1e-3}), SweepPoint("p-good", {"num_train_epochs": 2})]
    summary = run_sweep(recs, base, points, out_dir=tmp_path, seed=1, val_fraction=0.25,
                        generate=generate, train=train)
    assert [r["name"] for r in summary["results"]] == ["base", "p-bad", "p-good"]
    assert summary["best"] == "p-good"
    assert [c.learning_rate for c in trained] == [1e-3, 1e-5]
    assert trained[1].num_train_epochs == 2 and trained[1].seed == 1
    assert summary["validation_trajectories"] == len(val_ids)
    assert summary["results"][2]["exact"] == 1.0 and summary["results"][1]["exact"] < 1.0
    assert summary["results"][2]["steps"] == 3 and summary["results"][0]["steps"] is None
    table = markdown_table(summary)
    assert "| **p-good** | 100.0% |" in table and table.count("\n") == 4


def test_sweep_refuses_unknown_settings_and_bad_points(tmp_path):
    with pytest.raises(ValueError, match="unknown setting"):
        with_overrides(SFTRunConfig(), {"lr": 1e-4})
    with pytest.raises(ValueError, match="unique"):
        run_sweep(_records(), SFTRunConfig(), [SweepPoint("a"), SweepPoint("a")], out_dir=tmp_path,
                  generate=lambda *a: [], train=lambda *a: None)
    with pytest.raises(ValueError, match="too few"):
        run_sweep(_records(1, 0), SFTRunConfig(), [SweepPoint("a")], out_dir=tmp_path,
                  generate=lambda *a: [], train=lambda *a: None)


def _topic_records() -> list[dict]:
    topics = [("getForecast", "Weather forecast for a city", "city", "Forecast for {x}?"),
              ("sendInvoice", "Email an invoice to its customer", "invoice_number", "Send invoice {x} please."),
              ("playTrack", "Play a music track on the speaker", "track", "Play the song {x}."),
              ("bookFlight", "Book an airline flight ticket", "flight", "Book flight {x} for me.")]
    out = []
    for i in range(12):
        name, desc, param, request = topics[i % 4]
        value = f"X{i}"
        out.append({
            "id": f"t{i}", "mode": "single", "difficulty": "easy", "verdict": "accepted",
            "tools": [{"name": name, "description": desc,
                       "inputSchema": {"type": "object", "properties": {param: {"type": "string"}}}}],
            "reference_calls": [{"name": name, "arguments": {param: value}}],
            "messages": [
                {"role": "user", "content": request.format(x=value)},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c0", "type": "function",
                 "function": {"name": name, "arguments": json.dumps({param: value})}}]},
                {"role": "tool", "tool_call_id": "c0", "content": "{}"},
                {"role": "assistant", "content": "Done."},
            ],
        })
    return out


def test_a_point_can_change_the_data_mix_and_validation_holds_its_own_negatives(tmp_path):
    seen: dict[str, list[dict]] = {}

    def train(config, rows):
        seen[config.output_dir.rsplit("/", 1)[-1]] = rows
        return SimpleNamespace(checkpoint_dir=config.output_dir, metrics={}, log_history=[])

    replies: dict[str, list] = {}

    def generate(model_path, prompts):
        replies[str(model_path)] = prompts
        return ["I cannot help with that."] * len(prompts)

    recs = _topic_records()
    points = [SweepPoint("plain", {}), SweepPoint("mixed", {"data.swap_negatives": 1})]
    summary = run_sweep(recs, SFTRunConfig(output_dir=str(tmp_path / "unused")), points, out_dir=tmp_path,
                        seed=0, val_fraction=0.25, generate=generate, train=train, validation_negatives=1)
    plain, mixed = seen["plain"], seen["mixed"]
    assert not any("~" in r["id"] for r in plain)
    negatives = [r for r in mixed if "~" in r["id"]]
    assert negatives and len(mixed) == len(plain) + len(negatives)
    assert summary["train_rows_by_point"] == {"mixed": len(mixed)} and summary["train_rows"] == len(plain)
    _, val = split_records(recs, val_fraction=0.25, seed=0)
    val_ids = {r.id for r in val}
    # training negatives pair training requests with training tools only
    assert all(not set(r["id"].split("~")) & val_ids for r in negatives)
    items = validation_items(val, swap_negatives=1, seed=0)
    held_out = [i for i in items if "~" in i["id"]]
    assert held_out and all(i["mode"] == "irrelevance" and i["reference_calls"] == "[]" for i in held_out)
    assert all(set(i["id"].split("~")) <= val_ids for i in held_out)
    assert summary["validation_items"] == len(items) and summary["validation_modes"]["irrelevance"] == len(held_out)
    # a refusal is right on the negatives only
    assert summary["results"][0]["by_mode"]["irrelevance"]["exact"] == 1.0
    assert summary["results"][0]["by_mode"]["single"]["exact"] == 0.0


def test_the_choice_weighs_every_mode_the_same_so_refusing_everything_does_not_win(tmp_path):
    recs = _records(n_single=4, n_irr=12)
    _, val = split_records(recs, val_fraction=0.25, seed=0)
    items = validation_items(val)
    modes = [i["mode"] for i in items]
    assert modes.count("irrelevance") > modes.count("single") >= 1

    def generate(model_path, prompts):
        if model_path is None or model_path.endswith("refuser"):
            return ["None of these tools can do that."] * len(prompts)
        out, refused = [], False
        for item in items:  # the caller: every call right, but calls on all irrelevance steps but one
            if item["mode"] == "irrelevance" and not refused:
                out.append(_reply_for(item, True))
                refused = True
            elif item["mode"] == "irrelevance":
                out.append(_reply_for(item, False))
            else:
                out.append(_reply_for(item, True))
        return out

    def train(config, rows):
        return SimpleNamespace(checkpoint_dir=config.output_dir, metrics={}, log_history=[])

    summary = run_sweep(recs, SFTRunConfig(output_dir=str(tmp_path / "unused")),
                        [SweepPoint("refuser"), SweepPoint("caller")], out_dir=tmp_path, seed=0,
                        val_fraction=0.25, generate=generate, train=train)
    by_name = {r["name"]: r for r in summary["results"]}
    assert by_name["refuser"]["exact"] > by_name["caller"]["exact"]  # over all steps, refusing looks better
    assert summary["best"] == "caller"
    assert "| **caller** | " in markdown_table(summary)
