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
    iteration_create,
    iteration_start,
    trajectories_run,
)
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import iteration_launch
from tests.factories import shop_tools
from tests.synthesis.roleplay.fakes import smart_backend


@pytest.fixture
def tools(db):
    return shop_tools()


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
def test_an_in_process_iteration_frees_synthesis_models_before_it_trains(tools, queued, stand_ins, monkeypatch):
    """bench_loop ran a 128-trajectory iteration in one process: the embedded model and its
    prefix store stayed cached into SFT, which reached 18.5 GB and was killed for memory."""
    from synthesis.llm import registry
    from tests.synthesis.llm.test_llm_registry import _Counting

    closed: list[int] = []
    monkeypatch.setattr(_Counting, "close", lambda self: closed.append(self.options.size), raising=False)
    registry.register_backend("counting", _Counting)
    try:
        cached = registry.get_backend("counting", size=7)  # what synthesis left loaded
        seen_in_training: list[bool] = []
        train = stages.train

        def training(**kw):
            seen_in_training.append(registry.get_backend("counting", size=7) is cached)
            return train(**kw)

        monkeypatch.setattr(stages, "train", training)
        it = iteration_create(config=_config())
        iteration_start(iteration_id=it.pk, run=Run.HERE)
        it.refresh_from_db()
        assert it.status == "succeeded", it.error
        assert closed == [7] and seen_in_training == [False]
    finally:
        registry._BACKENDS.pop("counting")
        registry.clear_backend_cache(close=False)


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
    ids = list(it.trajectories.order_by("seq").values_list("pk", flat=True))
    # One task per chunk of INFTOOL_SYNTH_CHUNK trajectories, which its worker batches.
    assert queued == [(iterations.TASK_TRAJECTORIES, (ids,))]
    queued.clear()
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
def test_trajectories_go_out_in_chunks_and_a_chunk_runs_them_together_once(tools, queued, stand_ins, settings,
                                                                             monkeypatch):
    from inftool_web.loop.tasks import synthesize_trajectories
    from inftool_web.synth import services

    settings.INFTOOL_SYNTH_CHUNK = 3
    it = iteration_create(config=_config(count=7))
    assert iterations.iteration_synthesize(iteration_id=it.pk, run=Run.QUEUE) == 7
    ids = list(it.trajectories.order_by("seq").values_list("pk", flat=True))
    assert queued == [(iterations.TASK_TRAJECTORIES, (ids[0:3],)), (iterations.TASK_TRAJECTORIES, (ids[3:6],)),
                      (iterations.TASK_TRAJECTORIES, (ids[6:7],))]
    queued.clear()

    batches: list[int] = []
    real = services.run_trajectories

    def recording(specs, *args, **kwargs):
        batches.append(len(specs))
        return real(specs, *args, **kwargs)

    monkeypatch.setattr(services, "run_trajectories", recording)
    first = synthesize_trajectories.apply(args=[ids[0:3]]).get()
    assert sum(first.values()) == 3 and set(first) <= {"done", "rejected", "failed"}
    assert batches == [3]  # the chunk's trajectories decoded together, in one run
    # A chunk delivered again (its worker died after finishing) runs nothing twice.
    synthesize_trajectories.apply(args=[ids[0:3]]).get()
    assert batches == [3]
    synthesize_trajectories.apply(args=[ids[3:6]]).get()
    assert queued == []  # not all finished: no hand-over yet
    synthesize_trajectories.apply(args=[ids[6:7]]).get()
    assert queued == [(iterations.TASK_TRAIN, (it.pk,))]
    it.refresh_from_db()
    assert it.status == "training" and it.progress["finished"] == 7


@pytest.mark.django_db(transaction=True)
def test_a_chunk_that_breaks_fails_its_unfinished_trajectories_and_keeps_the_finished_ones(
        tools, queued, stand_ins, monkeypatch):
    from inftool_web.loop.tasks import synthesize_trajectories

    it = iteration_create(config=_config(count=3))
    iterations.iteration_synthesize(iteration_id=it.pk, run=Run.QUEUE)
    ids = list(it.trajectories.order_by("seq").values_list("pk", flat=True))
    queued.clear()
    trajectories_run(trajectory_ids=ids[:1])
    finished = it.trajectories.get(pk=ids[0]).status

    def broken(**kwargs):
        raise RuntimeError("the model said something impossible")

    monkeypatch.setattr(iterations, "trajectories_synthesize", broken)
    counts = synthesize_trajectories.apply(args=[ids]).get()
    assert counts == {finished: 1, "failed": 2} or counts == {"failed": 3} and finished == "failed"
    assert it.trajectories.get(pk=ids[0]).status == finished
    for t in it.trajectories.filter(pk__in=ids[1:]):
        assert t.status == "failed" and "the model said something impossible" in t.error
    assert queued == [(iterations.TASK_TRAIN, (it.pk,))]


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


