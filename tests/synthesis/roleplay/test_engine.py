import subprocess
import sys

import pytest

from synthesis.llm.base import BackendUnavailable, ChatRequest
from synthesis.roleplay import (
    MemorySink,
    RoleplayConfig,
    TrajectorySpec,
    plan_specs,
    run_trajectories,
    single_turn,
)

from .fakes import (
    ALL_TOOLS,
    CREATE_ORDER,
    DELETE_ORDER,
    GET_ORDER,
    GET_WEATHER,
    SEND_EMAIL,
    smart_backend,
)


class CountingBackend:
    """Wraps a backend and records the size of every batch."""

    def __init__(self, inner):
        self.inner = inner
        self.batches = []

    def complete_batch(self, requests):
        self.batches.append(len(requests))
        return self.inner.complete_batch(requests)


def test_many_conversations_share_batches():
    be = CountingBackend(smart_backend())
    specs = [
        TrajectorySpec(id=f"t{i}", mode="single", tools=[GET_WEATHER], seed=i) for i in range(8)
    ]
    results = run_trajectories(
        specs, {"default": be}, MemorySink(), RoleplayConfig(consistency_samples=2)
    )
    assert [r.id for r in results] == [s.id for s in specs]
    assert max(be.batches) >= 8 * 3  # each conversation's main answer and its samples in one batch
    assert len(be.batches) < sum(be.batches) / 5


def test_max_concurrent_bounds_the_batch():
    be = CountingBackend(smart_backend())
    specs = [
        TrajectorySpec(id=f"t{i}", mode="single", tools=[GET_WEATHER], seed=i) for i in range(6)
    ]
    run_trajectories(
        specs,
        {"default": be},
        MemorySink(),
        RoleplayConfig(consistency_samples=0, max_concurrent=2, verifier_count=1),
    )
    assert max(be.batches) <= 2


def test_roles_route_to_their_backends():
    roles = {
        r: CountingBackend(smart_backend())
        for r in ("scenario", "user", "agent", "server", "judge")
    }
    spec = TrajectorySpec(id="mt", mode="multi_turn", tools=[CREATE_ORDER, GET_ORDER], seed=1)
    run_trajectories([spec], roles, MemorySink(), RoleplayConfig())
    assert all(b.batches for b in roles.values()), {k: b.batches for k, b in roles.items()}
    with pytest.raises(ValueError, match="unknown role"):
        run_trajectories([spec], {"planner": smart_backend()}, MemorySink(), RoleplayConfig())
    with pytest.raises(ValueError, match="no backend for role"):
        run_trajectories([spec], {"agent": smart_backend()}, MemorySink(), RoleplayConfig())


def test_a_failing_conversation_does_not_stop_the_others(monkeypatch):
    real = single_turn.build_scenario

    def build(spec, cfg):
        if spec.id == "bad":
            raise KeyError("broken tool definition")
        return (yield from real(spec, cfg))

    monkeypatch.setattr(single_turn, "build_scenario", build)
    specs = [
        TrajectorySpec(id=i, mode="single", tools=[GET_WEATHER], seed=1) for i in ("a", "bad", "b")
    ]
    sink = MemorySink()
    results = run_trajectories(specs, {"default": smart_backend()}, sink, RoleplayConfig())
    assert [r.status for r in results][1] == "failed"
    assert "broken tool definition" in results[1].finish.reason
    assert sink.steps["bad"][-1].kind == "finish"
    assert {results[0].status, results[2].status} <= {"accepted", "rejected"}


def test_a_bad_request_in_a_batch_only_hurts_its_own_conversation():
    class Flaky:
        def __init__(self):
            self.inner = smart_backend()

        def complete_batch(self, requests):
            if any("Lisbon" in str(r.messages) for r in requests):
                raise RuntimeError("server returned 500")
            return self.inner.complete_batch(requests)

    specs = [
        TrajectorySpec(id=f"t{i}", mode="single", tools=[GET_WEATHER], seed=i) for i in range(4)
    ]
    results = run_trajectories(specs, {"default": Flaky()}, MemorySink(), RoleplayConfig())
    assert all(r.finish.kind == "finish" for r in results)


def test_unavailable_backend_stops_the_run():
    class Down:
        def complete_batch(self, requests):
            raise BackendUnavailable("connection refused")

    with pytest.raises(BackendUnavailable):
        run_trajectories(
            [TrajectorySpec(id="a", mode="single", tools=[GET_WEATHER])],
            {"default": Down()},
            MemorySink(),
        )


