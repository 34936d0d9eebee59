"""Bad input, each where it enters: tool definitions that break JSON Schema (from a live MCP
server, a spec, or rows stored earlier), model output PostgreSQL cannot store, oversize and
over-nested request bodies, forged iteration configs, bad filters, and injection attempts in
searches.  Each gets a clear error (or is made harmless) and the rest goes on: never a 500."""

from __future__ import annotations

import io
import json
import sys

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inftool_web.catalog.models import ApiSource, Tool
from inftool_web.core.roles import set_role
from inftool_web.loop.iterations import iteration_create, iteration_plan, trajectories_run
from inftool_web.loop.models import Iteration
from inftool_web.synth.models import Message
from synthesis.llm.base import LLMBackend
from tests.conftest import ROOT
from tests.factories import (
    ApiSourceFactory,
    EvaluationRunFactory,
    IterationFactory,
    ToolFactory,
    TrajectoryFactory,
    TreeNodeFactory,
    UserFactory,
)
from tests.synthesis.roleplay.fakes import ALL_TOOLS, smart_backend
from tests.web.fixtures import mcp_bad_tools_server

pytestmark = pytest.mark.django_db

BAD_TOOLS_SERVER = ROOT / "tests" / "web" / "fixtures" / "mcp_bad_tools_server.py"


def user_with(role: str | None):
    user = UserFactory()
    if role:
        set_role(user, role)
    return user


def api_as(role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(user_with(role))
    return client


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def _deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"inner": schema}}
    return schema


