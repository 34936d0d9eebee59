"""Pages: log-in, roles, escaping of model output and tool text, the audit flow, the launch form."""

from __future__ import annotations

import pytest

from inftool_web.catalog.models import Tool
from inftool_web.core.roles import set_role
from inftool_web.loop.models import CategoryResult, Iteration
from inftool_web.synth.models import AuditDecision, Reflection
from tests.factories import (
    EvaluationRunFactory,
    IterationFactory,
    MessageFactory,
    ToolFactory,
    TrajectoryFactory,
    TreeNodeFactory,
    UserFactory,
    VerifierVoteFactory,
    conversation,
)

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


def login(client, role: str | None = "viewer"):
    user = UserFactory()
    if role:
        set_role(user, role)
    client.force_login(user)
    return user


@pytest.fixture
def world():
    domain = TreeNodeFactory(name="Weather")
    it = IterationFactory(status="synthesizing", config={"count": 10})
    done_it = IterationFactory(status="succeeded")
    trajectories = []
    for i, (kind, diff, verdict) in enumerate([("single", "easy", "accepted"), ("parallel", "hard", "rejected"),
                                               ("multi_turn", "hard", "accepted"), ("multiple", "easy", "accepted")]):
        t = TrajectoryFactory(iteration=it, mode=kind, status="done", difficulty=diff, verdict=verdict,
                              score=0.2 + 0.2 * i, domain=domain, num_turns=3 if kind == "multi_turn" else 1,
                              prompt_tokens=300, completion_tokens=50, repaired=i == 1)
        conversation(t)
        trajectories.append(t)
    ev = EvaluationRunFactory(iteration=done_it, overall=0.61)
    CategoryResult.objects.create(evaluation=ev, category="simple", correct=6, total=10, accuracy=0.6)
    return {"it": it, "done_it": done_it, "t": trajectories}


def pages(world) -> list[str]:
    t = world["t"][0]
    return ["/", f"/iterations/{world['it'].pk}/", f"/trajectories/{t.pk}/", f"/trajectories/{t.pk}/row/",
            f"/trajectories/{t.pk}/card/", "/tools/", "/evaluations/", "/audit/", "/iterations/new/"]


def test_every_page_redirects_to_login_when_anonymous(client, world):
    for path in pages(world):
        r = client.get(path)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/?next="), path


def test_login_page_logs_in(client):
    user = UserFactory()
    set_role(user, "viewer")
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'name="username"' in page.content
    r = client.post("/accounts/login/", {"username": user.username, "password": "pw-for-tests-123"})
    assert r.status_code == 302 and r["Location"] == "/"
    assert client.get("/").status_code == 200


def test_every_page_renders_for_an_operator(client, world):
    login(client, "operator")
    for path in pages(world):
        r = client.get(path)
        assert r.status_code == 200, path
    home = client.get("/").content.decode()
    assert f"Iteration #{world['it'].number}" in home and "61.0%" in home  # running iteration, BFCL overall
    assert 'hx-headers=\'{"X-CSRFToken": "' in home and 'ws-connect="/ws/events/"' in home


def test_viewer_sees_pages_but_not_actions(client, world):
    login(client, "viewer")
    it = world["it"]
    body = client.get(f"/iterations/{it.pk}/").content.decode()
    assert "<svg" in body and "Cancel iteration" not in body
    assert f'ws-connect="/ws/iterations/{it.pk}/"' in body
    assert client.get("/audit/").status_code == 403
    assert client.get("/iterations/new/").status_code == 403
    assert client.post(f"/iterations/{it.pk}/cancel/").status_code == 403
    t = world["t"][0]
    assert client.post(f"/trajectories/{t.pk}/audit/", {"decision": "accept"}).status_code == 403
    nav = client.get("/").content.decode()
    assert 'href="/audit/"' not in nav and 'href="/iterations/new/"' not in nav


def test_operator_cancels_from_the_page(client, world):
    login(client, "operator")
    it = world["it"]
    assert "Cancel iteration" in client.get(f"/iterations/{it.pk}/").content.decode()
    r = client.post(f"/iterations/{it.pk}/cancel/")
    assert r.status_code == 302
    it.refresh_from_db()
    assert it.status == "cancelled"