def test_plan_specs_follows_the_mix():
    cfg = RoleplayConfig(modes={"multiple": 1.0, "multi_turn": 1.0})
    specs = plan_specs(
        {"shop": [CREATE_ORDER, GET_ORDER], "misc": [GET_WEATHER, SEND_EMAIL]}, 40, cfg, seed=3
    )
    assert len(specs) == 40 and len({s.id for s in specs}) == 40
    assert {s.mode for s in specs} == {"multiple", "multi_turn"}
    assert all(len(s.tools) >= 2 for s in specs)
    assert all(
        {t["name"] for t in s.tools} <= {"create_order", "get_order"}
        for s in specs
        if s.tool_group == "shop"
    )
    assert plan_specs(ALL_TOOLS, 5, seed=1)[0].persona is not None
    assert [s.seed for s in plan_specs(ALL_TOOLS, 5, seed=1)] == [
        s.seed for s in plan_specs(ALL_TOOLS, 5, seed=1)
    ]


def _named(tool, name):
    return {**tool, "name": name}


def test_irrelevance_asks_for_a_tool_of_another_domain():
    # Two groups (tree categories) share the "orders" domain; one group is "weather".
    groups = {
        "orders/create": [CREATE_ORDER, _named(CREATE_ORDER, "create_bulk_order")],
        "orders/lookup": [GET_ORDER, _named(GET_ORDER, "get_order_items")],
        "weather/now": [GET_WEATHER, _named(GET_WEATHER, "get_weather_hourly")],
    }
    domain_of = {"orders/create": "orders", "orders/lookup": "orders", "weather/now": "weather"}
    group_of = {t["name"]: g for g, tools in groups.items() for t in tools}
    cfg = RoleplayConfig(modes={"irrelevance": 1.0})
    specs = plan_specs(groups, 40, cfg, seed=5, domain_of=domain_of)
    assert {s.tool_group for s in specs} == set(groups)
    for s in specs:
        assert domain_of[group_of[s.absent_tool["name"]]] != domain_of[s.tool_group], s
    # without domains every group is a domain of its own: another group, possibly the same domain
    specs = plan_specs(groups, 40, cfg, seed=5)
    assert all(group_of[s.absent_tool["name"]] != s.tool_group for s in specs)
    assert any(domain_of[group_of[s.absent_tool["name"]]] == domain_of[s.tool_group] for s in specs)
    # a single domain: the absent tool comes from a sibling group rather than not at all
    one = {g: tools for g, tools in groups.items() if g.startswith("orders")}
    specs = plan_specs(one, 10, cfg, seed=5, domain_of=domain_of)
    assert all(group_of[s.absent_tool["name"]] != s.tool_group for s in specs)


def test_multiple_offers_tools_of_one_group():
    groups = {"a": [CREATE_ORDER, GET_ORDER, DELETE_ORDER], "b": [GET_WEATHER, SEND_EMAIL]}
    specs = plan_specs(groups, 30, RoleplayConfig(modes={"multiple": 1.0}), seed=2)
    for s in specs:
        assert len(s.tools) >= 2 and all(t in groups[s.tool_group] for t in s.tools)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(modes={"chat": 1.0}), "unknown mode"),
        (dict(modes={"single": 0.0}), "not all 0"),
        (dict(max_turns=0), "max_turns must be >= 1"),
        (dict(max_parallel_calls=1), "max_parallel_calls"),
        (dict(hard_threshold=1.5), r"hard_threshold must lie in \[0, 1\]"),
        (dict(agent_protocol="magic"), "agent_protocol"),
        (dict(multi_turn_min_calls=3, multi_turn_max_calls=2), "multi_turn_max_calls"),
        (dict(negotiation_rounds=-1), "negotiation_rounds"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RoleplayConfig(**kwargs)


def test_config_round_trips():
    cfg = RoleplayConfig(max_turns=7, modes={"single": 1.0})
    assert RoleplayConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config field"):
        RoleplayConfig.from_dict({"max_turn": 3})


def test_spec_validation():
    with pytest.raises(ValueError, match="unknown mode"):
        TrajectorySpec(id="a", mode="chat", tools=[GET_WEATHER])
    with pytest.raises(ValueError, match="at least 2"):
        TrajectorySpec(id="a", mode="multiple", tools=[GET_WEATHER])
    with pytest.raises(ValueError, match="not among the offered"):
        TrajectorySpec(id="a", mode="single", tools=[GET_WEATHER], target_tools=["send_email"])


def test_roleplay_imports_no_django():
    code = "import sys, synthesis.roleplay, synthesis.roleplay.engine; sys.exit(1 if any(m.startswith('django') for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_request_shapes_for_small_models():
    """Every model request is either schema-bound or a forced/none tool choice, except free text."""
    be = smart_backend()
    spec = TrajectorySpec(id="m", mode="multiple", tools=[GET_WEATHER, SEND_EMAIL], seed=3)
    run_trajectories([spec], {"default": be}, MemorySink(), RoleplayConfig())
    for r in be.requests:
        assert isinstance(r, ChatRequest)
        assert (
            r.json_schema is not None
            or isinstance(r.tool_choice, dict)
            or r.tool_choice in ("none", "required")
        )
