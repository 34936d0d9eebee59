"""Synthesis through the database: planning, every step stored as it comes, resume, workers."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from inftool_web.loop.iterations import iteration_create, iteration_plan, trajectories_run
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import iteration_launch
from inftool_web.synth.models import Message, Trajectory, TrajectoryStep, VerifierVote
from synthesis.llm.base import BackendUnavailable, LLMBackend
from tests.factories import ApiSourceFactory, ToolFactory
from tests.synthesis.roleplay.fakes import ALL_TOOLS, smart_backend

MODES = ["single", "parallel", "multiple", "irrelevance", "multi_turn"]


@pytest.fixture
def tools(db):
    source = ApiSourceFactory(name="shop.example")
    other = ApiSourceFactory(name="weather.example")
    rows = []
    for t in ALL_TOOLS:
        src = other if t["name"] in ("get_weather", "send_email") else source
        rows.append(ToolFactory(source=src, name=t["name"], description=t["description"],
                                input_schema=t["inputSchema"], output_schema=t.get("outputSchema")))
    return rows


def _iteration(count=5, **config):
    return iteration_create(config={"count": count, "profile": "none", "modes": {m: 1 for m in MODES},
                                    "max_turns": 3, **config})


def _fake_backends():
    be = smart_backend()
    return {"default": be}


def test_plan_is_idempotent_and_keeps_offered_tools(tools):
    it = _iteration(count=8)
    assert len(iteration_plan(iteration_id=it.pk)) == 8
    assert len(iteration_plan(iteration_id=it.pk)) == 8  # the same 8, none planned twice
    trajs = list(Trajectory.objects.filter(iteration=it))
    assert len(trajs) == 8 and {t.seq for t in trajs} == set(range(8))
    for t in trajs:
        assert t.offered_tools and t.tools.count() == len({x["name"] for x in t.offered_tools})
        assert t.persona is not None


def test_every_step_is_stored_and_a_rerun_duplicates_nothing(tools):
    it = _iteration(count=10)
    iteration_plan(iteration_id=it.pk)
    ids = list(it.trajectories.values_list("pk", flat=True))
    counts = trajectories_run(trajectory_ids=ids, backends=_fake_backends())
    assert sum(counts.values()) == 10
    assert set(it.trajectories.values_list("mode", flat=True)) == set(MODES)
    for t in it.trajectories.all():
        assert t.status in ("done", "rejected", "failed"), (t.pk, t.status, t.error)
        steps = list(t.steps.values_list("index", flat=True))
        assert steps == list(range(len(steps))), "step indexes must be contiguous"
        assert t.steps.filter(kind="finish").count() == 1
        assert t.messages.count() == t.steps.filter(kind="message").count()
        if t.status == "done":
            assert t.verdict in ("accepted", "rejected")
            assert t.votes.exists()
            assert t.score is not None and t.difficulty in ("easy", "hard")
    n_steps = TrajectoryStep.objects.count()
    n_msgs = Message.objects.count()
    # A re-delivered task on finished trajectories is a no-op.
    assert trajectories_run(trajectory_ids=ids, backends=_fake_backends()) == {}
    assert TrajectoryStep.objects.count() == n_steps and Message.objects.count() == n_msgs
    refs = it.trajectories.filter(mode="single").values_list("reference_calls", flat=True)
    assert all(len(r) == 1 for r in refs)
    assert all(r == [] for r in it.trajectories.filter(mode="irrelevance").values_list("reference_calls", flat=True))


class DiesAfter(LLMBackend):
    """A backend whose server goes away after a number of batches: the run stops mid-way."""

    name = "dies-after"

    def __init__(self, inner, batches):
        self.inner, self.left = inner, batches

    def complete_batch(self, requests):
        if self.left <= 0:
            raise BackendUnavailable("model server at http://127.0.0.1:1/v1 went away")
        self.left -= 1
        return self.inner.complete_batch(requests)


def test_an_interrupted_run_resumes_without_duplicates(tools):
    it = _iteration(count=5, modes={"multi_turn": 1})
    iteration_plan(iteration_id=it.pk)
    ids = list(it.trajectories.values_list("pk", flat=True))
    with pytest.raises(Exception, match="went away"):
        trajectories_run(trajectory_ids=ids, backends={"default": DiesAfter(smart_backend(), 6)})
    partial = dict(TrajectoryStep.objects.filter(trajectory__iteration=it).values_list("trajectory").annotate(n=Count("id")))
    assert partial and sum(partial.values()) > 0
    assert not it.trajectories.filter(status="done").exists(), "nothing half-finished may be marked done"
    trajectories_run(trajectory_ids=ids, backends=_fake_backends())
    for t in it.trajectories.all():
        assert t.status in ("done", "rejected"), (t.status, t.error)
        idx = list(t.steps.values_list("index", flat=True))
        assert idx == list(range(len(idx)))
        assert t.steps.count() >= partial.get(t.pk, 0)
        assert t.votes.values("verifier", "round").annotate(n=Count("id")).filter(n__gt=1).count() == 0


def test_cancelled_iteration_stops_at_the_next_step(tools):
    it = _iteration(count=3)
    iteration_plan(iteration_id=it.pk)
    Iteration.objects.filter(pk=it.pk).update(status="cancelled")
    trajectories_run(trajectory_ids=list(it.trajectories.values_list("pk", flat=True)), backends=_fake_backends())
    assert not TrajectoryStep.objects.filter(trajectory__iteration=it).exists()


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(3600)
@pytest.mark.django_db(transaction=True)
def test_real_workers_run_an_iteration_and_a_killed_one_loses_nothing(tools, worker_factory):
    """The worker path with the real model, end to end: Celery, the model loaded in the
    worker, a worker killed (SIGKILL) mid-trajectory with another trajectory still queued,
    a restarted worker that recovers the orphan and takes the queued one, the iteration to
    its end.  Every mode on the real model is tests/synthesis/roleplay/test_embedded_e2e.py
    (in process); a worker killed in multi-turn is tests/web/test_faults.py (fake model)."""
    modes = {"single": 1, "irrelevance": 1}
    first = worker_factory(concurrency=1).start()
    it = iteration_launch(config={"count": 2, "profile": "none", "modes": modes,
                                  "max_turns": 1, "verifiers": 1, "negotiation_rounds": 0, "seed": 3})
    _wait(lambda: TrajectoryStep.objects.filter(trajectory__iteration=it, kind="message").count() >= 1,
          900, "the first stored message")
    first.kill()
    running = Trajectory.objects.filter(iteration=it, status__in=("running", "verifying"))
    assert running.exists(), list(it.trajectories.values_list("status", flat=True))
    stored_before = {t.pk: list(t.steps.values_list("index", "data")) for t in it.trajectories.all()}
    worker_factory(concurrency=2).start()  # recovers the orphan at start-up
    _wait(lambda: Iteration.objects.get(pk=it.pk).status in ("succeeded", "failed"), 1500, "the iteration")
    it.refresh_from_db()
    assert it.status == "succeeded", it.error
    assert set(it.trajectories.values_list("mode", flat=True)) == set(modes)
    assert it.progress.get("finished") == 2
    for traj in it.trajectories.all():
        assert traj.status in ("done", "rejected"), traj.error
        assert traj.steps.filter(kind="scenario").exists()
        assert traj.messages.filter(role="user").exists()
        idx = list(traj.steps.values_list("index", flat=True))
        assert idx == list(range(len(idx)))
        # What was stored before the kill is untouched, and nothing was stored twice.
        after = dict(traj.steps.values_list("index", "data"))
        for index, data in stored_before[traj.pk]:
            assert after[index] == data
        assert Message.objects.filter(trajectory=traj).count() == traj.steps.filter(kind="message").count()
        dup_votes = VerifierVote.objects.filter(trajectory=traj).values("verifier", "round").annotate(n=Count("id"))
        assert all(v["n"] == 1 for v in dup_votes)
