"""Faults on real processes: Redis and PostgreSQL restarted mid-run, model servers that hang or
answer garbage, and work stranded with no task to run it.

Every test runs a real Celery worker against a deterministic OpenAI-compatible stand-in
(``tests/web/fixtures/fake_openai_server.py``), so the ``openai`` backend runs as in production.
Workloads are tiny; timeouts are generous because the box may be loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone

from inftool_web.loop.iterations import iteration_create, iteration_plan, trajectories_run
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import iteration_launch
from inftool_web.synth.models import TERMINAL, Message, Trajectory, VerifierVote
from synthesis.llm.base import BackendUnavailable
from synthesis.llm.openai_backend import OpenAIBackend
from tests.conftest import ROOT, WorkerProcess, free_port, worker_env
from tests.factories import shop_tools
from tests.web.fixtures.fake_openai_server import MODEL, FakeOpenAIServer

pytestmark = pytest.mark.django_db(transaction=True)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WATCHDOG = {"INFTOOL_WATCHDOG_SECONDS": "1"}  # grace: 3 s
# One task at a time per worker: two threads importing transformers for the first time at once
# (the token counts stored with a finished trajectory) make one of them fail.
THREADS = 1


def _wait(predicate, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _config(base_url: str, *, count: int = 1, modes=None, **extra) -> dict:
    role = {"backend": "openai", "base_url": base_url, "model": MODEL}
    return {
        "count": count, "profile": "none", "modes": modes or {"single": 1}, "max_turns": 1, "verifiers": 1,
        "negotiation_rounds": 0, "seed": 7,
        "backends": {r: dict(role) for r in ("user", "agent", "server", "verifier", "judge")}, **extra,
    }


@pytest.fixture
def tools(transactional_db):
    return shop_tools()


@pytest.fixture
def model_server():
    servers: list[FakeOpenAIServer] = []

    def make(mode: str = "smart", delay: float = 0.0) -> FakeOpenAIServer:
        servers.append(FakeOpenAIServer(mode, delay=delay).start())
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def _assert_stored_once(trajectories) -> None:
    """Every trajectory finished, its step log contiguous, nothing stored twice."""
    for t in trajectories:
        assert t.status in TERMINAL, (t.pk, t.status, t.error)
        idx = list(t.steps.order_by("index").values_list("index", flat=True))
        assert idx == list(range(len(idx))), f"trajectory {t.pk}: steps {idx}"
        assert t.steps.filter(kind="finish").count() == 1, (t.pk, t.status, t.error)
        assert Message.objects.filter(trajectory=t).count() == t.steps.filter(kind="message").count()
        dup = VerifierVote.objects.filter(trajectory=t).values("verifier", "round").annotate(n=Count("id"))
        assert all(v["n"] == 1 for v in dup), list(dup)


def _log_tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


# ----------------------------------------------------------------------------- private servers


class PrivateRedis:
    """A throw-away redis-server without persistence: a restart loses everything queued."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=open(self.workdir / "redis.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def up():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        _wait(up, 30, "redis-server to start", every=0.1)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def restart(self, down_for: float = 2.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url, "CELERY_BROKER_URL": self.url, "CELERY_RESULT_BACKEND": self.url,
                "CHANNELS_REDIS_URL": self.url}


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed, so a private Redis cannot be started")
    (tmp_path / "redis").mkdir()
    server = PrivateRedis(tmp_path / "redis").start()
    yield server
    server.stop()


class PrivateWorker(WorkerProcess):
    """A worker on another broker: ready when its log says so (a ping would go to ours)."""

    def start(self, timeout: float = 120.0) -> PrivateWorker:
        cmd = [sys.executable, "-m", "celery", "-A", "inftool_web", "worker", "-n", self.name, "-Q", self.queues,
               "--pool", self.pool, "-c", str(self.concurrency), "-l", "info", "--without-gossip", "--without-mingle"]
        env = worker_env(**self.extra_env)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(self.log_path, "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited at start: {_log_tail(self.log_path)}")
            return " ready." in self.log_path.read_text(errors="replace")

        _wait(ready, timeout, "the worker to be ready")
        return self


