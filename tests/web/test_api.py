"""REST API: authentication, roles, trajectory filters, and the three JSONL export formats."""

from __future__ import annotations

import base64
import json
import re

import pytest
from rest_framework.test import APIClient

from inftool_web.api.apis import TrajectoryOutputSerializer
from inftool_web.core.roles import set_role
from inftool_web.loop.models import CategoryResult, Iteration
from inftool_web.synth.services import audit_record
from tests.factories import (
    EvaluationRunFactory,
    IterationFactory,
    PersonaFactory,
    ToolFactory,
    TrajectoryFactory,
    TreeNodeFactory,
    UserFactory,
    conversation,
)

pytestmark = pytest.mark.django_db

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def user_with(role: str | None):
    user = UserFactory()
    if role:
        set_role(user, role)
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def done(iteration, *, kind="single", verdict="accepted", difficulty="easy", domain=None, audit="", messages=True):
    t = TrajectoryFactory(iteration=iteration, mode=kind, status="done", verdict=verdict, difficulty=difficulty,
                          domain=domain, score=0.9 if difficulty == "easy" else 0.3, offered_tools=[WEATHER_TOOL],
                          reference_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
                          audit_decision=audit)
    if messages:
        conversation(t)
    return t


@pytest.fixture
def viewer():
    return user_with("viewer")


