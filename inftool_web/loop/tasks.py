"""Celery tasks of the loop: thin wrappers that load rows by id and call a service."""

from celery import shared_task


@shared_task(name="inftool_web.loop.tasks.run_iteration", acks_late=True)
def run_iteration(iteration_id: int) -> None:
    from .pipeline import iteration_run

    iteration_run(iteration_id=iteration_id)
