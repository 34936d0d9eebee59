"""The settings of one iteration, validated before anything is queued.

Stored as JSON on ``Iteration.config``; the same dataclass parses what the launch form, the
REST API and ``manage.py iterate`` receive, so a forged or stale config fails in one place
with a message that says how to fix it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from jsonschema import Draft4Validator

from inftool_web.core.outbound import API_KEY_ENV_RE, api_key_problem, model_host_problem
from synthesis.records import Mode, Role, values
from synthesis.roleplay.config import RoleplayConfig
from training.bfcl import CATEGORIES
from training.bfcl_subsets import DEFAULT_SUBSET, SUBSETS
from training.config import PROFILE_NAMES, get_profile, with_overrides

MODES = values(Mode)
ROLES = values(Role)
BACKENDS = ("embedded", "openai", "vllm")
PROFILES = (*sorted(PROFILE_NAMES), "none")
MAX_COUNT = 100_000
# Options of the openai backend an iteration may set per role, with their allowed ranges.
NUMERIC_BACKEND_OPTIONS = {"timeout": (0.1, 3600), "max_retries": (0, 20), "backoff": (0, 60)}


MAX_MODE_WEIGHT = 1e6
MAX_EVAL_LIMIT = 100_000
MAX_SEED = 2**32 - 1  # numpy and torch seeds must fit
MAX_ITERATIONS = 100
MAX_LIST = 1000


def _is_int(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _is_number(value: Any, lo: float, hi: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and lo <= value <= hi)


# Text PostgreSQL can store and a header cannot be split with: no NUL, no C0/C1 control
# characters, no line or paragraph separators.  TEXT_PATTERN says the same in the API schema.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TEXT_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"


def _is_text(value: Any, max_len: int) -> bool:
    """Text of at most ``max_len`` characters without control characters."""
    return isinstance(value, str) and len(value) <= max_len and not _CONTROL_RE.search(value)


def _backend_problem(role: Any, spec: Any) -> str | None:
    """Why one role's backend override cannot be used, or None."""
    if role not in ROLES:
        return f"unknown role {str(role)[:40]!r}; valid: {', '.join(ROLES)}"
    if not isinstance(spec, dict) or spec.get("backend") not in BACKENDS:
        return f"{role}: backend must be one of {', '.join(BACKENDS)}"
    extra = set(spec) - {"backend", "base_url", "model", "api_key_env", *NUMERIC_BACKEND_OPTIONS}
    if extra:
        return f"{role}: unknown key(s) {', '.join(sorted(map(str, extra)))}"
    bad = [k for k, (lo, hi) in NUMERIC_BACKEND_OPTIONS.items() if k in spec and not _is_number(spec[k], lo, hi)]
    if bad:
        return f"{role}: " + ", ".join(
            f"{k} must be a number from {NUMERIC_BACKEND_OPTIONS[k][0]} to {NUMERIC_BACKEND_OPTIONS[k][1]}" for k in bad)
    for key, max_len in (("base_url", 500), ("model", 500), ("api_key_env", 100)):
        if key in spec and not _is_text(spec[key], max_len):
            return f"{role}: {key} must be text of at most {max_len} printable characters"
    if "api_key_env" in spec and not API_KEY_ENV_RE.match(spec["api_key_env"]):
        return (f"{role}: api_key_env must name an environment variable ending in _API_KEY "
                f"(such as INFTOOL_LLM_API_KEY), not {spec['api_key_env'][:40]!r}")
    if spec["backend"] == "openai":
        problem = _base_url_problem(spec.get("base_url", ""))
        if not problem and "api_key_env" in spec:
            problem = api_key_problem(spec["base_url"], spec["api_key_env"])
        if problem:
            return f"{role}: {problem}"
    if spec["backend"] == "embedded" and spec.get("model"):
        problem = _checkpoint_problem(spec["model"])
        if problem:
            return f"{role}: {problem}"
    return None


def _base_url_problem(url: str) -> str | None:
    """The openai backend's server: an http(s) URL with no credentials in it, on one of the
    allowed model hosts (``INFTOOL_MODEL_HOSTS``): the server receives prompts and maybe a
    key, so an operator's config may not name an arbitrary (say, internal) host.
    """
    if not url.startswith(("http://", "https://")):
        return "the openai backend needs a base_url starting with http(s)://"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return f"base_url {url[:80]!r} is not a URL ({exc})"
    if not parts.hostname:
        return f"base_url {url[:80]!r} names no host"
    if parts.username is not None or parts.password is not None:
        return "base_url must not hold credentials; name the key's variable in api_key_env instead"
    if any(c.isspace() for c in url):
        return "base_url must not contain spaces"
    return model_host_problem(url)


