"""Worker scaling: synthesis throughput with 1, 2 and 4 Celery worker processes.

    python bench/bench_workers.py [--workers 1,2,4] [--count 24] [--server latency|embedded]
                                  [--delay 0.3] [--pool threads] [--concurrency 1]
                                  [--request-timeout S] [--write FILE] [--keep]

Makes its own database (``inftool_bench_workers``, dropped at the end unless ``--keep``) and
uses its own Redis database (``redis://127.0.0.1:6379/11``, keys under a prefix of its own)
as Celery broker and result backend. It ingests a small corpus sample, then for each N in
``--workers``:

  * starts N real Celery worker processes as the deploy runs them (``celery -A inftool_web
    worker -Q default,roleplay --pool threads --prefetch-multiplier 1``, here ``-c 1`` each;
    ``INFTOOL_ENV=production``, every agent role on the ``openai`` backend);
  * runs one untimed warm-up trajectory per worker (imports, tokenizer, connections);
  * creates an iteration of ``--count`` trajectories (all modes; the same config and seed
    for every N, so every N synthesizes the same planned trajectories), queues one task per
    trajectory as ``manage.py synthesize --celery`` does, and waits until every trajectory
    has finished in the database;
  * reports wall time (first task queued to last trajectory finished), trajectories/min,
    scaling = throughput(N) / throughput(1), the 1-minute load average, the mean run time of
    one task and the share of the run the workers were busy (both from the workers' own
    "succeeded in" log lines), the CPU seconds the workers and the model server used per
    trajectory, how busy the whole machine was, and the tasks each worker ran;
  * stops the workers (SIGTERM, then SIGKILL after a grace period; on any error too) and
    checks the database: every trajectory finished, no duplicate trajectory, step, message
    or vote, step logs contiguous with one finish step each.

The model server (``--server``):

  * ``latency`` (default): a small OpenAI-compatible server defined in this file (Starlette
    on uvicorn, asynchronous) that answers every ``/v1/chat/completions`` after a fixed delay
    (``--delay``, default 0.3 s, like a loaded vLLM node) with deterministic answers that move
    the role-play along: schema-valid tool calls (arguments taken from the user's text where
    it names them, the rest synthesized from the tool's ``inputSchema``), JSON valid against
    a requested ``json_schema``, short sentences otherwise. **It stands in for a GPU model
    server with a fixed latency and unlimited capacity: the figures measure how the workers'
    orchestration (role-play engine, validation, PostgreSQL, Redis) scales, not model speed
    or answer quality.**
  * ``embedded``: the project's own OpenAI-compatible endpoint (``/v1/chat/completions`` of
    the ASGI app under uvicorn) serving the embedded model on this machine's CPU, for
    reference: on a small machine the model is the bottleneck and adding workers cannot help.

Everything runs on one machine: the workers, PostgreSQL, Redis, the model server and this
process share its cores, so the scaling ceiling is the machine's CPU, and the table says how
busy it was.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_api  # noqa: E402  (admin, free_port, cpu_model)

from synthesis.roleplay.standin import MODEL_NAME, latency_app, serve_latency  # noqa: E402,F401

KEY_PREFIX = "inftool-bench-workers:"
STAND_IN = ("a stand-in (the latency server in bench/bench_workers.py) for a GPU model server such as vLLM on "
            "another node: every request is answered after a fixed {delay:g} s, with no capacity limit, so the "
            "figures measure how the workers' orchestration scales, not model speed")


class Proc:
    """A subprocess in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, cmd: list[str], env: dict, log: Path):
        self.name, self.cmd, self.log = name, cmd, log
        with open(log, "ab") as out:
            self.p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def alive(self) -> bool:
        return self.p.poll() is None

    def cpu_seconds(self) -> float:
        import psutil

        try:
            proc = psutil.Process(self.p.pid)
            total = sum(proc.cpu_times()[:2])
            for child in proc.children(recursive=True):
                try:
                    total += sum(child.cpu_times()[:2])
                except psutil.Error:
                    pass
            return total
        except psutil.Error:
            return 0.0

    def stop(self, grace: float = 30.0) -> None:
        if self.p.poll() is not None:
            return
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(timeout=30)
        except ProcessLookupError:
            pass

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"


