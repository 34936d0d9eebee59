"""API benchmark: JSONL export throughput and memory, list latency under concurrent requests.

    python bench/bench_api.py [--trajectories 100000] [--keep]

Creates its own database (``inftool_bench``), loads N trajectories with realistic
conversations by bulk insert, then measures
  * export throughput of each format in-process (trajectories/s),
  * the same export over HTTP from uvicorn, with the server's peak RSS for 10k vs N
    trajectories (flat = constant memory),
  * p50/p95 latency of the list endpoints under concurrent clients on loopback.
The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
sys.path.insert(0, str(ROOT))
DB = os.environ.get("INFTOOL_BENCH_DB", "inftool_bench")  # --database overrides


def db_url() -> str:
    return f"postgres://postgres@127.0.0.1:5432/{DB}"


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


def env() -> dict:
    # The API's per-client rate limit would answer 429 to a load test from one address.
    return dict(os.environ, DATABASE_URL=db_url(), DJANGO_SETTINGS_MODULE="inftool_web.settings", DEBUG="false",
                ALLOWED_HOSTS="127.0.0.1,localhost", LOG_LEVEL="WARNING", INFTOOL_API_RATE="100000000/min")


TOOLS = [
    {"name": "search_flights", "description": "Search flights between two airports on a date.",
     "inputSchema": {"type": "object", "properties": {"origin": {"type": "string"}, "destination": {"type": "string"},
                                                      "date": {"type": "string"}}, "required": ["origin", "destination"]}},
    {"name": "get_forecast", "description": "Daily weather forecast for a city.",
     "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                     "required": ["city"]}},
    {"name": "convert_currency", "description": "Convert an amount between currencies.",
     "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}, "from": {"type": "string"},
                                                      "to": {"type": "string"}}, "required": ["amount", "from", "to"]}},
]


def load(n: int) -> tuple[int, int]:
    """Bulk-insert ``n`` trajectories (10,000 in the first iteration, the rest in a second)."""
    from django.db import transaction

    from inftool_web.catalog.models import TreeNode
    from inftool_web.loop.models import Iteration
    from inftool_web.synth.models import Message, Trajectory

    rng = random.Random(0)
    small = Iteration.objects.create(number=1, status="succeeded", config={"count": 10_000})
    big = Iteration.objects.create(number=2, status="succeeded", config={"count": n - 10_000})
    domains = [TreeNode.objects.create(level="domain", name=d) for d in ("Travel", "Weather", "Finance", "Retail")]
    kinds = ["single", "parallel", "multiple", "irrelevance", "multi_turn"]
    batch = 5000
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        with transaction.atomic():
            rows = []
            for i in range(start, min(n, start + batch)):
                kind = kinds[i % 5]
                rows.append(Trajectory(
                    iteration=small if i < 10_000 else big, seq=i, mode=kind, status="done",
                    verdict="accepted" if rng.random() < 0.8 else "rejected",
                    difficulty="hard" if rng.random() < 0.35 else "easy", score=round(rng.random(), 3),
                    domain=domains[i % 4], offered_tools=TOOLS, goal="Plan a trip",
                    reference_calls=[{"name": "search_flights", "arguments": {"origin": "BER", "destination": "MAD"}}],
                    num_turns=3 if kind == "multi_turn" else 1, prompt_tokens=rng.randint(300, 2000),
                    completion_tokens=rng.randint(40, 400)))
            Trajectory.objects.bulk_create(rows)
            msgs = []
            for t in rows:
                call_id = f"call_{t.seq}"
                msgs += [
                    Message(trajectory=t, index=0, role="system", content="You are a helpful assistant with tools."),
                    Message(trajectory=t, index=1, role="user", agent="user_simulator",
                            content=f"I need a flight from Berlin to Madrid on July {t.seq % 28 + 1}, two people."),
                    Message(trajectory=t, index=2, role="assistant", agent="tool_agent", tool_calls=[
                        {"id": call_id, "type": "function", "function": {"name": "search_flights", "arguments": {
                            "origin": "BER", "destination": "MAD", "date": f"2025-07-{t.seq % 28 + 1:02d}"}}}]),
                    Message(trajectory=t, index=3, role="tool", agent="server_simulator", tool_results=[{"tool_call_id": call_id}],
                            content=json.dumps({"flights": [{"id": "IB3671", "depart": "07:05", "price_eur": 142},
                                                            {"id": "FR1122", "depart": "13:40", "price_eur": 96}]})),
                    Message(trajectory=t, index=4, role="assistant", agent="tool_agent",
                            content="Two options: Iberia IB3671 at 07:05 for €142 each, or Ryanair FR1122 at 13:40 for €96."),
                ]
            Message.objects.bulk_create(msgs)
        print(f"  loaded {min(n, start + batch):,} trajectories ({time.perf_counter() - t0:.0f} s)", end="\r", flush=True)
    print()
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return small.pk, big.pk


def export_in_process(fmt: str, filters: dict) -> tuple[int, float]:
    from inftool_web.loop.exports import export_lines
    from inftool_web.synth.selectors import TrajectoryFilters, trajectory_list

    qs = trajectory_list(filters=TrajectoryFilters(**filters))
    t0 = time.perf_counter()
    lines = sum(chunk.count(b"\n") for chunk in export_lines(qs, fmt))
    return lines, time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RssSampler(threading.Thread):
    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        import psutil

        self.procs = [psutil.Process(p) for p in pids]
        self.peak = 0
        self.running = True

    def rss(self) -> int:
        total = 0
        for p in self.procs:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001 - a worker may be gone
                pass
        return total

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.01)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    global DB
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="per list scenario")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept benchmark database")
    parser.add_argument("--database", default=DB, help="benchmark database name (default %(default)s)")
    args = parser.parse_args()
    DB = args.database
    os.environ.update(env())

    if not args.reuse:
        admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{DB}"')
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env(), check=True)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from inftool_web.core.roles import set_role
    from inftool_web.loop.models import Iteration

    if args.reuse:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env(), check=True)
        small, big = Iteration.objects.get(number=1).pk, Iteration.objects.get(number=2).pk
    else:
        print(f"loading {args.trajectories:,} trajectories (5 messages each) into {DB}")
        t0 = time.perf_counter()
        small, big = load(args.trajectories)
        print(f"  bulk insert: {time.perf_counter() - t0:.1f} s")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    set_role(user, "viewer")
    token, _ = Token.objects.get_or_create(user=user)
    total = args.trajectories

    results: dict = {"load_average_at_start": os.getloadavg(), "machine": f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}",
                     "trajectories": total}
    print("\n== export, in process (generator only, no HTTP) ==")
    results["export_in_process"] = {}
    for fmt in ("openai", "sharegpt", "bfcl"):
        n, secs = export_in_process(fmt, {})
        results["export_in_process"][fmt] = round(n / secs)
        print(f"  {fmt:9s} {n:>7,} trajectories in {secs:5.1f} s = {n / secs:8,.0f} trajectories/s")

    import httpx

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "inftool_web.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(args.workers), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env(), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {token.key}"}
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/api/tools/", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        import psutil

        time.sleep(1.0)
        pids = [server.pid] + [c.pid for c in psutil.Process(server.pid).children(recursive=True)]
        print(f"\n== export over HTTP (uvicorn, {args.workers} workers), server RSS ==")
        results["export_http"] = {}
        runs = [("openai", "10k", {"iteration": small})] + [(fmt, f"{total // 1000}k", {}) for fmt in ("openai", "sharegpt", "bfcl")]
        for fmt, label, params in runs:
            sampler = RssSampler(pids)
            before = sampler.rss()
            sampler.start()
            t0 = time.perf_counter()
            n, first = 0, None
            with httpx.stream("GET", f"{base}/api/exports/{fmt}/", params=params, headers=headers, timeout=600) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    first = first or time.perf_counter() - t0
                    n += chunk.count(b"\n")
            secs = time.perf_counter() - t0
            sampler.running = False
            sampler.join()
            growth = (sampler.peak - before) / 2**20
            results["export_http"][f"{fmt} {label}"] = {
                "trajectories": n, "per_s": round(n / secs), "seconds": round(secs, 1),
                "first_byte_ms": round(first * 1000), "rss_before_mib": round(before / 2**20),
                "rss_peak_mib": round(sampler.peak / 2**20), "rss_growth_mib": round(growth, 1),
                "load_average": round(os.getloadavg()[0], 1)}
            print(f"  {fmt:8s} {label:5s} {n:>7,} trajectories in {secs:5.1f} s = {n / secs:8,.0f}/s; first byte "
                  f"{first * 1000:.0f} ms; server RSS {before / 2**20:.0f} → peak {sampler.peak / 2**20:.0f} MiB "
                  f"(+{growth:.1f} MiB); load {os.getloadavg()[0]:.1f}")

        print(f"\n== list latency: 1 and {args.clients} concurrent clients ==")
        # "walk": each client follows the `next` links from the first page, as a client reading
        # every page does; the others repeat one request.
        scenarios = {
            "trajectories": "/api/trajectories/",
            "trajectories?iteration&mode": f"/api/trajectories/?iteration={big}&mode=multi_turn",
            "trajectories?verdict&difficulty": "/api/trajectories/?verdict=accepted&difficulty=hard",
            "trajectories?domain, walk next": "walk:/api/trajectories/?domain=Travel",
            "iterations": "/api/iterations/",
            "tools": "/api/tools/",
        }
        results["list_latency_ms"] = {}
        local = threading.local()

        def get(path: str) -> float:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, headers=headers, timeout=30)
            walk = path.startswith("walk:")
            if walk:
                start = path.removeprefix("walk:")
                if getattr(local, "walk_start", None) != start:
                    local.walk_start, local.next = start, start
                path = local.next
            t = time.perf_counter()
            r = local.client.get(path)
            r.raise_for_status()
            elapsed = (time.perf_counter() - t) * 1000
            if walk:
                local.next = r.json()["next"] or local.walk_start
            return elapsed

        for clients in (1, args.clients):
            with ThreadPoolExecutor(clients) as pool:
                for name, path in scenarios.items():
                    list(pool.map(get, [path] * clients * 2))  # warm connections and caches
                    count = args.requests if clients > 1 else max(20, args.requests // 4)
                    t0 = time.perf_counter()
                    times = list(pool.map(get, [path] * count))
                    wall = time.perf_counter() - t0
                    p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
                    results["list_latency_ms"][f"{name} x{clients}"] = {
                        "p50": round(p50, 1), "p95": round(p95, 1), "rps": round(count / wall),
                        "load_average": round(os.getloadavg()[0], 1)}
                    print(f"  {clients} client(s) {name:34s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                          f"({count / wall:5.0f} req/s; load {os.getloadavg()[0]:.1f})")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    results["load_average_at_end"] = os.getloadavg()
    print("\n" + json.dumps(results, indent=2))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