# A definition per way a schema breaks role-play, as rows may hold them from before the check.
BROKEN_SCHEMAS = {
    "unknown_type": {"type": "object", "properties": {"n": {"type": "integr"}}},
    "missing_ref": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
    "self_ref": {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
    "bad_keyword_value": {"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}},
    "bad_pattern": {"type": "object", "properties": {"c": {"type": "string", "pattern": "(?<=x"}}},
    "deep": _deep(40),
}


# ---------------------------------------------------------------------------- tool definitions


def test_ingest_mcp_keeps_good_tools_and_names_each_broken_one():
    command = f"{sys.executable} {BAD_TOOLS_SERVER}"
    out = run("ingest_mcp", server_command=command, name="bad-tools")
    source = ApiSource.objects.get(name="bad-tools")
    assert source.status == "ok"
    assert set(source.tools.values_list("name", flat=True)) == {"get_weather", "get_time"}
    reasons = {w["operation"]: w["message"] for w in source.warnings}
    assert set(reasons) == set(mcp_bad_tools_server.EXPECTED)
    for name, expected in mcp_bad_tools_server.EXPECTED.items():
        assert expected in reasons[name], (name, reasons[name])
        assert f"  {name}: " in out, f"the command must list {name} and its reason"
    assert "11 tool(s) left out" in out or f"{len(reasons)} tool(s) left out" in out
    # HTML stays text (escaped where shown), and the NUL that PostgreSQL refuses is replaced.
    weather = source.tools.get(name="get_weather")
    assert "<script>" in weather.description and "\x00" not in weather.description
    # Re-running changes nothing.
    run("ingest_mcp", server_command=command, name="bad-tools")
    assert source.tools.count() == 2


def test_ingest_mcp_of_a_list_the_mcp_sdk_refuses_fails_naming_the_tools():
    command = f"{sys.executable} {BAD_TOOLS_SERVER} off-spec"
    with pytest.raises(CommandError, match=r"break the MCP schema.*inputSchema\.required.*inputSchema\.type"):
        run("ingest_mcp", server_command=command, name="off-spec", timeout=60)
    source = ApiSource.objects.get(name="off-spec")
    assert source.status == "failed" and source.error_code == "mcp_invalid_tools"
    assert not source.tools.exists()


def test_a_spec_with_schema_breaking_definitions_and_a_nul_is_stored_with_valid_schemas(tmp_path):
    import jsonschema

    spec = {
        "openapi": "3.0.0", "info": {"title": "Broken\u0000 API", "version": "1"},
        "paths": {"/things": {"post": {
            "operationId": "makeThing", "description": "Makes a thing.\u0000 <script>alert(1)</script>",
            "parameters": [
                {"name": "x", "in": "query", "schema": {"type": "nonsense", "minimum": "zero", "pattern": "(?<=x"}},
                {"name": "y", "in": "query", "schema": {"$ref": "#/components/schemas/Missing"}},
                {"name": "z", "in": "query", "schema": {"$ref": "http://169.254.169.254/schema.json"}},
                {"name": "w", "in": "query", "schema": {"type": "object", "required": "w", "properties": "nope"}},
            ],
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
        }}},
        "components": {"schemas": {"Node": {"type": "object", "properties": {
            "next": {"$ref": "#/components/schemas/Node"}, "label": {"type": "string", "enum": ["a\u0000"]}}}}},
    }
    (tmp_path / "broken.json").write_text(json.dumps(spec))
    (tmp_path / "fine.json").write_text(json.dumps({
        "openapi": "3.0.0", "info": {"title": "Fine", "version": "1"},
        "paths": {"/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}}}))
    run("ingest_openapi", str(tmp_path), workers=1)
    assert ApiSource.objects.filter(status="ok").count() == 2, list(ApiSource.objects.values("name", "error"))
    tool = Tool.objects.get(name="makeThing")
    jsonschema.Draft202012Validator.check_schema(tool.input_schema)
    assert "\x00" not in tool.description and "\\u0000" not in json.dumps(tool.input_schema)
    from synthesis.mcp_tree.tool_check import tool_problem

    assert tool_problem({"name": tool.name, "inputSchema": tool.input_schema}) is None


@pytest.mark.parametrize("stale_score", [False, True], ids=["unscored", "scored-before-an-edit"])
@pytest.mark.parametrize("kind", sorted(BROKEN_SCHEMAS))
def test_a_stored_tool_with_a_broken_schema_is_left_out_of_role_play(kind, stale_score, caplog):
    source = ApiSourceFactory(name="shop.example")
    for t in ALL_TOOLS[:3]:
        ToolFactory(source=source, name=t["name"], description=t["description"], input_schema=t["inputSchema"],
                    output_schema=t.get("outputSchema"))
    broken = ToolFactory(source=source, name="broken_tool", description="Broken", input_schema=BROKEN_SCHEMAS[kind],
                         usability_score=1.0 if stale_score else None)
    it = iteration_create(config={"count": 5, "profile": "none", "max_turns": 2, "verifiers": 1,
                                  "modes": {"single": 1, "parallel": 1, "multiple": 1, "multi_turn": 1}})
    with caplog.at_level("WARNING", logger="inftool_web.synth.services"):
        iteration_plan(iteration_id=it.pk)
    if stale_score:  # curation said yes before the schema broke: planning checks again
        assert any("broken_tool" in r.getMessage() and "left out" in r.getMessage() for r in caplog.records)
    else:  # scored when planning: curation drops it, with the reason stored
        broken.refresh_from_db()
        assert broken.usability_score == 0.0
        assert {"invalid_schema", "dangling_ref"} & {r["code"] for r in broken.usability_reasons}
    offered = {t["name"] for traj in it.trajectories.all() for t in traj.offered_tools}
    assert "broken_tool" not in offered and offered
    assert not broken.trajectories.exists()
    counts = trajectories_run(trajectory_ids=list(it.trajectories.values_list("pk", flat=True)),
                              backends={"default": smart_backend()})
    assert sum(counts.values()) == 5 and not counts.get("failed"), counts


def test_planning_from_only_broken_tools_is_a_clear_error():
    source = ApiSourceFactory(name="broken.example")
    ToolFactory(source=source, name="broken_tool", input_schema=BROKEN_SCHEMAS["unknown_type"])
    it = iteration_create(config={"count": 1, "profile": "none"})
    with pytest.raises(ValueError, match="not valid JSON Schema"):
        iteration_plan(iteration_id=it.pk)


# ---------------------------------------------------------------------------- model output


class GarbageText(LLMBackend):
    """Answers as the smart stand-in, with a NUL, a lone surrogate and markup in free text and
    in string arguments: what a broken or hostile model server may send."""

    name = "garbage-text"
    # Markup that reads as a value, not a placeholder: self-reflection refuses `<script>`-like
    # placeholders in arguments before they are stored, so this is what reaches the database.
    JUNK = "\x00\ud800<b onmouseover=alert(1)>x</b>"

    def __init__(self):
        self.inner = smart_backend()

    def complete_batch(self, requests):
        out = self.inner.complete_batch(requests)
        for choices in out:
            for c in choices:
                if c.text and not c.text.lstrip().startswith("{"):
                    c.text += self.JUNK
                for call in c.tool_calls:
                    call.arguments = {k: v + self.JUNK if isinstance(v, str) else v for k, v in call.arguments.items()}
        return out


def test_model_output_postgresql_cannot_store_is_stored_replaced_and_shown_escaped(client):
    source = ApiSourceFactory(name="shop.example")
    for t in ALL_TOOLS:
        ToolFactory(source=source, name=t["name"], description=t["description"], input_schema=t["inputSchema"],
                    output_schema=t.get("outputSchema"))
    it = iteration_create(config={"count": 3, "profile": "none", "modes": {"multi_turn": 1, "single": 1},
                                  "max_turns": 2, "verifiers": 1})
    iteration_plan(iteration_id=it.pk)
    ids = list(it.trajectories.values_list("pk", flat=True))
    counts = trajectories_run(trajectory_ids=ids, backends={"default": GarbageText()})
    assert sum(counts.values()) == 3, counts
    replaced = Message.objects.filter(trajectory__iteration=it, content__contains="\ufffd\ufffd<b onmouseover")
    assert replaced.exists(), "NUL and surrogate replaced, the markup kept as text"
    for t in it.trajectories.all():
        idx = list(t.steps.order_by("index").values_list("index", flat=True))
        assert idx == list(range(len(idx))) and t.steps.filter(kind="finish").count() == 1
    client.force_login(user_with("reviewer"))
    for t in it.trajectories.all():
        body = client.get(f"/trajectories/{t.pk}/").content.decode()
        assert "<b onmouseover" not in body
    # A rerun (a redelivered task) neither fails on the replaced text nor stores anything twice.
    n = Message.objects.filter(trajectory__iteration=it).count()
    assert trajectories_run(trajectory_ids=ids, backends={"default": GarbageText()}) == {}
    assert Message.objects.filter(trajectory__iteration=it).count() == n


# ---------------------------------------------------------------------------- oversize and deep bodies


def _limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.mark.parametrize("path, kind", [
    ("/api/iterations/", "api"), ("/api/auth/token/", "api"), ("/v1/chat/completions", "v1"),
    ("/iterations/new/", "form"), ("/accounts/login/", "form"), ("/trajectories/1/audit/", "form"),
])
def test_an_oversize_body_is_a_413_before_any_view_reads_it(path, kind):
    user = user_with("operator")
    client = Client()
    client.force_login(user)
    token = Token.objects.create(user=user)
    big = b"x" * (_limit() + 1)
    content_type = "application/x-www-form-urlencoded" if kind == "form" else "application/json"
    r = client.generic("POST", path, big, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert r.status_code == 413, (path, r.status_code, r.content[:200])
    text = r.content.decode()
    assert "too large" in text and str(_limit()) in text
    if kind == "v1":
        assert r.json()["error"]["code"] == "request_too_large"
    elif kind == "api":
        assert "too large" in r.json()["detail"]


def test_a_body_under_the_limit_still_works():
    c = api_as("operator")
    r = c.post("/api/iterations/", {"name": "n" * 100, "config": {"count": 2, "domains": ["x" * 100] * 900}},
               format="json")
    assert r.status_code == 201, r.content[:300]


def test_a_bad_content_length_is_a_400():
    r = Client().generic("POST", "/accounts/login/", b"a=b", content_type="application/x-www-form-urlencoded",
                         CONTENT_LENGTH="lots")
    assert r.status_code == 400 and "Content-Length" in r.content.decode()


def _nested(depth: int) -> bytes:
    return b'{"config": ' + b"[" * depth + b"]" * depth + b"}"


def test_json_nested_too_deeply_is_a_400_everywhere():
    user = user_with("operator")
    token = Token.objects.create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    body = _nested(100_000)
    r = api.generic("POST", "/api/iterations/", body, content_type="application/json")
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]
    r = APIClient().generic("POST", "/api/auth/token/", body, content_type="application/json")
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]
    r = Client().generic("POST", "/v1/chat/completions", body, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]
    assert Iteration.objects.count() == 0


async def _asgi_post(path: str, chunks, *, headers=()) -> tuple[int, bytes, int]:
    """POST through the real ASGI application, the body in ``chunks``; returns the status,
    the body and how many chunks the application pulled."""
    from inftool_web.asgi import application

    pulled = 0
    sent: list[dict] = []
    chunks = iter(chunks)

    async def receive():
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, pulled


@pytest.mark.django_db(transaction=True)
def test_the_asgi_app_stops_reading_an_endless_body_at_the_limit():
    chunk = b"x" * 65536

    def endless():
        while True:
            yield chunk

    status, body, pulled = async_to_sync(_asgi_post)("/v1/chat/completions", endless())
    assert status == 413 and b"too large" in body
    assert pulled <= _limit() // len(chunk) + 2, f"read {pulled} chunks of an endless body"
    status, body, pulled = async_to_sync(_asgi_post)(
        "/api/iterations/", iter([b"{}"]), headers=[(b"content-length", str(_limit() * 10).encode())])
    assert status == 413 and pulled == 0, "a declared length over the limit is refused unread"


# ---------------------------------------------------------------------------- forged iteration configs

FORGED = [
    ({"count": 3, "telepathy": True}, "config", "unknown field(s) telepathy"),
    ({"count": "3"}, "count", "integer from 1"),
    ({"count": True}, "count", "integer from 1"),
    ({"count": 3.5}, "count", "integer from 1"),
    ({"count": -1}, "count", "integer from 1"),
    ({"count": 10**12}, "count", "integer from 1 to 100000"),
    ({"count": 3, "verifiers": -2}, "verifiers", "from 1 to 7"),
    ({"count": 3, "negotiation_rounds": True}, "negotiation_rounds", "from 0 to 3"),
    ({"count": 3, "max_turns": 10**9}, "max_turns", "from 1 to 15"),
    ({"count": 3, "hard_threshold": True}, "hard_threshold", "from 0 to 1"),
    ({"count": 3, "hard_threshold": -0.5}, "hard_threshold", "from 0 to 1"),
    ({"count": 3, "eval_limit": 10**40}, "eval_limit", "from 1 to 100000"),
    ({"count": 3, "eval_limit": 0}, "eval_limit", "from 1 to 100000"),
    ({"count": 3, "eval_subset": "mini-v9"}, "eval_subset", "must be one of mini-v1"),
    ({"count": 3, "training": {"sft": {"output_dir": "/etc"}}}, "training", "unknown or fixed settings output_dir"),
    ({"count": 3, "training": {"sft": {"learning_rat": 1}}}, "training", "unknown or fixed settings learning_rat"),
    ({"count": 3, "training": {"sft": {"lora_r": -2}}}, "training", "lora_r must be an integer"),
    ({"count": 3, "training": {"sft": {"max_steps": 0}}}, "training", "max_steps must be -1"),
    ({"count": 3, "training": {"dpo": {}}}, "training", 'must map "sft" and/or "grpo"'),
    ({"count": 3, "profile": "none", "training": {"sft": {"max_steps": 5}}}, "training", "trains nothing"),
    ({"count": 3, "training": {"grpo": {"beta": [1]}}}, "training", "values must be numbers"),
    ({"count": 3, "training": {"sft": {"bf16": True}}}, "training", "unknown or fixed settings bf16"),
    ({"count": 3, "training": {"grpo": {"use_vllm": True}}}, "training", "unknown or fixed settings use_vllm"),
    ({"count": 3, "training": {"sft": {"learning_rate": 5}}}, "training", "sft.learning_rate: 5 is greater than"),
    ({"count": 3, "training": {"data": {"swap_negatives": -1}}}, "training", "swap_negatives must be >= 0"),
    ({"count": 3, "training": {"data": {"seed": 3}}}, "training", "unknown or fixed settings seed"),
    ({"count": 3, "training": {"sft": {"lr_scheduler_type": "warp"}}}, "training", "sft.lr_scheduler_type"),
    ({"count": 3, "training": {"grpo": {"per_device_train_batch_size": 3}}}, "training", "per_device_train_batch_size"),
    ({"count": 3, "eval_subset": 1}, "eval_subset", "must be one of mini-v1"),
    ({"count": 3, "seed": -7}, "seed", "from 0 to 4294967295"),
    ({"count": 3, "seed": 10**40}, "seed", "from 0 to 4294967295"),
    ({"count": 3, "modes": {"single": -1}}, "modes", "from 0 to"),
    ({"count": 3, "modes": {"single": "1"}}, "modes", "from 0 to"),
    ({"count": 3, "modes": {"single": 1e300, "parallel": 1e300}}, "modes", "from 0 to"),
    ({"count": 3, "modes": []}, "modes", "must map modes"),
    ({"count": 3, "domains": "Weather"}, "domains", "list of at most"),
    ({"count": 3, "domains": [["Weather"]]}, "domains", "list of at most"),
    ({"count": 3, "domains": ["Wea\u0000ther"]}, "domains", "list of at most"),
    ({"count": 3, "domains": ["d"] * 5000}, "domains", "list of at most 1000"),
    ({"count": 3, "eval_categories": "simple"}, "eval_categories", "list of BFCL"),
    ({"count": 3, "eval_categories": ["simple; DROP TABLE"]}, "eval_categories", "unknown categories"),
    ({"count": 3, "profile": ["cpu"]}, "profile", "one of cpu"),
    ({"count": 3, "backends": "openai"}, "backends", "must map roles"),
    ({"count": 3, "backends": {"root": {"backend": "openai"}}}, "backends", "unknown role"),
    ({"count": 3, "backends": {"agent": {"backend": "shell"}}}, "backends", "backend must be one of"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://x/v1", "command": "rm"}}},
     "backends", "unknown key(s) command"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "file:///etc/passwd"}}},
     "backends", "starting with http(s)://"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "gopher://127.0.0.1:6379/_FLUSHALL"}}},
     "backends", "starting with http(s)://"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http:///v1"}}}, "backends", "names no host"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://h:port/v1"}}},
     "backends", "is not a URL"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://u:hunter2@h/v1"}}},
     "backends", "must not hold credentials"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://h/v1\r\nX-Evil: 1"}}},
     "backends", "printable characters"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": ["http://h/v1"]}}},
     "backends", "printable characters"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://h/v1", "model": {"a": 1}}}},
     "backends", "model must be text"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://attacker.example/v1",
                                         "api_key_env": "SECRET_KEY"}}}, "backends", "ending in _API_KEY"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://h/v1",
                                         "api_key_env": "DATABASE_URL"}}}, "backends", "ending in _API_KEY"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://h/v1", "timeout": -1}}},
     "backends", "timeout must be a number"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://h/v1", "max_retries": 10**9}}},
     "backends", "max_retries must be a number"),
    ({"count": 3, "backends": {"agent": {"backend": "embedded", "model": "/etc"}}}, "backends", "under"),
    # only allowed model hosts: an internal host would receive prompts and keys
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://169.254.169.254/v1"}}},
     "backends", "is not allowed"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://redis.internal:6379/v1"}}},
     "backends", "INFTOOL_MODEL_HOSTS"),
    # a key goes to the host it was configured for only
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://gpu-1:8000/v1",
                                         "api_key_env": "INFTOOL_LLM_API_KEY"}}}, "backends", "vllm only"),
    ({"count": 3, "backends": {"agent": {"backend": "openai", "base_url": "http://gpu-1:8000/v1",
                                         "api_key_env": "OPENAI_API_KEY"}}}, "backends", "bound to no host"),
    ({"count": 3, "backends": {"agent": {"backend": "embedded", "model": "var/../../etc"}}}, "backends", "under"),
]


