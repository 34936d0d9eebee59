"""The stages of an iteration, each a Celery task that hands over to the next:

    run_iteration (default queue)      plan trajectories, queue one task per trajectory
    synthesize_trajectory (roleplay)   ... the last one to finish moves the iteration on
    train_iteration (gpu)              SFT on accepted trajectories, GRPO on hard ones
    evaluate_iteration (gpu)           BFCL V3 before/after, register the new checkpoint

Every hand-over locks the iteration row and checks its status, so a re-delivered task
never runs a stage twice and a cancelled iteration stops where it is.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_on_commit

from .models import Iteration

log = logging.getLogger(__name__)


def _set_status(it: Iteration, status: str, detail: str = "", error: str = "") -> None:
    it.status = status
    it.stage_detail = detail[:500]
    if error:
        it.error = error[:8000]
    fields = ["status", "stage_detail", "error"]
    if status in ("succeeded", "failed", "cancelled"):
        it.finished_at = timezone.now()
        fields.append("finished_at")
    it.save(update_fields=fields)
    event = {"kind": "iteration", "id": it.pk, "status": status, "detail": it.stage_detail}
    send_on_commit(iteration_group(it.pk), event)
    send_on_commit(DASHBOARD_GROUP, event)


def iteration_fail(*, iteration_id: int, error: str) -> None:
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.is_active:
            _set_status(it, Iteration.Status.FAILED, "failed", error=error or "failed")


def iteration_run(*, iteration_id: int) -> int:
    """Start (or restart after a lost worker) the synthesis stage; returns tasks queued."""
    from inftool_web.synth.models import Trajectory
    from inftool_web.synth.services import TERMINAL, iteration_plan_trajectories
    from inftool_web.synth.tasks import synthesize_trajectory

    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.status not in (Iteration.Status.QUEUED, Iteration.Status.SYNTHESIZING):
            return 0
        if it.started_at is None:
            it.started_at = timezone.now()
            it.save(update_fields=["started_at"])
        _set_status(it, Iteration.Status.SYNTHESIZING, "planning trajectories")
    try:
        iteration_plan_trajectories(iteration=it)
    except ValueError as exc:
        iteration_fail(iteration_id=iteration_id, error=str(exc))
        return 0
    pending = list(
        Trajectory.objects.filter(iteration_id=iteration_id).exclude(status__in=TERMINAL)
        .order_by("seq").values_list("pk", flat=True)
    )
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        _set_status(it, Iteration.Status.SYNTHESIZING, f"synthesizing {len(pending)} trajectories")
        for pk in pending:
            transaction.on_commit(lambda pk=pk: synthesize_trajectory.delay(pk))
    if not pending:
        iteration_after_synthesis(iteration_id=iteration_id)
    return len(pending)


def iteration_after_synthesis(*, iteration_id: int) -> bool:
    """Publish progress; when every trajectory has finished, hand over to training once."""
    from inftool_web.synth.services import iteration_publish_progress, iteration_synthesis_finished

    iteration_publish_progress(iteration_id)
    if not iteration_synthesis_finished(iteration_id):
        return False
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.status != Iteration.Status.SYNTHESIZING:
            return False
        profile = it.config.get("profile", "cpu")
        if profile == "none":
            it.output_checkpoint = it.input_checkpoint
            it.save(update_fields=["output_checkpoint"])
            _set_status(it, Iteration.Status.SUCCEEDED, "synthesis finished (no training)")
            return True
        _set_status(it, Iteration.Status.TRAINING, "queued for training")
        from .tasks import train_iteration

        transaction.on_commit(lambda: train_iteration.delay(iteration_id))
    return True