def wait_http(url: str, proc: Proc, timeout: float, headers: dict | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.tail()}")


def bench_env(args, *, base_url: str = "", api_key: str = "", model: str = "") -> dict:
    """The deploy's settings (production, every role on the openai backend), on the bench's
    own database and Redis database."""
    env = dict(os.environ)
    # Nothing of another stack's settings (its model servers, broker options) leaks in.
    for name in [k for k in env if k.startswith(("INFTOOL_", "CELERY_")) and k != "INFTOOL_VAR_DIR"]:
        del env[name]
    env.update(
        INFTOOL_ENV="production", SECRET_KEY=args.secret_key, ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false", DJANGO_SETTINGS_MODULE="inftool_web.settings", LOG_LEVEL="INFO",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        REDIS_URL=args.redis_url, CELERY_BROKER_URL=args.redis_url, CELERY_RESULT_BACKEND=args.redis_url,
        CHANNELS_REDIS_URL=args.redis_url, CELERY_KEY_PREFIX=KEY_PREFIX, CHANNELS_PREFIX=KEY_PREFIX + "asgi",
        INFTOOL_DEMO_ON_EMPTY="false", PYTHONUNBUFFERED="1",
    )
    if base_url:
        env.update(INFTOOL_LLM_BACKEND="openai", INFTOOL_LLM_BASE_URL=base_url, INFTOOL_LLM_MODEL=model,
                   INFTOOL_AGENT_BACKEND="openai", INFTOOL_AGENT_BASE_URL=base_url, INFTOOL_AGENT_MODEL=model,
                   INFTOOL_LLM_API_KEY=api_key)
    return env


