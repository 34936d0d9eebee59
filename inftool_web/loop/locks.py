"""Every PostgreSQL advisory lock of the loop, in one place.

Session locks die with their connection, so work whose lock is free has no runner: the
recovery sweep (``recovery.py``) reads them to find work a dead worker left behind.

    trajectory_locks(ids)        one runner per trajectory, across every worker
    iteration_stage_lock(id)     one runner of an iteration's training or evaluation stage
    WATCHDOG_LOCK_KEY            one recovery sweep at a time, cluster-wide
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection

TRAJECTORY_NAMESPACE = 0x1F7001
ITERATION_NAMESPACE = 0x1F7002
WATCHDOG_LOCK_KEY = 0x1F7003 << 40


def trajectory_lock_key(pk: int) -> int:
    return (TRAJECTORY_NAMESPACE << 40) | pk


def iteration_lock_key(pk: int) -> int:
    return (ITERATION_NAMESPACE << 40) | pk


def try_lock(key: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        return bool(cur.fetchone()[0])


def unlock(keys: list[int]) -> None:
    if keys and connection.connection is not None:
        with connection.cursor() as cur:
            for key in keys:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])


def is_free(key: int) -> bool:
    """True when no session holds ``key`` (checked by taking and dropping it)."""
    got = try_lock(key)
    if got:
        unlock([key])
    return got


@contextlib.contextmanager
def trajectory_locks(ids: list[int]) -> Iterator[set[int]]:
    """Yields the ids of ``ids`` this process now runs; a second delivery of the same task
    skips the trajectories another worker still holds."""
    held = {pk for pk in ids if try_lock(trajectory_lock_key(pk))}
    try:
        yield held
    finally:
        unlock([trajectory_lock_key(pk) for pk in held])


@contextlib.contextmanager
def iteration_stage_lock(iteration_id: int) -> Iterator[bool]:
    """Held while a training or evaluation stage runs; yields False if another worker has it."""
    key = iteration_lock_key(iteration_id)
    got = try_lock(key)
    try:
        yield got
    finally:
        if got:
            unlock([key])