def test_htmx_requests_get_only_the_partial(client, world):
    login(client)
    r = client.get("/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and b"<html" not in r.content and b'id="iterations"' in r.content
    r = client.get(f"/iterations/{world['it'].pk}/", HTTP_HX_REQUEST="true")
    assert b"<html" not in r.content and b'id="summary"' in r.content
    r = client.get("/tools/?q=x", HTTP_HX_REQUEST="true")
    assert b"<html" not in r.content and b'id="results"' in r.content


# ------------------------------------------------------------------ escaping
def test_tool_descriptions_are_escaped(client):
    login(client)
    ToolFactory(name="evil_tool", description=f"Fetch things {XSS}",
                input_schema={"type": "object", "properties": {"q": {"type": "string", "description": XSS}}})
    body = client.get("/tools/").content.decode()
    assert XSS not in body and ESCAPED in body


def test_model_output_is_escaped_everywhere(client, world):
    login(client, "reviewer")
    t = world["t"][0]
    MessageFactory(trajectory=t, index=10, role="assistant", content=XSS,
                   tool_calls=[{"function": {"name": "x", "arguments": {"html": XSS}}}])
    VerifierVoteFactory(trajectory=t, rationale=XSS)
    Reflection.objects.create(trajectory=t, index=0, step=10, action="ok", detail=XSS)
    t.offered_tools = [{"name": "x", "description": XSS, "inputSchema": {"type": "object"}}]
    t.goal = XSS
    t.save()
    for path in (f"/trajectories/{t.pk}/", f"/trajectories/{t.pk}/card/", f"/iterations/{t.iteration_id}/",
                 f"/audit/?iteration={t.iteration_id}&size=10&seed=1"):
        body = client.get(path).content.decode()
        assert "<script>alert" not in body, path
        assert "&lt;script&gt;" in body, path


ATTR_XSS = '"><img src=x onerror=alert(1)>'


def test_every_page_and_partial_escapes_every_stored_text(client):
    """Text from specs, MCP servers, models, reviewers and operators, in every field a page
    shows (charts and the live partials included): never markup, in text or in attributes."""
    from inftool_web.catalog.models import ApiSource, TreeNode
    from inftool_web.synth.models import Persona
    from inftool_web.synth.services import audit_record

    evil = XSS + ATTR_XSS
    domain = TreeNodeFactory(name=f"Dom {evil}", description=evil)
    category = TreeNode.objects.create(level="category", name=f"Cat {evil}", parent=domain, description=evil)
    tool = ToolFactory(name="evil_tool", description=evil, domain=domain, category=category,
                       input_schema={"type": "object", "properties": {"q": {"type": "string", "description": evil}}})
    ApiSource.objects.filter(pk=tool.source_id).update(name=f"src {evil}", title=evil)
    ToolFactory(name="evil_copy", description=evil, canonical=tool, domain=domain)
    persona = Persona.objects.create(name=f"P {evil}", role=evil, background=evil, style=evil, goals=[evil])
    it = IterationFactory(status="synthesizing", name=f"run {evil}", stage_detail=evil, error=evil,
                          config={"count": 3, "domains": [evil]})
    t = TrajectoryFactory(iteration=it, mode="multi_turn", status="done", verdict="accepted", difficulty="hard",
                          score=0.4, domain=domain, category=category, persona=persona, goal=evil, error=evil,
                          num_turns=2, offered_tools=[{"name": "evil_tool", "description": evil,
                                                       "inputSchema": tool.input_schema}],
                          reference_calls=[{"name": "evil_tool", "arguments": {"q": evil}}])
    conversation(t, tool_name="evil_tool", arguments={"q": evil}, answer=evil)
    MessageFactory(trajectory=t, index=10, role="tool", content=evil, tool_results=[{"text": evil}],
                   mcp={"content": [{"type": "text", "text": evil}]})
    VerifierVoteFactory(trajectory=t, rationale=evil, perspective=evil)
    Reflection.objects.create(trajectory=t, index=0, step=10, action="repaired", detail=evil, problem="x")
    reviewer = login(client, "operator")
    audit_record(trajectory=t, reviewer=reviewer, decision="flag", note=evil)
    ckpt_eval = EvaluationRunFactory(iteration=it, overall=0.3)
    ckpt_eval.checkpoint.name = f"ckpt {evil}"
    ckpt_eval.checkpoint.save()
    CategoryResult.objects.create(evaluation=ckpt_eval, category=evil, correct=1, total=2, accuracy=0.5)
    paths = ["/", f"/iterations/{it.pk}/", f"/trajectories/{t.pk}/", f"/trajectories/{t.pk}/row/?it=1",
             f"/trajectories/{t.pk}/card/", "/tools/", f"/tools/?q=evil&domain={domain.pk}",
             f"/tools/?category={category.pk}", "/evaluations/", f"/audit/?iteration={it.pk}&size=5&seed=1"]
    for path in paths:
        for htmx in (False, True):
            r = client.get(path, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))
            assert r.status_code == 200, (path, htmx)
            body = r.content.decode()
            assert "<script>alert" not in body and "<img src=x" not in body, (path, htmx)
    shown = "".join(client.get(p).content.decode() for p in paths)
    assert "&lt;script&gt;" in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown


