"""Realistic demo rows (tools, personas, iterations, trajectories, votes, evaluations).

    python bench/seed_demo_rows.py                       # into DATABASE_URL (default: local)
    python bench/seed_demo_rows.py --database inftool_demo --fresh --screenshots docs/screenshots

``--fresh`` (re)creates the named database first; ``--screenshots`` then serves the app with
uvicorn on loopback and saves PNGs of the main pages with Debian's Chromium.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
sys.path.insert(0, str(ROOT))

DOMAINS = {
    "Weather": ["Forecasts", "Air quality"],
    "Finance": ["Stocks", "Currency exchange", "Payments"],
    "Travel": ["Flights", "Hotels"],
    "E-commerce": ["Catalog", "Orders"],
    "Health": ["Nutrition", "Fitness"],
}
TOOLS = [
    ("Weather", "Forecasts", "get_forecast", "Daily weather forecast for a city, up to 7 days ahead.",
     {"city": {"type": "string", "description": "City name"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}}, ["city"]),
    ("Weather", "Forecasts", "get_current_weather", "Current temperature, wind and conditions for a location.",
     {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["location"]),
    ("Weather", "Air quality", "get_air_quality", "Air quality index (AQI) and main pollutant for coordinates.",
     {"lat": {"type": "number"}, "lon": {"type": "number"}}, ["lat", "lon"]),
    ("Finance", "Stocks", "get_stock_quote", "Latest price, change and volume of a stock ticker.",
     {"symbol": {"type": "string", "description": "Ticker, e.g. AAPL"}}, ["symbol"]),
    ("Finance", "Stocks", "get_price_history", "Daily closing prices of a ticker between two dates.",
     {"symbol": {"type": "string"}, "start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"}}, ["symbol", "start"]),
    ("Finance", "Currency exchange", "convert_currency", "Convert an amount between two ISO 4217 currencies at today's rate.",
     {"amount": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}, ["amount", "from", "to"]),
    ("Finance", "Payments", "create_payment_link", "Create a one-time payment link for an amount and description.",
     {"amount_cents": {"type": "integer"}, "currency": {"type": "string"}, "description": {"type": "string"}}, ["amount_cents", "currency"]),
    ("Travel", "Flights", "search_flights", "Search one-way or return flights between two airports.",
     {"origin": {"type": "string"}, "destination": {"type": "string"}, "date": {"type": "string", "format": "date"}, "passengers": {"type": "integer", "default": 1}}, ["origin", "destination", "date"]),
    ("Travel", "Flights", "get_flight_status", "Live status of a flight by carrier code and number.",
     {"flight": {"type": "string"}, "date": {"type": "string", "format": "date"}}, ["flight"]),
    ("Travel", "Hotels", "search_hotels", "Hotels available in a city for given dates, sorted by price.",
     {"city": {"type": "string"}, "check_in": {"type": "string"}, "check_out": {"type": "string"}, "max_price": {"type": "number"}}, ["city", "check_in", "check_out"]),
    ("Travel", "Hotels", "book_hotel", "Book a hotel room returned by search_hotels.",
     {"hotel_id": {"type": "string"}, "guest_name": {"type": "string"}}, ["hotel_id", "guest_name"]),
    ("E-commerce", "Catalog", "search_products", "Full-text product search with optional price ceiling.",
     {"query": {"type": "string"}, "max_price": {"type": "number"}}, ["query"]),
    ("E-commerce", "Orders", "get_order_status", "Shipping status and ETA of an order.",
     {"order_id": {"type": "string"}}, ["order_id"]),
    ("E-commerce", "Orders", "cancel_order", "Cancel an order that has not shipped yet.",
     {"order_id": {"type": "string"}, "reason": {"type": "string"}}, ["order_id"]),
    ("Health", "Nutrition", "get_nutrition_facts", "Calories and macronutrients of a food per 100 g.",
     {"food": {"type": "string"}}, ["food"]),
    ("Health", "Fitness", "log_workout", "Record a workout with its type, duration and intensity.",
     {"kind": {"type": "string"}, "minutes": {"type": "integer"}, "intensity": {"type": "string", "enum": ["low", "medium", "high"]}}, ["kind", "minutes"]),
]
SCENARIOS = {
    "get_forecast": ("Will it rain in Lisbon over the weekend? I need the next 3 days.", {"city": "Lisbon", "days": 3},
                     {"city": "Lisbon", "days": [{"date": "2025-06-13", "rain_mm": 0.0, "high_c": 27}, {"date": "2025-06-14", "rain_mm": 4.2, "high_c": 22}, {"date": "2025-06-15", "rain_mm": 0.4, "high_c": 24}]},
                     "Saturday looks wet in Lisbon (about 4 mm of rain, high of 22 °C); Friday and Sunday stay mostly dry."),
    "get_stock_quote": ("What's NVDA trading at right now?", {"symbol": "NVDA"},
                        {"symbol": "NVDA", "price": 131.42, "change_pct": 1.8, "volume": 201334500},
                        "NVIDIA (NVDA) is at $131.42, up 1.8% today on about 201M shares traded."),
    "convert_currency": ("How much is 250 euros in Japanese yen?", {"amount": 250, "from": "EUR", "to": "JPY"},
                         {"amount": 42187.5, "rate": 168.75}, "250 EUR is about 42,188 JPY at today's rate of 168.75."),
    "search_flights": ("Find me a flight from Berlin to Madrid on July 3rd for two people.",
                       {"origin": "BER", "destination": "MAD", "date": "2025-07-03", "passengers": 2},
                       {"flights": [{"id": "IB3671", "depart": "07:05", "price_eur": 142}, {"id": "FR1122", "depart": "13:40", "price_eur": 96}]},
                       "Two options: Iberia IB3671 at 07:05 for €142 each, or Ryanair FR1122 at 13:40 for €96 each."),
    "get_order_status": ("Where is my order A-99812?", {"order_id": "A-99812"},
                         {"status": "in_transit", "carrier": "DHL", "eta": "2025-06-16"},
                         "Order A-99812 is in transit with DHL and should arrive on June 16."),
    "get_nutrition_facts": ("How many calories are in 100 g of cooked quinoa?", {"food": "quinoa, cooked"},
                            {"kcal": 120, "protein_g": 4.4, "carbs_g": 21.3, "fat_g": 1.9},
                            "100 g of cooked quinoa has about 120 kcal, 4.4 g protein, 21.3 g carbs and 1.9 g fat."),
}
VERIFIERS = ["verifier-schema", "verifier-grounding", "verifier-intent"]
RATIONALES = {
    "accept": ["Call matches the schema and every argument is grounded in the user's request.",
               "The final answer reports exactly what the tool returned; no invented values.",
               "The tool choice fits the intent and required parameters are present."],
    "reject": ["The assistant invented a date the user never gave.",
               "The final answer contradicts the tool result (wrong price).",
               "A required parameter is missing from the call."],
}
PERSONAS = [("Maya Chen", "travel blogger", "Plans multi-city trips on a budget.", "casual, asks follow-ups"),
            ("Dr. Omar Haddad", "cardiologist", "Tracks nutrition for patients.", "precise and brief"),
            ("Lena Vogel", "retail investor", "Checks portfolios every morning.", "impatient, numbers first"),
            ("Sam Rivera", "online shop owner", "Handles orders and refunds.", "friendly, detailed")]
BFCL_CATEGORIES = ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance",
                   "live_simple", "live_multiple", "multi_turn_base"]


def seed_demo(*, iterations: int = 3, per_iteration: int = 48, rng_seed: int = 7) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from inftool_web.catalog.models import ApiSource, DuplicateLink, Tool, TreeNode
    from inftool_web.core.roles import set_role
    from inftool_web.loop.models import CategoryResult, EvaluationRun, Iteration, ModelCheckpoint
    from inftool_web.synth.models import (
        AuditDecision,
        Message,
        Persona,
        Reflection,
        Trajectory,
        VerifierVote,
    )

    rng = random.Random(rng_seed)
    with transaction.atomic():
        User = get_user_model()
        demo, _ = User.objects.get_or_create(username="demo")
        demo.set_password("demo-password-123")
        demo.save()
        set_role(demo, "operator")
        reviewer, _ = User.objects.get_or_create(username="reviewer")
        reviewer.set_password("review-password-123")
        reviewer.save()
        set_role(reviewer, "reviewer")

        nodes, cats = {}, {}
        for d, cs in DOMAINS.items():
            nodes[d], _ = TreeNode.objects.get_or_create(level="domain", name=d, defaults={"description": f"{d} APIs"})
            for c in cs:
                cats[(d, c)], _ = TreeNode.objects.get_or_create(level="category", name=c, parent=nodes[d])
        sources = [ApiSource.objects.get_or_create(name=n, defaults={"kind": "openapi", "location": f"corpus/{n}.yaml",
                                                                      "status": "ok", "title": t})[0]
                   for n, t in [("openweathermap.org", "OpenWeather"), ("alphavantage.co", "Alpha Vantage"),
                                ("amadeus.com", "Amadeus Travel"), ("shopify.com", "Shopify Admin"),
                                ("edamam.com", "Edamam Nutrition"), ("weatherapi.com", "WeatherAPI")]]
        tools = {}
        for i, (d, c, name, desc, props, req) in enumerate(TOOLS):
            src = sources[min(i // 3, 4)]
            tools[name], _ = Tool.objects.get_or_create(
                source=src, name=name,
                defaults=dict(description=desc, input_schema={"type": "object", "properties": props, "required": req},
                              output_schema={"type": "object"} if i % 2 else None, method="GET",
                              path=f"/v1/{name.replace('_', '/')}", content_hash=f"{i:064x}",
                              domain=nodes[d], category=cats[(d, c)]))
        dup, created = Tool.objects.get_or_create(
            source=sources[5], name="forecast_daily",
            defaults=dict(description="Daily forecast for a city (1–7 days).", content_hash=f"{999:064x}",
                          input_schema={"type": "object", "properties": {"q": {"type": "string"}, "days": {"type": "integer"}}, "required": ["q"]},
                          domain=nodes["Weather"], category=cats[("Weather", "Forecasts")], canonical=tools["get_forecast"]))
        if created:
            DuplicateLink.objects.create(tool=dup, canonical=tools["get_forecast"], method="semantic", similarity=0.93,
                                         is_duplicate=True, judge_verdict="duplicate",
                                         rationale="Same operation: daily forecast by city.")
        personas = [Persona.objects.get_or_create(content_hash=f"demo-{i}", defaults=dict(
            name=n, role=r, background=b, style=s, goals=["get an answer fast"], domain=nodes[list(DOMAINS)[i % 5]],
            origin="seed"))[0] for i, (n, r, b, s) in enumerate(PERSONAS)]

        base, _ = ModelCheckpoint.objects.get_or_create(name="smollm2-135m-instruct", defaults={"kind": "base", "path": "var/models/smollm2"})
        start = Iteration.objects.order_by("-number").values_list("number", flat=True).first() or 0
        prev_ckpt = base
        made = []
        evals = [(base, None)]
        for k in range(iterations):
            last = k == iterations - 1
            it = Iteration.objects.create(
                number=start + k + 1, name=["bootstrap", "more multi-turn", "hard-mined"][k % 3],
                status="synthesizing" if last else "succeeded",
                stage_detail="role-play: 31 of 48 trajectories" if last else "",
                config={"count": per_iteration, "modes": {"single": 2, "parallel": 1, "multiple": 1, "irrelevance": 1, "multi_turn": 2},
                        "verifiers": 3, "profile": "cpu", "eval_limit": 5, "seed": k},
                input_checkpoint=prev_ckpt, created_by=demo, started_at=timezone.now())
            made.append(it)
            n = int(per_iteration * (0.65 if last else 1))
            for seq in range(n):
                _make_trajectory(rng, it, seq, k, tools, nodes, cats, personas, reviewer,
                                 Trajectory, Message, Reflection, VerifierVote, AuditDecision)
            if not last:
                ckpt = ModelCheckpoint.objects.create(name=f"inftool-it{it.number}-grpo", kind="grpo",
                                                      path=f"var/checkpoints/it{it.number}", base=base, iteration=it)
                it.output_checkpoint = ckpt
                it.finished_at = timezone.now()
                it.save()
                evals.append((ckpt, it))
                prev_ckpt = ckpt
        for j, (ckpt, it) in enumerate(evals):
            ev = EvaluationRun.objects.create(checkpoint=ckpt, iteration=it, status="succeeded", limit=5,
                                              categories=BFCL_CATEGORIES, finished_at=timezone.now())
            accs = []
            for c in BFCL_CATEGORIES:
                total = 20
                p = min(0.95, 0.12 + 0.22 * j + rng.uniform(-0.06, 0.08) + (0.25 if c == "irrelevance" else 0))
                correct = max(0, min(total, round(total * p)))
                CategoryResult.objects.create(evaluation=ev, category=c, correct=correct, total=total, accuracy=correct / total)
                accs.append(correct / total)
            ev.overall = sum(accs) / len(accs)
            ev.save()
    return {"iterations": [it.pk for it in made]}


def _make_trajectory(rng, it, seq, k, tools, nodes, cats, personas, reviewer,
                     Trajectory, Message, Reflection, VerifierVote, AuditDecision):
    from inftool_web.catalog.models import Tool

    kind = rng.choices(["single", "parallel", "multiple", "irrelevance", "multi_turn"], [3, 1.5, 1.5, 1, 2 + k])[0]
    name = rng.choice(list(SCENARIOS))
    query, args, result, answer = SCENARIOS[name]
    tool: Tool = tools[name]
    offered = [tool.as_mcp()] + [t.as_mcp() for t in rng.sample(list(tools.values()), 2) if t.pk != tool.pk]
    score = round(min(1.0, max(0.0, rng.betavariate(2.2 + k, 1.3))), 3)
    status = "done"
    if it.status == "synthesizing" and seq > 26:
        status = rng.choice(["running", "verifying"])
    verdict = "" if status != "done" else ("accepted" if rng.random() < 0.72 + 0.06 * k else "rejected")
    turns = rng.randint(2, min(9, 4 + 2 * k)) if kind == "multi_turn" else 1
    t = Trajectory.objects.create(
        iteration=it, seq=seq, mode=kind, persona=rng.choice(personas), domain=tool.domain, category=tool.category,
        offered_tools=offered, goal=query, reference_calls=[] if kind == "irrelevance" else [{"name": name, "arguments": args}],
        status=status, score=score if status == "done" else None, difficulty=("hard" if score < 0.6 else "easy") if status == "done" else "",
        verdict=verdict, repaired=rng.random() < 0.18, num_turns=turns,
        prompt_tokens=rng.randint(380, 900) * turns, completion_tokens=rng.randint(60, 220) * turns)
    msgs = [Message(trajectory=t, index=0, role="system", content="You are a helpful assistant with access to tools.")]
    i = 1
    for turn in range(turns):
        q = query if turn == 0 else rng.choice(["Thanks! And what about tomorrow?", "Can you double-check that?",
                                                "Great, please do the same for next week."])
        msgs.append(Message(trajectory=t, index=i, role="user", agent="user_simulator", content=q))
        i += 1
        if kind == "irrelevance":
            msgs.append(Message(trajectory=t, index=i, role="assistant", agent="tool_agent",
                                content="None of my tools can do that, so I can't look it up for you."))
            i += 1
            break
        calls = [{"id": f"call_{t.pk}_{i}_{c}", "type": "function", "function": {"name": name, "arguments": args}}
                 for c in range(2 if kind == "parallel" else 1)]
        msgs.append(Message(trajectory=t, index=i, role="assistant", agent="tool_agent", content="", tool_calls=calls,
                            completion_tokens=40))
        i += 1
        for c in calls:
            msgs.append(Message(trajectory=t, index=i, role="tool", agent="server_simulator", content=_dumps(result),
                                tool_results=[{"tool_call_id": c["id"], "structuredContent": result}]))
            i += 1
        msgs.append(Message(trajectory=t, index=i, role="assistant", agent="tool_agent", content=answer))
        i += 1
    Message.objects.bulk_create(msgs)
    if t.repaired:
        Reflection.objects.create(trajectory=t, index=0, step=2, problem="schema_invalid", action="repaired", attempts=2,
                                  detail="'days' must be an integer, got \"three\"; re-asked with the validation error.")
    Reflection.objects.create(trajectory=t, index=1, step=len(msgs) - 1, problem="", action="ok", attempts=1,
                              detail="Final answer is grounded in the tool result.")
    if status == "done":
        votes = ["accept" if (verdict == "accepted") ^ (v == 2 and rng.random() < 0.3) else "reject" for v in range(3)]
        for v, vote in enumerate(votes):
            VerifierVote.objects.create(trajectory=t, verifier=VERIFIERS[v], round=0, vote=vote, backend="embedded",
                                        rationale=rng.choice(RATIONALES[vote]))
        if len(set(votes)) > 1:
            final = "accept" if verdict == "accepted" else "reject"
            for v in range(3):
                VerifierVote.objects.create(trajectory=t, verifier=VERIFIERS[v], round=1, vote=final, backend="embedded",
                                            rationale=f"After discussion: {rng.choice(RATIONALES[final]).lower()}")
        if rng.random() < 0.08:
            decision = rng.choice(["accept", "reject", "flag"])
            AuditDecision.objects.create(trajectory=t, reviewer=reviewer, decision=decision,
                                         note="Checked the tool result against the answer.")
            t.audit_decision = decision
            t.save(update_fields=["audit_decision"])


def _dumps(obj) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


# ------------------------------------------------------------------ command line
def _admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshots(out_dir: Path, env: dict, iteration_ids: list[int]) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT id FROM synth_trajectory WHERE iteration_id = %s AND mode = 'multi_turn' "
                    "AND status = 'done' ORDER BY id LIMIT 1", [iteration_ids[-2]])
        traj = cur.fetchone()[0]
    capture(out_dir, env, user="demo", password="demo-password-123", pages={
        "dashboard": "/", "iteration": f"/iterations/{iteration_ids[-1]}/", "trajectory": f"/trajectories/{traj}/",
        "tools": "/tools/?q=forecast", "audit": f"/audit/?iteration={iteration_ids[-2]}&size=8&seed=1",
        "evaluations": "/evaluations/", "launch": "/iterations/new/",
    })


def capture(out_dir: Path, env: dict, *, user: str, password: str, pages: dict[str, str]) -> None:
    """Serve the app on loopback (uvicorn), sign in, and save a full-page PNG of each page."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "inftool_web.asgi:application", "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        import httpx

        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        out_dir.mkdir(parents=True, exist_ok=True)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/accounts/login/")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            for name, path in pages.items():
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                if name == "tools" and page.locator("details.tool summary").count():
                    page.locator("details.tool summary").first.click()
                page.screenshot(path=str(out_dir / f"{name}.png"), full_page=True)
                print("saved", out_dir / f"{name}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="database name on 127.0.0.1 (default: DATABASE_URL or inftool)")
    parser.add_argument("--fresh", action="store_true", help="drop and create the database, then migrate")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--per-iteration", type=int, default=48)
    parser.add_argument("--screenshots", type=Path, help="save PNGs of the main pages into this folder")
    args = parser.parse_args()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "inftool_web.settings"))
    if args.database:
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{args.database}"
        os.environ["DATABASE_URL"] = env["DATABASE_URL"]
    if args.fresh:
        if not args.database:
            parser.error("--fresh needs --database")
        _admin_sql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        _admin_sql(f'CREATE DATABASE "{args.database}"')
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", env["DJANGO_SETTINGS_MODULE"])
    import django

    django.setup()
    made = seed_demo(iterations=args.iterations, per_iteration=args.per_iteration)
    print(f"seeded iterations {made['iterations']}; log in as demo / demo-password-123 (operator)")
    if args.screenshots:
        screenshots(args.screenshots, env, made["iterations"])


if __name__ == "__main__":
    main()