def _checkpoint_problem(model: str) -> str | None:
    """An embedded model is a checkpoint folder under the var directory, nowhere else."""
    root = Path(settings.INFTOOL_VAR_DIR).resolve()
    path = Path(model)
    resolved = (path if path.is_absolute() else Path(settings.BASE_DIR) / path).resolve()
    if not resolved.is_relative_to(root):
        return f"the embedded backend's model must be a checkpoint folder under {root}, not {model[:120]!r}"
    return None


# Trainer settings an iteration may not change: where it reads and writes, the device and
# what depends on it (mixed precision, vLLM, the cluster-wide global batch), and the reward.
_FIXED_TRAINER_FIELDS = {"model_name_or_path", "output_dir", "use_cpu", "deepspeed", "bf16", "use_vllm",
                         "vllm_mode", "vllm_gpu_memory_utilization", "global_batch_size", "reward"}
# OpenAPI 3.0's dialect (JSON Schema draft 4): boolean exclusive bounds, no const.
_POSITIVE = {"type": "number", "minimum": 0, "exclusiveMinimum": True}
_BELOW_ONE = {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": True}
_OPTIONAL_INT = {"type": ["integer", "null"]}
# What an iteration may set per stage, with the types and bounds the REST API documents and
# training_problem enforces (on top of the trainer dataclasses' own checks), so that what the
# schema allows runs.  Batches are powers of two, which divide every profile's global batch.
_COMMON_TRAINER = {
    "learning_rate": {**_POSITIVE, "maximum": 1},
    "num_train_epochs": {**_POSITIVE, "maximum": 100},
    "max_steps": {"type": "integer", "minimum": -1, "maximum": 1_000_000, "not": {"enum": [0]}},
    "per_device_train_batch_size": {"enum": [1, 2, 4, 8, 16, 32, 64]},
    "gradient_accumulation_steps": {**_OPTIONAL_INT, "minimum": 1, "maximum": 1024},
    "lr_scheduler_type": {"enum": ["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts",
                                   "polynomial", "inverse_sqrt"]},
    "warmup_ratio": _BELOW_ONE,
    "weight_decay": {"type": "number", "minimum": 0, "maximum": 1},
    "gradient_checkpointing": {"type": "boolean"},
    "logging_steps": {"type": "integer", "minimum": 1, "maximum": 100_000},
    "save_steps": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
    "save_total_limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    "torch_num_threads": {**_OPTIONAL_INT, "minimum": 1, "maximum": 256},
}
TRAINER_SETTINGS_SCHEMA: dict[str, dict[str, Any]] = {
    "sft": {
        **_COMMON_TRAINER,
        "max_length": {"type": "integer", "minimum": 16, "maximum": 131_072},
        "assistant_only_loss": {"type": "boolean"},
        "packing": {"type": "boolean"},
        "lora_r": {"type": "integer", "minimum": 0, "maximum": 1024},
        "lora_alpha": {**_POSITIVE, "maximum": 4096},
        "lora_dropout": _BELOW_ONE,
        "lora_target_modules": {"type": "string", "minLength": 1, "maxLength": 200,
                                "pattern": "^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$"},
    },
    "grpo": {
        **_COMMON_TRAINER,
        "num_generations": {"type": "integer", "minimum": 2, "maximum": 64},
        "temperature": {**_POSITIVE, "maximum": 2},
        "top_p": {**_POSITIVE, "maximum": 1},
        "beta": {**_POSITIVE, "maximum": 10},
        "max_completion_length": {"type": "integer", "minimum": 1, "maximum": 131_072},
        "max_prompt_length": {**_OPTIONAL_INT, "minimum": 1, "maximum": 131_072},
        "loss_type": {"enum": ["grpo", "dapo", "dr_grpo", "bnpo"]},
        "log_completions": {"type": "boolean"},
        "screen_solved": {"type": "boolean"},
    },
    # not a stage: how the rows both stages train on are made (training.dataset.DatasetConfig)
    "data": {
        "hard_weight": {"type": "number", "minimum": 0, "maximum": 100},
        "easy_weight": {"type": "number", "minimum": 0, "maximum": 100},
        "swap_negatives": {"type": "number", "minimum": 0, "maximum": 16},
        "irrelevance_share": {"type": ["number", "null"], "minimum": 0, "maximum": 1, "exclusiveMaximum": True},
        "refusal_wordings": {"type": "integer", "minimum": 1, "maximum": 6},
        "grpo_steps_per_trajectory": {"type": "integer", "minimum": 1, "maximum": 64},
        "grpo_hard_only": {"type": "boolean"},
    },
}


def training_overrides_schema() -> dict[str, Any]:
    """JSON Schema of ``IterationConfig.training``: per stage, the settings above only."""
    return {"type": "object", "additionalProperties": False, "properties": {
        stage: {"type": "object", "additionalProperties": False, "properties": props}
        for stage, props in TRAINER_SETTINGS_SCHEMA.items()}}


def stage_settings(profile: str, stage: str, overrides: dict[str, dict[str, Any]] | None) -> Any:
    """The profile's trainer settings for ``stage`` with the iteration's overrides applied
    (the dataclass checks them: a bad value raises ``ValueError``).  Accumulation steps set
    here replace a profile's global batch (the two are one choice, made one way or the other)."""
    return with_overrides(getattr(get_profile(profile), stage), (overrides or {}).get(stage))


def training_problem(training: Any, profile: str) -> str | None:
    """Why ``training`` overrides cannot apply to ``profile``, or None."""
    if not isinstance(training, dict) or set(training) - set(TRAINER_SETTINGS_SCHEMA):
        return 'must map "sft" and/or "grpo" to trainer settings (and "data" to how the rows are made)'
    if training and profile == "none":
        return 'the profile "none" trains nothing'
    for stage, changes in training.items():
        if not isinstance(changes, dict) or len(changes) > 40:
            return f"{stage}: must be an object of trainer settings"
        known = set(TRAINER_SETTINGS_SCHEMA[stage])
        unknown = sorted(map(str, set(changes) - known))
        if unknown:
            return f"{stage}: unknown or fixed settings {', '.join(unknown)[:200]}; valid: {', '.join(sorted(known))}"
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in changes.values()):
            return f"{stage}: values must be numbers, booleans, strings or null"
        try:
            stage_settings(profile, stage, training)
        except (TypeError, ValueError) as exc:
            return f"{stage}: {str(exc)[:300]}"
        for key, value in changes.items():
            for err in Draft4Validator(TRAINER_SETTINGS_SCHEMA[stage][key]).iter_errors(value):
                return f"{stage}.{key}: {err.message[:200]}"
    return None


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
    training: dict[str, dict[str, Any]] = field(
        default_factory=dict,
        metadata={"help": 'Overrides of the profile\'s trainer settings per stage, e.g. {"sft": {"max_steps": 40, '
                          '"learning_rate": 1e-4, "lora_r": 16}, "grpo": {"max_steps": 8}} (training/config.py); '
                          '"data" sets how the rows are made, e.g. {"data": {"swap_negatives": 1}} '
                          '(training/dataset.py).'},
    )
    eval_subset: str = field(
        default=DEFAULT_SUBSET,
        metadata={"help": f"Committed BFCL V3 subset to evaluate ({', '.join(SUBSETS)}: BFCL mini, 240 items); "
                          "empty = the whole of BFCL V3 (hours on a CPU)."},
    )
    eval_limit: int | None = field(
        default=None,
        metadata={"help": "BFCL items per category: the first that many of the subset's, or a seeded sample of "
                          "the whole; null = all."},
    )
    eval_categories: list[str] = field(
        default_factory=list, metadata={"help": "BFCL V3 categories to evaluate; empty = all (of the subset)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for sampling tools, personas and modes."})
    iterations: int = field(
        default=1, metadata={"help": "Iterations to run in a row (1–100), each with the previous one's trained model "
                                     "as its Tool Agent and the next seed."}
    )
    min_usability: float = field(
        default=0.6,
        metadata={"help": "Role-play draws tasks only from tools whose usability score is at least this (0–1); "
                          "manage.py curate_tools reports the scores."},
    )

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not _is_int(self.count, 1, MAX_COUNT):
            errors["count"] = f"must be an integer from 1 to {MAX_COUNT}"
        if not isinstance(self.modes, dict) or not self.modes:
            errors["modes"] = f"must map modes ({', '.join(MODES)}) to weights"
        else:
            unknown = sorted(map(str, set(self.modes) - set(MODES)))
            if unknown:
                errors["modes"] = f"unknown mode(s) {', '.join(unknown)}; valid: {', '.join(MODES)}"
            elif not all(_is_number(w, 0, MAX_MODE_WEIGHT) for w in self.modes.values()):
                errors["modes"] = f"weights must be numbers from 0 to {MAX_MODE_WEIGHT:g}"
            elif sum(self.modes.values()) <= 0:
                errors["modes"] = "at least one mode needs a weight above 0"
        if not isinstance(self.domains, list) or len(self.domains) > MAX_LIST or not all(
                _is_text(d, 200) for d in self.domains):
            errors["domains"] = f"must be a list of at most {MAX_LIST} domain names (text, up to 200 characters)"
        if not isinstance(self.backends, dict):
            errors["backends"] = "must map roles to {backend, base_url, model}"
        else:
            for role, spec in self.backends.items():
                problem = _backend_problem(role, spec)
                if problem:
                    errors["backends"] = problem
                    break
        if not _is_int(self.verifiers, 1, 7):
            errors["verifiers"] = "must be an integer from 1 to 7"
        if not _is_int(self.negotiation_rounds, 0, 3):
            errors["negotiation_rounds"] = "must be an integer from 0 to 3"
        if not _is_int(self.max_turns, 1, 15):
            errors["max_turns"] = "must be an integer from 1 to 15"
        if not _is_number(self.hard_threshold, 0.0, 1.0):
            errors["hard_threshold"] = "must be a number from 0 to 1"
        if not isinstance(self.profile, str) or self.profile not in PROFILES:
            errors["profile"] = f"must be one of {', '.join(PROFILES)}"
        elif (problem := training_problem(self.training, self.profile)) is not None:
            errors["training"] = problem
        if not isinstance(self.eval_subset, str) or (self.eval_subset and self.eval_subset not in SUBSETS):
            errors["eval_subset"] = f"must be one of {', '.join(SUBSETS)}, or empty (the whole of BFCL V3)"
        if self.eval_limit is not None and not _is_int(self.eval_limit, 1, MAX_EVAL_LIMIT):
            errors["eval_limit"] = f"must be an integer from 1 to {MAX_EVAL_LIMIT}, or null (all items)"
        if (not isinstance(self.eval_categories, list) or len(self.eval_categories) > MAX_LIST
                or not all(_is_text(c, 100) for c in self.eval_categories)):
            errors["eval_categories"] = "must be a list of BFCL V3 category names"
        elif self.eval_categories:
            unknown = sorted(set(self.eval_categories) - set(CATEGORIES))
            if unknown:
                errors["eval_categories"] = f"unknown categories {', '.join(unknown)}; valid: {', '.join(CATEGORIES)}"
        if not _is_number(self.min_usability, 0.0, 1.0):
            errors["min_usability"] = "must be a number from 0 to 1 (the lowest tool usability score to draw tasks from)"
        if not _is_int(self.seed, 0, MAX_SEED):
            errors["seed"] = f"must be an integer from 0 to {MAX_SEED}"
        if not _is_int(self.iterations, 1, MAX_ITERATIONS):
            errors["iterations"] = f"must be an integer from 1 to {MAX_ITERATIONS}"
        if errors:
            raise ConfigError(errors)

    @classmethod
    def from_dict(cls, data: Any) -> IterationConfig:
        if not isinstance(data, dict):
            raise ConfigError({"config": "must be a JSON object"})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(data) - names))
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

    def roleplay_config(self) -> RoleplayConfig:
        """The role-play engine's settings for this iteration's trajectories."""
        return RoleplayConfig(
            modes={m: float(w) for m, w in self.modes.items() if w > 0},
            max_turns=self.max_turns,
            verifier_count=self.verifiers,
            negotiation_rounds=self.negotiation_rounds,
            hard_threshold=self.hard_threshold,
        )


