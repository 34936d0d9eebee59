import json

import pytest

from synthesis.roleplay import (
    MemorySink,
    ResumeState,
    RoleplayConfig,
    SinkError,
    TrajectorySpec,
    run_trajectories,
    step_from_dict,
)

from .fakes import CREATE_ORDER, GET_ORDER, GET_WEATHER, SEND_EMAIL, smart_backend

CFG = RoleplayConfig(consistency_samples=2, multi_turn_consistency_samples=1)


class Killed(Exception):
    pass


class KillingSink(MemorySink):
    """Stores ``limit`` steps, then dies on the next one (it is not stored)."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    def _add(self, step):
        if len(self.all()) >= self.limit:
            raise Killed
        super()._add(step)

    on_scenario = on_message = on_reflection = on_vote = on_finish = _add


def specs(resume=None):
    resume = resume or {}
    return [
        TrajectorySpec(
            id="mt",
            mode="multi_turn",
            tools=[CREATE_ORDER, GET_ORDER],
            seed=5,
            resume_from=resume.get("mt"),
        ),
        TrajectorySpec(
            id="par",
            mode="parallel",
            tools=[GET_WEATHER, SEND_EMAIL],
            seed=6,
            resume_from=resume.get("par"),
        ),
    ]


def dump(steps):
    # through JSON, as a database would store them
    return [json.loads(json.dumps(s.to_dict())) for s in steps]


def full_run():
    sink = MemorySink()
    run_trajectories(specs(), {"default": smart_backend()}, sink, CFG)
    return {k: dump(v) for k, v in sink.steps.items()}


def test_resume_after_a_kill_at_every_step_continues_without_duplicates():
    reference = full_run()
    total = sum(len(v) for v in reference.values())
    # long enough to be killed inside every kind of step, votes of verifiers included
    assert total > 20
    assert {"scenario", "message", "reflection", "vote", "finish"} <= {s["kind"] for s in reference["mt"]}
    assert any(s["kind"] == "vote" and s["verifier"] != "rules" for s in reference["mt"])
    for limit in range(total):
        killed = KillingSink(limit)
        with pytest.raises(SinkError):
            run_trajectories(specs(), {"default": smart_backend()}, killed, CFG)
        stored = {k: dump(v) for k, v in killed.steps.items()}
        resume = {k: ResumeState.from_steps(v) for k, v in stored.items()}
        backend = smart_backend()
        again = MemorySink()
        run_trajectories(specs(resume), {"default": backend}, again, CFG)
        for tid, ref in reference.items():
            old = stored.get(tid, [])
            new = dump(again.steps.get(tid, []))
            indexes = [s["index"] for s in old + new]
            assert indexes == list(range(len(ref))), (limit, tid)
            # the continuation is what the uninterrupted run produced
            assert old + new == ref, (limit, tid)


def test_resume_asks_no_model_for_stored_steps():
    reference = full_run()
    fresh = smart_backend()
    run_trajectories(specs(), {"default": fresh}, MemorySink(), CFG)
    stored = {k: ResumeState.from_steps(v[: len(v) - 3]) for k, v in reference.items()}
    resumed = smart_backend()
    run_trajectories(specs(stored), {"default": resumed}, MemorySink(), CFG)
    assert 0 < len(resumed.requests) < len(fresh.requests) / 3


def test_a_finished_trajectory_is_returned_as_stored():
    reference = full_run()
    resume = {k: ResumeState.from_steps(v) for k, v in reference.items()}
    sink = MemorySink()
    backend = smart_backend()
    results = run_trajectories(specs(resume), {"default": backend}, sink, CFG)
    assert sink.all() == [] and backend.requests == []
    assert [r.finish.to_dict() for r in results] == [reference["mt"][-1], reference["par"][-1]]


def test_resume_state_orders_deduplicates_and_stops_at_a_gap():
    steps = full_run()["par"]
    shuffled = [steps[3], steps[0], steps[2], steps[1], steps[1], steps[5]]
    state = ResumeState.from_steps(shuffled)
    assert [s.index for s in state.steps] == [0, 1, 2, 3]
    assert state.next_index == 4 and state.finish is None
    with pytest.raises(ValueError, match="without gaps"):
        ResumeState(steps=[step_from_dict(steps[1])])


def test_mismatching_stored_steps_fail_that_trajectory_only():
    reference = full_run()
    wrong = ResumeState.from_steps(reference["par"][:1] + [{**reference["par"][3], "index": 1}])
    results = run_trajectories(
        specs({"par": wrong}), {"default": smart_backend()}, MemorySink(), CFG
    )
    by_id = {r.id: r for r in results}
    assert by_id["par"].status == "failed" and "resume mismatch" in by_id["par"].finish.reason
    assert by_id["mt"].status in ("accepted", "rejected")
