"""Role-play tasks: one idempotent task per trajectory, on the ``roleplay`` queue.

Tasks are acknowledged late: a worker killed mid-trajectory leaves the message in Redis,
another worker receives it again, and the task resumes from the stored steps.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from synthesis.llm.base import BackendUnavailable

log = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, BackendUnavailable, ConnectionError, TimeoutError)


@shared_task(
    bind=True,
    name="inftool_web.synth.tasks.synthesize_trajectory",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=settings.INFTOOL_TASK_RETRY_BACKOFF,
    retry_backoff_max=settings.INFTOOL_TASK_RETRY_BACKOFF_MAX,
    max_retries=settings.INFTOOL_TASK_MAX_RETRIES,
)
def synthesize_trajectory(self, trajectory_id: int) -> str:
    from inftool_web.loop.pipeline import iteration_after_synthesis

    from .models import Trajectory
    from .services import trajectories_run, trajectory_mark_failed

    try:
        trajectories_run(trajectory_ids=[trajectory_id])
    except TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            trajectory_mark_failed(
                trajectory_id=trajectory_id,
                error=f"gave up after {self.request.retries} retries: {type(exc).__name__}: {exc}",
            )
        else:
            raise
    except Exception as exc:  # noqa: BLE001 - record it on the row; the iteration goes on
        log.exception("trajectory %s failed", trajectory_id)
        trajectory_mark_failed(trajectory_id=trajectory_id, error=f"{type(exc).__name__}: {exc}")
    iteration_id = Trajectory.objects.filter(pk=trajectory_id).values_list("iteration_id", flat=True).first()
    if iteration_id is not None:
        iteration_after_synthesis(iteration_id=iteration_id)
    return Trajectory.objects.filter(pk=trajectory_id).values_list("status", flat=True).first() or "missing"
