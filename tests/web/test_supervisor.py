"""`make run`'s supervisor (manage.py runstack): a worker killed with -9 is started again
after a backoff, the web server stays up, and /healthz and the dashboard show the worker
as down until it answers again."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid

import pytest

from inftool_web.core import health
from inftool_web.core.supervisor import Supervisor
from tests.conftest import worker_env
from tests.factories import UserFactory

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.2)"]


def _wait(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def test_a_dead_child_restarts_with_backoff_and_the_rest_stays_up():
    logs: list[str] = []
    sup = Supervisor({"web": SLEEPER, "worker": SLEEPER}, backoff_initial=0.5, backoff_max=2.0,
                     stable_after=60, log=logs.append)
    sup.start()
    try:
        web_pid = sup.children["web"].proc.pid
        for expected_backoff in (0.5, 1.0, 2.0, 2.0):  # doubling, capped
            worker = sup.children["worker"]
            os.kill(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait()
            sup.tick()
            assert worker.restart_at is not None and worker.backoff == expected_backoff
            assert not worker.up and sup.children["web"].up
            sup.tick()  # not yet due
            assert not worker.up
            assert _wait(lambda w=worker: (sup.tick(), w.up)[1], timeout=expected_backoff + 5)
        assert sup.children["worker"].restarts == 4 and sup.children["worker"].exit_codes == [-9] * 4
        assert sup.children["web"].proc.pid == web_pid and sup.children["web"].restarts == 0
        assert any("worker exited with code -9" in line for line in logs)
    finally:
        sup.stop(timeout=10)
    assert not any(c.up for c in sup.children.values())


def test_a_child_up_a_while_restarts_fast_again():
    now = [0.0]
    sup = Supervisor({"w": SLEEPER}, backoff_initial=1, backoff_max=60, stable_after=30,
                     log=lambda _m: None, clock=lambda: now[0])
    sup.start()
    try:
        child = sup.children["w"]
        child.backoff = 16.0  # after several quick crashes
        now[0] = 31.0
        sup.tick()
        assert child.backoff == 0.0
        os.kill(child.proc.pid, signal.SIGKILL)
        child.proc.wait()
        sup.tick()
        assert child.backoff == 1
    finally:
        sup.stop(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_with_minus_9_is_down_then_back(client, settings, _clean_test_broker, tmp_path):
    """The real thing: a Celery worker under the supervisor, killed with SIGKILL."""
    kind = f"sup{uuid.uuid4().hex[:6]}"
    settings.INFTOOL_EXPECTED_WORKERS = [kind]
    argv = [sys.executable, "-m", "celery", "-A", "inftool_web", "worker", "-n", f"{kind}@%h", "-Q", f"q-{kind}",
            "--pool", "solo", "-l", "warning", "--without-gossip", "--without-mingle"]
    sup = Supervisor({"web": SLEEPER, "worker": argv}, env=worker_env(), backoff_initial=1, log=lambda _m: None)
    staff = UserFactory(is_staff=True)
    from inftool_web.core.roles import set_role

    set_role(staff, "viewer")
    client.force_login(staff)

    def workers_up() -> bool:
        health._STATUS_CACHE.clear()
        return health.worker_status(timeout=0.5) == [{"name": kind, "up": True}]

    sup.start()
    try:
        assert _wait(workers_up, timeout=90, step=0.5), "the worker never answered"
        assert client.get("/healthz").json()["status"] == "ok"

        os.kill(sup.children["worker"].proc.pid, signal.SIGKILL)
        sup.children["worker"].proc.wait()
        health._STATUS_CACHE.clear()
        page = client.get("/workers/").content.decode()
        assert f"{kind} down" in page and "w-down" in page
        body = client.get("/healthz").json()
        assert body["status"] == "down" and body["failing"] == ["workers"]
        assert "no Celery worker answered" in body["message"] or f"not answering: {kind}" in body["message"]
        assert client.get("/healthz", HTTP_HOST="localhost").status_code == 503  # staff view
        client.logout()
        assert client.get("/healthz").status_code == 200  # the public probe: the web is fine

        assert _wait(lambda: (sup.tick(), workers_up())[1], timeout=120, step=0.5), "not restarted"
        assert sup.children["worker"].restarts == 1 and sup.children["web"].restarts == 0
        client.force_login(staff)

        def shown_up() -> bool:
            health._STATUS_CACHE.clear()
            return f"{kind} up" in client.get("/workers/").content.decode()

        assert _wait(shown_up, timeout=30, step=0.5)  # a ping can miss one reply on a busy box
    finally:
        sup.stop(timeout=30)


@pytest.mark.django_db
def test_an_expected_worker_missing_among_others_is_named(client, settings, monkeypatch):
    settings.INFTOOL_EXPECTED_WORKERS = ["roleplay", "gpu"]
    monkeypatch.setattr(health, "_ping_workers", lambda timeout: ["roleplay@node-1"])
    health._STATUS_CACHE.clear()
    assert health.worker_status() == [{"name": "roleplay", "up": True}, {"name": "gpu", "up": False}]
    check = health.check_workers()
    assert not check.ok and "not answering: gpu" in check.detail
    user = UserFactory()
    from inftool_web.core.roles import set_role

    set_role(user, "viewer")
    client.force_login(user)
    page = client.get("/workers/").content.decode()
    assert "gpu down" in page and "roleplay up" in page and "node-1" not in page  # no host names
    dashboard = client.get("/").content.decode()
    assert 'hx-get="/workers/"' in dashboard
