"""The data card of an iteration: its numbers on a hand-built iteration (counted by hand
below), its Hugging Face dataset card, the export folder, the API, the pages, and the
build when synthesis finishes."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from inftool_web.core.roles import set_role
from inftool_web.loop.datacard import data_card_markdown, iteration_build_data_card
from inftool_web.loop.models import Iteration
from inftool_web.synth.models import Message, TrajectoryStep
from inftool_web.synth.services import audit_record
from tests.factories import (
    CheckpointFactory,
    IterationFactory,
    TrajectoryFactory,
    TreeNodeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

WEATHER = {
    "name": "get_weather",
    "description": "Current weather and forecast for a city.",
    "inputSchema": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "minLength": 2},
        "days": {"type": "integer", "minimum": 1, "maximum": 10},
    }},
}
QUOTE = {
    "name": "get_quote",
    "description": "A stock quote.",
    "inputSchema": {"type": "object", "required": ["symbol"], "properties": {
        "symbol": {"type": "string", "pattern": "^[A-Z]{1,5}$"},
        "date": {"type": "string", "format": "date"},
    }},
}
BFCL_SIMPLE_0 = "Find the area of a triangle with a base of 10 units and height of 5 units."


def call(name: str, args: dict, i: int = 0) -> dict:
    return {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def build(t, scenario: dict, steps: list[tuple], votes: list[dict]) -> None:
    """Store a trajectory's step log and its reading table of messages.

    ``steps``: (role, content, tool_calls, meta) per message, in order.
    """
    log = [("scenario", {"kind": "scenario", **scenario})]
    rows = []
    for role, content, calls, meta in steps:
        log.append(("message", {"kind": "message", "role": role, "content": content, "tool_calls": calls,
                                "meta": meta}))
        rows.append(Message(trajectory=t, index=len(log) - 1, role=role, content=content or "", tool_calls=calls))
    for v in votes:
        log.append(("vote", {"kind": "vote", "verifier": f"v{len(log)}", "decision": "accept", "meta": v}))
    TrajectoryStep.objects.bulk_create(
        [TrajectoryStep(trajectory=t, index=i, kind=kind, data=data) for i, (kind, data) in enumerate(log)])
    Message.objects.bulk_create(rows)


def reviewer():
    user = UserFactory()
    set_role(user, "reviewer")
    return user


@pytest.fixture
def world():
    weather, finance = TreeNodeFactory(name="Weather"), TreeNodeFactory(name="Finance")
    ckpt = CheckpointFactory(name="iteration-1-sft", kind="sft", path="/ckpt/sft1")
    it = IterationFactory(status="succeeded", input_checkpoint=ckpt, config={
        "count": 7, "seed": 4, "profile": "none",
        "backends": {"verifier": {"backend": "openai", "base_url": "http://gpu-1:8000/v1", "model": "qwen2.5-32b"}}})

    def traj(seq, kind, **kw):
        tools = [QUOTE] if kw.get("domain") is finance else [WEATHER]
        return TrajectoryFactory(iteration=it, seq=seq, mode=kind, offered_tools=tools, **kw)

    t1 = traj(1, "single", status="done", verdict="accepted", difficulty="easy", domain=weather,
              reference_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    build(t1, {"mode": "single", "query": "What's the weather in Paris today?",
               "meta": {"query": {"source": "model"},
                        "reference": [{"action": "ok", "polished": [{"argument": "units", "action": "dropped"}]}]}},
          [("system", "You can call tools.", [], {}),
           ("user", "What's the weather in Paris today?", [], {}),
           ("assistant", None, [call("get_weather", {"city": "Paris"})], {}),
           ("tool", '{"temp_c": 21}', [], {}),
           ("assistant", "It is 21 °C in Paris.", [], {})],
          [{}, {}])

    t2 = traj(2, "parallel", status="done", verdict="accepted", difficulty="hard", domain=weather, repaired=True,
              reference_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}},
                               {"name": "get_weather", "arguments": {"city": "Oslo", "days": "3"}}])
    build(t2, {"mode": "parallel", "query": "Weather in Rome and Oslo, please.",
               "meta": {"query": {"source": "plain"},
                        "reference": [{"action": "ok"}, {"fallback": "schema_instance"}]}},
          [("user", "Weather in Rome and Oslo, please.", [], {}),
           ("assistant", None, [call("get_weather", {"city": "Rome"}), call("get_weather", {"city": "Oslo", "days": 3}, 1)], {}),
           ("tool", "{}", [], {}), ("tool", "{}", [], {}),
           ("assistant", "Rome: sunny; Oslo: rain.", [], {"source": "plain"})],
          [{}, {"abstain": "rationale unusable: it repeats itself"}])

    t3 = traj(3, "multi_turn", status="done", verdict="accepted", difficulty="easy", domain=finance, repaired=True,
              reference_calls=[{"name": "get_quote", "arguments": {"symbol": "AAPL", "date": "2025-13-45"}}])
    build(t3, {"mode": "multi_turn", "goal": "Get the AAPL quote.",
               "meta": {"goal": {"source": "model"},
                        "reference": [{"action": "ok", "polished": [{"action": "replaced"}, {"action": "kept"}]}]}},
          [("system", "You can call tools.", [], {}),
           ("user", "Hi, I need the AAPL quote for today.", [], {"turn": 0, "goal_met": False}),
           ("assistant", None, [call("get_quote", {"symbol": "aapl"})], {"turn": 0, "source": "reference"}),
           ("tool", '{"price": 190}', [], {}),
           ("assistant", "AAPL is at 190.", [], {"turn": 0}),
           ("user", BFCL_SIMPLE_0, [], {"turn": 1, "source": "plain"}),
           ("assistant", "That is 25 square units.", [], {"turn": 1}),
           ("user", "Thanks, that's all.", [], {"turn": 2, "goal_met": True})],
          [{}, {"error": "no JSON", "abstain": "unreadable vote"}])

    t4 = traj(4, "irrelevance", status="done", verdict="rejected", difficulty="easy", domain=finance)
    build(t4, {"mode": "irrelevance", "query": "Book me a flight to Lisbon.", "meta": {"query": {"source": "model"}}},
          [("user", "Book me a flight to Lisbon.", [], {}),
           ("assistant", "None of my tools can book flights.", [], {})],
          [{}, {}])

    t5 = traj(5, "single", status="rejected", verdict="rejected", domain=weather)
    t6 = traj(6, "multiple", status="failed", domain=weather, error="backend down")
    t7 = traj(7, "single", status="done", verdict="accepted", difficulty="hard", domain=weather,
              reference_calls=[{"name": "get_weather", "arguments": {"city": "Lyon"}}])
    build(t7, {"mode": "single", "query": "Weather in Lyon?", "meta": {"query": {"source": "model"},
                                                                        "reference": [{"action": "ok"}]}},
          [("user", "Weather in Lyon?", [], {}),
           ("assistant", None, [call("get_weather", {"city": "Lyon"})], {}),
           ("tool", "{}", [], {}),
           ("assistant", "Mild in Lyon.", [], {})],
          [{}, {}])

    # verifiers' verdict vs reviewer: (A, A) (A, A) (R, A) (R, R by a flag) (A, R)
    who = reviewer()
    for t, decision in ((t1, "accept"), (t2, "accept"), (t4, "accept"), (t5, "flag"), (t7, "reject")):
        audit_record(trajectory=t, reviewer=who, decision=decision)
    return {"it": it, "t": {1: t1, 2: t2, 3: t3, 4: t4, 5: t5, 6: t6, 7: t7}}


def test_doctests():
    import doctest

    from inftool_web.loop import datacard

    assert doctest.testmod(datacard).failed == 0


def test_the_card_counts_what_the_iteration_produced(world):
    it, t = world["it"], world["t"]
    card = iteration_build_data_card(iteration=it, embeddings=False)

    # stored, and JSON through and through
    it.refresh_from_db()
    assert it.data_card == json.loads(json.dumps(card)) and it.data_card_at is not None

    overall = card["rates"]["overall"]
    assert (overall["trajectories"], overall["finished"], overall["accepted"], overall["rejected"],
            overall["failed"], overall["kept"], overall["repaired"]) == (7, 7, 4, 2, 1, 4, 2)
    assert overall["acceptance_rate"] == round(4 / 7, 4) and overall["repair_rate"] == round(2 / 7, 4)
    by_mode = card["rates"]["by_mode"]
    assert list(by_mode) == ["single", "parallel", "multiple", "irrelevance", "multi_turn"]
    assert (by_mode["single"]["trajectories"], by_mode["single"]["accepted"]) == (3, 2)
    assert by_mode["single"]["acceptance_rate"] == 0.6667 and by_mode["single"]["repair_rate"] == 0.0
    assert by_mode["parallel"]["repair_rate"] == 1.0 and by_mode["multiple"]["failed"] == 1
    assert by_mode["irrelevance"]["acceptance_rate"] == 0.0 and by_mode["irrelevance"]["kept"] == 1

    # kept = accepted after audits: t1, t2, t3 and t4 (a reviewer accepted it); not t7
    counts = card["counts"]
    assert counts["kept"] == 4
    assert counts["by_mode"] == {"single": 1, "parallel": 1, "irrelevance": 1, "multi_turn": 1}
    assert counts["by_domain"] == {"Finance": 2, "Weather": 2}
    assert counts["by_difficulty"] == {"easy": 3, "hard": 1}

    texts = card["texts"]["all"]
    assert {k: (v["total"], v["model"], v["fallback"]) for k, v in texts.items()} == {
        "queries": (4, 3, 1), "goals": (1, 1, 0), "reference_arguments": (5, 4, 1), "user_turns": (3, 2, 1),
        "agent_calls": (4, 3, 1), "answers": (6, 5, 1), "votes": (10, 8, 2)}
    assert texts["votes"]["sources"] == {"abstained": 1, "model": 8, "unreadable": 1}
    assert texts["agent_calls"]["sources"] == {"model": 3, "reference": 1}
    assert texts["queries"]["model_share"] == 0.75
    kept_texts = card["texts"]["kept"]
    assert (kept_texts["queries"]["total"], kept_texts["queries"]["model"]) == (3, 2)  # t1, t2 (plain), t4
    assert kept_texts["votes"]["total"] == 8

    values = card["values"]
    assert (values["reference_calls"]["values"], values["reference_calls"]["valid"]) == (6, 4)
    assert (values["agent_calls"]["values"], values["agent_calls"]["valid"]) == (5, 4)
    assert (values["all"]["values"], values["all"]["valid"], values["all"]["share"]) == (11, 8, round(8 / 11, 6))
    assert sorted(values["all"]["failures"]) == [
        "get_quote.date: '2025-13-45' is not a 'date'",
        "get_quote.symbol: 'aapl' does not match '^[A-Z]{1,5}$'",
        "get_weather.days: '3' is not of type 'integer'",
    ]
    assert values["polishing"]["kept_trajectories"] == {
        "dropped": 1, "replaced": 1, "kept": 1, "schema_instance": 1, "fallback_invalid": 0}

    div = card["diversity"]
    assert div["requests"] == 4 and div["exact_duplicates"] == 0
    assert div["distinct_2"] == round(21 / 22, 6) and div["distinct_1"] == round(22 / 26, 6)
    assert div["near_duplicates"]["status"] == "not run"

    con = card["contamination"]
    assert con["status"] == "run" and con["reference"] == "BFCL V3" and con["methods"] == ["exact", "near"]
    assert (con["checked"], con["flagged"]) == (4, 1)
    assert con["flags"][0]["trajectory"] == t[3].pk and con["flags"][0]["method"] == "exact"
    assert con["flags"][0]["bfcl_text"] == BFCL_SIMPLE_0

    backends = card["backends"]
    assert backends["user"] == {"backend": "embedded", "model": "smollm2-135m-instruct"}
    assert backends["agent"] == {"backend": "embedded", "model": "/ckpt/sft1", "checkpoint": "iteration-1-sft"}
    assert backends["verifier"] == {"backend": "openai", "model": "qwen2.5-32b", "base_url": "http://gpu-1:8000/v1"}
    assert backends["scenario"]["backend"] == "embedded" and "api_key" not in json.dumps(backends)

    audit = card["audit"]
    # po = 3/5; pe = (3·3 + 2·2) / 25 = 0.52; kappa = (0.6 - 0.52) / 0.48 = 1/6
    assert (audit["audited"], audit["agree"], audit["agreement"], audit["kappa"]) == (5, 3, 0.6, 0.1667)
    assert audit["table"] == {"verifiers_accepted__reviewer_accepted": 2, "verifiers_accepted__reviewer_rejected": 1,
                              "verifiers_rejected__reviewer_accepted": 1, "verifiers_rejected__reviewer_rejected": 1}
    assert [(d["id"], d["verdict"], d["decision"], d["url"]) for d in audit["disagreements"]] == [
        (t[4].pk, "rejected", "accept", f"/trajectories/{t[4].pk}/"),
        (t[7].pk, "accepted", "reject", f"/trajectories/{t[7].pk}/")]


def test_the_card_of_an_empty_iteration_has_no_rates():
    card = iteration_build_data_card(iteration=IterationFactory(), embeddings=False)
    assert card["rates"]["overall"]["acceptance_rate"] is None and card["counts"]["kept"] == 0
    assert card["values"]["all"]["share"] is None and card["diversity"]["distinct_2"] is None
    assert card["audit"]["kappa"] is None and card["contamination"]["checked"] == 0
    assert "No trajectory audited yet." in data_card_markdown(card)


def front_matter(markdown: str) -> tuple[dict, str]:
    assert markdown.startswith("---\n")
    head, body = markdown[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_the_markdown_is_a_hugging_face_dataset_card(world):
    from huggingface_hub import DatasetCard

    card = iteration_build_data_card(iteration=world["it"], embeddings=False)
    md = data_card_markdown(card, data_file="data.jsonl")
    meta, body = front_matter(md)
    assert meta["license"] == "other" and meta["language"] == ["en"]
    assert meta["task_categories"] == ["text-generation"] and meta["size_categories"] == ["n<1K"]
    assert {"tool-use", "function-calling", "synthetic"} <= set(meta["tags"])
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data.jsonl"}]}]
    hub = DatasetCard(md)  # the Hub's own parser of dataset cards
    assert hub.data.configs == meta["configs"] and hub.data.license == "other"
    for text in ("## Counts", "| parallel | 1 | 0 | 1 | 100.0% | 1 | 100.0% | 0 | 1 |", "| **all** | 7 | 1 | 4 | 57.1% | 2 | 28.6% | 3 | 1 |",
                 "| queries | 4 | 3 | 1 | 75.0% | model 3, plain 1 |", "| all | 11 | 8 | 72.7% |",
                 "distinct-2 0.954545", "Near-duplicates: not run", "1 flagged", "| verifier | openai | qwen2.5-32b |",
                 "Cohen's kappa 0.1667", f"trajectory #{world['t'][7].pk} (single): verifiers accepted, reviewer reject"):
        assert text in body, text


def test_export_folder_has_the_data_and_its_card_and_loads_with_datasets(world, tmp_path):
    import datasets

    out = tmp_path / "it"
    call_command("export_dataset", "--iteration", str(world["it"].number), "--output", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data.jsonl"]
    meta, body = front_matter((out / "README.md").read_text())
    assert meta["configs"][0]["data_files"][0]["path"] == "data.jsonl"
    assert "4 rows in the `openai` format, filtered by iteration=" in body and "Cohen's kappa 0.1667" in body
    # the export built (and stored) the card, which the iteration did not have yet
    assert Iteration.objects.get(pk=world["it"].pk).data_card["counts"]["kept"] == 4

    by_files = datasets.load_dataset("json", data_files=str(out / "data.jsonl"), split="train",
                                     cache_dir=str(tmp_path / "c1"))
    by_folder = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "c2"))
    assert by_files.num_rows == by_folder.num_rows == 4
    assert set(by_folder.column_names) == {"messages", "tools"}
    first_user = [next(m["content"] for m in row if m["role"] == "user") for row in by_folder["messages"]]
    assert "What's the weather in Paris today?" in first_user


def test_export_folder_refuses_out_and_output_together(world, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not both"):
        call_command("export_dataset", "--out", str(tmp_path / "x.jsonl"), "--output", str(tmp_path / "d"))


def test_data_card_command_rebuilds_stores_and_prints(world, capsys):
    call_command("data_card", "--iteration", str(world["it"].number), "--format", "json", "--no-embeddings")
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"]["kept"] == 4 and printed["audit"]["kappa"] == 0.1667
    assert Iteration.objects.get(pk=world["it"].pk).data_card["counts"] == printed["counts"]
    call_command("data_card", "--iteration", str(world["it"].number), "--no-embeddings")
    meta, _ = front_matter(capsys.readouterr().out)
    assert meta["size_categories"] == ["n<1K"]


def api_client():
    user = UserFactory()
    set_role(user, "viewer")
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_gives_the_card_as_json_and_markdown(world):
    it, client = world["it"], api_client()
    missing = client.get(f"/api/iterations/{it.pk}/card/")
    assert missing.status_code == 404 and "no data card yet" in missing.json()["detail"]
    assert client.get(f"/api/iterations/{it.pk}/card/?format=md").status_code == 404
    assert client.get(f"/api/iterations/{it.pk}/card/?format=md")["Content-Type"].startswith("application/json")

    iteration_build_data_card(iteration=it, embeddings=False)
    r = client.get(f"/api/iterations/{it.pk}/card/")
    assert r.status_code == 200 and r.json()["counts"]["kept"] == 4 and r.json()["audit"]["agree"] == 3
    # in reading order again, though jsonb stores keys by length
    assert list(r.json()["rates"]["by_mode"]) == ["single", "parallel", "multiple", "irrelevance", "multi_turn"]
    assert list(r.json()["texts"]["all"])[:3] == ["queries", "goals", "reference_arguments"]
    assert list(r.json()["backends"]) == ["user", "agent", "server", "verifier", "judge", "scenario"]
    md = client.get(f"/api/iterations/{it.pk}/card/?format=md")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    meta, _ = front_matter(md.content.decode())
    assert meta["configs"][0]["data_files"][0]["path"] == "data.jsonl"

    # an audit after the card was built shows at once
    audit_record(trajectory=world["t"][3], reviewer=reviewer(), decision="reject")
    assert client.get(f"/api/iterations/{it.pk}/card/").json()["audit"]["audited"] == 6

    export = client.get(f"/api/exports/openai/?iteration={it.pk}")
    assert export["Link"].endswith(f'/api/iterations/{it.pk}/card/?format=md>; rel="describedby"; type="text/markdown"')
    assert b"".join(export.streaming_content).count(b"\n") == 3

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    op = schema["paths"]["/api/iterations/{id}/card/"]["get"]
    assert set(op["responses"]["200"]["content"]) == {"application/json", "text/markdown"}
    assert {"format"} <= {p["name"] for p in op["parameters"]} and "404" in op["responses"]


def login(client, role: str):
    user = UserFactory()
    set_role(user, role)
    client.force_login(user)


def test_iteration_page_shows_the_data_card(client, world):
    login(client, "viewer")
    page = client.get(f"/iterations/{world['it'].pk}/").content.decode()
    assert "Data card" in page and "is built when the iteration's synthesis finishes" in page

    iteration_build_data_card(iteration=world["it"], embeddings=False)
    page = client.get(f"/iterations/{world['it'].pk}/").content.decode()
    assert 'id="data-card"' in page and "57.1%" in page  # acceptance 4 / 7
    section = page[page.index('id="data-card"'):]
    rows = [section.index(f"<tr><td>{m}</td>") for m in ("single", "parallel", "multiple", "irrelevance", "multi-turn")]
    assert rows == sorted(rows)  # modes in reading order
    assert "qwen2.5-32b" in page and "iteration-1-sft" in page
    assert "Cohen's kappa <b>0.167</b>" in page
    assert f'href="/trajectories/{world["t"][7].pk}/" class="disagreement"' in page
    assert "get_weather.days: &#x27;3&#x27; is not of type &#x27;integer&#x27;" in page


def test_audit_page_shows_the_agreement(client, world):
    login(client, "reviewer")
    page = client.get(f"/audit/?iteration={world['it'].pk}&size=3&seed=1").content.decode()
    assert "Agreement with the verifiers" in page
    assert "<b>3</b> of <b>5</b> audited trajectories agree" in page and "<b>60.0%</b>" in page
    assert "Cohen's kappa <b>0.167</b>" in page
    for t in (world["t"][4], world["t"][7]):
        assert f'href="/trajectories/{t.pk}/" class="disagreement">#{t.pk}</a>' in page
    assert "No audited trajectory" in client.get(f"/audit/?iteration={IterationFactory().pk}").content.decode()


def test_the_card_is_built_when_synthesis_finishes(django_capture_on_commit_callbacks):
    from inftool_web.loop.iterations import Run, synthesis_finished

    it = IterationFactory(status="synthesizing", config={"profile": "none"})
    TrajectoryFactory(iteration=it, status="done", verdict="accepted", difficulty="easy")
    TrajectoryFactory(iteration=it, status="running")
    with django_capture_on_commit_callbacks(execute=True):
        assert synthesis_finished(iteration_id=it.pk, run=Run.QUEUE) is False
    assert Iteration.objects.get(pk=it.pk).data_card == {}

    it.trajectories.filter(status="running").update(status="failed", error="x")
    with django_capture_on_commit_callbacks(execute=True):
        assert synthesis_finished(iteration_id=it.pk, run=Run.QUEUE) is True
    it.refresh_from_db()
    assert it.status == "succeeded" and it.data_card_at is not None
    assert it.data_card["rates"]["overall"]["acceptance_rate"] == 0.5 and it.data_card["counts"]["kept"] == 1


@pytest.mark.slow
def test_the_minilm_checks_run_when_embeddings_are_on(world):
    card = iteration_build_data_card(iteration=world["it"], embeddings=True,
                                     contamination_reference=[("ref_0", "Book a flight to Lisbon for me.")])
    nd = card["diversity"]["near_duplicates"]
    assert (nd["status"], nd["model"], nd["texts"], nd["near_duplicates"], nd["share"]) == (
        "run", "all-MiniLM-L6-v2", 4, 0, 0.0)
    con = card["contamination"]
    assert con["methods"] == ["exact", "near", "embedding"] and con["reference"] == "1 given texts"
    assert [(f["trajectory"], f["bfcl_id"], f["method"]) for f in con["flags"]] == [
        (world["t"][4].pk, "ref_0", "embedding")]


def test_the_card_reads_what_the_engine_stores(db):
    """A real role-play run (the scripted fake backend): the card's tallies of the step log
    match the reading tables, and its value checks match the synthesize summary's."""
    from django.db.models import Q

    from inftool_web.loop.iterations import iteration_create, iteration_plan, trajectories_run
    from inftool_web.synth.models import Trajectory, VerifierVote
    from inftool_web.synth.selectors import iteration_value_checks
    from tests.factories import ApiSourceFactory, ToolFactory
    from tests.synthesis.roleplay.fakes import ALL_TOOLS, smart_backend

    source = ApiSourceFactory(name="shop.example")
    for t in ALL_TOOLS:
        ToolFactory(source=source, name=t["name"], description=t["description"], input_schema=t["inputSchema"],
                    output_schema=t.get("outputSchema"))
    modes = ["single", "parallel", "multiple", "irrelevance", "multi_turn"]
    it = iteration_create(config={"count": 10, "profile": "none", "modes": {m: 1 for m in modes}, "max_turns": 3})
    iteration_plan(iteration_id=it.pk)
    trajectories_run(trajectory_ids=list(it.trajectories.values_list("pk", flat=True)),
                     backends={"default": smart_backend()})
    card = iteration_build_data_card(iteration=it, embeddings=False)

    trajs = Trajectory.objects.filter(iteration=it)
    assert card["rates"]["overall"]["accepted"] == trajs.filter(verdict="accepted").count() > 0
    texts = card["texts"]["all"]
    assert texts["queries"]["total"] == trajs.exclude(mode="multi_turn").filter(steps__kind="scenario").count()
    assert texts["goals"]["total"] == trajs.filter(mode="multi_turn", steps__kind="scenario").count()
    assert texts["votes"]["total"] == VerifierVote.objects.filter(trajectory__iteration=it).count() > 0
    assistant = Message.objects.filter(trajectory__iteration=it, role="assistant")
    assert texts["agent_calls"]["total"] == assistant.exclude(tool_calls=[]).count() > 0
    assert texts["answers"]["total"] == assistant.filter(tool_calls=[]).count()
    assert texts["user_turns"]["total"] == Message.objects.filter(
        trajectory__iteration=it, trajectory__mode="multi_turn", role="user").count() > 0
    refs = sum(len(r) for r in trajs.filter(~Q(mode="irrelevance")).values_list("reference_calls", flat=True))
    assert texts["reference_arguments"]["total"] >= refs > 0
    summary = iteration_value_checks(iteration_id=it.pk)  # no audits: kept = accepted
    assert (card["values"]["all"]["values"], card["values"]["all"]["valid"]) == (summary.total, summary.passed)
    assert card["diversity"]["requests"] == card["counts"]["kept"]
