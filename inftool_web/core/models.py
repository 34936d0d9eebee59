from django.db import models


class WorkerHeartbeat(models.Model):
    """A row written by the ``core.heartbeat`` task: proof that a worker ran a task end to end."""

    task_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.hostname} {self.created_at:%Y-%m-%d %H:%M:%S}"
