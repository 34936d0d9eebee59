"""Pick up work that no live worker will finish.

With Redis as broker, a task whose worker died unacknowledged comes back only after the
visibility timeout (hours, since training tasks are long), and a Redis restart without
persistence loses every queued task.  Every runner holds a PostgreSQL advisory lock that dies
with its connection, so work marked as running whose lock is free has no runner, and work
still pending long after it was queued with nothing left in its queue was lost.

Two entry points: :func:`recover_orphans` when a worker starts, and :class:`Watchdog`, a
thread in every worker that calls :func:`watchdog_sweep` every ``INFTOOL_WATCHDOG_SECONDS``.
Tasks are idempotent and resume from stored steps, so a duplicate costs little; the sweep
still avoids flooding the queues: it re-queues an item at most once per grace period and
queues pending work again only when its queue is empty.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, Q
from django.utils import timezone

from inftool_web.celery_app import app as celery_app
from inftool_web.synth.models import TERMINAL, Trajectory

from . import iterations
from .iteration_config import IterationConfig
from .iterations import TASK_EVALUATE, TASK_PLAN, TASK_TRAIN, TASK_TRAJECTORY, Run, enqueue
from .locks import WATCHDOG_LOCK_KEY, is_free, iteration_lock_key, trajectory_lock_key, try_lock
from .models import Iteration

log = logging.getLogger(__name__)
# Grace period, in watchdog periods.  Longer than the role-play task's longest retry backoff
# (300 s) at the default period, so a task waiting to retry is seldom doubled.
GRACE_PERIODS = 3
# Most items re-queued per kind and sweep: a large backlog lost with Redis goes back in
# slices, each once the queue has drained.
SWEEP_BATCH = 1000


def recover_orphans() -> dict[str, int]:
    """Queue again the trajectories and iteration stages that nobody is running."""
    requeued = {"trajectories": 0, "stages": 0}
    orphans = Trajectory.objects.filter(
        status__in=["running", "verifying"], iteration__status="synthesizing"
    ).values_list("pk", flat=True)
    for pk in orphans.iterator():
        if is_free(trajectory_lock_key(pk)):
            transaction.on_commit(lambda pk=pk: enqueue(TASK_TRAJECTORY, pk))
            requeued["trajectories"] += 1
    for it in Iteration.objects.filter(status__in=["training", "evaluating"]):
        if is_free(iteration_lock_key(it.pk)):
            task = TASK_TRAIN if it.status == "training" else TASK_EVALUATE
            transaction.on_commit(lambda t=task, pk=it.pk: enqueue(t, pk))
            requeued["stages"] += 1
    if any(requeued.values()):
        log.warning("re-queued work left by a lost worker: %s", requeued)
    return requeued


# ----------------------------------------------------------------------------- watchdog


def _queue_of(task_name: str) -> str:
    route = celery_app.amqp.router.route({}, task_name, args=(), kwargs={})
    queue = route.get("queue")
    return getattr(queue, "name", None) or str(queue or celery_app.conf.task_default_queue)


def _queue_size(app, queue: str) -> int:
    """Messages waiting in ``queue`` (not those a worker has reserved)."""
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        # kombu's passive queue_declare on Redis ignores the global key prefix and reports a
        # waiting queue as missing; the transport's own count (every priority list) does not.
        size = getattr(channel, "_size", None)
        if size is not None:
            return int(size(queue))
        return channel.queue_declare(queue=queue, passive=True).message_count


def watchdog_sweep(*, grace: float, claim=None, batch: int = SWEEP_BATCH) -> dict[str, int]:
    """Re-queue stranded work once; returns how many items of each kind were re-queued.

    ``claim(name)`` returns True at most once per grace period for the same ``name`` (see
    :meth:`Watchdog.claim`); it rate-limits iteration-level work, which has no timestamp to
    touch.  Without it, iteration-level work is re-queued on every sweep.
    """
    claim = claim or (lambda name: True)
    app = celery_app
    now = timezone.now()
    cutoff = now - timedelta(seconds=grace)
    done = {"pending": 0, "orphans": 0, "handed_over": 0, "iterations": 0, "stages": 0}

    def requeue_trajectory(pk: int, kind: str) -> None:
        enqueue(TASK_TRAJECTORY, pk)
        # Stamped after queueing: if the broker is down, the next sweep tries again at once.
        Trajectory.objects.filter(pk=pk).update(updated_at=timezone.now())
        done[kind] += 1

    synthesizing = Trajectory.objects.filter(
        iteration__status=Iteration.Status.SYNTHESIZING, updated_at__lt=cutoff
    )
    # A pending trajectory waits in the queue as long as the backlog ahead of it lasts; only
    # when nothing is queued can one that old have been lost.
    if _queue_size(app, _queue_of(TASK_TRAJECTORY)) == 0:
        stale = synthesizing.filter(status=Trajectory.Status.PENDING).order_by("updated_at")
        for pk in stale.values_list("pk", flat=True)[:batch]:
            if is_free(trajectory_lock_key(pk)):
                requeue_trajectory(pk, "pending")
    orphans = synthesizing.filter(
        status__in=[Trajectory.Status.RUNNING, Trajectory.Status.VERIFYING]
    )
    for pk in orphans.order_by("updated_at").values_list("pk", flat=True)[:batch]:
        if is_free(trajectory_lock_key(pk)):
            requeue_trajectory(pk, "orphans")

    # Iterations whose last trajectory finished without handing over (its task was lost
    # after storing the finish step), or whose planning task was lost.
    counts = {
        row["iteration"]: row
        for row in Trajectory.objects.filter(iteration__status=Iteration.Status.SYNTHESIZING)
        .values("iteration")
        .annotate(total=Count("id"), open=Count("id", filter=~Q(status__in=TERMINAL)))
    }
    for it in Iteration.objects.filter(status=Iteration.Status.SYNTHESIZING):
        row = counts.get(it.pk, {"total": 0, "open": 0})
        try:
            planned = row["total"] >= IterationConfig.from_dict(it.config).count
        except ValueError:
            planned = row["total"] > 0
        if planned and row["open"] == 0:
            if iterations.synthesis_finished(iteration_id=it.pk, run=Run.QUEUE):
                done["handed_over"] += 1
        elif not planned and (it.started_at or it.created_at) < cutoff and claim(f"plan:{it.pk}"):
            enqueue(TASK_PLAN, it.pk)
            done["iterations"] += 1
    queued = Iteration.objects.filter(status=Iteration.Status.QUEUED, created_at__lt=cutoff)
    if queued.exists() and _queue_size(app, _queue_of(TASK_PLAN)) == 0:
        for pk in queued.values_list("pk", flat=True)[:batch]:
            if claim(f"plan:{pk}"):
                enqueue(TASK_PLAN, pk)
                done["iterations"] += 1

    for it in Iteration.objects.filter(
        status__in=[Iteration.Status.TRAINING, Iteration.Status.EVALUATING]
    ):
        task = TASK_TRAIN if it.status == Iteration.Status.TRAINING else TASK_EVALUATE
        if (
            is_free(iteration_lock_key(it.pk))
            and _queue_size(app, _queue_of(task)) == 0
            and claim(f"{it.status}:{it.pk}")
        ):
            enqueue(task, it.pk)
            done["stages"] += 1

    if any(done.values()):
        log.warning("watchdog re-queued stranded work: %s", done)
    return done


class Watchdog(threading.Thread):
    """Sweeps for stranded work every ``period`` seconds; one sweep at a time cluster-wide.

    A Redis lease (``SET NX PX``) lets one worker sweep per period, and a PostgreSQL advisory
    lock keeps two sweeps from overlapping when one outlasts the lease.  Redis or PostgreSQL
    being down only costs a period: the error is logged and the next period tries again.
    """

    def __init__(
        self, *, period: float, grace: float | None = None, name: str = "inftool-watchdog"
    ):
        super().__init__(name=name, daemon=True)
        self.period = float(period)
        self.grace = float(grace if grace is not None else GRACE_PERIODS * self.period)
        self.stopped = threading.Event()
        self._redis = None
        self._prefix = ""

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            self.tick()

    def tick(self) -> dict[str, int] | None:
        try:
            if not self._lease():
                return None
            if not try_lock(WATCHDOG_LOCK_KEY):
                return None
            return watchdog_sweep(grace=self.grace, claim=self.claim)
        except Exception:  # noqa: BLE001 - the next period tries again
            log.warning("watchdog sweep failed; retrying in %.0f s", self.period, exc_info=True)
            return None
        finally:
            # Closing the connection also releases the sweep lock, and a connection broken by a
            # database restart is not reused.
            connections.close_all()

    def _client(self):
        if self._redis is None:
            self._prefix = (settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}).get(
                "global_keyprefix", ""
            )
            self._redis = redis.Redis.from_url(
                settings.CELERY_BROKER_URL, socket_timeout=5, socket_connect_timeout=5
            )
        return self._redis

    def _lease(self) -> bool:
        ttl = max(int(self.period * 900), 1)  # 0.9 period: the holder's next tick finds it free
        holder = f"{socket.gethostname()}:{os.getpid()}"
        return bool(
            self._client().set(f"{self._prefix}inftool:watchdog:lease", holder, nx=True, px=ttl)
        )

    def claim(self, name: str) -> bool:
        ttl = max(int(self.grace * 1000), 1)
        return bool(
            self._client().set(
                f"{self._prefix}inftool:watchdog:requeued:{name}", 1, nx=True, px=ttl
            )
        )


def watchdog_start(*, period: float) -> Watchdog | None:
    """Start this process's watchdog thread (none if ``period`` is 0 or less)."""
    if period <= 0:
        return None
    dog = Watchdog(period=period)
    dog.start()
    return dog