def config_from_options(**options: Any) -> dict[str, Any]:
    """An iteration config from command-line options: those given (not None, not empty)
    are kept; ``modes`` as a list means equal weights.

    >>> config_from_options(count=5, modes=["single", "parallel"], max_turns=None, domains=[])
    {'count': 5, 'modes': {'single': 1, 'parallel': 1}}
    """
    config = {k: v for k, v in options.items() if v is not None and v != []}
    if isinstance(config.get("modes"), list):
        config["modes"] = {m: 1 for m in config["modes"]}
    return config

def parse_train_set(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["sft.max_steps=40", "sft.lora_r=16"]`` -> ``{"sft": {"max_steps": 40, "lora_r": 16}}``
    (JSON values, else the text); a pair not written STAGE.KEY=VALUE raises ``ValueError``.

    >>> parse_train_set(["sft.max_steps=40", "grpo.beta=0.04", "sft.lora_target_modules=q_proj"])
    {'sft': {'max_steps': 40, 'lora_target_modules': 'q_proj'}, 'grpo': {'beta': 0.04}}
    """
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, raw = pair.partition("=")
        stage, dot, key = target.partition(".")
        if not (sep and dot and key):
            raise ValueError(f"{pair!r}: write STAGE.KEY=VALUE, e.g. sft.max_steps=40")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(stage, {})[key] = value
    return out


_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"


def iteration_config_schema() -> dict[str, Any]:
    """JSON Schema of :class:`IterationConfig` as the API documents it: the same fields,
    types and bounds as ``__post_init__`` checks, so that what the schema allows is accepted
    (the allowed model hosts and the checkpoint folder come from settings)."""
    def text(max_len: int, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "maxLength": max_len, "pattern": TEXT_PATTERN, **extra}

    hosts = "|".join(re.escape(h) for h in sorted(settings.INFTOOL_MODEL_HOSTS) if ":" not in h)
    var_dir = re.escape(str(Path(settings.INFTOOL_VAR_DIR).resolve()))
    numeric = {k: {"type": "number", "minimum": lo, "maximum": hi} for k, (lo, hi) in NUMERIC_BACKEND_OPTIONS.items()}
    role_spec = {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["backend"], "properties": {
            "backend": {"enum": ["embedded"]},
            # a checkpoint folder under the var directory ("/." and ".." could leave it);
            # empty: the embedded model itself
            "model": {"type": "string", "maxLength": 500,
                      "pattern": f"^({var_dir}(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*)?$"}}},
        {"type": "object", "additionalProperties": False, "required": ["backend", "base_url"], "properties": {
            "backend": {"enum": ["openai"]},
            "base_url": {"type": "string", "maxLength": 500,
                         "pattern": f"^https?://({hosts})(:{_PORT})?(/[A-Za-z0-9._~/-]*)?$"},
            "model": text(500), **numeric}},
        {"type": "object", "additionalProperties": False, "required": ["backend"], "properties": {
            "backend": {"enum": ["vllm"]}, "model": text(500)}},
    ]}
    modes = {m: {"type": "number", "minimum": 0, "maximum": MAX_MODE_WEIGHT} for m in MODES}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
            "modes": {"type": "object", "additionalProperties": False, "properties": modes, "minProperties": 1,
                      # at least one mode weighs more than 0
                      "anyOf": [{"required": [m], "properties": {m: {"minimum": 0, "exclusiveMinimum": True}}}
                                for m in MODES]},
            "domains": {"type": "array", "maxItems": MAX_LIST, "items": text(200)},
            "backends": {"type": "object", "additionalProperties": False,
                         "properties": dict.fromkeys(ROLES, role_spec)},
            "verifiers": {"type": "integer", "minimum": 1, "maximum": 7},
            "negotiation_rounds": {"type": "integer", "minimum": 0, "maximum": 3},
            "max_turns": {"type": "integer", "minimum": 1, "maximum": 15},
            "hard_threshold": {"type": "number", "minimum": 0, "maximum": 1},
            "profile": {"enum": list(PROFILES)},
            "training": training_overrides_schema(),
            "eval_subset": {"enum": ["", *SUBSETS]},
            "eval_limit": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_EVAL_LIMIT},
            "eval_categories": {"type": "array", "maxItems": MAX_LIST, "items": {"enum": list(CATEGORIES)}},
            "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
            "iterations": {"type": "integer", "minimum": 1, "maximum": MAX_ITERATIONS},
            "min_usability": {"type": "number", "minimum": 0, "maximum": 1},
        },
        # the profile "none" trains nothing, so it takes no trainer settings
        "anyOf": [{"properties": {"profile": {"not": {"enum": ["none"]}}}},
                  {"properties": {"training": {"maxProperties": 0}}}],
        "description": "IterationConfig fields; omitted ones take their defaults.",
    }
