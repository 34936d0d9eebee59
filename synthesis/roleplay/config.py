"""The role-play run configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .scoring import ScoreWeights
from .steps import MODES
from .verify import VerifySettings

AGENT_PROTOCOLS = ("planned", "native")


def _default_modes() -> dict[str, float]:
    return {
        "single": 0.25,
        "parallel": 0.15,
        "multiple": 0.2,
        "irrelevance": 0.1,
        "multi_turn": 0.3,
    }


@dataclass
class RoleplayConfig:
    modes: dict[str, float] = field(
        default_factory=_default_modes,
        metadata={
            "help": f"Relative weight of each mode when planning specs; keys among {', '.join(MODES)}."
        },
    )
    max_turns: int = field(
        default=15, metadata={"help": "Most user turns in a multi-turn conversation."}
    )
    max_agent_hops: int = field(
        default=4,
        metadata={
            "help": "Most Tool Agent steps (tool-call rounds) answering one user turn; the last one must answer in text."
        },
    )
    max_parallel_calls: int = field(
        default=3, metadata={"help": "Most calls in a parallel single-turn task (at least 2)."}
    )
    multi_turn_min_calls: int = field(
        default=1, metadata={"help": "Fewest planned calls behind a multi-turn goal."}
    )
    multi_turn_max_calls: int = field(
        default=3, metadata={"help": "Most planned calls behind a multi-turn goal."}
    )
    max_repair_attempts: int = field(
        default=2,
        metadata={
            "help": "How often a step failing self-reflection is sent back to the model before it is rejected."
        },
    )
    query_attempts: int = field(
        default=1,
        metadata={
            "help": "Model attempts at putting a planned request in the user's words; when none passes its "
            "checks the plain request is used.  More attempts pay only with a model that learns from the "
            "feedback: with the embedded 135M model no second or third attempt passed in 84 tries."
        },
    )
    agent_protocol: str = field(
        default="planned",
        metadata={
            "help": "How the Tool Agent is asked. planned: a schema-bound decision (call which tools / ask / answer), "
            "then one forced, schema-bound call per tool (good for small models); native: one request with the "
            "tools and tool_choice=auto (good for large models)."
        },
    )
    consistency_samples: int = field(
        default=2,
        metadata={
            "help": "Extra sampled Tool Agent answers per single-turn task, for the self-consistency score (0: none)."
        },
    )
    multi_turn_consistency_samples: int = field(
        default=0,
        metadata={
            "help": "Extra sampled answers per multi-turn tool-calling step (costly; 0: none)."
        },
    )
    reference_fallback: bool = field(
        default=True,
        metadata={
            "help": "When the Tool Agent's step fails self-reflection after its repairs, carry on with the "
            "reference answer (single-turn: the reference calls or the refusal; multi-turn: the plan's next "
            "call, a question for a missing value, or a summary of the results) instead of rejecting the "
            "trajectory. The step log marks it (meta.source = 'reference') and the score counts the failure."
        },
    )
    single_turn_execute: bool = field(
        default=True,
        metadata={
            "help": "Run single-turn calls through the server simulator and let the agent answer from the results."
        },
    )
    min_value_coverage: float = field(
        # Below 1, a query may leave a value of its reference call unsaid, and the example
        # then teaches the model to make that value up.
        default=1.0,
        metadata={
            "help": "Rule check: least share of reference argument values a single-turn query must mention."
        },
    )
    constrain_query_values: bool = field(
        default=False,
        metadata={
            "help": "Constrain single-turn queries (a regex pattern in the JSON schema) to contain the reference values. "
            "Off by default: a pattern lifts the length bound, and a small model then runs the string to the token "
            "limit (unparseable); a query missing values is retried and else replaced by the plain request."
        },
    )
    verifier_count: int = field(
        default=3,
        metadata={"help": "LLM verifiers voting on each trajectory (0: rule checks only)."},
    )
    negotiation_rounds: int = field(
        default=1, metadata={"help": "Most re-votes after a split vote."}
    )
    llm_votes_after_rule_reject: bool = field(
        default=False,
        metadata={"help": "Ask the LLM verifiers even when the rule checks already rejected."},
    )
    hard_threshold: float = field(
        default=0.75,
        metadata={
            "help": "Trajectories scoring below this execution-consistency score are 'hard'."
        },
    )
    score_weights: ScoreWeights = field(
        default_factory=ScoreWeights,
        metadata={
            "help": "Weights of reference agreement, self-consistency and execution success in the score."
        },
    )
    agent_temperature: float = field(
        default=0.0, metadata={"help": "Tool Agent temperature for the kept answer."}
    )
    sample_temperature: float = field(
        default=0.8, metadata={"help": "Temperature of the self-consistency samples."}
    )
    user_temperature: float = field(default=0.7, metadata={"help": "User Simulator temperature."})
    server_temperature: float = field(
        default=0.3, metadata={"help": "MCP Server Simulator temperature."}
    )
    scenario_temperature: float = field(
        default=0.8, metadata={"help": "Temperature for queries, goals and reference arguments."}
    )
    verifier_temperature: float = field(default=0.0, metadata={"help": "Verifier temperature."})
    agent_max_tokens: int = field(
        default=256, metadata={"help": "Token budget of one Tool Agent reply."}
    )
    user_max_tokens: int = field(
        default=160, metadata={"help": "Token budget of one User Simulator turn."}
    )
    server_max_tokens: int = field(
        default=320, metadata={"help": "Token budget of one simulated tool result."}
    )
    scenario_max_tokens: int = field(
        default=200, metadata={"help": "Token budget of a query, goal or reference call."}
    )
    verifier_max_tokens: int = field(default=160, metadata={"help": "Token budget of one vote."})
    server_uses_model: bool = field(
        default=True,
        metadata={
            "help": "Let a model write tool results; off: deterministic schema instances only."
        },
    )
    max_concurrent: int = field(
        default=64, metadata={"help": "Conversations in flight at once (their requests keep the model's batch full)."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.score_weights, dict):
            self.score_weights = ScoreWeights(**self.score_weights)
        unknown = set(self.modes) - set(MODES)
        if unknown:
            raise ValueError(
                f"unknown mode(s) {sorted(unknown)} in modes; valid: {', '.join(MODES)}"
            )
        if any(w < 0 for w in self.modes.values()) or sum(self.modes.values()) <= 0:
            raise ValueError("modes weights must be >= 0 and not all 0, e.g. {'single': 1.0}")
        if self.agent_protocol not in AGENT_PROTOCOLS:
            raise ValueError(
                f"agent_protocol must be one of {AGENT_PROTOCOLS}, got {self.agent_protocol!r}"
            )
        positive = (
            "max_turns",
            "max_agent_hops",
            "multi_turn_min_calls",
            "max_concurrent",
            "query_attempts",
            "agent_max_tokens",
            "user_max_tokens",
            "server_max_tokens",
            "scenario_max_tokens",
            "verifier_max_tokens",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_turns > 50:
            raise ValueError(
                f"max_turns={self.max_turns} is beyond what the prompts are built for; use at most 50"
            )
        if self.max_parallel_calls < 2:
            raise ValueError(
                f"max_parallel_calls must be >= 2 (a parallel task has several calls), got {self.max_parallel_calls}"
            )
        if self.multi_turn_max_calls < self.multi_turn_min_calls:
            raise ValueError(
                f"multi_turn_max_calls ({self.multi_turn_max_calls}) must be >= multi_turn_min_calls ({self.multi_turn_min_calls})"
            )
        nonneg = (
            "max_repair_attempts",
            "consistency_samples",
            "multi_turn_consistency_samples",
            "verifier_count",
            "negotiation_rounds",
        )
        for name in nonneg:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "agent_temperature",
            "sample_temperature",
            "user_temperature",
            "server_temperature",
            "scenario_temperature",
            "verifier_temperature",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("hard_threshold", "min_value_coverage"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        w = self.score_weights
        if (
            min(w.reference, w.consistency, w.execution) < 0
            or w.reference + w.consistency + w.execution <= 0
        ):
            raise ValueError("score_weights must be >= 0 and not all 0")

    def verify_settings(self) -> VerifySettings:
        return VerifySettings(
            verifier_count=self.verifier_count,
            negotiation_rounds=self.negotiation_rounds,
            temperature=self.verifier_temperature,
            max_tokens=self.verifier_max_tokens,
            llm_after_rule_reject=self.llm_votes_after_rule_reject,
        )

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration, to store with the run."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoleplayConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown config field(s) {sorted(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return cls(**d)
