from django.contrib import admin

from .models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "note", "created_at"]
    readonly_fields = ["task_id", "hostname", "note", "created_at"]
