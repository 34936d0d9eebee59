"""Celery tasks of the loop: thin wrappers that load rows by id and call a service."""

from celery import shared_task


@shared_task(name="inftool_web.loop.tasks.run_iteration", acks_late=True, reject_on_worker_lost=True)
def run_iteration(iteration_id: int) -> int:
    from .pipeline import iteration_run

    return iteration_run(iteration_id=iteration_id)


@shared_task(name="inftool_web.loop.tasks.train_iteration", acks_late=True, reject_on_worker_lost=True)
def train_iteration(iteration_id: int) -> None:
    from .pipeline import iteration_train

    iteration_train(iteration_id=iteration_id)


@shared_task(name="inftool_web.loop.tasks.evaluate_iteration", acks_late=True, reject_on_worker_lost=True)
def evaluate_iteration(iteration_id: int) -> None:
    from .pipeline import iteration_evaluate

    iteration_evaluate(iteration_id=iteration_id)
