"""End to end with the real embedded model (SmolLM2-135M): one short trajectory per mode."""

import pytest

from synthesis.roleplay import MemorySink, RoleplayConfig, TrajectorySpec, run_trajectories
from synthesis.roleplay.steps import MessageStep, ReflectionStep
from synthesis.schema_utils import validation_errors

from .fakes import CREATE_ORDER, GET_ORDER, GET_WEATHER, SEND_EMAIL

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(3600)]

# Small enough for two CPU cores: one verifier, one sample, two user turns, short replies
# (a reply cut at its budget is repaired or rejected, both of which these tests accept).
CFG = RoleplayConfig(
    verifier_count=1,
    negotiation_rounds=0,
    consistency_samples=1,
    max_turns=2,
    max_agent_hops=2,
    max_repair_attempts=1,
    agent_max_tokens=128,
    user_max_tokens=64,
    server_max_tokens=128,
    scenario_max_tokens=128,
    verifier_max_tokens=96,
)

TOOLS = {
    "single": [GET_WEATHER],
    "parallel": [GET_WEATHER],
    "multiple": [GET_WEATHER, SEND_EMAIL, CREATE_ORDER],
    "irrelevance": [GET_WEATHER],
    "multi_turn": [CREATE_ORDER, GET_ORDER],
}


@pytest.fixture(scope="module")
def embedded():
    from synthesis.llm.registry import get_backend

    try:
        return get_backend("embedded")
    except Exception as e:  # the model package is an install-time dependency
        pytest.skip(f"embedded model unavailable: {e}")


@pytest.fixture(scope="module")
def runs(embedded):
    """All modes in one run, so the model decodes them in shared batches."""
    sink = MemorySink()
    specs = [
        TrajectorySpec(id=mode, mode=mode, tools=tools, seed=7) for mode, tools in TOOLS.items()
    ]
    results = run_trajectories(specs, {"default": embedded}, sink, CFG)
    return {r.id: r for r in results}, sink, {s.id: s for s in specs}


@pytest.mark.parametrize("mode", list(TOOLS))
def test_mode_with_the_embedded_model(runs, mode):
    results, sink, specs = runs
    res, spec = results[mode], specs[mode]
    assert res.status in ("accepted", "rejected"), res.finish.reason
    assert [s.index for s in sink.steps[mode]] == list(range(len(res.steps)))
    scenario = res.scenario()
    by_name = {t["name"]: t for t in spec.tools}
    # constrained decoding (or the fallback) keeps references schema-valid
    for call in scenario.reference_calls:
        assert validation_errors(call["arguments"], by_name[call["name"]]["inputSchema"]) == []
    assert (scenario.reference_calls == []) == (mode == "irrelevance")
    assert scenario.query or scenario.goal
    # every accepted agent call is valid against its tool
    for s in res.steps:
        if isinstance(s, MessageStep) and s.role == "assistant":
            for c in s.calls():
                assert validation_errors(c["arguments"], by_name[c["name"]]["inputSchema"]) == []
        if (
            isinstance(s, MessageStep)
            and s.role == "tool"
            and "result" in s.mcp
            and "outputSchema" in by_name[s.name]
        ):
            assert (
                validation_errors(
                    s.mcp["result"]["structuredContent"], by_name[s.name]["outputSchema"]
                )
                == []
            )
    assert any(isinstance(s, ReflectionStep) for s in res.steps) or res.status == "rejected"
    assert res.finish.score is not None or res.status == "rejected"


def test_default_embedder_separates_personas():
    pytest.importorskip("sentence_transformers")
    from synthesis.roleplay.personas import SEED_PERSONAS, default_embedder, select_diverse

    try:
        embed = default_embedder()
    except RuntimeError as e:
        pytest.skip(str(e))
    vecs = embed(["a nurse on night shifts", "a nurse working night shifts", "a dairy farmer"])
    assert len(vecs[0]) == 384
    kept, rejected = select_diverse(SEED_PERSONAS, embed, threshold=0.9)
    assert len(kept) == len(SEED_PERSONAS)