# ----------------------------------------------------------------------------- deadlines, poison

KILLER = """
import os, signal, sys
import django
django.setup()
from synthesis.llm.base import LLMBackend
from inftool_web.loop import iterations
from tests.synthesis.roleplay.fakes import smart_backend


class KillsItsWorker(LLMBackend):
    name = "kills-its-worker"

    def __init__(self):
        self.inner, self.left = smart_backend(), int(os.environ["BATCHES_BEFORE_KILL"])

    def complete_batch(self, requests):
        if self.left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)  # out of memory, or a segfault
        self.left -= 1
        return self.inner.complete_batch(requests)


iterations.backends_for_iteration = lambda it: {"default": KillsItsWorker()}
from inftool_web.loop.tasks import synthesize_trajectory
synthesize_trajectory.apply(args=[int(sys.argv[1])])
"""


@pytest.mark.django_db(transaction=True)
def test_a_trajectory_that_kills_its_worker_fails_after_three_deliveries(tools, queued, settings):
    """The real task, run by a process that SIGKILLs itself mid-trajectory, three times: the
    fourth delivery fails it as a poison task instead of running it again."""
    import subprocess
    import sys

    from inftool_web.loop.tasks import synthesize_trajectory
    from inftool_web.synth.models import Trajectory
    from tests.conftest import ROOT, worker_env

    it = iteration_create(config=_config(count=1, modes={"multi_turn": 1}, profile="none"))
    [pk] = iterations.iteration_plan(iteration_id=it.pk)
    for delivery in (1, 2, 3):
        proc = subprocess.run([sys.executable, "-c", KILLER, str(pk)], cwd=ROOT, capture_output=True, text=True,
                              env=worker_env(BATCHES_BEFORE_KILL=str(delivery)), timeout=300)
        assert proc.returncode == -9, proc.stderr[-3000:]
        t = Trajectory.objects.get(pk=pk)
        assert t.open_runs == delivery and t.status not in ("done", "rejected", "failed")
    steps = t.steps.count()
    assert steps > 0  # what the killed runs stored stays

    settings.INFTOOL_MAX_DELIVERIES = 3
    assert synthesize_trajectory.apply(args=[pk]).get() == "failed"
    t.refresh_from_db()
    assert "cut short 3 times" in t.error and "INFTOOL_MAX_DELIVERIES=3" in t.error and t.steps.count() == steps
    it.refresh_from_db()
    assert it.status == "succeeded"  # the iteration went on without it (profile none: no training)


@pytest.mark.django_db(transaction=True)
def test_a_run_that_ends_normally_clears_its_count(tools, queued):
    from inftool_web.synth.models import Trajectory

    it = iteration_create(config=_config(count=2, profile="none"))
    ids = iterations.iteration_plan(iteration_id=it.pk)
    Trajectory.objects.filter(pk__in=ids).update(open_runs=2)  # two earlier runs were killed
    trajectories_run(trajectory_ids=ids, backends={"default": smart_backend()})
    assert list(Trajectory.objects.filter(pk__in=ids).values_list("open_runs", flat=True)) == [0, 0]
    assert not Trajectory.objects.filter(pk__in=ids, status="failed").exists()


@pytest.mark.django_db(transaction=True)
def test_a_trajectory_past_its_deadline_fails_saying_so(tools, queued):
    from inftool_web.synth.models import Trajectory

    it = iteration_create(config=_config(count=1, modes={"multi_turn": 1}, profile="none"))
    ids = iterations.iteration_plan(iteration_id=it.pk)
    trajectories_run(trajectory_ids=ids, backends={"default": smart_backend()}, deadline_s=0.0)
    t = Trajectory.objects.get(pk=ids[0])
    assert t.status == "failed" and "passed its deadline of 0 s" in t.error and "TRAJECTORY_DEADLINE" in t.error
    assert t.open_runs == 0