# ------------------------------------------------------------------ tools
def test_tools_browse_search_and_paginate(client):
    login(client)
    weather = TreeNodeFactory(name="Weather")
    forecasts = TreeNodeFactory(name="Forecasts", level="category", parent=weather)
    canonical = ToolFactory(name="get_forecast", description="Daily forecast", domain=weather, category=forecasts)
    ToolFactory(name="forecast_daily", description="Forecast per day", canonical=canonical, domain=weather)
    for i in range(30):
        ToolFactory(name=f"misc_tool_{i}", description="Something else")
    body = client.get("/tools/").content.decode()
    assert "Weather" in body and "Forecasts" in body and "Page 1 of 2" in body
    assert 'aria-label="Tools per domain"' in body and 'aria-label="Tools per category (largest 40)"' in body
    assert "Page 2 of 2" in client.get("/tools/?page=2").content.decode()
    found = client.get("/tools/?q=forcast").content.decode()  # a typo still finds it (trigram)
    assert "get_forecast" in found and "misc_tool_1" not in found
    assert "group of 2" in found and "duplicate" in found
    by_domain = client.get(f"/tools/?domain={weather.pk}").content.decode()
    assert "2 tools" in by_domain
    assert "1 tool" in client.get(f"/tools/?category={forecasts.pk}").content.decode()
    assert Tool.objects.count() == 32


# ------------------------------------------------------------------ audit
def test_audit_sample_is_reproducible(client, world):
    login(client, "reviewer")
    it = world["it"]
    for _i in range(20):
        TrajectoryFactory(iteration=it, status="done", verdict="accepted")
    from inftool_web.synth.selectors import audit_sample

    a = [t.pk for t in audit_sample(iteration_id=it.pk, size=8, seed="7")]
    b = [t.pk for t in audit_sample(iteration_id=it.pk, size=8, seed="7")]
    c = [t.pk for t in audit_sample(iteration_id=it.pk, size=8, seed="8")]
    assert a == b and a != c and len(a) == 8
    assert [t.pk for t in audit_sample(iteration_id=it.pk, size=12, seed="7")][:8] == a  # growing only appends
    body = client.get(f"/audit/?iteration={it.pk}&size=8&seed=7").content.decode()
    positions = [body.index(f'id="audit-{pk}"') for pk in a]
    assert positions == sorted(positions)


