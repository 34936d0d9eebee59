"""Checks of the parts InfTool needs: PostgreSQL, Redis and at least one Celery worker."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from inftool_web.celery_app import app


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    ms: float

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail, "ms": round(self.ms, 1)}


def _timed(name: str, fn) -> Check:
    t0 = time.perf_counter()
    try:
        detail = fn()
        return Check(name, True, detail, (time.perf_counter() - t0) * 1000)
    except Exception as exc:  # noqa: BLE001 - every failure must be reported, not raised
        return Check(name, False, f"{type(exc).__name__}: {exc}", (time.perf_counter() - t0) * 1000)


def check_database() -> Check:
    def run() -> str:
        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            version = cur.fetchone()[0]
        return version.split(",")[0]

    return _timed("database", run)


def check_redis(url: str | None = None) -> Check:
    url = url or settings.REDIS_URL

    def run() -> str:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            client.ping()
            return f"redis {client.info('server')['redis_version']} at {_redact(url)}"
        except redis.exceptions.ConnectionError as exc:
            raise ConnectionError(f"cannot reach Redis at {_redact(url)} ({exc})") from None
        finally:
            client.close()

    return _timed("redis", run)


def _ping_workers(timeout: float) -> list[str]:
    # every answer within the timeout: stopping at the first few could miss an expected
    # worker behind workers of other names
    replies = app.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)


def missing_workers(names: list[str]) -> list[str]:
    """The expected workers (INFTOOL_EXPECTED_WORKERS) none of ``names`` is."""
    kinds = {name.split("@", 1)[0] for name in names}
    return [w for w in settings.INFTOOL_EXPECTED_WORKERS if w not in kinds]


def check_workers(timeout: float = 1.0) -> Check:
    def run() -> str:
        names = _ping_workers(timeout)
        if not names:
            raise RuntimeError("no Celery worker answered a ping")
        missing = missing_workers(names)
        if missing:
            raise RuntimeError(f"not answering: {', '.join(missing)} (answering: {', '.join(names)})")
        return f"{len(names)} worker(s): {', '.join(names)}"

    return _timed("workers", run)


_STATUS_CACHE: dict[str, tuple[float, list[dict]]] = {}
STATUS_TTL = 10.0  # seconds a web process reuses its last ping: pages must not ping per hit


def worker_status(timeout: float = 1.0) -> list[dict]:
    """For the dashboard: ``[{"name": "roleplay", "up": True}, ...]`` per expected worker
    (or one line for "any worker" when none is configured); no host names."""
    now = time.monotonic()
    cached = _STATUS_CACHE.get("status")
    if cached and now - cached[0] < STATUS_TTL:
        return cached[1]
    try:
        names = _ping_workers(timeout)
    except Exception:  # noqa: BLE001 - Redis down: no worker can be reached either
        names = []
    if settings.INFTOOL_EXPECTED_WORKERS:
        missing = set(missing_workers(names))
        status = [{"name": w, "up": w not in missing} for w in settings.INFTOOL_EXPECTED_WORKERS]
    else:
        status = [{"name": f"{len(names)} worker(s)" if names else "workers", "up": bool(names)}]
    _STATUS_CACHE["status"] = (now, status)
    return status


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def run_checks(*, redis_url: str | None = None, check_celery: bool = True) -> list[Check]:
    checks = [check_database(), check_redis(redis_url)]
    # A worker ping goes through Redis; with Redis down it can only fail, so say that instead.
    if check_celery:
        if checks[1].ok:
            checks.append(check_workers())
        else:
            checks.append(Check("workers", False, "not checked: Redis is down", 0.0))
    return checks
