"""The running stack: migrations, a real worker through Redis, Channels over Redis, /healthz."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction

from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_now
from inftool_web.core.models import WorkerHeartbeat
from inftool_web.core.roles import set_role
from inftool_web.routing import websocket_urlpatterns
from inftool_web.synth.models import Trajectory, VerifierVote
from tests.conftest import ROOT, worker_env
from tests.factories import IterationFactory, TrajectoryFactory, UserFactory
from tests.web.scenario import run_scenario


def _admin_conn():
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
        dbname="postgres", autocommit=True,
    )


def test_migrations_apply_to_an_empty_database_and_match_the_models():
    name = f"inftool_migtest_{uuid.uuid4().hex[:8]}"
    with _admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = worker_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}")
        run = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        plan = subprocess.run([sys.executable, "manage.py", "showmigrations", "--plan"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert "[ ]" not in plan.stdout and "[X]  synth.0001_initial" in plan.stdout
        check = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, f"models and migrations differ:\n{check.stdout}"
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
        assert {"catalog_tool", "synth_trajectory", "synth_verifiervote", "loop_iteration",
                "loop_categoryresult"} <= tables
    finally:
        with _admin_conn() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db(transaction=True)
def test_task_runs_on_a_real_worker_through_redis_and_writes_postgres(celery_worker_process):
    from inftool_web.core.tasks import heartbeat

    result = heartbeat.delay("through redis")
    row_id = result.get(timeout=60)
    row = WorkerHeartbeat.objects.get(pk=row_id)
    assert row.task_id == result.id
    assert row.note == "through redis"
    assert row.hostname.startswith("test-")  # the subprocess worker, not this process


@pytest.mark.django_db(transaction=True)
def test_websocket_consumer_receives_a_group_message_through_channels_redis():
    assert "RedisChannelLayer" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    user = UserFactory()
    set_role(user, "viewer")
    followed, other = IterationFactory(), IterationFactory()

    async def scenario():
        app = URLRouter(websocket_urlpatterns)
        comm = WebsocketCommunicator(app, f"/ws/iterations/{followed.pk}/")
        comm.scope["user"] = user
        connected, _ = await comm.connect()
        assert connected
        layer = get_channel_layer()
        await layer.group_send(iteration_group(followed.pk),
                               {"type": "inftool.event", "event": {"kind": "step", "n": 1}})
        assert await comm.receive_json_from(timeout=5) == {"kind": "step", "n": 1}
        # another iteration's events do not arrive here
        await layer.group_send(iteration_group(other.pk), {"type": "inftool.event", "event": {"other": True}})
        assert await comm.receive_nothing(timeout=0.5)
        await comm.disconnect()

        anon = WebsocketCommunicator(app, f"/ws/iterations/{followed.pk}/")
        anon.scope["user"] = AnonymousUser()
        connected, code = await anon.connect()
        assert not connected and code == 4401
        await anon.disconnect()

    run_scenario(scenario)


@pytest.mark.django_db(transaction=True)
def test_an_idle_websocket_stays_open_and_receives_later_events():
    """A consumer blocks on the channel layer for 5 s at a time: with redis-py's default read
    timeout (also 5 s) an idle socket was torn down instead (found by bench/bench_load.py)."""
    user = UserFactory()
    set_role(user, "viewer")

    async def scenario():
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/events/")
        comm.scope["user"] = user
        connected, _ = await comm.connect()
        assert connected
        assert await comm.receive_nothing(timeout=7)  # longer than the 5 s the consumer blocks
        await get_channel_layer().group_send(DASHBOARD_GROUP, {"type": "inftool.event", "event": {"late": True}})
        assert await comm.receive_json_from(timeout=5) == {"late": True}
        await comm.disconnect()

    run_scenario(scenario)


@pytest.mark.django_db(transaction=True)
def test_send_now_survives_a_dead_channel_layer(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        send_now("dashboard", {"kind": "ping"})  # logs a warning, does not raise
    finally:
        channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
def test_healthz_all_up(client, celery_worker_process, django_user_model):
    resp = client.get("/healthz")
    assert resp.status_code == 200, resp.content
    # the public probe: the database and Redis, nothing about versions, hosts or workers
    assert resp.json() == {"status": "ok", "failing": []}
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "workers"}
    assert "worker" in body["checks"]["workers"]["detail"]


@pytest.mark.django_db
def test_healthz_reports_redis_on_a_closed_port_as_down(client, settings, django_user_model):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "down", "failing": ["redis"]}
    assert b"127.0.0.1" not in resp.content  # no host names or error texts for the public
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    resp = client.get("/healthz")
    body = resp.json()
    assert resp.status_code == 503
    assert body["failing"][0] == "redis"
    assert "127.0.0.1:1" in body["checks"]["redis"]["detail"]
    assert "redis" in body["message"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_public_healthz_pings_no_worker_and_passes_with_workers_down(client, monkeypatch, django_user_model):
    """Readiness probes call it on every web pod: workers being down must not take the web
    out of service, and a hit must not fan out a ping to every worker."""
    from inftool_web.core import health

    pinged = []

    def no_workers(timeout=1.0):
        pinged.append(1)
        return health.Check("workers", False, "no Celery worker answered a ping", 0.0)

    monkeypatch.setattr(health, "check_workers", no_workers)
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok", "failing": []}
    assert pinged == []
    assert "no-cache" in resp["Cache-Control"]
    # signed in but not staff: still the public answer
    client.force_login(django_user_model.objects.create_user("viewer"))
    assert "checks" not in client.get("/healthz").json() and pinged == []
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    resp = client.get("/healthz")
    assert resp.status_code == 503 and resp.json()["failing"] == ["workers"] and pinged == [1]


@pytest.mark.django_db
def test_unknown_trajectory_kind_is_rejected_by_the_database():
    iteration = IterationFactory()
    with pytest.raises(IntegrityError, match="trajectory_mode_valid"), transaction.atomic():
        Trajectory.objects.create(iteration=iteration, seq=0, mode="quadruple")


@pytest.mark.django_db
def test_vote_for_a_missing_trajectory_is_rejected_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        VerifierVote.objects.create(trajectory_id=987654321, verifier="v1", round=0, vote="accept")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, constraint",
    [
        ({"score": 1.5}, "trajectory_score_unit_interval"),
        ({"status": "done"}, "trajectory_done_has_verdict"),
        ({"difficulty": "medium"}, "trajectory_difficulty_valid"),
    ],
)
def test_trajectory_constraints(fields, constraint):
    iteration = IterationFactory()
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Trajectory.objects.create(iteration=iteration, seq=0, mode="single", **fields)


@pytest.mark.django_db
def test_duplicate_step_index_and_vote_are_rejected():
    traj = TrajectoryFactory()
    traj.messages.create(index=0, role="user", content="hi")
    with pytest.raises(IntegrityError, match="message_unique_index"), transaction.atomic():
        traj.messages.create(index=0, role="user", content="again")
    traj.votes.create(verifier="v1", round=0, vote="accept")
    with pytest.raises(IntegrityError, match="vote_unique_per_round"), transaction.atomic():
        traj.votes.create(verifier="v1", round=0, vote="reject")


def test_plain_packages_never_import_django():
    code = (
        "import importlib, pkgutil, sys\n"
        "import synthesis, training\n"
        "for pkg in (synthesis, training):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        try:\n"
        "            importlib.import_module(m.name)\n"
        "        except ImportError as exc:\n"
        "            if 'django' in str(exc).lower(): raise\n"
        "bad = sorted(n for n in sys.modules if n == 'django' or n.startswith('django.'))\n"
        "assert not bad, bad[:5]\n"
        "print('ok', len(sys.modules))\n"
    )
    env = {k: v for k, v in worker_env().items() if k != "DJANGO_SETTINGS_MODULE"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("ok")


def test_database_connections_use_tcp_keepalives_on_both_ends(settings):
    """A dead node's advisory locks are released within a minute or two: this side probes
    the server, and the server probes this session's client."""
    opts = settings.DATABASES["default"]["OPTIONS"]
    assert opts["keepalives"] == 1
    idle, interval, count = opts["keepalives_idle"], opts["keepalives_interval"], opts["keepalives_count"]
    assert idle + interval * count <= 120
    for guc in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout"):
        assert f"-c {guc}=" in opts["options"]


@pytest.mark.django_db
def test_the_server_applies_the_keepalives_to_this_session(settings):
    opts = settings.DATABASES["default"]["OPTIONS"]
    with connection.cursor() as cur:
        cur.execute("SELECT inet_client_addr() IS NOT NULL")  # over TCP, where keepalives apply
        assert cur.fetchone()[0]
        cur.execute("SHOW tcp_keepalives_idle")
        assert cur.fetchone()[0] in (f"{opts['keepalives_idle']}", f"{opts['keepalives_idle']}s")
        cur.execute("SHOW tcp_keepalives_count")
        assert cur.fetchone()[0] == str(opts["keepalives_count"])
        cur.execute("SELECT current_setting('tcp_user_timeout')")
        assert cur.fetchone()[0] != "0"
    # and libpq was asked for them on this side
    dsn = connection.connection.info.dsn
    assert "keepalives=1" in dsn and f"keepalives_idle={opts['keepalives_idle']}" in dsn, dsn
