"""Load bench: concurrent API clients and websocket subscribers against a real server.

    python bench/bench_load.py [--trajectories 20000] [--clients 16] [--ws-clients 200]
                               [--event-rates 2,10,20] [--duration 15] [--workers 1] [--reuse --keep]

Serves the ASGI app with uvicorn as ``manage.py runstack`` does (HTTP and websockets in one
process; ``--workers`` for more) on loopback, against its own database, then
  * HTTP: ``--clients`` concurrent clients, each sending its next request as soon as the last
    one is answered, over a mix of API endpoints (token auth); per endpoint: requests/s,
    p50/p95 latency, errors (a non-2xx answer or a failed request);
  * websockets: ``--ws-clients`` connections signed in with a session cookie (a real log-in
    through the form), half on ``ws/events/``, half on ``ws/iterations/<id>/``, idle for
    ``--idle`` seconds, then this process broadcasts events to each group through the channel
    layer, as the services do, at each of ``--event-rates`` in turn; connections held, events
    delivered/s, delivery latency (broadcast to receipt), errors (refused or dropped
    connections, events not delivered).
The load generator runs on the same machine: its CPU comes out of the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_api  # noqa: E402  (load, admin, free_port, percentile, cpu_model)

PASSWORD = "bench-load-password-123"


def server_env(db: str, redis_url: str, prefix: str) -> dict:
    return dict(
        os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}", DJANGO_SETTINGS_MODULE="inftool_web.settings",
        DEBUG="false", ALLOWED_HOSTS="127.0.0.1,localhost", LOG_LEVEL="WARNING", REDIS_URL=redis_url,
        CHANNELS_PREFIX=prefix, INFTOOL_DEMO_ON_EMPTY="false",
        # One address drives all the load: the per-user API rate limit would answer 429.
        INFTOOL_API_RATE="100000000/min",
    )


# ------------------------------------------------------------------ data
def seed(args) -> dict:
    """Bulk trajectories for the lists, demo rows (tools, personas, votes, evaluations) for the
    rest, and a viewer with a password and a token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from inftool_web.core.roles import set_role
    from inftool_web.loop.models import Iteration
    from inftool_web.synth.models import Trajectory

    if not args.reuse:
        print(f"loading {args.trajectories:,} trajectories and the demo rows into {args.database}")
        t0 = time.perf_counter()
        bench_api.load(args.trajectories)
        from seed_demo_rows import seed_demo

        seed_demo(iterations=3, per_iteration=48)
        print(f"  {time.perf_counter() - t0:.0f} s")
    user, _ = get_user_model().objects.get_or_create(username="bench-load")
    user.set_password(PASSWORD)
    user.save()
    set_role(user, "viewer")
    token, _ = Token.objects.get_or_create(user=user)
    big = Iteration.objects.get(number=2).pk
    demo = Iteration.objects.filter(number__gt=2).order_by("number").values_list("pk", flat=True)
    detail_ids = list(Trajectory.objects.filter(iteration_id__in=list(demo)).values_list("pk", flat=True))
    rng = random.Random(1)
    detail_ids += rng.sample(list(Trajectory.objects.filter(iteration_id=big).values_list("pk", flat=True)[:20000]), 200)
    return {"token": token.key, "big": big, "demo": list(demo), "detail_ids": detail_ids}


def endpoints(data: dict) -> list[tuple[str, int, callable]]:
    """(name, weight, path maker) of the HTTP mix."""
    rng = random.Random(2)
    demo = data["demo"]
    return [
        ("GET /api/trajectories/", 4, lambda: "/api/trajectories/"),
        ("GET /api/trajectories/?iteration&verdict", 2,
         lambda: f"/api/trajectories/?iteration={data['big']}&verdict=accepted"),
        ("GET /api/trajectories/{id}/", 3, lambda: f"/api/trajectories/{rng.choice(data['detail_ids'])}/"),
        ("GET /api/iterations/", 1, lambda: "/api/iterations/"),
        ("GET /api/iterations/{id}/", 1, lambda: f"/api/iterations/{rng.choice(demo)}/"),
        ("GET /api/tools/?q=", 1, lambda: "/api/tools/?q=forecast"),
        ("GET /api/personas/", 1, lambda: "/api/personas/"),
        ("GET /api/evaluations/", 1, lambda: "/api/evaluations/"),
        ("GET /api/exports/openai/?iteration (~40 rows)", 1, lambda: f"/api/exports/openai/?iteration={demo[0]}"),
    ]