@pytest.mark.parametrize("config, field, message", FORGED, ids=[f"{i}-{f}" for i, (_, f, _) in enumerate(FORGED)])
def test_a_forged_iteration_config_is_a_400_naming_the_field(config, field, message):
    r = api_as("operator").post("/api/iterations/", {"config": config}, format="json")
    assert r.status_code == 400, r.content[:300]
    errors = r.json()["config"]
    assert field in errors, errors
    assert message in errors[field], errors
    assert Iteration.objects.count() == 0


def _inside(prop: dict) -> list:
    """Values a trainer setting's schema allows: its bounds (or just inside an exclusive
    one), the middle, every enum value, null where allowed."""
    if "enum" in prop:
        return list(prop["enum"])
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    out = [None] if "null" in types else []
    if "boolean" in types:
        return [*out, True, False]
    if "string" in types:
        return [*out, "all-linear", "q_proj,v_proj"]
    step = 1 if "integer" in types else 1e-6
    lo = prop["minimum"] + (step if prop.get("exclusiveMinimum") else 0)
    hi = prop["maximum"] - (step if prop.get("exclusiveMaximum") else 0)
    mid = (lo + hi) // 2 if "integer" in types else (lo + hi) / 2
    return [*out, *(v for v in (lo, mid, hi) if v not in prop.get("not", {}).get("enum", []))]