@pytest.fixture
def private_workers(tmp_path):
    started: list[PrivateWorker] = []

    def make(env: dict[str, str], **kwargs) -> PrivateWorker:
        w = PrivateWorker(log_path=tmp_path / f"worker-{len(started)}.log", extra_env={**WATCHDOG, **env}, **kwargs)
        started.append(w)
        return w.start()

    yield make
    for w in started:
        w.stop()


# ----------------------------------------------------------------------------- the watchdog


def test_the_watchdog_runs_a_stranded_pending_trajectory_and_hands_over_a_finished_iteration(
    tools, model_server, worker_factory
):
    server = model_server()
    stranded = iteration_create(config=_config(server.base_url, count=2))
    iteration_plan(iteration_id=stranded.pk)
    # Planned, never queued: as if Redis lost the tasks long ago.
    Iteration.objects.filter(pk=stranded.pk).update(status="synthesizing", started_at=timezone.now())
    Trajectory.objects.filter(iteration=stranded).update(updated_at=timezone.now() - timedelta(hours=1))
    # Finished, never handed over: as if the last task died after storing its finish step.
    finished = iteration_create(config=_config(server.base_url, count=1))
    iteration_plan(iteration_id=finished.pk)
    Iteration.objects.filter(pk=finished.pk).update(status="synthesizing", started_at=timezone.now())
    Trajectory.objects.filter(iteration=finished).update(status="rejected", error="rejected before the loss")

    worker = worker_factory(concurrency=THREADS, extra_env=WATCHDOG).start(timeout=120)
    _wait(lambda: not Iteration.objects.filter(pk__in=[stranded.pk, finished.pk], status="synthesizing").exists(),
          180, "both iterations to leave synthesizing")
    stranded.refresh_from_db()
    finished.refresh_from_db()
    assert finished.status == "succeeded", finished.error
    assert stranded.status == "succeeded", (stranded.error, _log_tail(worker.log_path))
    trajs = list(stranded.trajectories.all())
    _assert_stored_once(trajs)
    assert all(t.status in ("done", "rejected") for t in trajs), [(t.status, t.error) for t in trajs]
    assert stranded.progress.get("finished") == 2
    assert server.requests.get("/v1/chat/completions", 0) > 0


def test_a_sweep_queues_stranded_work_once_and_leaves_work_that_waits_in_the_queue(tools):
    from inftool_web.loop.recovery import watchdog_sweep
    from inftool_web.loop.tasks import synthesize_trajectory

    it = iteration_create(config=_config("http://127.0.0.1:9/v1", count=3))
    iteration_plan(iteration_id=it.pk)
    Iteration.objects.filter(pk=it.pk).update(status="synthesizing", started_at=timezone.now())
    old = timezone.now() - timedelta(hours=1)
    Trajectory.objects.filter(iteration=it).update(updated_at=old)
    app = synthesize_trajectory.app
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("roleplay")
    try:
        assert watchdog_sweep(grace=60)["pending"] == 3
        assert all(t > old for t in Trajectory.objects.filter(iteration=it).values_list("updated_at", flat=True))
        # Stale again, but their tasks now wait in the queue: no second copy.
        Trajectory.objects.filter(iteration=it).update(updated_at=old)
        assert watchdog_sweep(grace=60)["pending"] == 0
        with app.connection_for_read() as conn:
            assert conn.default_channel._size("roleplay") == 3
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("roleplay")


# ----------------------------------------------------------------------------- a worker killed


