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