def _outside(prop: dict) -> list:
    if "enum" in prop:
        return ["not-a-choice"]
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    if "boolean" in types or "string" in types:
        return [12345]
    step = 1 if "integer" in types else 1e-6
    return [prop["minimum"] - step if not prop.get("exclusiveMinimum") else prop["minimum"],
            prop["maximum"] + step if not prop.get("exclusiveMaximum") else prop["maximum"], "1"]


def test_the_documented_trainer_settings_are_exactly_what_an_iteration_accepts():
    """The REST API's schema for ``training`` and the validation agree: every value the schema
    allows is accepted on both profiles that train (alone and all together), every value
    just outside it is refused, and so is every trainer field the schema leaves out."""
    from dataclasses import fields

    from jsonschema import Draft4Validator

    from inftool_web.loop.iteration_config import (
        TRAINER_SETTINGS_SCHEMA,
        training_overrides_schema,
        training_problem,
    )
    from training.config import get_profile

    validator = Draft4Validator(training_overrides_schema())
    for stage, props in TRAINER_SETTINGS_SCHEMA.items():
        for profile in ("cpu", "gpu"):
            for key, prop in props.items():
                for value in _inside(prop):
                    overrides = {stage: {key: value}}
                    assert validator.is_valid(overrides), overrides
                    assert training_problem(overrides, profile) is None, (profile, overrides)
                for value in _outside(prop):
                    overrides = {stage: {key: value}}
                    assert not validator.is_valid(overrides), overrides
                    assert training_problem(overrides, profile), (profile, overrides)
            for pick in (0, -1):
                every = {stage: {k: _inside(p)[pick] for k, p in props.items()}}
                assert training_problem(every, profile) is None, (profile, every)
        left_out = {f.name for f in fields(getattr(get_profile("cpu"), stage))} - set(props)
        # the trainers' paths and device are fixed; the rows' seed is the iteration's
        assert {"output_dir", "bf16", "use_cpu"} <= left_out if stage != "data" else left_out == {"seed"}
        for key in left_out:
            assert not validator.is_valid({stage: {key: 1}})
            assert "unknown or fixed settings" in training_problem({stage: {key: 1}}, "cpu")