# ------------------------------------------------------------------ HTTP phase
@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


async def http_phase(base: str, token: str, mix, clients: int, duration: float) -> tuple[dict[str, Stats], float]:
    import httpx

    names = [m[0] for m in mix]
    weights = [m[1] for m in mix]
    makers = {m[0]: m[2] for m in mix}
    stats = {name: Stats() for name in names}
    rng = random.Random(3)
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60,
                                 limits=limits) as client:

        async def one_client():
            while time.perf_counter() < deadline:
                name = rng.choices(names, weights)[0]
                s = stats[name]
                t = time.perf_counter()
                try:
                    r = await client.get(makers[name]())
                    await r.aread()
                    s.statuses[r.status_code] = s.statuses.get(r.status_code, 0) + 1
                    if r.status_code >= 300:
                        s.errors += 1
                except httpx.HTTPError:
                    s.errors += 1
                    continue
                s.latencies.append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return stats, wall


# ------------------------------------------------------------------ websocket phase
async def session_cookie(base: str, username: str) -> str:
    """Sign in through the log-in form, as a browser does; return the session cookie."""
    import re

    import httpx

    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=30) as client:
        page = await client.get("/accounts/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        r = await client.post("/accounts/login/", data={"username": username, "password": PASSWORD,
                                                        "csrfmiddlewaretoken": csrf},
                              headers={"Referer": f"{base}/accounts/login/"})
        if r.status_code != 302 or "sessionid" not in client.cookies:
            raise RuntimeError(f"log-in failed: {r.status_code} {r.text[:200]}")
        return client.cookies["sessionid"]


@dataclass
class WsStats:
    received: int = 0
    latencies: list[float] = field(default_factory=list)


