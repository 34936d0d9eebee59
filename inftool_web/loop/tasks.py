"""Celery tasks of the loop: thin triggers that call the state machine (``iterations.py``).

Tasks are acknowledged late: a worker killed mid-task leaves the message in Redis, another
worker receives it again, and the stage resumes from what was stored.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from inftool_web.synth.models import Trajectory
from synthesis.llm.base import BackendUnavailable

from . import iterations
from .iterations import (
    TASK_EVALUATE,
    TASK_PLAN,
    TASK_TRAIN,
    TASK_TRAJECTORIES,
    TASK_TRAJECTORY,
    Run,
)

log = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, BackendUnavailable, ConnectionError, TimeoutError)


@shared_task(name=TASK_PLAN, acks_late=True, reject_on_worker_lost=True)
def run_iteration(iteration_id: int) -> int:
    return iterations.iteration_synthesize(iteration_id=iteration_id, run=Run.QUEUE)


_RETRYING = dict(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=settings.INFTOOL_TASK_RETRY_BACKOFF,
    retry_backoff_max=settings.INFTOOL_TASK_RETRY_BACKOFF_MAX,
    max_retries=settings.INFTOOL_TASK_MAX_RETRIES,
)


def _run_chunk(task, trajectory_ids: list[int]) -> dict[str, int]:
    """Run trajectories together; what breaks fails the unfinished ones, keeping what was
    stored; transient errors are retried by the task until its retries run out."""
    try:
        iterations.trajectories_run(trajectory_ids=trajectory_ids,
                                    deadline_s=settings.INFTOOL_TRAJECTORY_DEADLINE_SECONDS)
    except TRANSIENT as exc:
        if task.request.retries < task.max_retries:
            raise
        for pk in trajectory_ids:
            iterations.trajectory_mark_failed(
                trajectory_id=pk, error=f"gave up after {task.request.retries} retries: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - record it on the rows; the iteration goes on
        log.exception("trajectories %s failed", trajectory_ids)
        for pk in trajectory_ids:
            iterations.trajectory_mark_failed(trajectory_id=pk, error=f"{type(exc).__name__}: {exc}")
    return iterations.trajectories_finished(trajectory_ids=trajectory_ids, run=Run.QUEUE)


@shared_task(bind=True, name=TASK_TRAJECTORIES, **_RETRYING)
def synthesize_trajectories(self, trajectory_ids: list[int]) -> dict[str, int]:
    """A chunk of trajectories run together in this worker, so that the model decodes them in
    one batch (``INFTOOL_SYNTH_CHUNK`` a task; a worker with ``-c N`` threads keeps N chunks in
    flight). Each trajectory stays idempotent: finished ones are skipped, stored steps resume."""
    return _run_chunk(self, trajectory_ids)


@shared_task(bind=True, name=TASK_TRAJECTORY, **_RETRYING)
def synthesize_trajectory(self, trajectory_id: int) -> str:
    """One trajectory (what recovery re-queues, and messages queued by earlier versions)."""
    _run_chunk(self, [trajectory_id])
    return Trajectory.objects.filter(pk=trajectory_id).values_list("status", flat=True).first() or "missing"


@shared_task(name=TASK_TRAIN, acks_late=True, reject_on_worker_lost=True)
def train_iteration(iteration_id: int) -> None:
    iterations.iteration_train(iteration_id=iteration_id, run=Run.QUEUE)


@shared_task(name=TASK_EVALUATE, acks_late=True, reject_on_worker_lost=True)
def evaluate_iteration(iteration_id: int) -> None:
    iterations.iteration_evaluate(iteration_id=iteration_id, run=Run.QUEUE)