@pytest.mark.parametrize("config", ["count=3", [{"count": 3}], None, 3])
def test_a_config_that_is_not_an_object_is_a_400(config):
    r = api_as("operator").post("/api/iterations/", {"config": config}, format="json")
    assert r.status_code == 400 and "config" in r.json(), r.content[:300]
    assert Iteration.objects.count() == 0


def test_json_numbers_beyond_float_range_are_refused():
    c = api_as("operator")
    for text in ('{"config": {"count": 3, "modes": {"single": 1e400}}}',
                 '{"config": {"count": 3, "hard_threshold": -1e400}}',
                 '{"config": {"count": 3, "modes": {"single": NaN}}}'):
        r = c.generic("POST", "/api/iterations/", text, content_type="application/json")
        assert r.status_code == 400, (text, r.content[:200])
    assert Iteration.objects.count() == 0


def test_config_values_that_are_allowed_on_purpose():
    c = api_as("operator")
    ok = {"count": 3, "seed": 2**32 - 1, "eval_limit": None, "modes": {"single": 0.5, "parallel": 0},
          "backends": {
              # model servers live on the cluster network: internal hosts are fine for operators
              "agent": {"backend": "openai", "base_url": "http://vllm:8000/v1", "model": "qwen",
                        "api_key_env": "INFTOOL_LLM_API_KEY", "timeout": 30},
              "judge": {"backend": "embedded", "model": str(settings.INFTOOL_VAR_DIR / "training" / "ckpt")},
          }}
    r = c.post("/api/iterations/", {"config": ok}, format="json")
    assert r.status_code == 201, r.content[:300]