async def ws_phase(base: str, session: str, iteration_id: int, clients: int, rates: list[float], duration: float,
                   idle: float) -> dict:
    """Open ``clients`` sockets, stay idle ``idle`` s, then broadcast at each rate in turn."""
    from channels.layers import get_channel_layer
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from inftool_web.core.events import DASHBOARD_GROUP, iteration_group

    ws_base = base.replace("http://", "ws://")
    groups = {"ws/events/": DASHBOARD_GROUP, f"ws/iterations/{iteration_id}/": iteration_group(iteration_id)}
    paths = list(groups)
    connected = {path: 0 for path in paths}
    refused = {path: 0 for path in paths}
    dropped = {path: 0 for path in paths}
    stats = {(level, path): WsStats() for level in range(len(rates)) for path in paths}
    sockets: list[tuple[str, object]] = []
    headers = {"Cookie": f"sessionid={session}", "Origin": base}

    async def open_one(path: str):
        try:
            ws = await connect(f"{ws_base}/{path}", additional_headers=headers, open_timeout=60,
                               ping_interval=None, max_queue=None)
        except Exception:  # noqa: BLE001 - refused (close code) or failed: counted
            refused[path] += 1
            return
        connected[path] += 1
        sockets.append((path, ws))

    t0 = time.perf_counter()
    # Open in waves: a burst of hundreds of handshakes at once measures the accept queue.
    for start in range(0, clients, 50):
        await asyncio.gather(*(open_one(paths[i % 2]) for i in range(start, min(clients, start + 50))))
    connect_s = time.perf_counter() - t0
    stop = asyncio.Event()

    async def listen(path: str, ws):
        try:
            async for raw in ws:
                now = time.time()
                event = json.loads(raw)
                if event.get("type") == "bench":
                    s = stats[(event["level"], path)]
                    s.received += 1
                    s.latencies.append((now - event["sent"]) * 1000)
        except ConnectionClosed:
            if not stop.is_set():
                dropped[path] += 1

    listeners = [asyncio.create_task(listen(path, ws)) for path, ws in sockets]
    # Quiet first, as a dashboard mostly is: a socket must outlive the channel layer's 5 s
    # blocking waits (it did not with redis-py 8's default read timeout).
    await asyncio.sleep(idle)
    held_after_idle = sum(1 for _, ws in sockets if ws.state.name == "OPEN")
    layer = get_channel_layer()
    levels = []
    for level, rate in enumerate(rates):
        sent = 0
        interval = 1.0 / rate
        t_start = time.perf_counter()
        while time.perf_counter() - t_start < duration:
            for group in groups.values():
                await layer.group_send(group, {"type": "inftool.event", "event": {
                    "type": "bench", "level": level, "seq": sent, "sent": time.time()}})
            sent += 1
            await asyncio.sleep(max(0.0, t_start + sent * interval - time.perf_counter()))
        await asyncio.sleep(3.0)  # deliveries still in flight
        levels.append({"rate": rate, "sent_per_group": sent, "seconds": time.perf_counter() - t_start,
                       "load_average": round(os.getloadavg()[0], 1)})
    stop.set()
    held = sum(1 for _, ws in sockets if ws.state.name == "OPEN")
    for _, ws in sockets:
        await ws.close()
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    return {"stats": stats, "levels": levels, "paths": paths, "connected": connected, "refused": refused,
            "dropped": dropped, "held": held, "held_after_idle": held_after_idle, "connect_s": connect_s}


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=os.environ.get("INFTOOL_BENCH_LOAD_DB", "inftool_bench_load"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--trajectories", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--ws-clients", type=int, default=200, help="websocket connections")
    parser.add_argument("--event-rates", default="2,10,20", help="broadcasts per second to each group, one level each")
    parser.add_argument("--duration", type=float, default=15, help="seconds of the HTTP phase and of each broadcast level")
    parser.add_argument("--idle", type=float, default=7, help="seconds the sockets wait before the first broadcast")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes (runstack: 1)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept benchmark database")
    args = parser.parse_args()
    bench_api.DB = args.database
    prefix = f"inftool-bench-load-{os.getpid()}"
    env = server_env(args.database, args.redis_url, prefix)
    os.environ.update(env)

    if not args.reuse:
        bench_api.admin(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        bench_api.admin(f'CREATE DATABASE "{args.database}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    data = seed(args)
    from django.db import connections

    connections.close_all()

    port = bench_api.free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "inftool_web.asgi:application", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    machine = f"{os.cpu_count()} cores, {bench_api.cpu_model()}, Python {platform.python_version()}"
    results: dict = {"machine": machine, "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                     "server": f"uvicorn, {args.workers} process(es)", "trajectories": args.trajectories}
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"{base}/accounts/login/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        mix = endpoints(data)
        asyncio.run(http_phase(base, data["token"], mix, min(4, args.clients), 2.0))  # warm up

        print(f"\n== HTTP: {args.clients} concurrent clients for {args.duration:.0f} s ({results['server']}) ==")
        load_before = os.getloadavg()[0]
        stats, wall = asyncio.run(http_phase(base, data["token"], mix, args.clients, args.duration))
        results["http"] = {"clients": args.clients, "seconds": round(wall, 1),
                           "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)], "endpoints": {}}
        print(f"{'endpoint':48s} {'requests':>8s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'errors':>6s}")
        total = Stats()
        for name, s in stats.items():
            total.latencies += s.latencies
            total.errors += s.errors
            row = {"requests": len(s.latencies) + s.errors, "rps": round(len(s.latencies) / wall, 1),
                   "p50_ms": round(bench_api.percentile(s.latencies, 0.5), 1) if s.latencies else None,
                   "p95_ms": round(bench_api.percentile(s.latencies, 0.95), 1) if s.latencies else None,
                   "errors": s.errors, "statuses": s.statuses}
            results["http"]["endpoints"][name] = row
            print(f"{name:48s} {row['requests']:8d} {row['rps']:7.1f} {row['p50_ms'] or 0:8.1f} {row['p95_ms'] or 0:8.1f} "
                  f"{row['errors']:6d}")
        print(f"{'all':48s} {len(total.latencies) + total.errors:8d} {len(total.latencies) / wall:7.1f} "
              f"{bench_api.percentile(total.latencies, 0.5):8.1f} {bench_api.percentile(total.latencies, 0.95):8.1f} "
              f"{total.errors:6d}   (load {load_before:.1f} → {os.getloadavg()[0]:.1f})")

        rates = [float(r) for r in args.event_rates.split(",")]
        print(f"\n== websockets: {args.ws_clients} connections (half ws/events/, half ws/iterations/<id>/), idle "
              f"{args.idle:g} s, then broadcasts to each group at {', '.join(f'{r:g}' for r in rates)}/s, "
              f"{args.duration:.0f} s each ==")
        session = asyncio.run(session_cookie(base, "bench-load"))
        ws = asyncio.run(ws_phase(base, session, data["demo"][-1], args.ws_clients, rates, args.duration, args.idle))
        connected = sum(ws["connected"].values())
        results["websockets"] = {
            "connections": args.ws_clients, "connected": connected, "refused": sum(ws["refused"].values()),
            "held_after_idle": ws["held_after_idle"], "held_to_the_end": ws["held"],
            "dropped": sum(ws["dropped"].values()), "connect_seconds": round(ws["connect_s"], 1), "levels": []}
        print(f"connected {connected} of {args.ws_clients} in {ws['connect_s']:.1f} s; open after {args.idle:g} s idle: "
              f"{ws['held_after_idle']}; open at the end: {ws['held']}; dropped: {sum(ws['dropped'].values())}")
        print(f"{'broadcasts/s per group':>22s} {'held':>5s} {'expected':>9s} {'delivered':>9s} {'delivered/s':>11s} "
              f"{'p50 ms':>8s} {'p95 ms':>8s} {'errors':>7s} {'load':>5s}")
        for level, info in enumerate(ws["levels"]):
            expected = sum(info["sent_per_group"] * ws["connected"][p] for p in ws["paths"])
            lat = [x for p in ws["paths"] for x in ws["stats"][(level, p)].latencies]
            delivered = sum(ws["stats"][(level, p)].received for p in ws["paths"])
            errors = max(0, expected - delivered) + (sum(ws["dropped"].values()) + sum(ws["refused"].values())
                                                     if level == len(ws["levels"]) - 1 else 0)
            row = {"rate_per_group": info["rate"], "expected_deliveries": expected, "delivered": delivered,
                   "delivered_per_s": round(delivered / info["seconds"], 1),
                   "p50_ms": round(bench_api.percentile(lat, 0.5), 1) if lat else None,
                   "p95_ms": round(bench_api.percentile(lat, 0.95), 1) if lat else None,
                   "not_delivered": max(0, expected - delivered), "load_average": info["load_average"]}
            results["websockets"]["levels"].append(row)
            print(f"{info['rate']:22g} {ws['held']:5d} {expected:9d} {delivered:9d} {row['delivered_per_s']:11.1f} "
                  f"{row['p50_ms'] or 0:8.1f} {row['p95_ms'] or 0:8.1f} {errors:7d} {info['load_average']:5.1f}")
        print("errors: deliveries missing after a 3 s grace (channels_redis drops what a full channel cannot take),"
              " plus, on the last row, refused and dropped sockets")
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        connections.close_all()
        if not args.keep:
            bench_api.admin(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print("\n" + json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
