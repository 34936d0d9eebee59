"""Shared fixtures: real PostgreSQL (pytest-django's test database), real Redis, real workers."""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# After the last test, the interpreter waits for every non-daemon thread.  A thread some test
# left stuck (once, an event loop whose shutdown never ended) held a finished CI run until the
# job's limit killed it, hiding the results.  Past this many seconds the process prints every
# thread's stack and exits with status 1 instead.
EXIT_GRACE_S = float(os.environ.get("INFTOOL_TEST_EXIT_GRACE_S", "300"))


def pytest_unconfigure(config):
    faulthandler.dump_traceback_later(EXIT_GRACE_S, exit=True)


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for a subprocess that must see the test database and the test broker."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="inftool_web.settings_test",
        DATABASE_URL=(
            f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        REDIS_URL=settings.REDIS_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class WorkerProcess:
    """A real Celery worker in a subprocess, which a test may kill and restart."""

    def __init__(self, queues: str = "default,roleplay,gpu", pool: str = "threads", concurrency: int = 4,
                 log_path: Path | None = None, extra_env: dict[str, str] | None = None):
        self.queues, self.pool, self.concurrency = queues, pool, concurrency
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        from inftool_web.celery_app import app

        cmd = [
            sys.executable, "-m", "celery", "-A", "inftool_web", "worker", "-n", self.name,
            "-Q", self.queues, "--pool", self.pool, "-c", str(self.concurrency), "-l", "info",
            "--without-gossip", "--without-mingle",
        ]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(**self.extra_env), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        hostname = self.name.replace("%h", os.uname().nodename)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited at start with code {self.proc.returncode}")
            replies = app.control.ping(destination=[hostname], timeout=0.5) or []
            if replies:
                return self
        self.kill()
        raise RuntimeError("worker did not answer a ping within the timeout")

    def kill(self, sig: int = 9) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def _clean_test_broker():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()  # the tests' own Redis database: stale tasks of an aborted run must not replay
    client.close()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, _clean_test_broker, tmp_path_factory):
    worker = WorkerProcess(log_path=tmp_path_factory.mktemp("worker") / "worker.log").start()
    yield worker
    worker.stop()


@pytest.fixture
def worker_factory(django_db_setup, _clean_test_broker, tmp_path):
    started: list[WorkerProcess] = []

    def make(**kwargs) -> WorkerProcess:
        kwargs.setdefault("log_path", tmp_path / f"worker-{len(started)}.log")
        w = WorkerProcess(**kwargs)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AsgiServer:
    """The real ASGI app (HTTP and websockets) served by uvicorn in a subprocess."""

    def __init__(self, log_path: Path, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> AsgiServer:
        import httpx

        cmd = [sys.executable, "-m", "uvicorn", "inftool_web.asgi:application", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(**self.extra_env),
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log_path.read_text()[-2000:]}")
            try:
                httpx.get(self.url + "/accounts/login/", timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("uvicorn did not start in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker, tmp_path_factory):
    server = AsgiServer(tmp_path_factory.mktemp("asgi") / "uvicorn.log").start()
    yield server
    server.stop()