def test_a_config_cannot_make_a_worker_send_a_secret_to_its_base_url(monkeypatch, settings):
    """Even a config edited in the database after its check reads only *_API_KEY variables."""
    from inftool_web.loop.backends import backends_for_iteration

    url = "http://127.0.0.1:9/v1"
    settings.INFTOOL_LLM_API_KEY = ""
    settings.INFTOOL_API_KEY_HOSTS = {"INFTOOL_AGENT_API_KEY": "127.0.0.1", "SECRET_KEY": "127.0.0.1"}
    settings.INFTOOL_ROLE_BACKENDS = {r: {"backend": "openai", "base_url": url, "model": "m"}
                                      for r in ("user", "agent", "server", "verifier", "judge")}
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY", "the-django-secret")
    monkeypatch.setenv("INFTOOL_AGENT_API_KEY", "the-agent-key")

    def bearer(api_key_env: str) -> str | None:
        it = IterationFactory(config={"count": 1, "backends": {"agent": {
            "backend": "openai", "base_url": url, "api_key_env": api_key_env}}})
        backend = backends_for_iteration(it)["agent"]
        try:
            return backend._client.headers.get("Authorization")
        finally:
            backend.close()

    assert bearer("INFTOOL_AGENT_API_KEY") == "Bearer the-agent-key"
    # The workers read the config through the typed IterationConfig, which refuses it.
    from inftool_web.loop.iteration_config import ConfigError

    with pytest.raises(ConfigError, match="api_key_env"):
        bearer("SECRET_KEY")


def test_keys_go_only_to_the_host_they_were_configured_for(monkeypatch, settings):
    """A config edited in the database after its check (another host, another key) sends no
    key to a host the key was not configured for, and no request to a host not allowed."""
    from inftool_web.loop.backends import backends_for_iteration, role_backend_specs

    settings.INFTOOL_LLM_API_KEY = "the-server-key"
    settings.INFTOOL_API_KEY_HOSTS = {"INFTOOL_LLM_API_KEY": "vllm", "INFTOOL_GPU_API_KEY": "gpu-1"}
    monkeypatch.setenv("INFTOOL_GPU_API_KEY", "the-gpu-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")

    def key(spec: dict) -> str:
        it = IterationFactory(config={"count": 1, "backends": {"agent": {"backend": "openai", **spec}}})
        return role_backend_specs(it)["agent"]["api_key"]

    assert key({"base_url": "http://vllm:8000/v1"}) == "the-server-key"
    assert key({"base_url": "http://gpu-1:8000/v1"}) == ""  # the default key is vllm's
    assert key({"base_url": "http://gpu-1:8000/v1", "api_key_env": "INFTOOL_GPU_API_KEY"}) == "the-gpu-key"
    # A key named for another host: the typed config the workers read refuses the edit.
    with pytest.raises(ValueError, match="may be sent to gpu-1 only"):
        key({"base_url": "http://vllm:8000/v1", "api_key_env": "INFTOOL_GPU_API_KEY"})
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        key({"base_url": "http://127.0.0.1:9/v1", "api_key_env": "OPENAI_API_KEY"})
    it = IterationFactory(config={"count": 1, "backends": {"agent": {
        "backend": "openai", "base_url": "http://h/v1"}}})
    backend = backends_for_iteration(it)["agent"]
    try:  # an empty key: no fallback to $OPENAI_API_KEY either
        assert "Authorization" not in backend._client.headers
    finally:
        backend.close()
    settings.INFTOOL_MODEL_HOSTS = ["vllm"]
    with pytest.raises(ValueError, match="'h' is not allowed"):
        role_backend_specs(it)


