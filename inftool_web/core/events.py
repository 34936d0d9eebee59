"""Websocket events, sent only after the surrounding transaction commits."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def iteration_group(iteration_id: int) -> str:
    return f"iteration.{iteration_id}"


DASHBOARD_GROUP = "dashboard"


def user_group(user_id: int) -> str:
    """Every open socket of one user: told when the user's access changes."""
    return f"user.{user_id}"


def session_tag(session_key: str | None) -> str:
    """A session's name on the channel layer: a hash, never the key itself."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:32] if session_key else ""


def access_changed_on_commit(user_id: int, *, ended_session: str | None = None) -> None:
    """Ask the user's open sockets to check again whether they may stay open: a role, the
    account or a session changed.  ``ended_session`` (a session key) closes its sockets."""
    message = {"type": "inftool.access", "ended_session": session_tag(ended_session)}
    transaction.on_commit(lambda: _send_message(user_group(user_id), message))


def _send_message(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - a lost message must never fail the write it reports
        log.warning("could not send to %s", group, exc_info=True)


def send_now(group: str, event: dict[str, Any]) -> None:
    _send_message(group, {"type": "inftool.event", "event": event})


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(group, event))
