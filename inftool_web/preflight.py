"""Set-up checks run by `make run` and `make test` before Django starts.

Checks that PostgreSQL and Redis answer (saying which one is down and how to start it),
and creates the application database when it does not exist yet.  Exits non-zero on failure.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

import psycopg
import redis
from psycopg import sql

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
)


def _fail(message: str) -> None:
    print(f"\n[inftool] {message}\n", file=sys.stderr)
    raise SystemExit(2)


def check_postgres(database_url: str) -> None:
    url = urlparse(database_url)
    dbname = (url.path or "/inftool").lstrip("/") or "inftool"
    admin_conninfo = dict(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname="postgres",
        connect_timeout=3,
    )
    try:
        conn = psycopg.connect(autocommit=True, **{k: v for k, v in admin_conninfo.items() if v is not None})
    except psycopg.OperationalError as exc:
        _fail(
            f"PostgreSQL is not reachable at {admin_conninfo['host']}:{admin_conninfo['port']} "
            f"({str(exc).strip().splitlines()[0]}).\n"
            f"Start it (as root) with:\n    {START_POSTGRES}\n"
            "or point DATABASE_URL at a running server."
        )
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            print(f"[inftool] created database {dbname}")
    print(f"[inftool] PostgreSQL ok ({admin_conninfo['host']}:{admin_conninfo['port']}/{dbname})")


def check_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        _fail(
            f"Redis is not reachable at {redis_url} ({exc}).\n"
            f"Start it with:\n    {START_REDIS}\n"
            "or point REDIS_URL at a running server."
        )
    finally:
        client.close()
    print(f"[inftool] Redis ok ({redis_url})")


def main() -> None:
    check_postgres(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inftool"))
    check_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


if __name__ == "__main__":
    main()
