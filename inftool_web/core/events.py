"""Websocket events, sent only after the surrounding transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def iteration_group(iteration_id: int) -> str:
    return f"iteration.{iteration_id}"


DASHBOARD_GROUP = "dashboard"


def send_now(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "inftool.event", "event": event})
    except Exception:  # noqa: BLE001 - a lost live update must never fail the write it reports
        log.warning("could not send event to %s", group, exc_info=True)


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(group, event))
