"""Training rows from accepted trajectories.

A trajectory is a plain dict, as the synthesis pipeline and the database hand it over::

    {
        "id": "t-17",
        "messages": [...],          # OpenAI format: user/assistant(tool_calls)/tool
        "tools": [...],             # offered tools, MCP or OpenAI definitions
        "mode": "single",           # single | parallel | multiple | irrelevance | multi_turn
        "difficulty": "hard",       # easy | hard (execution-consistency tier)
        "verdict": "accept",        # the verifiers' verdict
        "audit": None,              # a human audit decision; overrides the verdict when set
        "reference_calls": [...],   # optional, single-turn modes: the task's ground truth
    }

In single-turn modes the verifiers judge the task (the request and its reference calls),
and the Tool Agent's own answer only sets the score.  So where the agent's first answer
differs from the reference calls, the row teaches the reference: the conversation is cut
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
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import normalize_tool
from training.chat_format import render_messages

MODES = ("single", "parallel", "multiple", "irrelevance", "multi_turn")
DIFFICULTIES = ("easy", "hard")
_ACCEPT = {"accept", "accepted", "approve", "approved", "pass", "passed", "valid", "true", "1"}
_REJECT = {"reject", "rejected", "deny", "denied", "fail", "failed", "invalid", "false", "0"}


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


def _decision(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, dict):  # {"decision": "accept", ...}
        return _decision(value.get("decision"))
    text = str(value).strip().lower()
    if text in _ACCEPT:
        return True
    if text in _REJECT:
        return False
    raise ValueError(
        f"unknown decision {value!r}; valid: accept/accepted, reject/rejected (or a bool)"
    )


def is_accepted(trajectory: dict[str, Any]) -> bool:
    """The human audit decision when there is one, else the verifiers' verdict.

    >>> is_accepted({"verdict": "reject", "audit": "accept"}), is_accepted({"verdict": "accepted"})
    (True, True)
    """
    audit = _decision(trajectory.get("audit"))
    if audit is not None:
        return audit
    verdict = _decision(trajectory.get("verdict"))
    return bool(verdict)


def _check_trajectory(t: dict[str, Any]) -> None:
    messages = t.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list of chat messages")
    if not any(m.get("role") == "assistant" for m in messages):
        raise ValueError("no assistant message to learn from")
    mode = t.get("mode", "single")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    difficulty = t.get("difficulty", "easy")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; valid: {', '.join(DIFFICULTIES)}")


SINGLE_TURN = ("single", "parallel", "multiple", "irrelevance")
REFUSAL = "None of the tools I have can do that, so I cannot help with this request."


def _call_key(call: dict[str, Any]) -> tuple[str, str]:
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    if isinstance(args, str):
        args = json.loads(args) if args.strip() else {}
    return fn.get("name", ""), json.dumps(args, sort_keys=True, ensure_ascii=False)


def ground_truth_messages(t: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The conversation to learn from, and whether it was corrected to the reference.

    >>> t = {"mode": "single", "reference_calls": [{"name": "f", "arguments": {"x": 1}}],
    ...      "messages": [{"role": "user", "content": "f of 1"},
    ...                   {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"x": 2}'}}]}]}
    >>> msgs, corrected = ground_truth_messages(t)
    >>> corrected, msgs[-1]["tool_calls"][0]["function"]
    (True, {'name': 'f', 'arguments': '{"x": 1}'})
    """
    messages = t["messages"]
    reference = t.get("reference_calls")
    mode = t.get("mode", "single")
    if mode not in SINGLE_TURN or reference is None or (not reference and mode != "irrelevance"):
        return messages, False
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), None)
    if first is None:
        return messages, False
    given = sorted(_call_key(c) for c in messages[first].get("tool_calls") or [])
    wanted = sorted(_call_key(c) for c in reference)
    if given == wanted:
        return messages, False
    if reference:
        answer = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_ref_{i}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments") or {}, ensure_ascii=False)},
                }
                for i, c in enumerate(reference)
            ],
        }
    else:
        answer = {"role": "assistant", "content": REFUSAL}
    return [*messages[:first], answer], True


def _tools(t: dict[str, Any]) -> list[dict[str, Any]]:
    return [normalize_tool(tool) for tool in t.get("tools") or []]


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
    trajectories: list[dict[str, Any]], exclude_ids: set[str], stats: DatasetStats
) -> list[dict[str, Any]]:
    kept = []
    for t in trajectories:
        stats.trajectories += 1
        tid = str(t.get("id", stats.trajectories - 1))
        try:
            _check_trajectory(t)
            accepted = is_accepted(t)
        except (ValueError, KeyError, TypeError) as exc:
            stats.invalid += 1
            stats.errors.append(f"{tid}: {exc}")
            continue
        audit = _decision(t.get("audit"))
        if audit is not None and audit != bool(_decision(t.get("verdict"))):
            stats.audit_overrides += 1
        if not accepted:
            stats.rejected += 1
            continue
        stats.accepted += 1
        if tid in exclude_ids:
            stats.excluded += 1
            continue
        kept.append(t)
    return kept


def build_sft_rows(
    trajectories: list[dict[str, Any]],
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
        tid = str(t.get("id", ""))
        try:
            source, corrected = ground_truth_messages(t)
            stats.corrected += corrected
            messages = render_messages(source, _tools(t))
        except (KeyError, TypeError, ValueError) as exc:
            stats.invalid += 1
            stats.errors.append(f"{tid}: cannot render: {exc}")
            continue
        difficulty = t.get("difficulty", "easy")
        weight = config.hard_weight if difficulty == "hard" else config.easy_weight
        row = {
            "messages": messages,
            "id": tid,
            "mode": t.get("mode", "single"),
            "difficulty": difficulty,
            "weight": float(weight),
        }
        rows.extend(dict(row) for _ in range(_repeats(weight, rng)))
    rng.shuffle(rows)
    stats.sft_rows = len(rows)
    return rows, stats


def build_grpo_rows(
    trajectories: list[dict[str, Any]],
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
        if config.grpo_hard_only and t.get("difficulty", "easy") != "hard":
            continue
        tid = str(t.get("id", ""))
        tools = _tools(t)
        mode = t.get("mode", "single")
        taken = 0
        try:
            source, corrected = ground_truth_messages(t)
        except (KeyError, TypeError, ValueError) as exc:
            stats.invalid += 1
            stats.errors.append(f"{tid}: {exc}")
            continue
        stats.corrected += corrected
        for i, message in enumerate(source):
            if message.get("role") != "assistant" or taken >= config.grpo_steps_per_trajectory:
                continue
            has_calls = bool(message.get("tool_calls"))
            if not has_calls and mode != "irrelevance":
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
