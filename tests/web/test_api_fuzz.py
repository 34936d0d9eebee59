"""Fuzzing the REST API from its own OpenAPI schema (schemathesis).

Every operation in ``/api/schema/`` gets a bounded number of generated requests (valid and
invalid parameters and bodies) sent to the real Django app, signed in as an operator, with
rows in the database for the listings and exports to serialize. Each response must not be a
server error and must match what the schema says: documented status code, content type and
body. Random generation rarely hits the few values that break a web app, so each parameter
of each operation also gets a fixed list of them.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import positive_data_acceptance

from inftool_web.core.roles import set_role
from inftool_web.loop.models import CategoryResult
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

# Operations that refuse some requests the schema cannot tell apart from good ones: a wrong
# password, an iteration config whose values are out of range, a cursor the server did not
# issue (a 400 with the reason).
CHECKED_BEYOND_THE_SCHEMA = {("POST", "/api/auth/token/"), ("POST", "/api/iterations/"), ("GET", "/api/trajectories/")}


def _has_nul(query) -> bool:
    """A NUL in a query parameter is a 400 before any view (inftool_web/core/limits.py):
    PostgreSQL cannot compare text holding one. The schema's strings do not say so."""
    return any("\x00" in str(v) for v in (query or {}).values())


# Examples per operation: 13 operations finish in about a minute on 2 cores.
MAX_EXAMPLES = 40


@pytest.fixture
def operator_headers(db) -> dict[str, str]:
    user = UserFactory()
    set_role(user, "operator")
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def api_rows(db):
    domain = TreeNodeFactory(name="Weather")
    tool = ToolFactory(name="get_forecast", domain=domain)
    PersonaFactory(domain=domain)
    it = IterationFactory(status="succeeded")
    for kind, verdict in (("single", "accepted"), ("multi_turn", "rejected"), ("irrelevance", "accepted")):
        t = TrajectoryFactory(iteration=it, mode=kind, status="done", verdict=verdict, difficulty="easy",
                              score=0.8, domain=domain, offered_tools=[tool.as_mcp()],
                              reference_calls=[{"name": "get_forecast", "arguments": {"city": "Paris"}}])
        conversation(t)
    evaluation = EvaluationRunFactory(iteration=it, overall=0.5)
    CategoryResult.objects.create(evaluation=evaluation, category="simple", correct=1, total=2, accuracy=0.5)
    return it


@pytest.fixture
def keep_test_connection(db):
    """Like Django's test client, keep the end of each request from closing the database
    connection that holds the test's transaction."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _api_schema() -> dict:
    """The schema ``/api/schema/`` serves (``test_the_fuzzed_schema_is_the_served_one``),
    generated in-process so the operations are known when tests are collected."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(_api_schema())
schema.app = WSGIHandler()  # requests go to Django in-process, inside each test's transaction
schema.config.update(base_url="http://localhost")


def test_the_fuzzed_schema_is_the_served_one(client, operator_headers):
    served = client.get("/api/schema/?format=json", HTTP_AUTHORIZATION=operator_headers["Authorization"])
    assert served.status_code == 200
    assert json.loads(served.content) == _api_schema()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_conforms_to_its_schema(case, keep_test_connection, operator_headers, api_rows):
    excluded = []
    if (case.operation.method.upper(), case.operation.path) in CHECKED_BEYOND_THE_SCHEMA or _has_nul(case.query):
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers=operator_headers, excluded_checks=excluded)


# Values that have broken this kind of API: digits int() refuses ('²'), integers past
# PostgreSQL's bigint, NUL (PostgreSQL text refuses it), bytes that are not UTF-8 (sent as
# they are), long strings, SQL and LIKE metacharacters, JSON-looking text.
NOT_UTF8 = "%ff%ed%a0%80"
HOSTILE = ["²", "99999999999999999999", "-99999999999999999999", "-1", "0", "1e400", "NaN", "\x00", NOT_UTF8,
           "%", "_", "'; SELECT 1; --", "[]", "{}", "null", "é" * 300, "x" * 5000, " 1", "0x10"]


def _operations() -> list[tuple[str, str, list]]:
    return [(method.upper(), path, op.get("parameters", []))
            for path, ops in _api_schema()["paths"].items() for method, op in ops.items() if op.get("parameters")]


@pytest.mark.parametrize("method, path, params", _operations(), ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_parameter_values_are_never_server_errors(client, operator_headers, api_rows, method, path, params):
    from urllib.parse import quote

    defaults = {p["name"]: "openai" if p["name"] == "fmt" else str(api_rows.pk) for p in params if p["in"] == "path"}
    for param in params:
        for value in HOSTILE:
            encoded = value if value is NOT_UTF8 else quote(value, safe="")
            in_path = {**defaults, param["name"]: encoded} if param["in"] == "path" else defaults
            url = path.format(**in_path)
            query = f"{param['name']}={encoded}" if param["in"] == "query" else ""
            r = client.generic(method, url, QUERY_STRING=query, HTTP_AUTHORIZATION=operator_headers["Authorization"])
            if r.streaming:
                b"".join(r.streaming_content)
            assert r.status_code < 500, (method, url, query)
            assert r["Content-Type"].startswith(("application/json", "application/x-ndjson")), (url, query, r["Content-Type"])
