"""The InfTool web application: Django project, apps, Celery and Channels wiring."""

from .celery_app import app as celery_app

__all__ = ["celery_app"]
