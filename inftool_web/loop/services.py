"""Writes for iterations, checkpoints, training and evaluation runs."""

from __future__ import annotations

from django.db import transaction

from .models import ModelCheckpoint

BASE_CHECKPOINT_NAME = "smollm2-135m-instruct"


@transaction.atomic
def checkpoint_register_base() -> ModelCheckpoint:
    """Convert the embedded model once (cached under var/) and register it as the base checkpoint."""
    from synthesis.llm.embedded import ensure_embedded_checkpoint

    path = str(ensure_embedded_checkpoint())
    ckpt, created = ModelCheckpoint.objects.get_or_create(
        name=BASE_CHECKPOINT_NAME, defaults={"kind": ModelCheckpoint.Kind.BASE, "path": path}
    )
    if not created and ckpt.path != path:
        ckpt.path = path
        ckpt.save(update_fields=["path"])
    return ckpt


def _next_iteration_number() -> int:
    from django.db.models import Max

    from .models import Iteration

    return (Iteration.objects.aggregate(m=Max("number"))["m"] or 0) + 1


def iteration_launch(*, config: dict, created_by=None, name: str = ""):
    """Validate ``config`` (raises ``ConfigError``), store the iteration and queue it after commit."""
    return iteration_create(config=config, created_by=created_by, name=name, queue=True)


def iteration_create(*, config: dict, created_by=None, name: str = "", queue: bool = False):
    """Validate ``config`` (raises ``ConfigError``) and store a new iteration, queued if asked."""
    from django.db import IntegrityError

    from inftool_web.core.events import DASHBOARD_GROUP, send_on_commit

    from .iteration_config import IterationConfig
    from .models import Iteration

    cfg = IterationConfig.from_dict(config)
    for _ in range(5):  # two launches at once may race for the same number
        try:
            with transaction.atomic():
                base = ModelCheckpoint.objects.order_by("-created_at").filter(kind__in=["base", "sft", "grpo"]).first()
                latest_output = (
                    Iteration.objects.filter(status="succeeded", output_checkpoint__isnull=False)
                    .order_by("-number").values_list("output_checkpoint", flat=True).first()
                )
                iteration = Iteration.objects.create(
                    number=_next_iteration_number(),
                    name=name[:200],
                    config=cfg.to_dict(),
                    created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
                    input_checkpoint_id=latest_output or (base.pk if base else None),
                )
                if queue:
                    transaction.on_commit(lambda pk=iteration.pk: _queue_iteration(pk))
                send_on_commit(DASHBOARD_GROUP, {"kind": "iteration", "id": iteration.pk, "status": iteration.status})
                return iteration
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate an iteration number")


def _queue_iteration(iteration_id: int) -> None:
    from .tasks import run_iteration

    run_iteration.delay(iteration_id)


def iteration_cancel(*, iteration):
    """Mark an active iteration cancelled; its tasks check the status and stop at the next step."""
    from django.utils import timezone

    from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_on_commit

    from .models import Iteration

    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration.pk)
        if not it.is_active:
            return it
        it.status = Iteration.Status.CANCELLED
        it.finished_at = timezone.now()
        it.save(update_fields=["status", "finished_at"])
        event = {"kind": "iteration", "id": it.pk, "status": it.status}
        send_on_commit(iteration_group(it.pk), event)
        send_on_commit(DASHBOARD_GROUP, event)
    return it
