"""Training rows from accepted trajectories.

Trajectories arrive as :class:`synthesis.records.TrajectoryRecord` (from the database), or
as plain dicts of the same fields (a JSONL file), parsed strictly with the one vocabulary
of ``synthesis.records``::

    {
        "id": "t-17",
        "messages": [...],          # OpenAI format: user/assistant(tool_calls)/tool
        "tools": [...],             # offered tools, MCP or OpenAI definitions
        "mode": "single",           # single | parallel | multiple | irrelevance | multi_turn
        "difficulty": "hard",       # easy | hard (execution-consistency tier)
        "verdict": "accepted",      # the verifiers' verdict: accepted | rejected
        "audit": None,              # a reviewer's accept | reject | flag; overrides the verdict
        "reference_calls": [...],   # optional, single-turn modes: the task's ground truth
    }

What a row teaches is :func:`synthesis.records.ground_truth`, the rule the exports use too:
where the agent's first answer differs from the reference calls, the conversation is cut
after the request and the reference calls (or, in irrelevance, a plain refusal) become the
assistant's answer (counted in ``stats.corrected``).

SFT rows are ``{"messages": [...plain role/content...], ...}`` rendered with
:func:`training.chat_format.render_messages`, so the tokenizer's own chat template turns
them into the exact text the model sees at inference.  GRPO rows hold a conversational
``prompt``, the ``reference_calls`` of the next assistant step (JSON) and the ``mode``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import normalize_tool
from synthesis.records import Difficulty, Mode, TrajectoryRecord, Verdict, ground_truth
from training.chat_format import render_messages


@dataclass
class DatasetConfig:
    hard_weight: float = field(
        default=2.0,
        metadata={
            "help": "How many times each hard row appears in SFT (fractions are sampled with the seed); "
            "also stored as the row's 'weight'."
        },
    )
    easy_weight: float = field(default=1.0, metadata={"help": "The same for easy rows."})
    grpo_steps_per_trajectory: int = field(
        default=4,
        metadata={
            "help": "At most this many assistant steps of one trajectory become GRPO prompts."
        },
    )
    grpo_hard_only: bool = field(
        default=True, metadata={"help": "GRPO rows come from hard samples only."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for fractional repeats and shuffling."})

    def __post_init__(self) -> None:
        for name in ("hard_weight", "easy_weight"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be >= 0 (0 drops those rows), got {getattr(self, name)}"
                )
        if self.grpo_steps_per_trajectory < 1:
            raise ValueError(
                f"grpo_steps_per_trajectory must be >= 1, got {self.grpo_steps_per_trajectory}"
            )


@dataclass
class DatasetStats:
    trajectories: int = 0
    accepted: int = 0
    rejected: int = 0
    audit_overrides: int = 0
    excluded: int = 0
    invalid: int = 0
    sft_rows: int = 0
    grpo_rows: int = 0
    corrected: int = 0
    errors: list[str] = field(default_factory=list)


def as_record(t: TrajectoryRecord | dict[str, Any]) -> TrajectoryRecord:
    """The typed record of ``t`` (a plain dict, e.g. a JSONL line, is parsed strictly)."""
    return t if isinstance(t, TrajectoryRecord) else TrajectoryRecord.from_dict(t)


def is_accepted(trajectory: TrajectoryRecord | dict[str, Any]) -> bool:
    """The human audit decision when there is one, else the verifiers' verdict.

    >>> is_accepted({"messages": [{"role": "user", "content": "hi"}], "verdict": "rejected", "audit": "accept"})
    True
    """
    return as_record(trajectory).accepted


def _tools(t: TrajectoryRecord) -> list[dict[str, Any]]:
    return [normalize_tool(tool) for tool in t.tools]


def _repeats(weight: float, rng: random.Random) -> int:
    whole = int(weight)
    return whole + (1 if rng.random() < weight - whole else 0)


def _reference_calls(message: dict[str, Any], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {t["name"]: t for t in tools}
    out = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            args = json.loads(args) if args.strip() else {}
        schema = by_name.get(fn["name"], {}).get("inputSchema", {})
        required = set(schema.get("required") or [])
        # A parameter the tool does not require and whose reference value is its default may be omitted.
        defaults = {
            k: spec["default"]
            for k, spec in (schema.get("properties") or {}).items()
            if isinstance(spec, dict) and "default" in spec and k not in required
        }
        out.append({"name": fn["name"], "arguments": args, "defaults": defaults})
    return out


def _filter(
    trajectories: Iterable[TrajectoryRecord | dict[str, Any]], exclude_ids: set[str], stats: DatasetStats
) -> list[TrajectoryRecord]:
    kept = []
    for t in trajectories:
        stats.trajectories += 1
        tid = str((t.id if isinstance(t, TrajectoryRecord) else t.get("id")) or stats.trajectories - 1)
        try:
            record = as_record(t)
            if not any(m.get("role") == "assistant" for m in record.messages):
                raise ValueError("no assistant message to learn from")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            stats.invalid += 1
            stats.errors.append(f"{tid}: {exc}")
            continue
        if record.audit is not None and record.accepted != (record.verdict is Verdict.ACCEPTED):
            stats.audit_overrides += 1
        if not record.accepted:
            stats.rejected += 1
            continue
        stats.accepted += 1
        if tid in exclude_ids:
            stats.excluded += 1
            continue
        kept.append(record)
    return kept


def build_sft_rows(
    trajectories: Iterable[TrajectoryRecord | dict[str, Any]],
    config: DatasetConfig | None = None,
    *,
    exclude_ids: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], DatasetStats]:
    """SFT rows from every accepted trajectory (hard ones repeated per ``hard_weight``).

    ``exclude_ids``: trajectory ids to leave out (e.g. flagged by the contamination check).
    Bad trajectories are skipped and described in ``stats.errors``.
    """
    config = config or DatasetConfig()
    stats = DatasetStats()
    rng = random.Random(config.seed)
    rows: list[dict[str, Any]] = []
    for t in _filter(trajectories, {str(i) for i in exclude_ids}, stats):
        tid = t.id
        try:
            source, corrected = ground_truth(t)
            stats.corrected += corrected
            messages = render_messages(source, _tools(t))
        except (KeyError, TypeError, ValueError) as exc:
            stats.invalid += 1
            stats.errors.append(f"{tid}: cannot render: {exc}")
            continue
        weight = config.hard_weight if t.difficulty is Difficulty.HARD else config.easy_weight
        row = {
            "messages": messages,
            "id": tid,
            "mode": str(t.mode),
            "difficulty": str(t.difficulty),
            "weight": float(weight),
        }
        rows.extend(dict(row) for _ in range(_repeats(weight, rng)))
    rng.shuffle(rows)
    stats.sft_rows = len(rows)
    return rows, stats


def build_grpo_rows(
    trajectories: Iterable[TrajectoryRecord | dict[str, Any]],
    config: DatasetConfig | None = None,
    *,
    exclude_ids: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], DatasetStats]:
    """GRPO rows: for each assistant step of an accepted (hard) trajectory, the conversation
    so far as ``prompt`` and that step's calls as ``reference_calls``.

    Steps without calls count only in irrelevance trajectories (the reference is "no call");
    closing summaries of tool-using trajectories are not RL targets.
    """
    config = config or DatasetConfig()
    stats = DatasetStats()
    rows: list[dict[str, Any]] = []
    for t in _filter(trajectories, {str(i) for i in exclude_ids}, stats):
        if config.grpo_hard_only and t.difficulty is not Difficulty.HARD:
            continue
        tid = t.id
        tools = _tools(t)
        mode = str(t.mode)
        taken = 0
        try:
            source, corrected = ground_truth(t)
        except (KeyError, TypeError, ValueError) as exc:
            stats.invalid += 1
            stats.errors.append(f"{tid}: {exc}")
            continue
        stats.corrected += corrected
        for i, message in enumerate(source):
            if message.get("role") != "assistant" or taken >= config.grpo_steps_per_trajectory:
                continue
            has_calls = bool(message.get("tool_calls"))
            if not has_calls and t.mode is not Mode.IRRELEVANCE:
                continue
            try:
                prompt = render_messages(source[:i], tools)
                reference = _reference_calls(message, tools)
            except (KeyError, TypeError, ValueError) as exc:
                stats.invalid += 1
                stats.errors.append(f"{tid} step {i}: {exc}")
                break
            rows.append(
                {
                    "prompt": prompt,
                    "reference_calls": json.dumps(reference, ensure_ascii=False),
                    "mode": mode,
                    "id": f"{tid}:{i}",
                }
            )
            taken += 1
    stats.grpo_rows = len(rows)
    return rows, stats


def to_hf_dataset(rows: list[dict[str, Any]]):
    """A ``datasets.Dataset`` of the rows (what the trainers take)."""
    from datasets import Dataset

    if not rows:
        raise ValueError("no training rows: no accepted trajectories survived filtering")
    return Dataset.from_list(rows)
