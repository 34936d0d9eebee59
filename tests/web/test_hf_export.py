"""Hugging Face dataset folders: ``export_dataset --format hf`` and ``/api/exports/hf/``
write parquet train/validation splits by trajectory and a card that ``datasets`` and the
Hub's card parser read."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from inftool_web.core.roles import set_role
from inftool_web.loop import hf_export
from tests.factories import (
    QUOTE_TOOL,
    IterationFactory,
    TrajectoryFactory,
    UserFactory,
    tool_use_trajectories,
    tool_use_trajectory,
)

pytestmark = pytest.mark.django_db

@pytest.fixture
def world():
    it = IterationFactory(status="succeeded")
    trajectories = tool_use_trajectories(it)
    TrajectoryFactory(iteration=it, seq=102, mode="single", status="rejected", verdict="rejected")  # not exported
    return {"it": it, "t": trajectories}


def _export(world, out, *extra):
    call_command("export_dataset", "--format", "hf", "--iteration", str(world["it"].number), "--out", str(out),
                 *extra)


def test_hf_folder_loads_with_datasets_and_its_card_parses(world, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    out = tmp_path / "hf"
    _export(world, out, "--license", "cc-by-4.0")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["README.md", "data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"]

    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "validation"}
    assert ds["train"].num_rows + ds["validation"].num_rows == 14
    assert ds["train"].num_rows > ds["validation"].num_rows >= 1
    # split by trajectory: every trajectory once, in one split
    ids = list(ds["train"]["id"]) + list(ds["validation"]["id"])
    assert len(ids) == len(set(ids)) == 14
    assert set(ds["train"]["trajectory_id"]) | set(ds["validation"]["trajectory_id"]) == {t.pk for t in world["t"]}
    assert ds["train"].features["tools"].dtype == "string"
    row = next(r for r in ds["train"].to_list() + ds["validation"].to_list() if r["mode"] == "parallel")
    tools = json.loads(row["tools"])
    assert tools == [{"type": "function", "function": {"name": "get_quote", "description": "A stock quote.",
                                                       "parameters": QUOTE_TOOL["inputSchema"]}}]  # no null padding
    assistant = row["messages"][1]
    assert assistant["content"] == "Two quotes." and assistant["tool_call_id"] is None
    assert [json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        {"symbol": "AAPL"}, {"symbol": "MSFT", "when": "close"}]
    assert [m["tool_call_id"] for m in row["messages"][2:4]] == [c["id"] for c in assistant["tool_calls"]]
    single = next(r for r in ds["train"].to_list() + ds["validation"].to_list() if r["mode"] == "single")
    assert single["messages"][2]["content"] is None  # a call with no text: content null, as OpenAI writes it

    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["license"] == "cc-by-4.0"
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*.parquet"},
        {"split": "validation", "path": "data/validation-*.parquet"}]}]
    (corpus,) = meta["source_corpus"]
    assert corpus["name"] == "APIs.guru openapi-directory" and corpus["license"] == "CC0-1.0"
    export = meta["inftool"]["export"]
    assert export["rows"] == {"train": ds["train"].num_rows, "validation": ds["validation"].num_rows}
    assert export["seed"] == 0 and export["filters"] == {"iteration": str(world["it"].number), "verdict": "accepted"}
    (card,) = meta["inftool"]["data_cards"]
    assert card["iteration"]["number"] == world["it"].number and card["counts"]["kept"] == 14
    assert "## Source corpus" in text and "## This export" in text and "## Counts" in text
    hub = DatasetCard(text)  # the Hub's own parser
    assert hub.data.license == "cc-by-4.0" and hub.data.configs == meta["configs"]


def test_the_split_is_seeded_and_stable(world, tmp_path):
    import pyarrow.parquet as pq

    def split_ids(out):
        return {s: sorted(pq.read_table(out / f"data/{s}-00000-of-00001.parquet")["id"].to_pylist())
                for s in hf_export.SPLITS}

    _export(world, tmp_path / "a")
    _export(world, tmp_path / "b")
    _export(world, tmp_path / "c", "--seed", "7", "--validation-fraction", "0.5")
    a, b, c = split_ids(tmp_path / "a"), split_ids(tmp_path / "b"), split_ids(tmp_path / "c")
    assert a == b
    assert a != c and len(c["validation"]) > len(a["validation"])
    for ids in (a, c):
        expected = {s: sorted(i for i in ids["train"] + ids["validation"]
                              if hf_export.split_of(i, seed=0 if ids is a else 7,
                                                    validation_fraction=0.1 if ids is a else 0.5) == s)
                    for s in hf_export.SPLITS}
        if expected["validation"]:  # the hash alone decided (no split was left empty)
            assert ids == expected


def test_tiny_exports_still_have_both_splits_and_one_has_train_only(tmp_path):
    it = IterationFactory(status="succeeded")
    tool_use_trajectory(it, 0, "Paris")
    tool_use_trajectory(it, 1, "Rome")
    _export({"it": it}, tmp_path / "two")
    assert sorted(p.name for p in (tmp_path / "two/data").iterdir()) == [
        "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]
    it2 = IterationFactory(status="succeeded")
    tool_use_trajectory(it2, 0, "Oslo")
    _export({"it": it2}, tmp_path / "one", "--validation-fraction", "0.9")
    meta = hf_export.read_card_front_matter(tmp_path / "one")
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["train"]


def test_shards_roll_over(world, tmp_path):
    from inftool_web.loop.exports import export_hf_folder
    from inftool_web.synth.selectors import TrajectoryFilters, trajectory_list

    qs = trajectory_list(filters=TrajectoryFilters(iteration=world["it"].pk, verdict="accepted"))
    result = export_hf_folder(qs, tmp_path / "s", rows_per_shard=5)
    assert result.total == 14
    n = len(result.files["train"])
    assert n == -(-result.rows["train"] // 5) and result.files["train"][-1].endswith(f"-of-{n:05d}.parquet")


def test_bad_options_and_push_without_network_fail_clearly(world, tmp_path, monkeypatch):
    with pytest.raises(CommandError, match="give --out DIR"):
        call_command("export_dataset", "--format", "hf")
    with pytest.raises(CommandError, match=r"validation_fraction must be in \[0, 1\)"):
        _export(world, tmp_path / "x", "--validation-fraction", "1")
    with pytest.raises(CommandError, match="--push-to-hub needs --format hf"):
        call_command("export_dataset", "--out", str(tmp_path / "y.jsonl"), "--push-to-hub", "me/data")

    import huggingface_hub.constants

    # Nothing listens here: the push fails as it would without network (or in offline mode).
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(CommandError, match="could not push .* to the Hugging Face Hub dataset 'me/data'") as info:
        _export(world, tmp_path / "p", "--push-to-hub", "me/data")
    assert "hf upload me/data" in str(info.value)
    assert (tmp_path / "p/README.md").is_file()  # the folder is written before the push


def test_api_serves_the_folder_as_a_zip(world, tmp_path):
    import datasets
    from rest_framework.test import APIClient

    user = UserFactory()
    set_role(user, "viewer")
    client = APIClient()
    client.force_authenticate(user)
    assert "hf" in client.get("/api/exports/").json()["formats"]
    assert client.get("/api/exports/hf/?validation_fraction=2").status_code == 400
    assert client.get("/api/exports/bfcl/?validation_fraction=null").status_code == 400
    assert client.get("/api/exports/openai/?seed=x").status_code == 400
    r = client.get(f"/api/exports/hf/?iteration={world['it'].pk}&seed=3")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content))) as zf:
        names = sorted(zf.namelist())
        zf.extractall(tmp_path / "unzipped")
    assert names[0] == "README.md" and all(n.startswith("data/") for n in names[1:])
    ds = datasets.load_dataset(str(tmp_path / "unzipped"), cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows + ds["validation"].num_rows == 14
    assert hf_export.read_card_front_matter(tmp_path / "unzipped")["inftool"]["export"]["seed"] == 3


def test_doctests():
    import doctest

    assert doctest.testmod(hf_export).failed == 0
