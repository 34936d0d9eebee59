"""Rebuild ``fixtures/curation_tools.json`` from the installed corpus (not a test).

    python tests/synthesis/mcp_tree/make_curation_fixture.py

Each entry is one real corpus operation (spec + method + path), converted with
``synthesis.mcp_tree.openapi`` as ingestion does; the output schema is left out to keep the
file small (curation reads it only to check that it is valid JSON Schema).  The curation
test reads the file, so it runs without the corpus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from synthesis.mcp_tree.corpus import corpus_dir  # noqa: E402
from synthesis.mcp_tree.openapi import convert_spec  # noqa: E402

PICKS = [
    ("1password.com/events", "GET /api/v2/auth/introspect"),
    ("here.com/positioning", "GET /version"),
    ("here.com/positioning", "GET /health"),
    ("apacta.com", "GET /ping"),
    ("1password.local/connect", "GET /metrics"),
    ("github.com/api.github.com", "GET /rate_limit"),
    ("lgtm.com", "GET /openapi"),
    ("apidapp.com", "OPTIONS /wallet"),
    ("weatherbit.io", "GET /forecast/daily?city={city}&country={country}"),
    ("stormglass.io", "GET /forecast"),
    ("linode.com", "POST /account/payments"),
    ("etmdb.com", "GET /api/v1/cinema-schedule/search/{movie_title}"),
    ("beezup.com", "GET /v2/user/analytics/{storeId}/tracking/status"),
    ("api2cart.com", "GET /order.status.list.json"),
    ("clicksend.com", "GET /pricing/{country}?currency={currency}"),
    ("epa.gov/dfr", "GET /dfr_rest_services.get_aws_docs"),
    ("airport-web.appspot.com", "GET /airportsapi/v1/airports/{icao_code}"),
    ("adafruit.com", "GET /{username}/feeds/{feed_key}"),
    ("amadeus.com/amadeus-flight-delay-prediction", "GET /travel/predictions/flight-delay"),
    ("britbox.co.uk", "POST /account/billing/methods"),
]
OUT = Path(__file__).with_name("fixtures") / "curation_tools.json"


def main() -> None:
    api = corpus_dir(ROOT / "var") / "api"
    entries = []
    for spec, operation in PICKS:
        method, path = operation.split(" ", 1)
        tools = convert_spec((api / f"{spec}.json").read_bytes(), source_name=spec).tools
        tool = next(t for t in tools if t.method == method and t.path == path)
        entries.append({"spec": spec, "operation": operation, "tool": {
            "name": tool.name, "description": tool.description, "inputSchema": tool.input_schema,
            "method": tool.method, "path": tool.path,
        }})
    OUT.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(entries)} tools to {OUT}")


if __name__ == "__main__":
    main()