def test_a_worker_killed_mid_trajectory_loses_nothing_stored_and_a_new_worker_finishes_it_once(
    tools, model_server, worker_factory
):
    """SIGKILL mid-conversation (no chance to clean up), then a fresh worker: it finds the
    orphan at start-up, resumes after the last stored step, and stores nothing twice."""
    from inftool_web.synth.models import TrajectoryStep

    server = model_server(delay=0.4)
    first = worker_factory(concurrency=THREADS).start(timeout=120)
    it = iteration_launch(config=_config(server.base_url, modes={"multi_turn": 1}, max_turns=3, verifiers=2))
    _wait(lambda: TrajectoryStep.objects.filter(trajectory__iteration=it, kind="message").count() >= 2, 180,
          "two stored messages")
    first.kill()
    traj = it.trajectories.get()
    assert traj.status in ("running", "verifying"), traj.status
    before = dict(traj.steps.values_list("index", "data"))
    assert before and not traj.steps.filter(kind="finish").exists()

    second = worker_factory(concurrency=THREADS).start(timeout=120)
    _wait(lambda: Iteration.objects.get(pk=it.pk).status not in Iteration.ACTIVE, 240, "the iteration to finish")
    it.refresh_from_db()
    traj.refresh_from_db()
    assert it.status == "succeeded", (it.error, _log_tail(second.log_path))
    assert traj.status in ("done", "rejected"), (traj.status, traj.error)
    _assert_stored_once([traj])
    after = dict(traj.steps.values_list("index", "data"))
    assert {i: after[i] for i in before} == before, "what was stored before the kill is untouched"
    assert len(after) > len(before)
    assert it.progress.get("finished") == 1


# ----------------------------------------------------------------------------- bad model servers


def test_a_model_server_answering_garbage_fails_the_trajectory_naming_its_url(tools, model_server, worker_factory):
    text, not_completion = model_server("text"), model_server("json")
    worker_factory(concurrency=THREADS).start(timeout=120)
    its = {
        "text": iteration_launch(config=_config(text.base_url, modes={"multi_turn": 1})),
        "json": iteration_launch(config=_config(not_completion.base_url, modes={"multi_turn": 1})),
    }
    _wait(lambda: not Iteration.objects.filter(pk__in=[i.pk for i in its.values()], status__in=Iteration.ACTIVE)
          .exists(), 240, "both iterations to finish")
    unnamed = []
    for kind, server in (("text", text), ("json", not_completion)):
        it = Iteration.objects.get(pk=its[kind].pk)
        assert it.status == "succeeded", (kind, it.error)
        traj = it.trajectories.get()
        assert traj.status == "failed", (kind, traj.status, traj.error)
        _assert_stored_once([traj])
        assert it.progress.get("status_failed") == 1 and it.progress.get("finished") == 1, it.progress
        if server.base_url not in traj.error:
            unnamed.append((kind, traj.error[:300]))
    assert not [u for u in unnamed if u[0] == "text"], unnamed
    assert not unnamed, f"a 200 answer that is not a chat completion must name the server: {unnamed}"


def test_a_hanging_model_server_is_given_up_on_within_the_bounded_retries(tools, model_server):
    server = model_server("hang")
    it = iteration_create(config=_config(server.base_url))
    iteration_plan(iteration_id=it.pk)
    Iteration.objects.filter(pk=it.pk).update(status="synthesizing")
    traj = it.trajectories.get()
    backend = OpenAIBackend(base_url=server.base_url, model=MODEL, timeout=0.5, max_retries=1, backoff=0.1)
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable, match=server.base_url):
            trajectories_run(trajectory_ids=[traj.pk], backends={"default": backend})
    finally:
        backend.close()
    assert time.monotonic() - started < 30
    assert server.requests.get("/v1/chat/completions") == 2, server.requests  # one try, one retry
    traj.refresh_from_db()
    assert traj.status not in TERMINAL, "a server that may come back must not end the trajectory"
    assert not traj.steps.filter(kind="finish").exists()


