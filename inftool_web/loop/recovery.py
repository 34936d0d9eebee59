"""Pick up work a killed worker left behind.

With Redis as broker, a task whose worker died unacknowledged comes back only after the
visibility timeout (hours, since training tasks are long).  So each worker, when it starts,
looks for work that is marked as running but that no live worker holds — every runner holds
a PostgreSQL advisory lock that dies with its connection — and queues it again.  Tasks are
idempotent and resume from stored steps, so a second delivery costs nothing.
"""

from __future__ import annotations

import contextlib
import logging

from django.db import connection, transaction

log = logging.getLogger(__name__)

ITERATION_LOCK_NAMESPACE = 0x1F7002


def iteration_lock_key(pk: int) -> int:
    return (ITERATION_LOCK_NAMESPACE << 40) | pk


@contextlib.contextmanager
def iteration_stage_lock(iteration_id: int):
    """Held while a training or evaluation stage runs; yields False if another worker has it."""
    key = iteration_lock_key(iteration_id)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = cur.fetchone()[0]
    try:
        yield got
    finally:
        if got and connection.connection is not None:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])


def _is_free(key: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = cur.fetchone()[0]
        if got:
            cur.execute("SELECT pg_advisory_unlock(%s)", [key])
    return got


def recover_orphans() -> dict[str, int]:
    """Queue again the trajectories and iteration stages that nobody is running."""
    from inftool_web.synth.models import Trajectory
    from inftool_web.synth.services import _lock_key
    from inftool_web.synth.tasks import synthesize_trajectory

    from .models import Iteration
    from .tasks import evaluate_iteration, train_iteration

    requeued = {"trajectories": 0, "stages": 0}
    orphans = Trajectory.objects.filter(
        status__in=["running", "verifying"], iteration__status="synthesizing"
    ).values_list("pk", flat=True)
    for pk in orphans.iterator():
        if _is_free(_lock_key(pk)):
            transaction.on_commit(lambda pk=pk: synthesize_trajectory.delay(pk))
            requeued["trajectories"] += 1
    for it in Iteration.objects.filter(status__in=["training", "evaluating"]):
        if _is_free(iteration_lock_key(it.pk)):
            task = train_iteration if it.status == "training" else evaluate_iteration
            transaction.on_commit(lambda t=task, pk=it.pk: t.delay(pk))
            requeued["stages"] += 1
    if any(requeued.values()):
        log.warning("re-queued work left by a lost worker: %s", requeued)
    return requeued
