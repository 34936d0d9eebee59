import socket

from celery import shared_task

from .models import WorkerHeartbeat


@shared_task(bind=True, name="core.heartbeat")
def heartbeat(self, note: str = "") -> int:
    """Store one row proving that a worker took a task from the broker and wrote PostgreSQL."""
    row, _ = WorkerHeartbeat.objects.get_or_create(
        task_id=self.request.id or "eager",
        defaults={"hostname": self.request.hostname or socket.gethostname(), "note": note[:200]},
    )
    return row.pk
