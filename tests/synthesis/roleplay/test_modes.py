import pytest

from synthesis.roleplay import MemorySink, RoleplayConfig, TrajectorySpec, run_trajectories
from synthesis.roleplay.steps import FinishStep, MessageStep, ReflectionStep, ScenarioStep, VoteStep

from .fakes import CREATE_ORDER, GET_ORDER, GET_WEATHER, SEND_EMAIL, smart_backend

SPECS = {
    "single": dict(tools=[GET_WEATHER]),
    "parallel": dict(tools=[GET_WEATHER]),
    "multiple": dict(tools=[GET_WEATHER, SEND_EMAIL, CREATE_ORDER]),
    "irrelevance": dict(tools=[GET_WEATHER]),
    "multi_turn": dict(tools=[CREATE_ORDER, GET_ORDER, SEND_EMAIL]),
}


@pytest.mark.parametrize("mode", list(SPECS))
@pytest.mark.parametrize("protocol", ["planned", "native"])
def test_each_mode_produces_a_complete_trajectory(mode, protocol):
    sink = MemorySink()
    spec = TrajectorySpec(id=mode, mode=mode, seed=11, **SPECS[mode])
    (res,) = run_trajectories(
        [spec], {"default": smart_backend()}, sink, RoleplayConfig(agent_protocol=protocol)
    )
    steps = sink.steps[mode]
    assert steps == res.steps
    assert [s.index for s in steps] == list(range(len(steps)))
    assert all(s.trajectory_id == mode for s in steps)

    scenario = steps[0]
    assert (
        isinstance(scenario, ScenarioStep)
        and scenario.mode == mode
        and scenario.tools == spec.tools
    )
    refs = scenario.reference_calls
    if mode == "irrelevance":
        assert refs == [] and scenario.query
    elif mode == "parallel":
        assert len(refs) >= 2 and len({str(r["arguments"]) for r in refs}) == len(refs)
    elif mode == "multi_turn":
        assert refs and scenario.goal and scenario.user_facts
    else:
        assert len(refs) == 1 and scenario.query
    names = {t["name"] for t in spec.tools}
    assert all(r["name"] in names for r in refs)

    msgs = [s for s in steps if isinstance(s, MessageStep)]
    assert msgs[0].role == "system" and msgs[1].role == "user"
    assert any(m.role == "assistant" for m in msgs)
    for s in steps:
        if isinstance(s, MessageStep) and s.role == "assistant":
            prev = steps[s.index - 1]
            assert isinstance(prev, ReflectionStep) and prev.target_index == s.index
        if isinstance(s, MessageStep) and s.role == "tool":
            assert s.mcp["jsonrpc"] == "2.0" and ("result" in s.mcp or "error" in s.mcp)
    assert any(isinstance(s, VoteStep) for s in steps)

    finish = steps[-1]
    assert isinstance(finish, FinishStep) and res.finish is finish
    assert finish.status in ("accepted", "rejected")
    assert 0.0 <= finish.score <= 1.0 and finish.split in ("easy", "hard")


def test_messages_render_as_openai_chat():
    sink = MemorySink()
    spec = TrajectorySpec(id="x", mode="single", tools=[GET_WEATHER], seed=2)
    (res,) = run_trajectories([spec], {"default": smart_backend()}, sink, RoleplayConfig())
    chat = res.openai_messages()
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "tool", "assistant"]
    assert chat[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert chat[3]["tool_call_id"] == chat[2]["tool_calls"][0]["id"]