def test_model_host_settings_default_to_the_configured_hosts(monkeypatch):
    import importlib

    import inftool_web.settings as base

    for name in ("INFTOOL_MODEL_HOSTS", "INFTOOL_API_KEY_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INFTOOL_LLM_BASE_URL", "http://GPU-7:8000/v1")
    monkeypatch.setenv("INFTOOL_JUDGE_BASE_URL", "https://judge.example/v1")
    try:
        s = importlib.reload(base)
        assert {"gpu-7", "judge.example", "127.0.0.1"} <= set(s.INFTOOL_MODEL_HOSTS)
        assert s.INFTOOL_API_KEY_HOSTS == {"INFTOOL_LLM_API_KEY": "gpu-7"}
        monkeypatch.setenv("INFTOOL_ENV", "production")
        monkeypatch.setenv("DEBUG", "false")
        monkeypatch.setenv("SECRET_KEY", "k")
        monkeypatch.setenv("ALLOWED_HOSTS", "a")
        s = importlib.reload(base)
        assert set(s.INFTOOL_MODEL_HOSTS) == {"gpu-7", "judge.example"}  # no loopback in production
    finally:
        monkeypatch.undo()
        importlib.reload(base)


def test_the_launch_form_refuses_forged_backends(client):
    client.force_login(user_with("operator"))
    data = {"name": "x", "count": "2", "verifiers": "1", "negotiation_rounds": "0", "max_turns": "2",
            "hard_threshold": "0.5", "profile": "none", "seed": "0", "mode_single": "1", "mode_parallel": "0",
            "mode_multiple": "0", "mode_irrelevance": "0", "mode_multi_turn": "0",
            "backend_agent": "openai", "base_url_agent": "file:///etc/passwd", "model_agent": "x",
            "config": '{"count": 99999}', "backends": "evil"}  # fields the form does not have are ignored
    r = client.post("/iterations/new/", data)
    assert r.status_code == 400 and "starting with http(s)://" in r.content.decode()
    data.update(base_url_agent="http://vllm:8000/v1", seed="-1")
    r = client.post("/iterations/new/", data)
    assert r.status_code == 400 and "from 0 to 4294967295" in r.content.decode()
    data.update(seed="0", backend_agent="embedded", base_url_agent="", model_agent="/etc/passwd")
    r = client.post("/iterations/new/", data)
    assert r.status_code == 400 and "checkpoint folder under" in r.content.decode()
    assert Iteration.objects.count() == 0


# ---------------------------------------------------------------------------- bad filters


@pytest.mark.parametrize("path", [
    "/api/trajectories/?iteration=99999999999999999999", "/api/trajectories/?iteration=-1",
    "/api/trajectories/?domain=99999999999999999999", "/api/trajectories/?domain=%C2%B2",
    "/api/trajectories/?domain=%F0%9F%92%A5", "/api/trajectories/?mode=%00",
    "/api/trajectories/?domain=x%00y", "/api/trajectories/?audited=%C2%B2",
    "/api/tools/?domain=%C2%B2", "/api/tools/?category=99999999999999999999", "/api/tools/?category=%00",
    "/api/evaluations/?iteration=%C2%B2", "/api/evaluations/?iteration=99999999999999999999",
    "/api/exports/openai/?domain=%C2%B2", "/api/exports/bfcl/?iteration=1e3",
    "/api/tools/99999999999999999999/", "/api/trajectories/99999999999999999999/",
    "/api/iterations/99999999999999999999/", "/api/trajectories/?limit=-5", "/api/trajectories/?limit=abc",
    "/api/tools/?offset=99999999999999999999", "/api/tools/?limit=99999999999999999999",
    "/tools/?domain=%C2%B2", "/tools/?category=99999999999999999999", "/tools/?page=99999999999999999999",
    "/tools/?page=%00", "/audit/?iteration=99999999999999999999", "/audit/?iteration=1&seed=%00",
    "/audit/?iteration=%C2%B2&size=-1", "/trajectories/99999999999999999999/", "/iterations/99999999999999999999/",
])
def test_odd_filter_values_are_answered_never_a_500(path):
    client = Client(raise_request_exception=False)
    client.force_login(user_with("operator"))
    TrajectoryFactory(iteration=IterationFactory(), domain=TreeNodeFactory(name="Weather"))
    EvaluationRunFactory()
    r = client.get(path)
    assert r.status_code in (200, 400, 404), (path, r.status_code)
    if r.status_code == 400 and path.startswith("/api/"):
        assert r.json(), "a 400 from the API says what was wrong"
    if r.streaming:
        b"".join(r.streaming_content)