@pytest.fixture
def rows():
    it = IterationFactory(status="succeeded")
    other = IterationFactory()
    weather = TreeNodeFactory(name="Weather")
    finance = TreeNodeFactory(name="Finance")
    return {
        "it": it,
        "other": other,
        "weather": weather,
        "a": done(it, kind="single", verdict="accepted", difficulty="easy", domain=weather),
        "b": done(it, kind="parallel", verdict="rejected", difficulty="hard", domain=weather),
        "c": done(it, kind="multi_turn", verdict="accepted", difficulty="hard", domain=finance),
        # the verifiers accepted it, a reviewer rejected it: the audit wins
        "d": done(it, kind="single", verdict="accepted", difficulty="easy", domain=finance, audit="reject"),
        # the verifiers rejected it, a reviewer accepted it
        "e": done(it, kind="irrelevance", verdict="rejected", difficulty="easy", domain=finance, audit="accept"),
        "f": done(other, kind="single", verdict="accepted", difficulty="easy"),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {r["id"] for r in response.json()["results"]}


# ------------------------------------------------------------------ authentication
@pytest.mark.parametrize("path", ["/api/tools/", "/api/personas/", "/api/iterations/", "/api/trajectories/",
                                  "/api/evaluations/", "/api/exports/", "/api/exports/openai/", "/api/schema/"])
def test_anonymous_requests_are_refused(path):
    response = APIClient().get(path)
    assert response.status_code in (401, 403)
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith("Token")


def test_token_auth_works():
    user = user_with("viewer")
    anon = APIClient()
    token = anon.post("/api/auth/token/", {"username": user.username, "password": "pw-for-tests-123"}, format="json")
    assert token.status_code == 200, token.content
    key = token.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/tools/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/tools/").status_code == 401


def test_session_auth_works(client):
    user = user_with("viewer")
    client.force_login(user)
    assert client.get("/api/iterations/").status_code == 200


def test_schema_and_docs(viewer):
    c = client_for(viewer)
    schema = c.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for p in ("/api/tools/", "/api/personas/", "/api/iterations/", "/api/trajectories/", "/api/evaluations/",
              "/api/exports/{fmt}/", "/api/iterations/{id}/cancel/"):
        assert p in paths
    docs = c.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


# ------------------------------------------------------------------ roles
def test_viewer_cannot_launch_or_cancel(viewer):
    c = client_for(viewer)
    assert c.post("/api/iterations/", {"config": {"count": 3}}, format="json").status_code == 403
    it = IterationFactory(status="synthesizing")
    assert c.post(f"/api/iterations/{it.pk}/cancel/").status_code == 403
    assert Iteration.objects.count() == 1


def test_reviewer_cannot_launch():
    c = client_for(user_with("reviewer"))
    assert c.post("/api/iterations/", {"config": {"count": 3}}, format="json").status_code == 403


def test_operator_launches_and_cancels():
    c = client_for(user_with("operator"))
    r = c.post("/api/iterations/", {"name": "api run", "config": {"count": 4, "modes": {"single": 1}}}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "queued" and body["config"]["count"] == 4 and body["name"] == "api run"
    r = c.post(f"/api/iterations/{body['id']}/cancel/")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert c.get(f"/api/iterations/{body['id']}/").json()["status"] == "cancelled"


def test_launch_with_a_bad_config_is_a_400_naming_the_fields():
    c = client_for(user_with("operator"))
    r = c.post("/api/iterations/", {"config": {"count": 0, "modes": {"telepathy": 1}}}, format="json")
    assert r.status_code == 400
    errors = r.json()["config"]
    assert "count" in errors and "telepathy" in errors["modes"] and "multi_turn" in errors["modes"]
    assert Iteration.objects.count() == 0


# ------------------------------------------------------------------ listings
def test_tools_search_and_detail(viewer):
    ToolFactory(name="get_forecast", description="Weather forecast by city")
    ToolFactory(name="convert_currency", description="Convert money between currencies")
    c = client_for(viewer)
    names = [t["name"] for t in c.get("/api/tools/?q=forcast").json()["results"]]
    assert names == ["get_forecast"]  # trigram similarity forgives the typo
    names = [t["name"] for t in c.get("/api/tools/?q=money").json()["results"]]
    assert names == ["convert_currency"]  # description words
    tool = c.get("/api/tools/").json()["results"][0]
    assert c.get(f"/api/tools/{tool['id']}/").json()["input_schema"]["type"] == "object"


def test_tools_search_length_is_capped(viewer):
    ToolFactory(name="get_forecast", description="Weather forecast by city")
    c = client_for(viewer)
    assert c.get("/api/tools/?q=" + "f" * 200).status_code == 200
    r = c.get("/api/tools/?q=" + "forecast " * 5000)
    assert r.status_code == 400 and "at most 200 characters" in r.json()["q"]
    assert client_for(viewer).get("/api/schema/?format=json").json()["paths"]["/api/tools/"]["get"][
        "parameters"][[p["name"] for p in c.get("/api/schema/?format=json").json()["paths"]["/api/tools/"]["get"][
            "parameters"]].index("q")]["schema"]["maxLength"] == 200


def test_tools_description_search_uses_a_trigram_index(viewer):
    from django.db import connection

    from inftool_web.catalog.selectors import tool_list

    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'tool_description_upper_trgm'")
        (indexdef,) = cur.fetchone()
        assert "gin" in indexdef and "gin_trgm_ops" in indexdef
        # an empty test table: make the planner show which indexes can serve the filter
        cur.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        sql, params = tool_list(q="currency").query.sql_with_params()
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert {"tool_description_upper_trgm", "tool_name_upper_trgm", "tool_name_trgm"} <= set(re.findall(r"tool_\w+_trgm", plan)), plan


def test_personas_and_evaluations(viewer):
    PersonaFactory(name="Maya")
    it = IterationFactory()
    ev = EvaluationRunFactory(iteration=it, overall=0.42)
    CategoryResult.objects.create(evaluation=ev, category="simple", correct=4, total=10, accuracy=0.4)
    c = client_for(viewer)
    assert [p["name"] for p in c.get("/api/personas/").json()["results"]] == ["Maya"]
    evals = c.get(f"/api/evaluations/?iteration={it.pk}").json()["results"]
    assert evals[0]["overall"] == 0.42 and evals[0]["results"][0]["category"] == "simple"
    assert c.get("/api/evaluations/?iteration=x").status_code == 400


def test_trajectory_detail_has_the_conversation(viewer, rows):
    body = client_for(viewer).get(f"/api/trajectories/{rows['a'].pk}/").json()
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert client_for(viewer).get("/api/trajectories/999999/").status_code == 404


# ------------------------------------------------------------------ filters
def test_each_filter(viewer, rows):
    c = client_for(viewer)
    r, it = rows, rows["it"].pk
    assert ids(c.get(f"/api/trajectories/?iteration={it}")) == {r[k].pk for k in "abcde"}
    assert ids(c.get(f"/api/trajectories/?iteration={it}&mode=single")) == {r["a"].pk, r["d"].pk}
    assert ids(c.get("/api/trajectories/?domain=Weather")) == {r["a"].pk, r["b"].pk}
    assert ids(c.get(f"/api/trajectories/?domain={rows['weather'].pk}")) == {r["a"].pk, r["b"].pk}
    assert ids(c.get(f"/api/trajectories/?iteration={it}&difficulty=hard")) == {r["b"].pk, r["c"].pk}
    # effective verdicts: audits override the verifiers
    assert ids(c.get(f"/api/trajectories/?iteration={it}&verdict=accepted")) == {r["a"].pk, r["c"].pk, r["e"].pk}
    assert ids(c.get(f"/api/trajectories/?iteration={it}&verdict=rejected")) == {r["b"].pk, r["d"].pk}
    assert ids(c.get(f"/api/trajectories/?iteration={it}&audited=true")) == {r["d"].pk, r["e"].pk}
    assert ids(c.get(f"/api/trajectories/?iteration={it}&audited=false")) == {r["a"].pk, r["b"].pk, r["c"].pk}
    listed = {t["id"]: t for t in c.get(f"/api/trajectories/?iteration={it}").json()["results"]}
    assert listed[r["d"].pk]["effective_verdict"] == "rejected" and listed[r["d"].pk]["verdict"] == "accepted"


@pytest.mark.parametrize("query, field, valid", [
    ("mode=telepathy", "mode", "multi_turn"),
    ("difficulty=medium", "difficulty", "hard"),
    ("verdict=maybe", "verdict", "accepted"),
    ("audited=perhaps", "audited", "true"),
    ("iteration=abc", "iteration", "integer"),
])
def test_bad_filters_are_400_listing_valid_values(viewer, query, field, valid):
    for path in ("/api/trajectories/", "/api/exports/openai/"):
        r = client_for(viewer).get(f"{path}?{query}")
        assert r.status_code == 400, (path, r.content)
        assert valid in r.json()[field]


def test_bad_filters_are_all_reported_at_once(viewer):
    errors = client_for(viewer).get("/api/trajectories/?mode=x&difficulty=y").json()
    assert set(errors) == {"mode", "difficulty"}


# ------------------------------------------------------------------ pages
def walk(client, url: str) -> list[dict]:
    """Every row of a cursor-paged listing, following the ``next`` links."""
    rows = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.content
        body = r.json()
        assert "count" not in body  # no COUNT(*) per page
        rows += body["results"]
        url = body["next"]
    return rows


def test_trajectory_pages_follow_the_cursor_in_id_order(viewer, rows):
    c = client_for(viewer)
    extra = [done(rows["it"], messages=False) for _ in range(5)]
    everything = walk(c, "/api/trajectories/?limit=2")
    ids_seen = [r["id"] for r in everything]
    assert ids_seen == sorted(ids_seen) and len(set(ids_seen)) == len(ids_seen) == 6 + len(extra)
    # filters hold on every page, and the previous link leads back
    accepted = walk(c, f"/api/trajectories/?iteration={rows['it'].pk}&verdict=accepted&limit=1")
    assert {r["id"] for r in accepted} == {rows[k].pk for k in "ace"} | {t.pk for t in extra}
    second = c.get(c.get("/api/trajectories/?limit=3").json()["next"]).json()
    back = c.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == ids_seen[:3]


def test_page_size_is_capped(viewer):
    it = IterationFactory()
    for _ in range(3):
        done(it, messages=False)
    c = client_for(viewer)
    assert len(c.get("/api/trajectories/?limit=2").json()["results"]) == 2
    assert len(c.get("/api/trajectories/?limit=501").json()["results"]) == 3  # capped, not refused
    for bad in ("abc", "0", "-1", "²"):
        assert "limit" in c.get(f"/api/trajectories/?limit={bad}").json()
        assert "limit" in c.get(f"/api/iterations/?limit={bad}").json()
    assert "offset" in c.get("/api/iterations/?offset=x").json()
    from inftool_web.api.pagination import MAX_PAGE_SIZE, IdCursorPages, LimitOffsetPages

    assert IdCursorPages.max_page_size == LimitOffsetPages.max_limit == MAX_PAGE_SIZE == 500
    assert c.get("/api/iterations/?limit=100000").json()["count"] == 1


@pytest.mark.parametrize("cursor", ["not-a-cursor", base64.b64encode(b"p=abc").decode(),
                                    base64.b64encode(b"p=99999999999999999999").decode(),
                                    base64.b64encode("p=²".encode()).decode()])
def test_a_bad_cursor_is_a_400(viewer, rows, cursor):
    r = client_for(viewer).get("/api/trajectories/", {"cursor": cursor})
    assert r.status_code == 400, r.content
    assert "cursor" in r.json()


def test_trajectory_list_rows_match_the_serializer(viewer, rows):
    """The list shapes plain rows itself for speed; its output must stay the serializer's."""
    from inftool_web.synth.models import Trajectory

    listed = {t["id"]: t for t in client_for(viewer).get("/api/trajectories/").json()["results"]}
    expected = {t["id"]: dict(t) for t in TrajectoryOutputSerializer(Trajectory.objects.all(), many=True).data}
    assert listed == expected
    assert listed[rows["d"].pk]["effective_verdict"] == "rejected"


def test_schema_documents_the_pages(viewer):
    schema = json.loads(client_for(viewer).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    trajectories = schema["paths"]["/api/trajectories/"]["get"]
    assert {"cursor", "limit"} <= {p["name"] for p in trajectories["parameters"]}
    page = trajectories["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {"next", "previous", "results"}
    tools = schema["paths"]["/api/tools/"]["get"]
    assert {"limit", "offset"} <= {p["name"] for p in tools["parameters"]}


# ------------------------------------------------------------------ found by the schema fuzz test
# (tests/web/test_api_fuzz.py); each was a response the schema did not promise.
def test_tools_and_personas_without_a_domain_list_it_as_null(viewer):
    ToolFactory(name="get_forecast")
    PersonaFactory(name="Maya")
    c = client_for(viewer)
    tool = c.get("/api/tools/").json()["results"][0]
    assert tool["domain"] is None and tool["category"] is None
    assert c.get("/api/personas/").json()["results"][0]["domain"] is None
    components = json.loads(c.get("/api/schema/?format=json").content)["components"]["schemas"]
    assert components["Tool"]["properties"]["domain"]["nullable"] is True
    assert components["Persona"]["properties"]["domain"]["nullable"] is True


@pytest.mark.parametrize("method, path", [("get", "/api/tools/abc/"), ("get", "/api/trajectories/null,null/"),
                                          ("post", "/api/iterations/x/cancel/"), ("get", "/api/no-such-thing/")])
def test_unknown_api_paths_are_json_404s(viewer, method, path):
    r = getattr(client_for(viewer), method)(path)
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}


def test_the_schema_documents_error_responses_and_export_formats(viewer):
    paths = json.loads(client_for(viewer).get("/api/schema/?format=json").content)["paths"]
    assert set(paths["/api/trajectories/"]["get"]["responses"]) == {"200", "400", "401", "403", "429"}
    assert {"404", "401", "403"} <= set(paths["/api/tools/{id}/"]["get"]["responses"])
    assert {"400", "413"} <= set(paths["/api/iterations/"]["post"]["responses"])
    fmt = next(p for p in paths["/api/exports/{fmt}/"]["get"]["parameters"] if p["name"] == "fmt")
    assert sorted(fmt["schema"]["enum"]) == ["bfcl", "hf", "openai", "sharegpt"]
    assert all(p.get("allowEmptyValue") for p in paths["/api/trajectories/"]["get"]["parameters"])


def test_an_empty_include_is_the_default(viewer, rows):
    assert len(export(client_for(viewer), "openai", f"iteration={rows['it'].pk}&include=")) == 3


def test_launch_takes_a_json_object_only():
    c = client_for(user_with("operator"))
    assert "name" in c.post("/api/iterations/", {"name": 0, "config": {"count": 2}}, format="json").json()
    assert "config" in c.post("/api/iterations/", {"config": "null"}, format="json").json()
    assert c.post("/api/iterations/", {"config": "{}"}, format="multipart").status_code == 415
    assert Iteration.objects.count() == 0


# ------------------------------------------------------------------ exports
def export(client, fmt: str, query: str = "") -> list[dict]:
    r = client.get(f"/api/exports/{fmt}/?{query}")
    assert r.status_code == 200, r.content if not r.streaming else ""
    assert r.streaming and r["Content-Type"] == "application/x-ndjson"
    text = b"".join(r.streaming_content).decode()
    assert text.endswith("\n") or text == ""
    return [json.loads(line) for line in text.splitlines()]


def test_export_openai_format(viewer, rows):
    lines = export(client_for(viewer), "openai", f"iteration={rows['it'].pk}&mode=single")
    assert len(lines) == 1  # a (accepted); d was rejected by its audit
    row = lines[0]
    assert set(row) == {"messages", "tools"}
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    call = row["messages"][2]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert row["messages"][3]["tool_call_id"] == call["id"]
    assert row["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": WEATHER_TOOL["inputSchema"]}}]


def test_export_sharegpt_format(viewer, rows):
    row = export(client_for(viewer), "sharegpt", f"iteration={rows['it'].pk}&mode=single")[0]
    assert [t["from"] for t in row["conversations"]] == ["system", "human", "gpt", "tool", "gpt"]
    gpt = row["conversations"][2]["value"]
    assert gpt.startswith("<tool_call>") and gpt.endswith("</tool_call>")
    inner = gpt.removeprefix("<tool_call>").removesuffix("</tool_call>")
    assert json.loads(inner) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert isinstance(row["tools"], str) and json.loads(row["tools"])[0]["function"]["name"] == "get_weather"


def test_export_bfcl_format(viewer, rows):
    by_id = {r["id"]: r for r in export(client_for(viewer), "bfcl", f"iteration={rows['it'].pk}&include=all")}
    single = by_id[f"inftool_single_{rows['it'].pk}_{rows['a'].seq}"]
    assert single["question"] == [[{"role": "system", "content": "You can call tools."},
                                   {"role": "user", "content": "Weather in Paris?"}]]
    assert single["function"][0]["name"] == "get_weather" and "parameters" in single["function"][0]
    assert single["ground_truth"] == [{"get_weather": {"city": ["Paris"]}}]
    multi = by_id[f"inftool_multi_turn_{rows['it'].pk}_{rows['c'].seq}"]
    assert multi["ground_truth"] == [["get_weather(city='Paris')"]]
    assert by_id[f"inftool_irrelevance_{rows['it'].pk}_{rows['e'].seq}"]["ground_truth"] == []


def test_export_only_effective_accepted_by_default(viewer, rows):
    c, r = client_for(viewer), rows
    q = f"iteration={r['it'].pk}"
    assert len(export(c, "openai", q)) == 3  # a, c, e (e: rejected by verifiers, accepted by audit)
    assert len(export(c, "openai", q + "&include=all")) == 5
    assert len(export(c, "bfcl", q + "&difficulty=hard")) == 1
    assert c.get("/api/exports/csv/").status_code == 400
    assert c.get("/api/exports/openai/?include=some").status_code == 400
    assert set(c.get("/api/exports/").json()["formats"]) == {"openai", "sharegpt", "bfcl", "hf"}


def test_audit_overrides_the_verdict_in_the_export(viewer, rows):
    c, it = client_for(viewer), rows["it"]
    before = export(c, "sharegpt", f"iteration={it.pk}&mode=parallel")
    assert before == []  # b was rejected by the verifiers
    audit_record(trajectory=rows["b"], reviewer=user_with("reviewer"), decision="accept", note="fine after all")
    assert len(export(c, "sharegpt", f"iteration={it.pk}&mode=parallel")) == 1
    audit_record(trajectory=rows["a"], reviewer=user_with("reviewer"), decision="flag", note="odd answer")
    assert export(c, "openai", f"iteration={it.pk}&mode=single") == []


def test_openai_export_loads_with_datasets(viewer, rows, tmp_path):
    import datasets

    r = client_for(viewer).get(f"/api/exports/openai/?iteration={rows['it'].pk}&include=all")
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(r.streaming_content))
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 5
    assert set(ds.column_names) == {"messages", "tools"}
    first = ds[0]
    assert first["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert first["tools"][0]["function"]["name"] == "get_weather"


def test_exports_teach_the_reference_where_the_agent_answered_otherwise(viewer):
    from tests.factories import conversation

    it = IterationFactory()
    wrong = TrajectoryFactory(iteration=it, mode="single", status="done", verdict="accepted",
                              reference_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    conversation(wrong, arguments={"city": "Paris"})
    refused = TrajectoryFactory(iteration=it, mode="irrelevance", status="done", verdict="accepted", reference_calls=[])
    conversation(refused)
    for fmt in ("openai", "sharegpt"):
        lines = export(client_for(viewer), fmt, f"iteration={it.pk}")
        assert len(lines) == 2
        text = json.dumps(lines)
        assert "Oslo" in text and "Paris" not in text.replace("Weather in Paris?", "")
        assert "cannot help with this request" in text and "It is sunny." not in text


def test_the_export_and_training_learn_the_same_conversation(viewer):
    """One ground-truth rule (synthesis.records): the openai export of a trajectory and the
    record training receives end in the same answer, call for call."""
    from inftool_web.loop.selectors import training_trajectories
    from synthesis.records import ground_truth, normalize_call
    from tests.factories import conversation

    it = IterationFactory()
    cases = {
        "wrong": dict(kind="single", reference_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}],
                      arguments={"city": "Paris"}),
        "right": dict(kind="single", reference_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
                      arguments={"city": "Paris"}),
        "refused": dict(kind="irrelevance", reference_calls=[], arguments={"city": "Paris"}),
    }
    for spec in cases.values():
        t = TrajectoryFactory(iteration=it, mode=spec["kind"], status="done", verdict="accepted",
                              reference_calls=spec["reference_calls"])
        conversation(t, arguments=spec["arguments"])
    exported = [line["messages"] for line in export(client_for(viewer), "openai", f"iteration={it.pk}")]
    trained = [ground_truth(r)[0] for r in training_trajectories(iteration_id=it.pk)]

    def shape(messages):
        return [(m["role"], m.get("content") or "", [normalize_call(c) for c in m.get("tool_calls") or []])
                for m in messages if m["role"] != "system"]

    assert [shape(m) for m in exported] == [shape(m) for m in trained]
    assert [len(m) for m in exported] == [3, 5, 3]  # corrected, kept, refused


@pytest.mark.parametrize("path", ["/api/tools/%C2%8C%0A/", "/api/nowhere/", "/v1/nowhere"])
def test_unknown_api_urls_answer_json_404(viewer, settings, path):
    settings.DEBUG = False
    r = client_for(viewer).get(path)
    assert r.status_code == 404 and r["Content-Type"] == "application/json" and r.json() == {"detail": "Not found."}


def test_the_schema_types_the_iteration_config_and_the_token_request(viewer):
    schema = client_for(viewer).get("/api/schema/?format=json").json()["components"]["schemas"]
    config = schema["Input"]["properties"]["config"]
    assert config["additionalProperties"] is False
    assert config["properties"]["count"] == {"type": "integer", "minimum": 1, "maximum": 100000}
    assert config["properties"]["profile"] == {"enum": ["cpu", "cpu-loop", "gpu", "none"]}
    assert set(config["properties"]["backends"]["properties"]) == {"user", "agent", "server", "verifier", "judge"}
    token = schema["TokenRequest"]["properties"]
    assert token["username"]["minLength"] == 1 and token["password"]["minLength"] == 1
