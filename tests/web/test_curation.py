"""Curation through the database: scores stored at ingestion, curate_tools, role-play drawing
only from curated tools (multiple: same category; irrelevance: another domain), the Tools
page and /api/tools/ filtered by score."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inftool_web.catalog.models import Tool
from inftool_web.catalog.selectors import curation_summary
from inftool_web.catalog.services import tools_curate
from inftool_web.loop.iteration_config import ConfigError, IterationConfig
from inftool_web.loop.iterations import iteration_create, iteration_plan
from tests.factories import ApiSourceFactory, ToolFactory, TreeNodeFactory
from tests.web.test_api import client_for, user_with
from tests.web.test_pages import login

pytestmark = pytest.mark.django_db

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Weather", "version": "1.0"},
    "paths": {
        "/health": {"get": {"operationId": "getHealth", "summary": "Service health",
                            "responses": {"200": {"description": "ok"}}}},
        "/version": {"get": {"operationId": "getApiVersion", "summary": "API version",
                             "responses": {"200": {"description": "ok"}}}},
        "/forecast/{city}": {"get": {
            "operationId": "getForecast", "summary": "Daily weather forecast for a city",
            "parameters": [{"name": "city", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}}}},
        "/alerts": {"get": {
            "operationId": "listAlerts", "summary": "Severe weather alerts in a region",
            "parameters": [{"name": "region", "in": "query", "required": True,
                            "schema": {"type": "string", "enum": ["north", "south"]}}],
            "responses": {"200": {"description": "ok"}}}},
    },
}


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def good(source, name, **kw):
    return ToolFactory(source=source, name=name, description=f"Look up the {name.replace('_', ' ')} of a city.",
                       input_schema={"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"]}, **kw)


def plumbing(source, name, path, **kw):
    return ToolFactory(source=source, name=name, description="Checks that the service is up.", method="GET",
                       path=path, input_schema={"type": "object", "properties": {}}, **kw)


# ----------------------------------------------------------------------------- storing


def test_ingestion_scores_tools_and_curate_tools_reports_why(tmp_path):
    (tmp_path / "weather.json").write_text(json.dumps(SPEC))
    out = run("ingest_openapi", str(tmp_path), workers=1)
    scores = dict(Tool.objects.values_list("name", "usability_score"))
    assert scores == {"getHealth": 0.0, "getApiVersion": 0.0, "getForecast": 1.0, "listAlerts": 1.0}
    reasons = dict(Tool.objects.values_list("name", "usability_reasons"))
    assert [r["code"] for r in reasons["getHealth"]] == ["health_endpoint"] and reasons["getForecast"] == []
    assert "curation: 2 of 4 stored tools score >= 0.6" in out

    report = run("curate_tools")
    assert re.search(r"tools scored\s+4\n", report) and re.search(r"kept \(>= 0.6\)\s+2\n", report)
    assert re.search(r"dropped\s+2\n", report)
    assert re.search(r"health_endpoint\s+1\s+1\s+a health", report)
    assert re.search(r"version_endpoint\s+1\s+1\s+reports the API's own version", report)
    assert re.search(r"kept \(>= 1\)\s+2\n", run("curate_tools", threshold=1.0))
    with pytest.raises(CommandError, match="from 0 to 1"):
        run("curate_tools", "--threshold", "1.5")


def test_tools_stored_before_curation_are_scored_and_edits_rescored():
    source = ApiSourceFactory()
    health = plumbing(source, "getHealth", "/health")
    forecast = good(source, "forecast")
    assert Tool.objects.filter(usability_score__isnull=True).count() == 2
    report = tools_curate(only_missing=True)
    assert (report.scored, report.kept, dict(report.dropped_by_reason)) == (2, 1, {"health_endpoint": 1})
    assert tools_curate(only_missing=True).scored == 0
    Tool.objects.filter(pk=forecast.pk).update(description="")
    tools_curate()
    forecast.refresh_from_db()
    health.refresh_from_db()
    assert forecast.usability_score == 0.5 and forecast.usability_reasons[0]["code"] == "no_description"
    assert health.usability_score == 0.0
    with pytest.raises(ValueError, match="from 0 to 1"):
        tools_curate(threshold=-0.1)


def test_build_tree_scores_tools_that_have_no_score(tmp_path):
    (tmp_path / "weather.json").write_text(json.dumps(SPEC))
    run("ingest_openapi", str(tmp_path), workers=1)
    Tool.objects.update(usability_score=None, usability_reasons=[])
    summary = run("build_tree", no_judge=True, domains=1, categories=1)
    assert not Tool.objects.filter(usability_score__isnull=True).exists()
    assert "canonical usable (>= 0.6)" in summary


# ----------------------------------------------------------------------------- planning


def test_config_validates_min_usability():
    assert IterationConfig().min_usability == 0.6
    for bad in (-0.1, 1.5, "high", float("nan"), True):
        with pytest.raises(ConfigError, match="min_usability"):
            IterationConfig(min_usability=bad)


def _plan(**config):
    it = iteration_create(config={"profile": "none", **config})
    iteration_plan(iteration_id=it.pk)
    return it


def test_planning_never_draws_a_tool_below_the_threshold():
    a, b = ApiSourceFactory(name="weather.example"), ApiSourceFactory(name="shop.example")
    for i in range(3):
        good(a, f"forecast_{i}")
        good(b, f"shop_hours_{i}")
    below = [plumbing(a, "getHealth", "/health"), plumbing(b, "getApiVersion", "/version"),
             ToolFactory(source=a, name="mystery", description="")]
    it = _plan(count=40)
    drawn = {t["name"] for traj in it.trajectories.all() for t in traj.offered_tools}
    drawn |= {traj.engine_state["absent_tool"]["name"] for traj in it.trajectories.all()
              if traj.engine_state.get("absent_tool")}
    assert drawn and not drawn & {t.name for t in below}
    assert Tool.objects.filter(name__in=drawn, usability_score__lt=0.6).count() == 0
    assert set(it.trajectories.values_list("mode", flat=True)) == {
        "single", "parallel", "multiple", "irrelevance", "multi_turn"}
    # with the threshold at 0 the same tools are drawn from: the filter is what kept them out
    everything = _plan(count=40, min_usability=0.0, seed=1)
    assert {t["name"] for traj in everything.trajectories.all() for t in traj.offered_tools} & {t.name for t in below}


def test_no_tool_above_the_threshold_is_a_clear_error():
    source = ApiSourceFactory()
    plumbing(source, "getHealth", "/health")
    plumbing(source, "ping", "/ping")
    good(source, "forecast").__class__.objects.filter(name="forecast").update(description="")  # 0.5
    it = iteration_create(config={"count": 2, "profile": "none"})
    with pytest.raises(ValueError) as exc:
        iteration_plan(iteration_id=it.pk)
    message = str(exc.value)
    assert "usability threshold 0.6" in message and "3 tool(s) scored" in message and "the best 0.5" in message
    assert "health_endpoint x2" in message and "min-usability" in message
    it.refresh_from_db()
    assert it.status == "failed" and "usability threshold 0.6" in it.error  # the iteration says why
    it = iteration_create(config={"count": 2, "profile": "none", "min_usability": 0.5})
    assert len(iteration_plan(iteration_id=it.pk)) == 2


def _tree():
    """Two domains; Weather has two categories, Shopping one; each category three good tools
    and one below the threshold."""
    source = ApiSourceFactory()
    weather = TreeNodeFactory(name="Weather")
    shopping = TreeNodeFactory(name="Shopping")
    cats = {
        "Forecasts": TreeNodeFactory(name="Forecasts", level="category", parent=weather),
        "Alerts": TreeNodeFactory(name="Alerts", level="category", parent=weather),
        "Stores": TreeNodeFactory(name="Stores", level="category", parent=shopping),
    }
    for cname, cat in cats.items():
        for i in range(3):
            good(source, f"{cname.lower()}_{i}", domain=cat.parent, category=cat)
        plumbing(source, f"{cname.lower()}_health", f"/{cname.lower()}/health", domain=cat.parent, category=cat)
    return weather, shopping, cats


def test_multiple_offers_distractors_of_the_targets_category():
    _tree()
    it = _plan(count=12, modes={"multiple": 1})
    assert it.trajectories.count() == 12
    for traj in it.trajectories.all():
        tools = list(traj.tools.all())
        assert len(tools) >= 2
        assert {t.category_id for t in tools} == {traj.category_id}
        assert all(t.usability_score >= 0.6 for t in tools)


def test_irrelevance_asks_for_a_tool_of_another_domain():
    weather, shopping, _ = _tree()
    it = _plan(count=12, modes={"irrelevance": 1})
    seen = set()
    for traj in it.trajectories.all():
        absent = Tool.objects.get(name=traj.engine_state["absent_tool"]["name"])
        assert absent.domain_id != traj.domain_id, (absent.name, traj.domain_id)
        assert absent.usability_score >= 0.6
        seen.add(traj.domain_id)
    assert seen == {weather.pk, shopping.pk}  # both directions were drawn


def test_without_a_tree_irrelevance_asks_for_a_tool_of_another_source():
    a, b = ApiSourceFactory(name="weather.example"), ApiSourceFactory(name="shop.example")
    for i in range(3):
        good(a, f"forecast_{i}")
        good(b, f"shop_hours_{i}")
    it = _plan(count=10, modes={"irrelevance": 1})
    for traj in it.trajectories.all():
        offered = Tool.objects.get(name=traj.offered_tools[0]["name"]).source_id
        assert Tool.objects.get(name=traj.engine_state["absent_tool"]["name"]).source_id != offered


# ----------------------------------------------------------------------------- API and page


def _scored_tools():
    source = ApiSourceFactory()
    good(source, "get_forecast")
    plumbing(source, "getHealth", "/health")
    ToolFactory(source=source, name="mystery", description="")
    tools_curate()


def test_api_filters_by_score_and_shows_the_reasons():
    _scored_tools()
    c = client_for(user_with("viewer"))
    rows = {t["name"]: t for t in c.get("/api/tools/").json()["results"]}
    assert set(rows) == {"get_forecast", "getHealth", "mystery"}
    assert rows["getHealth"]["usability_score"] == 0.0
    assert rows["getHealth"]["usability_reasons"][0]["code"] == "health_endpoint"
    assert set(rows["getHealth"]["usability_reasons"][0]) == {"code", "message", "weight"}
    assert rows["get_forecast"]["usability_reasons"] == []
    assert [t["name"] for t in c.get("/api/tools/?min_score=0.6").json()["results"]] == ["get_forecast"]
    assert {t["name"] for t in c.get("/api/tools/?min_score=0.5").json()["results"]} == {"get_forecast", "mystery"}
    for bad in ("high", "1.5", "nan", "-1"):
        r = c.get(f"/api/tools/?min_score={bad}")
        assert r.status_code == 400 and "min_score" in r.json()
    detail = c.get(f"/api/tools/{Tool.objects.get(name='mystery').pk}/").json()
    assert detail["usability_score"] == 0.5 and detail["usability_reasons"][0]["code"] == "no_description"


def test_tools_page_filters_by_score_and_shows_the_curation_report(client):
    _scored_tools()
    login(client)
    body = client.get("/tools/").content.decode()
    assert "3 tools" in body and "Curation" in body
    assert "<b>1</b> of 3 scored tools kept, 2 dropped" in body
    assert "health_endpoint" in body and "no_description" in body and "Every check passed." in body
    kept = client.get("/tools/?min_score=0.6").content.decode()
    assert "1 tool scoring at least 0.6" in kept and "get_forecast" in kept and "getHealth" not in kept.split(
        'id="results"')[1]
    loose = client.get("/tools/?min_score=0.5").content.decode()
    assert "<b>2</b> of 3 scored tools kept, 1 dropped" in loose
    bad = client.get("/tools/?min_score=lots").content.decode()
    assert "3 tools" in bad and "must be a number from 0 to 1" in bad
    partial = client.get("/tools/?min_score=0.6&q=forecast", HTTP_HX_REQUEST="true").content.decode()
    assert "get_forecast" in partial and "Curation" not in partial


def test_curation_summary_counts_canonical_tools_and_unscored_ones():
    _scored_tools()
    source = ApiSourceFactory()
    copy = good(source, "forecast_copy")
    copy.canonical = Tool.objects.get(name="get_forecast")
    copy.save()
    s = curation_summary(threshold=0.6)
    assert (s.total, s.scored, s.unscored, s.kept, s.canonical_kept) == (4, 3, 1, 1, 1)
    assert [(r.code, r.tools) for r in s.dropped_by_reason] == [("health_endpoint", 1), ("no_description", 1)]