def test_a_task_that_gives_up_on_an_unreachable_server_fails_the_trajectory_and_the_iteration_goes_on(tools):
    from inftool_web.loop.tasks import synthesize_trajectory

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    it = iteration_create(config=_config(url, count=1))
    iteration_plan(iteration_id=it.pk)
    Iteration.objects.filter(pk=it.pk).update(status="synthesizing")
    trajs = list(it.trajectories.order_by("seq"))
    for t in trajs:
        # The last delivery the task allows: it gives up instead of retrying again.
        synthesize_trajectory.apply(args=[t.pk], retries=synthesize_trajectory.max_retries)
    it.refresh_from_db()
    assert it.status == "succeeded", it.error
    assert it.progress.get("status_failed") == 1, it.progress
    for t in trajs:
        t.refresh_from_db()
        assert t.status == "failed" and t.error and t.finished_at is not None
    errors = [t.error for t in trajs]
    assert all(url in e for e in errors), f"the recorded error must name the server: {errors[0]!r}"


# ----------------------------------------------------------------------------- Redis restarted


def test_a_redis_restart_mid_synthesis_loses_no_trajectory_and_duplicates_nothing(
    tools, model_server, private_redis, private_workers
):
    from inftool_web.loop.tasks import run_iteration

    server = model_server(delay=0.15)
    # A task a trajectory, so that some wait in Redis while another runs.
    worker = private_workers(private_redis.env() | {"INFTOOL_SYNTH_CHUNK": "1"}, concurrency=THREADS)
    it = iteration_create(config=_config(server.base_url, count=3, modes={"multi_turn": 1}, max_turns=2))
    with run_iteration.app.connection_for_write(private_redis.url) as conn:
        run_iteration.apply_async((it.pk,), connection=conn)

    def mid_run():
        rows = list(Trajectory.objects.filter(iteration=it).values_list("status", flat=True))
        return any(s in ("running", "verifying") for s in rows) and "pending" in rows

    # One trajectory running, the others' tasks waiting in Redis: the restart loses those.
    _wait(mid_run, 180, "synthesis to be under way", every=0.2)
    private_redis.restart()
    _wait(lambda: Iteration.objects.get(pk=it.pk).status not in Iteration.ACTIVE, 240,
          "the iteration to finish after the Redis restart")
    it.refresh_from_db()
    assert it.status == "succeeded", (it.error, _log_tail(worker.log_path))
    trajs = list(it.trajectories.all())
    assert len(trajs) == 3
    _assert_stored_once(trajs)
    assert all(t.status in ("done", "rejected") for t in trajs), [(t.status, t.error) for t in trajs]
    assert it.progress.get("finished") == 3
    assert "watchdog re-queued stranded work" in _log_tail(worker.log_path, 1_000_000)


# ----------------------------------------------------------------------------- PostgreSQL restarted


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on its own port, owned by the ``postgres`` user."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.datadir = workdir / "data"
        self.logfile = workdir / "postgres.log"
        self.workdir = workdir
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/inftool_faults"

    def _as_postgres(self, *args: str, timeout: float = 120) -> None:
        cmd = " ".join(f"'{a}'" for a in args)
        subprocess.run(["su", "postgres", "-c", cmd], check=True, timeout=timeout, capture_output=True)

    def init(self) -> PrivatePostgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.workdir, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres")
        self.start()
        self._as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                          "inftool_faults")
        return self

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-w",
                          "-o", f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def restart(self, down_for: float = 2.0) -> None:
        self.stop("immediate")
        time.sleep(down_for)
        self.start()

    def query(self, sql: str, *params):
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="inftool_faults",
                             connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def private_postgres(tmp_path_factory):
    if not (PG_BIN / "initdb").exists() or shutil.which("su") is None:
        pytest.skip(f"no initdb under {PG_BIN}: a private PostgreSQL cluster cannot be made")
    if os.geteuid() != 0:
        pytest.skip("making a private PostgreSQL cluster needs to run initdb as the postgres user (su)")
    workdir = Path("/tmp") / f"inftool-faults-pg-{os.getpid()}-{free_port()}"
    pg = PrivatePostgres(workdir).init()
    yield pg
    try:
        pg.stop("immediate")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SETUP_SCRIPT = """
import json, sys
from inftool_web.loop.services import iteration_launch
from tests.factories import ApiSourceFactory, ToolFactory
from tests.synthesis.roleplay.fakes import ALL_TOOLS
source = ApiSourceFactory(name="shop.example")
for t in ALL_TOOLS:
    ToolFactory(source=source, name=t["name"], description=t["description"],
                input_schema=t["inputSchema"], output_schema=t.get("outputSchema"))
it = iteration_launch(config=json.loads(sys.argv[1]))
print(json.dumps({"iteration": it.pk}))
"""