def redis_cleanup(url: str, task_ids: tuple[str, ...] | list[str] = ()) -> int:
    """Delete this bench's keys (its prefix, the results of its tasks) from its Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=KEY_PREFIX + "*", count=1000))
        keys += [f"celery-task-meta-{t}" for t in task_ids]
        return client.delete(*keys) if keys else 0
    finally:
        client.close()


# ============================================================================ one run


@dataclass
class Run:
    workers: int
    concurrency: int = 1  # tasks at once per worker
    trajectories: int = 0
    finished: int = 0
    accepted: int = 0
    wall_s: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at start and end
    worker_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    machine_busy: float = 0.0  # share of all cores busy (every process on the machine)
    model_requests: int = 0
    tasks_per_worker: list[int] = field(default_factory=list)
    task_seconds: list[float] = field(default_factory=list)  # run time of each timed task (worker logs)
    statuses: dict[str, int] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    iteration_id: int = 0

    @property
    def per_min(self) -> float:
        return self.finished / self.wall_s * 60 if self.wall_s else 0.0

    @property
    def mean_task_s(self) -> float:
        return sum(self.task_seconds) / len(self.task_seconds) if self.task_seconds else 0.0

    @property
    def busy(self) -> float:
        """Share of the run the workers spent running tasks (idle: ramp-up, the last ones' tail).
        At most 1: a task's run time also counts the bookkeeping after its trajectory's
        ``finished_at``, where the wall time stops."""
        if not self.wall_s:
            return 0.0
        return min(1.0, sum(self.task_seconds) / (self.workers * self.concurrency * self.wall_s))


TASK_DONE_RX = re.compile(r"Task inftool_web\.loop\.tasks\.synthesize_trajectory\[([0-9a-f-]+)\] \w+ in ([0-9.]+)s")


def task_seconds(logs: list[Path], ids: set[str]) -> list[float]:
    """Run time of each of ``ids``, as the workers log it ("Task …[id] succeeded in 2.8s")."""
    out = []
    for log in logs:
        for m in TASK_DONE_RX.finditer(log.read_text(errors="replace")):
            if m.group(1) in ids:
                out.append(float(m.group(2)))
    return out


def _config(args, count: int, *, seed: int, modes: dict | None = None) -> dict:
    config = {"count": count, "profile": "none", "seed": seed}
    if modes:
        config["modes"] = modes
    if args.max_turns:
        config["max_turns"] = args.max_turns
    if args.verifiers is not None:
        config["verifiers"] = args.verifiers
    if args.request_timeout:
        # Only an iteration's config sets the openai backend's timeout; same server and model.
        config["backends"] = {role: {"backend": "openai", "base_url": args.base_url, "model": args.model_name,
                                     "timeout": args.request_timeout}
                              for role in ("user", "agent", "server", "verifier", "judge")}
    return config


def _task_totals(app, names: list[str]) -> dict[str, int]:
    """Tasks each worker has run (Celery's own count)."""
    stats = app.control.inspect(destination=names, timeout=5).stats() or {}
    return {n: sum((stats.get(n) or {}).get("total", {}).values()) for n in names}


def _wait_finished(iteration_id: int, total: int, procs: list[Proc], server: Proc, timeout: float) -> None:
    from inftool_web.synth.models import TERMINAL, Trajectory

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Trajectory.objects.filter(iteration_id=iteration_id, status__in=TERMINAL).count()
        if done >= total:
            return
        for p in [*procs, server]:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited (code {p.p.returncode}) mid-run:\n{p.tail()}")
        time.sleep(0.25)
    raise RuntimeError(f"iteration {iteration_id}: not finished after {timeout:.0f} s")


def db_checks(iteration_id: int, expected: int) -> dict[str, Any]:
    """Every trajectory finished once, nothing stored twice, every step log whole."""
    from django.db import connection

    from inftool_web.synth.models import TERMINAL

    q = {
        "trajectories": "SELECT count(*) FROM synth_trajectory WHERE iteration_id = %(it)s",
        "unfinished": "SELECT count(*) FROM synth_trajectory WHERE iteration_id = %(it)s AND NOT (status = ANY(%(terminal)s))",
        "duplicate_trajectories": """SELECT count(*) FROM (SELECT seq FROM synth_trajectory WHERE iteration_id = %(it)s
                                     GROUP BY seq HAVING count(*) > 1) d""",
        "duplicate_steps": """SELECT count(*) FROM (SELECT s.trajectory_id, s.index FROM synth_trajectorystep s
                              JOIN synth_trajectory t ON t.id = s.trajectory_id WHERE t.iteration_id = %(it)s
                              GROUP BY s.trajectory_id, s.index HAVING count(*) > 1) d""",
        "gaps_in_step_logs": """SELECT count(*) FROM (SELECT s.trajectory_id FROM synth_trajectorystep s
                                JOIN synth_trajectory t ON t.id = s.trajectory_id WHERE t.iteration_id = %(it)s
                                GROUP BY s.trajectory_id HAVING max(s.index) + 1 <> count(*) OR min(s.index) <> 0) d""",
        "without_one_finish_step": """SELECT count(*) FROM synth_trajectory t WHERE t.iteration_id = %(it)s AND
                                      (SELECT count(*) FROM synth_trajectorystep s WHERE s.trajectory_id = t.id
                                       AND s.kind = 'finish') <> 1 AND t.status <> 'failed'""",
        "messages_not_matching_steps": """SELECT count(*) FROM synth_trajectory t WHERE t.iteration_id = %(it)s AND
                                          (SELECT count(*) FROM synth_message m WHERE m.trajectory_id = t.id) <>
                                          (SELECT count(*) FROM synth_trajectorystep s WHERE s.trajectory_id = t.id
                                           AND s.kind = 'message')""",
        "duplicate_votes": """SELECT count(*) FROM (SELECT v.trajectory_id, v.verifier, v.round FROM synth_verifiervote v
                              JOIN synth_trajectory t ON t.id = v.trajectory_id WHERE t.iteration_id = %(it)s
                              GROUP BY v.trajectory_id, v.verifier, v.round HAVING count(*) > 1) d""",
        "steps": """SELECT count(*) FROM synth_trajectorystep s JOIN synth_trajectory t ON t.id = s.trajectory_id
                    WHERE t.iteration_id = %(it)s""",
    }
    out: dict[str, Any] = {}
    with connection.cursor() as cur:
        for name, sql in q.items():
            cur.execute(sql, {"it": iteration_id, "terminal": list(TERMINAL)})
            out[name] = cur.fetchone()[0]
    bad = [k for k in out if k not in ("trajectories", "steps") and out[k]]
    if out["trajectories"] != expected:
        bad.append("trajectories")
    out["ok"] = not bad
    out["problems"] = bad
    return out


def plan_signature(iteration_id: int) -> list:
    from inftool_web.synth.models import Trajectory

    return [(t.seq, t.mode, [x["name"] for x in t.offered_tools], t.persona_id, t.engine_state.get("seed"))
            for t in Trajectory.objects.filter(iteration_id=iteration_id).order_by("seq")]


def run_workers(args, n: int, env: dict, server: Proc, logdir: Path, task_ids: list[str]) -> Run:
    import psutil

    from inftool_web.celery_app import app
    from inftool_web.loop.iterations import iteration_create, iteration_plan
    from inftool_web.loop.models import Iteration
    from inftool_web.loop.tasks import synthesize_trajectory
    from inftool_web.synth.models import Trajectory

    host = os.uname().nodename
    names = [f"bench-w{n}-{i}-{os.getpid()}@{host}" for i in range(n)]
    procs: list[Proc] = []
    run = Run(workers=n, concurrency=args.concurrency)
    try:
        for i, name in enumerate(names):
            cmd = [sys.executable, "-m", "celery", "-A", "inftool_web", "worker", "-n", name, "-Q", args.queues,
                   "--pool", args.pool, "-c", str(args.concurrency), "--prefetch-multiplier", "1", "-l", "INFO"]
            procs.append(Proc(f"worker {name}", cmd, env, logdir / f"worker-{n}-{i}.log"))
        deadline = time.monotonic() + 180
        waiting = set(names)
        while waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not answer a ping: {sorted(waiting)}")
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited at start:\n{p.tail()}")
            for reply_ in app.control.ping(destination=sorted(waiting), timeout=1.0) or []:
                waiting -= set(reply_)
        # Warm-up: one short trajectory per worker (prefetch 1, one slot each), not timed.
        warm = iteration_create(config=_config(args, n, seed=args.seed + 1000 + n, modes={"single": 1}),
                                name=f"bench-workers warm-up {n}")
        for pk in iteration_plan(iteration_id=warm.pk):
            task_ids.append(synthesize_trajectory.delay(pk).id)
        _wait_finished(warm.pk, n, procs, server, args.timeout)
        warm_tasks = _task_totals(app, names)

        # The timed run: plan first (untimed), then queue every trajectory at once.
        it = iteration_create(config=_config(args, args.count, seed=args.seed), name=f"bench-workers {n}")
        todo = iteration_plan(iteration_id=it.pk)
        run.iteration_id, run.trajectories = it.pk, len(todo)
        requests_before = _server_requests(args)
        cpu_before = [p.cpu_seconds() for p in procs]
        server_before = server.cpu_seconds()
        machine_before = psutil.cpu_times()
        run.load = (os.getloadavg()[0], 0.0)
        t0 = time.time()
        timed_ids = [synthesize_trajectory.delay(pk).id for pk in todo]
        task_ids += timed_ids
        _wait_finished(it.pk, len(todo), procs, server, args.timeout)
        last = Trajectory.objects.filter(iteration=it).order_by("-finished_at").values_list("finished_at", flat=True).first()
        run.wall_s = (last.timestamp() if last else time.time()) - t0
        machine_after = psutil.cpu_times()
        run.load = (run.load[0], os.getloadavg()[0])
        run.worker_cpu_s = sum(p.cpu_seconds() for p in procs) - sum(cpu_before)
        run.server_cpu_s = server.cpu_seconds() - server_before
        total = sum(machine_after) - sum(machine_before)
        idle = (machine_after.idle + machine_after.iowait) - (machine_before.idle + machine_before.iowait)
        run.machine_busy = 1 - idle / total if total else 0.0
        after = _task_totals(app, names)
        run.tasks_per_worker = [after[x] - warm_tasks[x] for x in names]
        time.sleep(0.5)  # the last "succeeded in" lines
        run.task_seconds = task_seconds([p.log for p in procs], set(timed_ids))
        run.model_requests = _server_requests(args) - requests_before if requests_before >= 0 else -1
        qs = Trajectory.objects.filter(iteration=it)
        run.finished = qs.filter(status__in=["done", "rejected", "failed"]).count()
        run.accepted = qs.filter(verdict="accepted").count()
        run.statuses = {s: qs.filter(status=s).count() for s in ("done", "rejected", "failed") if qs.filter(status=s).exists()}
        it.refresh_from_db()
        run.checks = db_checks(it.pk, args.count)
        run.checks["iteration_status"] = it.status
        if it.status != Iteration.Status.SUCCEEDED:
            run.checks["ok"] = False
            run.checks["problems"].append(f"iteration {it.status}")
        return run
    finally:
        for p in procs:  # warm shutdown (no task is running now), then SIGKILL
            p.stop(grace=args.stop_grace)


def _server_requests(args) -> int:
    if args.server != "latency":
        return -1
    import httpx

    try:
        return int(httpx.get(f"http://127.0.0.1:{args.server_port}/stats", timeout=5).json()["requests"])
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


# ============================================================================ report


def table(runs: list[Run]) -> list[str]:
    base = runs[0].per_min if runs and runs[0].workers == 1 else None
    head = ("| workers | trajectories | accepted | wall s | trajectories/min | scaling vs 1 | load average (start → end) "
            "| s per trajectory (task run time, mean) | workers busy | worker CPU s / trajectory "
            "| model server CPU s / trajectory | machine CPU busy | model requests | tasks per worker |")
    lines = [head, "|" + "---:|" * 13 + "---|"]
    for r in runs:
        scale = f"{r.per_min / base:.2f}" if base else "—"
        per = max(r.finished, 1)
        lines.append(
            f"| {r.workers} | {r.finished}/{r.trajectories} | {r.accepted} | {r.wall_s:.1f} | {r.per_min:.1f} | {scale} "
            f"| {r.load[0]:.1f} → {r.load[1]:.1f} | {r.mean_task_s:.2f} | {r.busy:.0%} "
            f"| {r.worker_cpu_s / per:.2f} | {r.server_cpu_s / per:.2f} "
            f"| {r.machine_busy:.0%} | {r.model_requests if r.model_requests >= 0 else '—'} "
            f"| {'/'.join(map(str, r.tasks_per_worker))} |")
    return lines


def check_lines(runs: list[Run], same_plan: bool | None) -> list[str]:
    out = []
    for r in runs:
        c = r.checks
        verdict = "ok" if c.get("ok") else "PROBLEMS: " + ", ".join(c.get("problems", []))
        out.append(
            f"- {r.workers} worker(s), iteration {r.iteration_id}: {verdict} ({c.get('trajectories')} trajectories, "
            f"{c.get('unfinished')} unfinished, {c.get('duplicate_trajectories')} duplicate trajectories, "
            f"{c.get('duplicate_steps')} duplicate steps of {c.get('steps')}, {c.get('gaps_in_step_logs')} step logs "
            f"with gaps, {c.get('without_one_finish_step')} without exactly one finish step, "
            f"{c.get('messages_not_matching_steps')} with messages ≠ message steps, {c.get('duplicate_votes')} "
            f"duplicate votes; statuses {r.statuses}; iteration {c.get('iteration_status')}; "
            f"tasks run {sum(r.tasks_per_worker)} for {r.trajectories} trajectories)")
    if same_plan is not None:
        out.append(f"- same planned trajectories (modes, tools, personas, seeds) for every N: {'yes' if same_plan else 'NO'}")
    return out


# ============================================================================ main


def _interrupt(signum, frame):
    """SIGTERM (a CI timeout, ``kill``) runs the clean-up like Ctrl-C does."""
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, in order (default %(default)s)")
    parser.add_argument("--count", type=int, default=24, help="trajectories per worker count")
    parser.add_argument("--server", choices=["latency", "embedded"], default="latency")
    parser.add_argument("--delay", type=float, default=0.3, help="latency server: seconds per request")
    parser.add_argument("--pool", default="threads", help="Celery pool of each worker (the deploy: threads)")
    parser.add_argument("--concurrency", type=int, default=1, help="tasks at once per worker process")
    parser.add_argument("--queues", default="default,roleplay", help="queues the workers consume (the deploy's)")
    parser.add_argument("--max-turns", type=int, default=None, help="multi-turn cap (default: the iteration default)")
    parser.add_argument("--verifiers", type=int, default=None, help="verifiers voting (default: the iteration default)")
    parser.add_argument("--request-timeout", type=float, default=None,
                        help="seconds the workers wait for one model answer (default: the openai backend's 120; "
                             "900 with --server embedded, whose answers on a CPU can take minutes)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sample-size", type=int, default=10, help="corpus specs to ingest (--sample)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one worker count may take")
    parser.add_argument("--stop-grace", type=float, default=30, help="seconds a stopping worker gets before SIGKILL")
    parser.add_argument("--database", default=os.environ.get("INFTOOL_BENCH_WORKERS_DB", "inftool_bench_workers"))
    parser.add_argument("--redis-url", default=os.environ.get("INFTOOL_BENCH_WORKERS_REDIS", "redis://127.0.0.1:6379/11"))
    parser.add_argument("--write", metavar="FILE", help="also write the results as markdown")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database and the worker logs")
    parser.add_argument("--serve-latency", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_latency:
        serve_latency(args.serve_latency, args.delay)
        return 0
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    if not counts or min(counts) < 1:
        parser.error("--workers: a comma-separated list of counts ≥ 1")
    if args.database in ("inftool", "postgres", "test_inftool"):
        parser.error(f"--database {args.database}: the bench drops its database; name one of its own")
    args.secret_key = secrets.token_urlsafe(50)
    if args.request_timeout is None and args.server == "embedded":
        args.request_timeout = 900.0
    command = "python bench/bench_workers.py " + " ".join(sys.argv[1:])

    signal.signal(signal.SIGTERM, _interrupt)
    machine = f"{os.cpu_count()} cores, {bench_api.cpu_model()}, Python {platform.python_version()}"
    print(f"machine: {machine}\ncommand: {command}\nload average at start: "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    logdir = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    env = bench_env(args)
    os.environ.update(env)
    for name in [k for k in os.environ if k.startswith(("INFTOOL_", "CELERY_")) and k not in env]:
        del os.environ[name]
    redis_cleanup(args.redis_url)
    bench_api.admin(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    bench_api.admin(f'CREATE DATABASE "{args.database}"')
    server: Proc | None = None
    task_ids: list[str] = []
    runs: list[Run] = []
    failed = False
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        import logging

        logging.getLogger("httpx").setLevel(logging.WARNING)  # this process polls the servers
        from django.core.management import call_command
        from django.db import connections

        t = time.perf_counter()
        call_command("ingest_openapi", sample=True, sample_size=args.sample_size, workers=1, verbosity=0)
        from inftool_web.catalog.models import Tool

        print(f"ingested {Tool.objects.count()} tools from {args.sample_size} sample specs "
              f"({time.perf_counter() - t:.0f} s)", flush=True)

        port = bench_api.free_port()
        args.server_port = port
        base_url = args.base_url = f"http://127.0.0.1:{port}/v1"
        if args.server == "latency":
            server = Proc("latency server", [sys.executable, str(Path(__file__).resolve()), "--serve-latency", str(port),
                                             "--delay", str(args.delay)], env, logdir / "server.log")
            wait_http(base_url + "/models", server, 60)
            args.model_name = MODEL_NAME
            worker_env = bench_env(args, base_url=base_url, model=MODEL_NAME)
            server_desc = STAND_IN.format(delay=args.delay)
        else:
            from django.contrib.auth import get_user_model
            from rest_framework.authtoken.models import Token

            user, _ = get_user_model().objects.get_or_create(username="bench-workers")
            token, _ = Token.objects.get_or_create(user=user)
            server = Proc("embedded model server", [sys.executable, "-m", "uvicorn", "inftool_web.asgi:application",
                                                    "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                                                    "--no-access-log"], env, logdir / "server.log")
            wait_http(base_url + "/models", server, 120, headers={"Authorization": f"Bearer {token.key}"})
            args.model_name = "smollm2-135m-instruct"
            worker_env = bench_env(args, base_url=base_url, api_key=token.key, model=args.model_name)
            server_desc = ("InfTool's own /v1 endpoint (uvicorn) serving the embedded model on this machine's CPU, "
                           "shared by every worker")
        connections.close_all()
        print(f"model server: {server_desc}\n", flush=True)

        for n in counts:
            print(f"== {n} worker process(es), {args.count} trajectories ==", flush=True)
            r = run_workers(args, n, worker_env, server, logdir, task_ids)
            runs.append(r)
            connections.close_all()
            print(f"   {r.finished} finished ({r.accepted} accepted) in {r.wall_s:.1f} s = {r.per_min:.1f}/min; "
                  f"load {r.load[0]:.1f} → {r.load[1]:.1f}; DB check: {'ok' if r.checks['ok'] else r.checks['problems']}",
                  flush=True)
        signatures = [plan_signature(r.iteration_id) for r in runs]
        same_plan = all(s == signatures[0] for s in signatures) if len(runs) > 1 else None
    except BaseException:
        failed = True
        raise
    finally:
        if server is not None:
            server.stop(grace=10)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - django may not be set up
            pass
        redis_cleanup(args.redis_url, task_ids)
        if not args.keep:
            bench_api.admin(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        if failed or args.keep:
            print(f"logs kept in {logdir}", file=sys.stderr)
        else:
            shutil.rmtree(logdir, ignore_errors=True)

    lines = [
        f"Machine: {machine}. Load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
        f"Command: `{command}`",
        "",
        f"Model server: {server_desc}.",
        "",
        f"Workers: `celery -A inftool_web worker -Q {args.queues} --pool {args.pool} -c {args.concurrency} "
        f"--prefetch-multiplier 1`, one process each, every agent role on the `openai` backend; "
        f"{args.count} trajectories per worker count (all modes), queued at once after one untimed warm-up "
        "trajectory per worker.",
        "",
        *table(runs),
        "",
        "Database checks:",
        *check_lines(runs, same_plan),
    ]
    print("\n" + "\n".join(lines))
    if args.write:
        Path(args.write).write_text("# Worker scaling (`bench/bench_workers.py`)\n\n" + "\n".join(lines) + "\n")
        print(f"\nwritten to {args.write}")
    return 0 if all(r.checks.get("ok") for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