def test_a_nul_in_a_query_parameter_is_a_400_naming_it():
    c = api_as("viewer")
    r = c.get("/api/trajectories/?domain=We%00ather")
    assert r.status_code == 400 and "'domain' contains a NUL character" in r.json()["detail"]


# ---------------------------------------------------------------------------- injection in searches

INJECTIONS = [
    "'", '"', "\\", "%", "_", "%%", "%_%", "' OR '1'='1", "'; DROP TABLE catalog_tool; --", "1; SELECT pg_sleep(5)",
    "$$", "E'\\x41'", "(?i).*", "[", "(a+)+$", "*", ".*", "\\d+", "^$", "x" * 5000, "é" * 300, "🔥",
    "\u202e", "similarity(name, 'x') > 0", "%' AND 1=1 --",
]


@pytest.mark.parametrize("q", INJECTIONS, ids=range(len(INJECTIONS)))
def test_injection_attempts_in_the_tool_search_are_just_text(q):
    ToolFactory(name="get_forecast", description="Daily forecast")
    ToolFactory(name="odd_tool", description="Matches 100% of [brackets] and back\\slashes")
    api = api_as("viewer")
    r = api.get("/api/tools/", {"q": q})
    if len(q) > 200:  # the API's search is capped; the page searches the first 200 characters
        assert r.status_code == 400 and "at most 200 characters" in r.json()["q"]
    else:
        assert r.status_code == 200, r.content[:300]
        names = {t["name"] for t in r.json()["results"]}
        assert "get_forecast" not in names or q.strip("%_*.^$\\") == "", f"{q!r} matched as a pattern: {names}"
    page = Client()
    page.force_login(user_with("viewer"))
    assert page.get("/tools/", {"q": q}).status_code == 200
    assert Tool.objects.count() == 2, "the table is still there"


def test_search_metacharacters_match_literally():
    ToolFactory(name="get_forecast", description="Daily forecast")
    ToolFactory(name="odd_tool", description="Matches 100% of [brackets] and back\\slashes")
    api = api_as("viewer")

    def names(q):
        return {t["name"] for t in api.get("/api/tools/", {"q": q}).json()["results"]}

    assert names("%") == {"odd_tool"} and names("100%") == {"odd_tool"}
    assert names("[brackets]") == {"odd_tool"} and names("back\\slashes") == {"odd_tool"}
    assert names("_") == {"get_forecast", "odd_tool"}, "an underscore in a name is a character, not a wildcard"
    assert names("'") == set()


def test_a_vllm_role_builds_with_its_checkpoint(monkeypatch, settings):
    """The vllm backend loads a local checkpoint (model_path): a role set to vllm used to
    fail on every build, given 'model'."""
    from inftool_web.loop.backends import backends_for_iteration, role_backend_specs
    from synthesis.llm.vllm_backend import VLLMBackend
    from tests.factories import CheckpointFactory
    from tests.synthesis.llm import fake_vllm

    vllm = fake_vllm.install(monkeypatch)
    it = IterationFactory(config={"count": 1, "backends": {
        "verifier": {"backend": "vllm", "model": "/models/qwen2.5-32b"},
        "agent": {"backend": "vllm"}}})
    it.input_checkpoint = CheckpointFactory(name="iteration-1-sft", kind="sft", path="/ckpt/sft1")
    specs = role_backend_specs(it)
    assert specs["verifier"] == {"backend": "vllm", "model_path": "/models/qwen2.5-32b"}
    assert specs["agent"] == {"backend": "vllm", "model_path": "/ckpt/sft1"}  # the loop's latest model
    backends = backends_for_iteration(it)
    assert isinstance(backends["verifier"], VLLMBackend) and isinstance(backends["agent"], VLLMBackend)
    assert {i.kwargs["model"] for i in vllm.LLM.instances} == {"/models/qwen2.5-32b", "/ckpt/sft1"}