def test_a_postgres_restart_mid_synthesis_is_retried_and_every_trajectory_finishes_once(
    model_server, private_redis, private_postgres, private_workers, tmp_path
):
    env = {**private_redis.env(), "DATABASE_URL": private_postgres.url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                   env=worker_env(**env), check=True, timeout=300)
    server = model_server(delay=0.15)
    worker = private_workers(env, concurrency=THREADS)
    config = _config(server.base_url, count=3, modes={"multi_turn": 1}, max_turns=2)
    out = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + SETUP_SCRIPT, json.dumps(config)],
                         cwd=ROOT, env=worker_env(**env), check=True, timeout=300, capture_output=True, text=True)
    iteration = json.loads(out.stdout.strip().splitlines()[-1])["iteration"]

    def statuses():
        return [s for (s,) in private_postgres.query(
            "SELECT status FROM synth_trajectory WHERE iteration_id = %s", iteration)]

    def mid_run():
        rows = statuses()
        return rows and any(s in ("running", "verifying") for s in rows) and not all(s in TERMINAL for s in rows)

    _wait(mid_run, 180, "synthesis to be under way", every=0.2)
    private_postgres.restart()

    def finished():
        try:
            (status,), = private_postgres.query("SELECT status FROM loop_iteration WHERE id = %s", iteration)
        except Exception:  # noqa: BLE001 - still coming back up
            return False
        return status not in Iteration.ACTIVE and status

    status = _wait(finished, 300, "the iteration to finish after the PostgreSQL restart", every=1.0)
    log = _log_tail(worker.log_path, 200_000)
    assert status == "succeeded", log[-4000:]
    rows = private_postgres.query("SELECT id, status, error FROM synth_trajectory WHERE iteration_id = %s", iteration)
    assert len(rows) == 3
    assert all(s in ("done", "rejected") for _, s, _ in rows), rows
    for pk, _, _ in rows:
        idx = [i for (i,) in private_postgres.query(
            "SELECT index FROM synth_trajectorystep WHERE trajectory_id = %s ORDER BY index", pk)]
        assert idx == list(range(len(idx))), (pk, idx)
        (finishes,), = private_postgres.query(
            "SELECT count(*) FROM synth_trajectorystep WHERE trajectory_id = %s AND kind = 'finish'", pk)
        assert finishes == 1
        (messages,), = private_postgres.query("SELECT count(*) FROM synth_message WHERE trajectory_id = %s", pk)
        (message_steps,), = private_postgres.query(
            "SELECT count(*) FROM synth_trajectorystep WHERE trajectory_id = %s AND kind = 'message'", pk)
        assert messages == message_steps
        dup = private_postgres.query(
            "SELECT verifier, round FROM synth_verifiervote WHERE trajectory_id = %s "
            "GROUP BY verifier, round HAVING count(*) > 1", pk)
        assert not dup, dup
    # The restart broke connections in use: the tasks saw it and were retried.
    assert any(word in log for word in ("OperationalError", "InterfaceError", "Retry in")), log[-4000:]
