"""Writes for checkpoints, and launching an iteration from the UI or the API.
An iteration's creation, stages, status and progress belong to the state machine
(``iterations.py``)."""

from __future__ import annotations

from django.db import transaction

from synthesis.llm.embedded import ensure_embedded_checkpoint

from .iterations import iteration_create
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


def iteration_launch(*, config: dict, created_by=None, name: str = "") -> Iteration:
    """Validate ``config`` (raises ``ConfigError``), store the iteration and queue it after commit."""
    return iteration_create(config=config, created_by=created_by, name=name, queue=True)


__all__ = ["checkpoint_register_base", "iteration_create", "iteration_launch"]
