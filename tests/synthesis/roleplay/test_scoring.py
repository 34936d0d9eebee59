import pytest

from synthesis.roleplay.scoring import (
    ScoreWeights,
    call_set_agreement,
    call_similarity,
    execution_consistency,
    multi_turn_ignore_key,
    split_for,
)

from .fakes import GET_WEATHER


def c(name, **args):
    return {"name": name, "arguments": args}


def test_exact_match_is_one_and_normalised():
    assert call_similarity(c("f", city="New York", n=2), c("f", city=" new  york", n=2.0)) == 1.0


def test_defaults_count_as_given():
    ref = [c("get_weather", city="Oslo", unit="celsius")]
    assert call_set_agreement([c("get_weather", city="Oslo")], ref, tools=[GET_WEATHER]) == 1.0
    assert call_set_agreement([c("get_weather", city="Oslo")], ref) == 0.75


def test_parallel_calls_are_a_multiset():
    a, b = c("w", city="Paris"), c("w", city="Rome")
    assert call_set_agreement([a, b], [b, a]) == 1.0
    # one call missing of two
    assert call_set_agreement([a], [a, b]) == 0.5
    # a duplicate does not stand in for a different call
    assert call_set_agreement([a, a], [a, b]) == pytest.approx((1 + 0.5) / 2)


def test_irrelevance():
    assert call_set_agreement([], []) == 1.0
    assert call_set_agreement([c("w", city="x")], []) == 0.0
    assert call_set_agreement([], [c("w", city="x")]) == 0.0


def test_wrong_tool_scores_zero():
    assert call_set_agreement([c("g", city="Paris")], [c("w", city="Paris")]) == 0.0


def test_score_combines_present_components():
    ref = [c("w", city="Paris")]
    s = execution_consistency(
        agent_calls=ref, reference_calls=ref, samples=[ref, ref], server_errors=[False]
    )
    assert s.value == 1.0 and s.components() == {
        "reference": 1.0,
        "consistency": 1.0,
        "execution": 1.0,
    }
    s = execution_consistency(
        agent_calls=ref, reference_calls=ref, samples=[[]], server_errors=[True]
    )
    assert s.value == pytest.approx(0.5 / 1.0)
    # no samples, no execution: the reference alone
    s = execution_consistency(agent_calls=[c("w", city="Rome")], reference_calls=ref)
    assert s.value == 0.5 and s.consistency is None and s.execution is None
    s = execution_consistency(
        agent_calls=ref,
        reference_calls=None,
        server_errors=[False, True],
        weights=ScoreWeights(1, 1, 1),
    )
    assert s.value == 0.5


def test_multi_turn_ignores_server_assigned_ids():
    got = [c("get_order", order_id="ord_123")]
    plan = [c("get_order", order_id="orde_999")]
    assert call_set_agreement(got, plan, ignore_key=multi_turn_ignore_key) == 1.0
    assert call_set_agreement(got, plan) == 0.5


def test_split():
    assert split_for(0.74, 0.75) == "hard"
    assert split_for(0.75, 0.75) == "easy"