def test_audit_flow_records_the_decision(client, world):
    reviewer = login(client, "reviewer")
    t = world["t"][1]  # rejected by the verifiers
    r = client.post(f"/trajectories/{t.pk}/audit/", {"decision": "accept", "note": "looks right", "from": "audit",
                                                     "position": "1"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and f'id="audit-{t.pk}"' in r.content.decode() and "<html" not in r.content.decode()
    t.refresh_from_db()
    assert t.audit_decision == "accept" and t.effective_verdict == "accepted"
    audit = AuditDecision.objects.get(trajectory=t)
    assert audit.reviewer == reviewer and audit.note == "looks right"
    # a later decision wins, and the history keeps both
    client.post(f"/trajectories/{t.pk}/audit/", {"decision": "flag", "note": "second look"})
    t.refresh_from_db()
    assert t.audit_decision == "flag" and t.effective_verdict == "rejected"
    page = client.get(f"/trajectories/{t.pk}/").content.decode()
    assert "second look" in page and "looks right" in page
    assert client.post(f"/trajectories/{t.pk}/audit/", {"decision": "maybe"}).status_code == 400


@pytest.mark.parametrize("target", ["//evil.com/", "/\\evil.com", "https://evil.com/x", "\\\\evil.com",
                                    "javascript:alert(1)", "http://testserver@evil.com/"])
def test_audit_next_never_leaves_the_site(client, world, target):
    login(client, "reviewer")
    t = world["t"][1]
    r = client.post(f"/trajectories/{t.pk}/audit/", {"decision": "accept", "next": target})
    assert r.status_code == 302 and r["Location"] == f"/trajectories/{t.pk}/", r["Location"]


def test_audit_next_keeps_a_local_path(client, world):
    login(client, "reviewer")
    t = world["t"][1]
    r = client.post(f"/trajectories/{t.pk}/audit/", {"decision": "accept", "next": "/audit/?size=8&seed=7"})
    assert r.status_code == 302 and r["Location"] == "/audit/?size=8&seed=7"


# ------------------------------------------------------------------ launch form
def launch_data(**over):
    data = {"name": "from the form", "count": "6", "verifiers": "3", "negotiation_rounds": "1", "max_turns": "4",
            "hard_threshold": "0.6", "profile": "cpu", "eval_limit": "5", "seed": "1",
            "mode_single": "1", "mode_parallel": "1", "mode_multiple": "0", "mode_irrelevance": "0",
            "mode_multi_turn": "2"}
    data.update(over)
    return data


def test_launch_form_launches(client):
    login(client, "operator")
    TreeNodeFactory(name="Weather")
    r = client.post("/iterations/new/", launch_data(domains=["Weather"], backend_judge="openai",
                                                    base_url_judge="http://127.0.0.1:8000/v1", model_judge="qwen"))
    assert r.status_code == 302
    it = Iteration.objects.get()
    assert r["Location"] == f"/iterations/{it.pk}/"
    assert it.name == "from the form" and it.config["count"] == 6 and it.config["domains"] == ["Weather"]
    assert it.config["modes"]["multi_turn"] == 2 and it.config["max_turns"] == 4
    assert it.config["backends"] == {"judge": {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1",
                                               "model": "qwen"}}


@pytest.mark.parametrize("over, message", [
    ({"count": "0"}, "must be an integer from 1 to 100000"),
    ({"verifiers": "9"}, "must be an integer from 1 to 7"),
    ({"hard_threshold": "1.5"}, "must be a number from 0 to 1"),
    ({"mode_single": "0", "mode_parallel": "0", "mode_multi_turn": "0"}, "at least one mode needs a weight above 0"),
    ({"backend_agent": "openai"}, "needs a base_url"),
    ({"count": "many"}, "Enter a whole number"),
])
def test_launch_form_validation(client, over, message):
    login(client, "operator")
    r = client.post("/iterations/new/", launch_data(**over))
    assert r.status_code == 400
    assert message in r.content.decode()
    assert Iteration.objects.count() == 0


# ------------------------------------------------------------------ evaluations
def test_evaluations_table_and_chart(client, world):
    login(client)
    body = client.get("/evaluations/").content.decode()
    assert "<code>simple</code>" in body and "60.0%" in body and "<svg" in body


def test_a_corrected_trajectory_says_what_training_learns_instead_of_the_agents_answer(client, world):
    """Read off an accepted irrelevance trajectory whose Tool Agent called Trending_Hashtags:
    the page showed the call and nothing said that exports and training put a refusal there."""
    from synthesis.records import REFUSAL

    login(client)
    single, _, _, multiple = world["t"]
    # the world's single and multiple trajectories are accepted; their agent called get_weather(Paris)
    single.mode, single.reference_calls = "irrelevance", []
    single.save()
    body = client.get(f"/trajectories/{single.pk}/").content.decode()
    assert "What training learns" in body and "a refusal" in body and REFUSAL.split(",")[0] in body
    multiple.reference_calls = [{"name": "get_weather", "arguments": {"city": "Lyon"}}]
    multiple.save()
    body = client.get(f"/trajectories/{multiple.pk}/").content.decode()
    assert "What training learns" in body and "Lyon" in body
    multiple.reference_calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}]  # what the agent called
    multiple.save()
    assert "What training learns" not in client.get(f"/trajectories/{multiple.pk}/").content.decode()
