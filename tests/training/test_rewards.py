"""The gated composite reward and each of its terms on hand-made completions."""

from __future__ import annotations

import json

import pytest

from training.config import RewardConfig
from training.rewards import (
    execution_reward,
    format_reward,
    gated_composite_reward,
    make_composite_reward,
    reasoning_reward,
    reward_breakdown,
    values_match,
)


def call(name: str, **args) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


def ref(*calls: tuple[str, dict], defaults: dict | None = None) -> str:
    return json.dumps([{"name": n, "arguments": a, "defaults": defaults or {}} for n, a in calls])


RATIONALE = "The user asks for the weather in Paris, so I look it up."
WEATHER = ref(("get_weather", {"city": "Paris"}))


def test_reasoning_counts_only_when_execution_is_correct():
    right = [{"role": "assistant", "content": RATIONALE + "\n" + call("get_weather", city="Paris")}]
    wrong = [{"role": "assistant", "content": RATIONALE + "\n" + call("get_weather", city="Rome")}]
    right_terms, wrong_terms = reward_breakdown([right, wrong], [WEATHER, WEATHER])

    assert right_terms["execution"] == 1.0 and right_terms["gate"] == 1.0
    assert wrong_terms["execution"] < 1.0 and wrong_terms["gate"] == 0.0
    # The same good rationale earns nothing when the call is wrong.
    assert wrong_terms["reasoning"] == right_terms["reasoning"] > 0
    cfg = RewardConfig()
    assert wrong_terms["total"] == pytest.approx(
        cfg.format_weight + cfg.execution_weight * wrong_terms["execution"]
    )
    assert right_terms["total"] == pytest.approx(
        cfg.format_weight + cfg.execution_weight + cfg.reasoning_weight * right_terms["reasoning"]
    )


def test_gate_threshold_can_admit_partial_execution():
    partial = RATIONALE + "\n" + call("get_weather", city="Paris", unit="f")
    strict = make_composite_reward(RewardConfig(gate_threshold=1.0))
    lenient = make_composite_reward(RewardConfig(gate_threshold=0.5))
    assert (
        lenient([partial], reference_calls=[WEATHER])[0]
        > strict([partial], reference_calls=[WEATHER])[0]
    )


def test_format_term():
    good = call("f", x=1)
    assert format_reward([good, good + "\n" + call("g")]) == [1.0, 1.0]
    assert format_reward(["<tool_call>\n{not json}\n</tool_call>"]) == [0.0]
    assert format_reward(['<tool_call>\n{"arguments": {}}\n</tool_call>']) == [0.0]  # no name
    assert format_reward([good + "\n" + "<tool_call>\n{bad}\n</tool_call>"]) == [0.5]
    assert format_reward(["Plain answer, no call."]) == [1.0]
    assert format_reward([""]) == [0.0]
    assert format_reward(['<tool_call>\n{"name": "f", "arguments": {}}']) == [0.5]  # never closed


def test_execution_term_names_arguments_and_types():
    refs = [ref(("f", {"n": 3, "s": "New York", "xs": [1, 2]}))]
    assert execution_reward([call("f", n=3.0, s="new york", xs=[1, 2])], reference_calls=refs) == [
        1.0
    ]
    assert execution_reward([call("g", n=3, s="New York", xs=[1, 2])], reference_calls=refs) == [
        0.0
    ]
    # one of three arguments wrong: (1 + 2) / (1 + 3)
    assert execution_reward([call("f", n=4, s="New York", xs=[1, 2])], reference_calls=refs) == [
        0.75
    ]
    # "3" is not 3: types matter
    assert execution_reward([call("f", n="3", s="New York", xs=[1, 2])], reference_calls=refs) == [
        0.75
    ]
    assert values_match(True, True) and not values_match(1, True)


def test_execution_term_optional_parameters():
    refs = [ref(("f", {"city": "Oslo", "unit": "c"}), defaults={"unit": "c"})]
    assert execution_reward([call("f", city="Oslo")], reference_calls=refs) == [1.0]
    assert execution_reward([call("f", city="Oslo", unit="c")], reference_calls=refs) == [1.0]
    assert execution_reward([call("f", city="Oslo", unit="f")], reference_calls=refs) == [
        pytest.approx(2 / 3)
    ]


def test_parallel_calls_match_as_a_multiset():
    refs = [ref(("w", {"c": "A"}), ("w", {"c": "B"}), ("t", {"c": "A"}))]
    shuffled = "\n".join([call("t", c="A"), call("w", c="B"), call("w", c="A")])
    assert execution_reward([shuffled], reference_calls=refs) == [1.0]
    missing = "\n".join([call("w", c="B"), call("w", c="A")])
    assert execution_reward([missing], reference_calls=refs) == [pytest.approx(2 / 3)]
    duplicated = "\n".join([call("w", c="A"), call("w", c="A"), call("t", c="A")])
    assert execution_reward([duplicated], reference_calls=refs)[0] < 1.0


def test_irrelevance_rewards_no_call():
    refs = ["[]", "[]"]
    no_call = "None of the available tools can book flights, so I cannot do that."
    assert execution_reward([no_call, call("get_weather", city="Rome")], reference_calls=refs) == [
        1.0,
        0.0,
    ]
    assert gated_composite_reward([no_call], reference_calls=["[]"])[0] > 0.9


def test_reasoning_term_heuristic():
    prompts = [[{"role": "user", "content": "What's the weather in Paris?"}]] * 4
    scores = reasoning_reward(
        [
            RATIONALE + "\n" + call("get_weather", city="Paris"),
            call("get_weather", city="Paris"),  # no rationale
            "I cannot help with that.\n"
            + call("get_weather", city="Paris"),  # contradicts its call
            " ".join(["weather"] * 120) + "\n" + call("get_weather", city="Paris"),  # rambling
        ],
        prompts=prompts,
    )
    assert scores[0] == 1.0
    assert all(s < scores[0] for s in scores[1:])


def test_completions_as_strings_or_messages_and_trl_kwargs():
    text = RATIONALE + "\n" + call("get_weather", city="Paris")
    as_messages = [{"role": "assistant", "content": text}]
    kwargs = {
        "reference_calls": [WEATHER, WEATHER],
        "mode": ["single", "single"],
        "trainer_state": None,
    }
    assert (
        gated_composite_reward([text, as_messages], **kwargs)[0]
        == gated_composite_reward([as_messages, text], **kwargs)[0]
    )
    sink: list[dict] = []
    make_composite_reward(sink=sink)([text], reference_calls=[WEATHER], id=["x"], mode=["single"])
    assert sink[0]["id"] == "x" and set(sink[0]) >= {
        "format",
        "execution",
        "reasoning",
        "gate",
        "total",
    }


def test_missing_reference_column_is_a_clear_error():
    with pytest.raises(ValueError, match="reference_calls"):
        gated_composite_reward(["x"])
