"""The iteration state machine: one owner of the stages, run here or queued, never both."""

from __future__ import annotations

import pytest
from celery.app.base import Celery
from celery.app.task import Task

from inftool_web.loop import iterations, stages
from inftool_web.loop.iterations import (
    TASK_PLAN,
    IllegalTransition,
    Run,
    iteration_cancel,
    iteration_start,
    trajectories_run,
)
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import iteration_create, iteration_launch
from tests.factories import ApiSourceFactory, ToolFactory
from tests.synthesis.roleplay.fakes import ALL_TOOLS, smart_backend


@pytest.fixture
def tools(db):
    source = ApiSourceFactory(name="shop.example")
    return [ToolFactory(source=source, name=t["name"], description=t["description"],
                        input_schema=t["inputSchema"], output_schema=t.get("outputSchema")) for t in ALL_TOOLS]


@pytest.fixture
def queued(monkeypatch):
    """Every message this process would put on the broker, recorded instead of sent."""
    sent: list[tuple[str, tuple]] = []

    def send_task(self, name, args=None, kwargs=None, **options):
        sent.append((name, tuple(args or ())))

    def apply_async(self, args=None, kwargs=None, **options):
        sent.append((self.name, tuple(args or ())))

    monkeypatch.setattr(Celery, "send_task", send_task)
    monkeypatch.setattr(Task, "apply_async", apply_async)
    return sent


@pytest.fixture
def stand_ins(monkeypatch):
    """The model stand-in plays every role; training and BFCL are recorded (they run for
    real in test_iteration_loop.py, an e2e test)."""
    calls: list[str] = []
    monkeypatch.setattr(iterations, "backends_for_iteration", lambda it: {"default": smart_backend()})

    def train(*, iteration, out_root, report, still_running):
        calls.append(f"train:{iteration.status}")
        report(detail="SFT on 3 rows")
        return None

    def evaluate(*, iteration, report):
        calls.append(f"evaluate:{iteration.status}")

    monkeypatch.setattr(stages, "train", train)
    monkeypatch.setattr(stages, "evaluate", evaluate)
    return calls


def _config(**extra):
    return {"count": 4, "profile": "cpu", "max_turns": 2, "verifiers": 1, "seed": 3, **extra}


@pytest.mark.django_db(transaction=True)
def test_an_in_process_iteration_runs_every_stage_here_and_queues_nothing(tools, queued, stand_ins):
    it = iteration_create(config=_config())
    iteration_start(iteration_id=it.pk, run=Run.HERE)
    it.refresh_from_db()
    assert it.status == "succeeded", it.error
    assert stand_ins == ["train:training", "evaluate:evaluating"]
    assert it.trajectories.count() == 4 and not it.trajectories.exclude(status__in=["done", "rejected", "failed"])
    assert it.started_at and it.finished_at and it.output_checkpoint_id == it.input_checkpoint_id
    assert queued == []  # nothing went to the broker: no stage, no trajectory


@pytest.mark.django_db(transaction=True)
def test_the_iterate_command_queues_nothing(tools, queued, stand_ins, capsys):
    from django.core.management import call_command

    call_command("iterate", "--count", "3", "--max-turns", "2", "--verifiers", "1")
    assert Iteration.objects.get().status == "succeeded"
    assert queued == [] and stand_ins == ["train:training", "evaluate:evaluating"]


@pytest.mark.django_db(transaction=True)
def test_a_queued_iteration_goes_to_the_broker_and_runs_nothing_here(tools, queued, stand_ins):
    """The control for the two tests above: the recording sees a queued start."""
    it = iteration_launch(config=_config())
    assert queued == [(TASK_PLAN, (it.pk,))]
    it.refresh_from_db()
    assert it.status == "queued" and stand_ins == []


@pytest.mark.django_db(transaction=True)
def test_queued_stages_hand_over_through_the_broker_one_task_at_a_time(tools, queued, stand_ins):
    it = iteration_create(config=_config())
    assert iterations.iteration_synthesize(iteration_id=it.pk, run=Run.QUEUE) == 4
    names = [name for name, _ in queued]
    assert names == [iterations.TASK_TRAJECTORY] * 4
    queued.clear()
    ids = list(it.trajectories.values_list("pk", flat=True))
    trajectories_run(trajectory_ids=ids[:3])
    for pk in ids[:3]:
        assert iterations.trajectory_finished(trajectory_id=pk) is False
    trajectories_run(trajectory_ids=ids[3:])
    assert iterations.trajectory_finished(trajectory_id=ids[3]) is True
    assert iterations.trajectory_finished(trajectory_id=ids[3]) is False  # handed over once
    assert queued == [(iterations.TASK_TRAIN, (it.pk,))]
    it.refresh_from_db()
    assert it.status == "training" and it.progress["finished"] == 4
    iterations.iteration_train(iteration_id=it.pk, run=Run.QUEUE)
    assert queued[-1] == (iterations.TASK_EVALUATE, (it.pk,))
    iterations.iteration_evaluate(iteration_id=it.pk, run=Run.QUEUE)
    it.refresh_from_db()
    assert it.status == "succeeded" and stand_ins == ["train:training", "evaluate:evaluating"]


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_iteration_runs_no_further_stage(tools, queued, stand_ins):
    it = iteration_create(config=_config())
    iterations.iteration_plan(iteration_id=it.pk)
    iteration_cancel(iteration=it)
    assert trajectories_run(trajectory_ids=list(it.trajectories.values_list("pk", flat=True))) == {}
    assert iterations.synthesis_finished(iteration_id=it.pk, run=Run.HERE) is False
    iterations.iteration_train(iteration_id=it.pk, run=Run.HERE)
    it.refresh_from_db()
    assert it.status == "cancelled" and stand_ins == [] and queued == []


@pytest.mark.django_db
def test_the_state_machine_refuses_a_move_it_does_not_know():
    it = iteration_create(config=_config())
    with pytest.raises(IllegalTransition):
        iterations._transition(it, Iteration.Status.EVALUATING)
    it.status = Iteration.Status.SUCCEEDED
    with pytest.raises(IllegalTransition):
        iterations._transition(it, Iteration.Status.TRAINING)
    with pytest.raises(IllegalTransition):  # a finished iteration is not cancelled after the fact
        iterations._transition(it, Iteration.Status.CANCELLED)


@pytest.mark.django_db(transaction=True)
def test_an_iteration_with_nothing_to_plan_fails_saying_why(queued, stand_ins):
    it = iteration_create(config=_config())
    iteration_start(iteration_id=it.pk, run=Run.HERE)
    it.refresh_from_db()
    assert it.status == "failed" and "ingest some first" in it.error and stand_ins == []
