"""The settings of one iteration, validated before anything is queued.

Stored as JSON on ``Iteration.config``; the same dataclass parses what the launch form, the
REST API and ``manage.py iterate`` receive, so a forged or stale config fails in one place
with a message that says how to fix it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MODES = ("single", "parallel", "multiple", "irrelevance", "multi_turn")
ROLES = ("user", "agent", "server", "verifier", "judge")
BACKENDS = ("embedded", "openai", "vllm")
PROFILES = ("cpu", "gpu", "none")
MAX_COUNT = 100_000
# Options of the openai backend an iteration may set per role, with their allowed ranges.
NUMERIC_BACKEND_OPTIONS = {"timeout": (0.1, 3600), "max_retries": (0, 20), "backoff": (0, 60)}


class ConfigError(ValueError):
    """An iteration config that cannot run; ``errors`` maps field names to messages."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass
class IterationConfig:
    count: int = field(default=20, metadata={"help": "Trajectories to synthesize (1–100000)."})
    modes: dict[str, float] = field(
        default_factory=lambda: {"single": 1, "parallel": 1, "multiple": 1, "irrelevance": 1, "multi_turn": 1},
        metadata={"help": f"Relative weight of each mode; modes: {', '.join(MODES)}."},
    )
    domains: list[str] = field(
        default_factory=list, metadata={"help": "Only tools of these domains (names); empty = all."}
    )
    backends: dict[str, dict[str, str]] = field(
        default_factory=dict,
        metadata={"help": "Per role (user, agent, server, verifier, judge): backend, base_url, model."},
    )
    verifiers: int = field(default=3, metadata={"help": "Number of verifiers voting (1–7)."})
    negotiation_rounds: int = field(default=1, metadata={"help": "Extra voting rounds on disagreement (0–3)."})
    max_turns: int = field(default=6, metadata={"help": "Multi-turn conversation length cap (1–15)."})
    hard_threshold: float = field(
        default=0.6, metadata={"help": "Trajectories scoring below this consistency are hard (0–1)."}
    )
    profile: str = field(default="cpu", metadata={"help": "Training profile: cpu, gpu, or none (no training)."})
    eval_limit: int | None = field(default=5, metadata={"help": "BFCL items per category; null = all."})
    eval_categories: list[str] = field(
        default_factory=list, metadata={"help": "BFCL V3 categories to evaluate; empty = all."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for sampling tools, personas and modes."})

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not isinstance(self.count, int) or isinstance(self.count, bool) or not 1 <= self.count <= MAX_COUNT:
            errors["count"] = f"must be an integer from 1 to {MAX_COUNT}"
        if not isinstance(self.modes, dict) or not self.modes:
            errors["modes"] = f"must map modes ({', '.join(MODES)}) to weights"
        else:
            unknown = sorted(set(self.modes) - set(MODES))
            if unknown:
                errors["modes"] = f"unknown mode(s) {', '.join(unknown)}; valid: {', '.join(MODES)}"
            elif any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in self.modes.values()):
                errors["modes"] = "weights must be numbers >= 0"
            elif sum(self.modes.values()) <= 0:
                errors["modes"] = "at least one mode needs a weight above 0"
        if not isinstance(self.domains, list) or not all(isinstance(d, str) and len(d) <= 200 for d in self.domains):
            errors["domains"] = "must be a list of domain names"
        if not isinstance(self.backends, dict):
            errors["backends"] = "must map roles to {backend, base_url, model}"
        else:
            for role, spec in self.backends.items():
                if role not in ROLES:
                    errors["backends"] = f"unknown role {role!r}; valid: {', '.join(ROLES)}"
                    break
                if not isinstance(spec, dict) or spec.get("backend") not in BACKENDS:
                    errors["backends"] = f"{role}: backend must be one of {', '.join(BACKENDS)}"
                    break
                extra = set(spec) - {"backend", "base_url", "model", "api_key_env", *NUMERIC_BACKEND_OPTIONS}
                if extra:
                    errors["backends"] = f"{role}: unknown key(s) {', '.join(sorted(extra))}"
                    break
                bad = [k for k, (lo, hi) in NUMERIC_BACKEND_OPTIONS.items() if k in spec and not (
                    isinstance(spec[k], (int, float)) and not isinstance(spec[k], bool) and lo <= spec[k] <= hi)]
                if bad:
                    errors["backends"] = f"{role}: " + ", ".join(
                        f"{k} must be a number from {NUMERIC_BACKEND_OPTIONS[k][0]} to {NUMERIC_BACKEND_OPTIONS[k][1]}"
                        for k in bad)
                    break
                if spec["backend"] == "openai" and not str(spec.get("base_url", "")).startswith(("http://", "https://")):
                    errors["backends"] = f"{role}: the openai backend needs a base_url starting with http(s)://"
                    break
        if not isinstance(self.verifiers, int) or isinstance(self.verifiers, bool) or not 1 <= self.verifiers <= 7:
            errors["verifiers"] = "must be an integer from 1 to 7"
        if not isinstance(self.negotiation_rounds, int) or not 0 <= self.negotiation_rounds <= 3:
            errors["negotiation_rounds"] = "must be an integer from 0 to 3"
        if not isinstance(self.max_turns, int) or isinstance(self.max_turns, bool) or not 1 <= self.max_turns <= 15:
            errors["max_turns"] = "must be an integer from 1 to 15"
        if not isinstance(self.hard_threshold, (int, float)) or not 0.0 <= self.hard_threshold <= 1.0:
            errors["hard_threshold"] = "must be a number from 0 to 1"
        if self.profile not in PROFILES:
            errors["profile"] = f"must be one of {', '.join(PROFILES)}"
        if self.eval_limit is not None and (not isinstance(self.eval_limit, int) or self.eval_limit < 1):
            errors["eval_limit"] = "must be a positive integer or null (all items)"
        if not isinstance(self.eval_categories, list):
            errors["eval_categories"] = "must be a list of BFCL V3 category names"
        elif self.eval_categories:
            from training.bfcl import CATEGORIES

            unknown = sorted(set(map(str, self.eval_categories)) - set(CATEGORIES))
            if unknown:
                errors["eval_categories"] = f"unknown categories {', '.join(unknown)}; valid: {', '.join(CATEGORIES)}"
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            errors["seed"] = "must be an integer"
        if errors:
            raise ConfigError(errors)

    @classmethod
    def from_dict(cls, data: Any) -> IterationConfig:
        if not isinstance(data, dict):
            raise ConfigError({"config": "must be a JSON object"})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError({"config": f"unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"})
        try:
            return cls(**data)
        except TypeError as exc:  # e.g. unhashable values where a list was expected
            raise ConfigError({"config": str(exc)}) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def mode_counts(self) -> dict[str, int]:
        """Split ``count`` over the modes by weight (largest remainder, deterministic)."""
        total = sum(self.modes.values())
        raw = {m: self.count * w / total for m, w in self.modes.items() if w > 0}
        counts = {m: int(v) for m, v in raw.items()}
        rest = self.count - sum(counts.values())
        for m in sorted(raw, key=lambda m: (-(raw[m] - counts[m]), MODES.index(m)))[:rest]:
            counts[m] += 1
        return {m: c for m, c in counts.items() if c}
