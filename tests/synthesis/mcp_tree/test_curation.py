"""Tool curation: reason codes on a fixed set of real corpus tools, and each check alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthesis.mcp_tree.curation import (
    CHECKS,
    DEFAULT_THRESHOLD,
    REASONS,
    _value_source,
    curation_report,
    usability,
)

FIXTURE = Path(__file__).with_name("fixtures") / "curation_tools.json"
CORPUS_TOOLS = {(e["spec"], e["operation"]): e["tool"] for e in json.loads(FIXTURE.read_text())}

# (spec, operation) -> the exact reason codes.  Rebuild the fixture with
# make_curation_fixture.py; these expectations are written by hand.
EXPECTED = {
    ("1password.com/events", "GET /api/v2/auth/introspect"): ["auth_endpoint"],
    ("here.com/positioning", "GET /version"): ["version_endpoint"],
    ("here.com/positioning", "GET /health"): ["health_endpoint"],
    ("apacta.com", "GET /ping"): ["health_endpoint"],
    ("1password.local/connect", "GET /metrics"): ["metrics_endpoint"],
    ("github.com/api.github.com", "GET /rate_limit"): ["metrics_endpoint"],
    ("lgtm.com", "GET /openapi"): ["schema_endpoint"],
    ("apidapp.com", "OPTIONS /wallet"): ["schema_endpoint", "description_generated"],
    # user-facing, described, every required value sourced
    ("weatherbit.io", "GET /forecast/daily?city={city}&country={country}"): [],
    ("stormglass.io", "GET /forecast"): [],
    ("linode.com", "POST /account/payments"): [],
    ("etmdb.com", "GET /api/v1/cinema-schedule/search/{movie_title}"): [],
    ("beezup.com", "GET /v2/user/analytics/{storeId}/tracking/status"): [],  # a store's status, not the API's
    ("api2cart.com", "GET /order.status.list.json"): [],
    # described poorly, or values nobody can give
    ("clicksend.com", "GET /pricing/{country}?currency={currency}"): ["description_repeats_name"],
    ("epa.gov/dfr", "GET /dfr_rest_services.get_aws_docs"): ["description_too_short"],
    ("airport-web.appspot.com", "GET /airportsapi/v1/airports/{icao_code}"): ["description_generated"],
    ("adafruit.com", "GET /{username}/feeds/{feed_key}"): ["unsourced_required"],
    ("amadeus.com/amadeus-flight-delay-prediction", "GET /travel/predictions/flight-delay"): ["too_many_required"],
    ("britbox.co.uk", "POST /account/billing/methods"): ["credential_required"],
}
KEPT = {key for key, codes in EXPECTED.items() if not codes or codes in (["description_repeats_name"],
                                                                           ["description_generated"])}


def test_the_fixture_holds_the_tools_the_expectations_name():
    assert set(CORPUS_TOOLS) == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]} {k[1]}")
def test_reason_codes_of_real_corpus_tools(key):
    u = usability(CORPUS_TOOLS[key])
    assert u.codes == EXPECTED[key], [r.message for r in u.reasons]
    assert u.kept() == (key in KEPT), u.score
    failed = {REASONS[c][0] for c in u.codes}
    assert set(u.passed) == set(CHECKS) - failed


def test_plumbing_is_always_dropped_and_user_facing_tools_kept():
    scores = {key: usability(tool).score for key, tool in CORPUS_TOOLS.items()}
    plumbing = [k for k, codes in EXPECTED.items() if codes and REASONS[codes[0]][0] == "user_facing"]
    assert len(plumbing) == 8 and all(scores[k] == 0.0 for k in plumbing)
    assert all(scores[k] == 1.0 for k, codes in EXPECTED.items() if not codes)


def test_the_score_is_one_minus_the_weights_and_the_threshold_is_configurable():
    tool = CORPUS_TOOLS[("adafruit.com", "GET /{username}/feeds/{feed_key}")]
    u = usability(tool)
    assert u.score == pytest.approx(1 - REASONS["unsourced_required"][1]) == 0.55
    assert not u.kept() and u.kept(0.5) and DEFAULT_THRESHOLD == 0.6
    assert "feed_key" in u.reasons[0].message and "username" not in u.reasons[0].message
    assert usability(tool, max_required=0).codes == ["too_many_required", "unsourced_required"]


def test_deterministic_and_json_ready():
    for tool in CORPUS_TOOLS.values():
        a, b = usability(tool), usability(json.loads(json.dumps(tool)))
        assert a == b
        assert json.loads(json.dumps(a.to_dict())) == a.to_dict()


def _tool(**kw):
    base = {"name": "get_forecast", "description": "Daily weather forecast for a city.",
            "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    return {**base, **kw}


@pytest.mark.parametrize("tool, codes", [
    (_tool(), []),
    # a live MCP server's tools: no method or path, so the name and description decide
    (_tool(name="health_check", description="Check that the server is up and running.",
           inputSchema={"type": "object"}), ["health_endpoint"]),
    (_tool(name="ping", description="Ping the service.", inputSchema={"type": "object"}), ["health_endpoint"]),
    (_tool(name="get_version", description="Return the version of this API.", inputSchema={"type": "object"}),
     ["version_endpoint"]),
    (_tool(name="refresh_token", description="Exchange a refresh token for a new access token.",
           inputSchema={"type": "object"}), ["auth_endpoint"]),
    (_tool(name="getOrderStatus", description="Where an order is: placed, shipped or delivered.",
           inputSchema={"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
     []),
    # a crypto token is not an auth token
    (_tool(name="getToken", description="Details of an ERC-20 token contract.", method="GET",
           path="/tokens/{address}", inputSchema={"type": "object", "properties": {"address": {"type": "string"}},
                                                  "required": ["address"]}), []),
    (_tool(name="createSession", description="Create an OAuth access token.", method="POST", path="/oauth/token"),
     ["auth_endpoint"]),
    (_tool(method="GET", path="/projects/{id}/metrics", name="projectMetrics",
           description="Build times and failures of one project.",
           inputSchema={"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}), []),
    (_tool(method="GET", path="/api/v1/status", name="status", description="Status of the service."),
     ["health_endpoint"]),
    (_tool(method="GET", path="/v2/swagger.json", name="docs", description="The API definition."),
     ["schema_endpoint"]),
    (_tool(method="GET", path="/packages/{name}/versions", name="listVersions",
           description="Every published version of a package.",
           inputSchema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}), []),
    (_tool(method="GET", path="/info", name="info", description="Basic information about the server."),
     ["schema_endpoint"]),
    (_tool(method="GET", path="/authn-gcp/{account}/status", name="gcpStatus",
           description="Whether the GCP authenticator is configured.",
           inputSchema={"type": "object", "properties": {"account": {"type": "string"}}, "required": ["account"]}),
     ["auth_endpoint"]),
    (_tool(method="GET", path="/aliases/v2/version", name="get_aliases_version", description="Gets service version."),
     ["version_endpoint"]),
    (_tool(method="GET", path="/order/status", name="orderStatus", description="Where an order is now.",
           inputSchema={"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
     []),
    (_tool(description=""), ["no_description"]),
    (_tool(description="https://docs.example.com/forecast"), ["description_is_url"]),
    (_tool(description="get_forecast"), ["description_too_short"]),
    (_tool(description="Get forecast."), ["description_repeats_name"]),
    (_tool(inputSchema={"type": "object", "properties": {"city": {"$ref": "#/$defs/City"}}, "required": ["city"]}),
     ["dangling_ref"]),
    (_tool(inputSchema={"type": "object", "properties": {"n": {"type": "integr"}}}), ["invalid_schema"]),
    # a converted OpenAPI tool (method and path) is valid by construction, except for its size
    (_tool(method="POST", path="/forecasts", inputSchema={
        "type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 1000} for i in range(120)}}),
     ["invalid_schema"]),
    (_tool(inputSchema={"type": "object", "properties": {"city": {"type": "string"}, "api_key": {"type": "string"}},
                        "required": ["city", "api_key"]}), ["credential_required"]),
    (_tool(inputSchema={"type": "object", "properties": {"refresh_token": {"type": "string"}},
                        "required": ["refresh_token"]}), ["credential_required"]),
    (_tool(inputSchema={"type": "object", "properties": {"blob": {"type": "object"}}, "required": ["blob"]}),
     ["unsourced_required"]),
    (_tool(inputSchema={"type": "object", "required": [f"p{i}" for i in range(7)],
                        "properties": {f"p{i}": {"type": "string", "enum": ["a"]} for i in range(7)}}),
     ["too_many_required"]),
])
def test_each_check_on_its_own(tool, codes):
    assert usability(tool).codes == codes


@pytest.mark.parametrize("name, schema, source", [
    ("unit", {"type": "string", "enum": ["c", "f"]}, "enum"),
    ("x", {"type": "string", "examples": ["abc"]}, "example"),
    ("x", {"type": "string", "example": "abc"}, "example"),
    ("x", {"type": "integer", "default": 3}, "default"),
    ("x", {"type": "string", "format": "date-time"}, "format"),
    ("x", {"type": "string", "pattern": "^[A-Z]{3}$"}, "pattern"),
    ("x", {"type": "boolean"}, "boolean"),
    ("x", {"type": "integer", "minimum": 1, "maximum": 5}, "bounds"),
    ("x", {"type": "integer", "minimum": 1}, None),
    ("petId", {"type": "integer"}, "name"),
    ("city", {"type": "string"}, "name"),
    ("startDate", {"type": "string"}, "name"),
    ("tags", {"type": "array", "items": {"type": "string"}}, "items"),
    ("x", {"type": "array", "items": {"type": "string"}}, None),
    ("body", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "properties"),
    ("body", {"type": "object", "properties": {"zz": {"type": "string"}}, "required": ["zz"]}, None),
    ("body", {"type": "object"}, None),
    ("feed_key", {"type": "string"}, None),
    ("Categories", {"type": "string"}, "name"),
    ("insight_id:", {"type": "string"}, "name"),
])
def test_value_sources(name, schema, source):
    assert _value_source(name, schema) == source


def test_the_report_counts_kept_and_dropped_by_reason():
    scored = [(u.score, u.reasons_as_dicts()) for u in map(usability, CORPUS_TOOLS.values())]
    report = curation_report(scored, DEFAULT_THRESHOLD)
    dropped = [k for k in EXPECTED if k not in KEPT]
    assert (report.scored, report.kept, report.dropped) == (20, len(KEPT), len(dropped))
    assert report.dropped_by_reason["health_endpoint"] == 2
    assert report.dropped_by_reason["description_generated"] == 1  # only the OPTIONS one is dropped
    # each dropped tool once, under its heaviest reason
    assert sum(report.dropped_by_main_reason.values()) == report.dropped
    assert report.dropped_by_main_reason["schema_endpoint"] == 2
    assert curation_report(scored, 0.0).dropped == 0
