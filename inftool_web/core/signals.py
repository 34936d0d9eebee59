import logging

from celery.signals import worker_ready

log = logging.getLogger(__name__)


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs) -> None:
    from django.db import close_old_connections

    from inftool_web.loop.recovery import recover_orphans

    try:
        recover_orphans()
    except Exception:  # noqa: BLE001 - a worker must start even when recovery cannot run
        log.exception("recovering orphaned work failed")
    finally:
        close_old_connections()
