"""Writes for iterations and checkpoints: registering the base model, creating iterations.
An iteration's stages, status and progress belong to the state machine (``iterations.py``)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from inftool_web.core.events import DASHBOARD_GROUP, send_on_commit
from synthesis.llm.embedded import ensure_embedded_checkpoint

from .iteration_config import IterationConfig
from .iterations import Run, iteration_start
from .models import Iteration, ModelCheckpoint

BASE_CHECKPOINT_NAME = "smollm2-135m-instruct"


@transaction.atomic
def checkpoint_register_base() -> ModelCheckpoint:
    """Convert the embedded model once (cached under var/) and register it as the base checkpoint."""
    path = str(ensure_embedded_checkpoint())
    ckpt, created = ModelCheckpoint.objects.get_or_create(
        name=BASE_CHECKPOINT_NAME, defaults={"kind": ModelCheckpoint.Kind.BASE, "path": path}
    )
    if not created and ckpt.path != path:
        ckpt.path = path
        ckpt.save(update_fields=["path"])
    return ckpt


def _next_iteration_number() -> int:
    return (Iteration.objects.aggregate(m=Max("number"))["m"] or 0) + 1


def iteration_launch(*, config: dict, created_by=None, name: str = ""):
    """Validate ``config`` (raises ``ConfigError``), store the iteration and queue it after commit."""
    return iteration_create(config=config, created_by=created_by, name=name, queue=True)


def iteration_create(*, config: dict, created_by=None, name: str = "", queue: bool = False):
    """Validate ``config`` (raises ``ConfigError``) and store a new iteration, queued if asked."""
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
                    iteration_start(iteration_id=iteration.pk, run=Run.QUEUE)
                send_on_commit(DASHBOARD_GROUP, {"kind": "iteration", "id": iteration.pk, "status": iteration.status})
                return iteration
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate an iteration number")


__all__ = ["checkpoint_register_base", "iteration_create", "iteration_launch"]