@pytest.mark.django_db(transaction=True)
def test_a_training_stage_past_its_deadline_fails_the_iteration(tools, queued, monkeypatch, settings):
    it = iteration_create(config=_config())
    iterations.iteration_plan(iteration_id=it.pk)
    trajectories_run(trajectory_ids=list(it.trajectories.values_list("pk", flat=True)),
                     backends={"default": smart_backend()})
    assert iterations.synthesis_finished(iteration_id=it.pk, run=Run.QUEUE)

    def slow_train(*, iteration, out_root, report, still_running):
        report(progress={"event": "log", "step": 1, "loss": 1.0})  # the trainer's first news
        raise AssertionError("the deadline should have stopped the stage")

    monkeypatch.setattr(stages, "train", slow_train)
    settings.INFTOOL_STAGE_DEADLINE_SECONDS = 0.0
    iterations.iteration_train(iteration_id=it.pk, run=Run.QUEUE)
    it.refresh_from_db()
    assert it.status == "failed" and "DeadlinePassed: the training stage passed its deadline of 0 s" in it.error
    assert it.stage_open_runs == 0


@pytest.mark.django_db(transaction=True)
def test_a_stage_cut_short_three_times_is_not_run_again(tools, queued, stand_ins):
    it = iteration_create(config=_config())
    Iteration.objects.filter(pk=it.pk).update(status="evaluating", stage_open_runs=3)
    iterations.iteration_evaluate(iteration_id=it.pk, run=Run.QUEUE)
    it.refresh_from_db()
    assert it.status == "failed" and "the evaluation stage was cut short 3 times" in it.error
    assert stand_ins == [] and queued == []


# ----------------------------------------------------------------------------- chains


@pytest.mark.django_db(transaction=True)
def test_iterate_runs_k_iterations_here_each_on_the_previous_model(tools, queued, stand_ins, monkeypatch):
    from django.core.management import call_command

    from inftool_web.loop.models import ModelCheckpoint

    trained: list[int] = []

    def train(*, iteration, out_root, report, still_running):
        trained.append(iteration.number)
        return ModelCheckpoint.objects.create(name=f"it{iteration.number}-sft", kind="sft", path=str(out_root),
                                              base=iteration.input_checkpoint, iteration=iteration)

    monkeypatch.setattr(stages, "train", train)
    call_command("iterate", "--count", "3", "--max-turns", "2", "--verifiers", "1", "--iterations", "3",
                 "--seed", "5", "--train-set", "sft.max_steps=40", "--train-set", "sft.lora_r=8")
    chain = list(Iteration.objects.order_by("number"))
    assert all(it.config["training"] == {"sft": {"max_steps": 40, "lora_r": 8}} for it in chain)
    assert [it.status for it in chain] == ["succeeded"] * 3 and trained == [it.number for it in chain]
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.input_checkpoint_id == before.output_checkpoint_id != before.input_checkpoint_id
        assert after.config["seed"] == before.config["seed"] + 1
        assert after.config["iterations"] == before.config["iterations"] - 1
    assert queued == []


@pytest.mark.django_db
def test_iterate_refuses_a_training_override_it_cannot_apply(tools):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="STAGE.KEY=VALUE"):
        call_command("iterate", "--count", "3", "--train-set", "max_steps=4")
    with pytest.raises(CommandError, match="unknown or fixed settings output_dir"):
        call_command("iterate", "--count", "3", "--train-set", "sft.output_dir=/tmp")
    assert not Iteration.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_queued_chain_queues_the_next_iteration_when_one_succeeds(tools, queued, stand_ins):
    it = iteration_launch(config=_config(iterations=2, profile="none"))
    assert queued == [(TASK_PLAN, (it.pk,))]
    iterations.iteration_synthesize(iteration_id=it.pk, run=Run.QUEUE)
    trajectories_run(trajectory_ids=list(it.trajectories.values_list("pk", flat=True)))
    queued.clear()
    assert iterations.synthesis_finished(iteration_id=it.pk, run=Run.QUEUE)
    nxt = Iteration.objects.exclude(pk=it.pk).get()
    assert queued == [(TASK_PLAN, (nxt.pk,))] and nxt.status == "queued" and nxt.config["iterations"] == 1


@pytest.mark.django_db
def test_the_launch_form_sends_the_number_of_iterations():
    from inftool_web.web.forms import LaunchForm

    data = {"count": "4", "verifiers": "1", "negotiation_rounds": "0", "max_turns": "2", "hard_threshold": "0.6",
            "profile": "cpu", "eval_limit": "2", "seed": "0", "iterations": "3",
            **{f"mode_{m}": "1" for m in ("single", "parallel", "multiple", "irrelevance", "multi_turn")}}
    form = LaunchForm(data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["config"]["iterations"] == 3
    assert not LaunchForm({**data, "iterations": "0"}).is_valid()
