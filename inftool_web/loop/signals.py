"""Worker start-up and shut-down: recover work a dead worker left, run the watchdog."""

import logging

from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import close_old_connections

from .recovery import recover_orphans, watchdog_start

log = logging.getLogger(__name__)

_watchdog = None


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs) -> None:
    try:
        recover_orphans()
    except Exception:  # noqa: BLE001 - a worker must start even when recovery cannot run
        log.exception("recovering orphaned work failed")
    finally:
        close_old_connections()


@worker_ready.connect
def _start_watchdog(sender=None, **kwargs) -> None:
    global _watchdog
    if _watchdog is None:
        _watchdog = watchdog_start(period=settings.INFTOOL_WATCHDOG_SECONDS)


@worker_shutting_down.connect
def _stop_watchdog(sender=None, **kwargs) -> None:
    if _watchdog is not None:
        _watchdog.stop()
