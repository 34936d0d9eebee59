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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import normalize_tool
from synthesis.records import (
    REFUSAL,
    REFUSAL_WORDINGS,
    Difficulty,
    Mode,
    TrajectoryRecord,
    Verdict,
    ground_truth,
    refusal,
)
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
    swap_negatives: float = field(
        default=0.0,
        metadata={
            "help": "Irrelevance rows made from the accepted data, per accepted single-turn trajectory with "
            "calls (fractions are sampled with the seed): its request offered the tools of another accepted "
            "trajectory that shares no tool and no topic word with it, answered with the refusal. "
            "0 adds none."
        },
    )
    irrelevance_share: float | None = field(
        default=None,
        metadata={
            "help": "At most this share of SFT rows teaches a refusal (irrelevance rows, swap negatives "
            "included); above it, refusal rows are dropped, repeats first, with the seed. None: no cap."
        },
    )
    refusal_wordings: int = field(
        default=1,
        metadata={
            "help": "How many wordings refusals are written in (1 to 6, synthesis.records.REFUSAL_WORDINGS), "
            "chosen per request; the others name the offered tools. 1: every refusal is the same sentence."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed for fractional repeats and shuffling."})

    def __post_init__(self) -> None:
        for name in ("hard_weight", "easy_weight", "swap_negatives"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be >= 0 (0 drops those rows), got {getattr(self, name)}"
                )
        if self.irrelevance_share is not None and not 0 <= self.irrelevance_share < 1:
            raise ValueError(f"irrelevance_share must be in [0, 1) or None, got {self.irrelevance_share}")
        if not 1 <= self.refusal_wordings <= len(REFUSAL_WORDINGS):
            raise ValueError(f"refusal_wordings must be in 1..{len(REFUSAL_WORDINGS)}, got {self.refusal_wordings}")
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
    swap_negatives: int = 0
    refusals_capped: int = 0
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
    kept: list[tuple[TrajectoryRecord, list[dict[str, Any]]]] = []
    for t in _filter(trajectories, {str(i) for i in exclude_ids}, stats):
        tid = t.id
        try:
            source, corrected = ground_truth(t)
            stats.corrected += corrected
            source = reworded_refusals(source, _tools(t), config.refusal_wordings)
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
        kept.append((t, source))
    if config.swap_negatives > 0:
        negatives = swap_negatives(kept, config.swap_negatives, rng, wordings=config.refusal_wordings)
        stats.swap_negatives = len(negatives)
        rows.extend(negatives)
    if config.irrelevance_share is not None:
        rows, stats.refusals_capped = cap_refusals(rows, config.irrelevance_share, rng)
    rng.shuffle(rows)
    stats.sft_rows = len(rows)
    return rows, stats


def _tool_name(tool: dict[str, Any]) -> str:
    """An MCP tool's name, or an OpenAI function's."""
    fn = tool.get("function")
    return str(tool.get("name") or (fn.get("name") if isinstance(fn, dict) else "") or "")


def reworded_refusals(
    messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]], wordings: int
) -> list[dict[str, Any]]:
    """``messages`` with every refusal (an assistant message that is :data:`REFUSAL` and
    calls nothing) in one of ``wordings`` wordings (:func:`synthesis.records.refusal`),
    chosen by the user request before it.  ``wordings=1`` returns ``messages`` unchanged.

    >>> msgs = [{"role": "user", "content": "book a flight"}, {"role": "assistant", "content": REFUSAL}]
    >>> reworded_refusals(msgs, [{"name": "getAccount"}], 2)[1]["content"]
    'I cannot help with that: the tools I have (getAccount) do not cover it.'
    """
    if wordings == 1:
        return messages
    names = [_tool_name(t) for t in tools]
    out, request = [], ""
    for m in messages:
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            request = m["content"]
        elif m.get("role") == "assistant" and m.get("content") == REFUSAL and not m.get("tool_calls"):
            m = {**m, "content": refusal(request, names, wordings)}
        out.append(m)
    return out


def cap_refusals(
    rows: list[dict[str, Any]], share: float, rng: random.Random
) -> tuple[list[dict[str, Any]], int]:
    """``rows`` with at most ``share`` of them irrelevance rows (refusals), and how many were
    dropped.  Repeats of a trajectory go first, then whole trajectories, chosen with ``rng``.

    Irrelevance trajectories tend to be hard (the Tool Agent's answers to them vary), so the
    hard weight repeats them, and every one of them ends in the same refusal sentence: 20 of
    53 rows in one run, and the trained model then refused 237 of BFCL mini's 240 items.

    >>> rows = [{"id": "a", "mode": "irrelevance"}] * 2 + [{"id": "b", "mode": "irrelevance"}, {"id": "c", "mode": "single"}]
    >>> kept, dropped = cap_refusals(rows, 0.5, random.Random(0))
    >>> sorted(r["id"] for r in kept), dropped
    (['a', 'c'], 2)
    """
    refusals = [r for r in rows if r.get("mode") == str(Mode.IRRELEVANCE)]
    others = [r for r in rows if r.get("mode") != str(Mode.IRRELEVANCE)]
    limit = int(share / (1 - share) * len(others) + 1e-9)
    if len(refusals) <= limit:
        return rows, 0
    firsts: dict[str, dict[str, Any]] = {}
    repeats = []
    for r in refusals:
        if r["id"] in firsts:
            repeats.append(r)
        else:
            firsts[r["id"]] = r
    kept = list(firsts.values())
    rng.shuffle(kept)
    rng.shuffle(repeats)
    kept = (kept + repeats)[:limit]
    return others + kept, len(refusals) - len(kept)


# Words that say what an operation does, not what it is about: two requests or tool sets
# that share only these may still be on unrelated topics.
_GENERIC_WORDS = frozenset("""
    about account accounts action active add after again also all allow another any api apis available
    back based before body call can change check count create current data date default delete
    description detail details does each edit enable enabled entry every false fetch field fields filter
    find first following format from full have help here id ids include info information item items
    json just last latest like limit list make many more name names need new next none number object
    offset one only option optional order other page param parameter parameters please post query
    read record records remove replace request required reset response result results retrieve return
    returns search see send set show single some sort specific start status string such sure that the
    their them then there these this those type types update upload used user using value values want
    what when where which will with without would xml yes your
""".split())


def topic_words(text: str) -> set[str]:
    """The words of ``text`` that name a topic: camelCase and snake_case split, lower case,
    four letters or more, a plural's final "s" dropped, generic operation words left out.

    >>> sorted(topic_words("Get the weather forecast for Paris, getForecastByCity(city_name)"))
    ['city', 'forecast', 'pari', 'weather']
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    words = set()
    for w in re.findall(r"[A-Za-z]+", spaced):
        w = w.lower()
        if len(w) < 4 or w in _GENERIC_WORDS:
            continue
        w = w[:-1] if w.endswith("s") and not w.endswith("ss") else w
        if w not in _GENERIC_WORDS and len(w) >= 4:
            words.add(w)
    return words


def _tool_words(tools: Sequence[dict[str, Any]]) -> set[str]:
    words: set[str] = set()
    for tool in tools:
        props = (tool.get("inputSchema") or {}).get("properties") or {}
        words |= topic_words(" ".join([tool.get("name", ""), tool.get("description") or "", *map(str, props)]))
    return words


def swap_negatives(
    kept: Sequence[tuple[TrajectoryRecord, list[dict[str, Any]]]], per_trajectory: float, rng: random.Random,
    *, wordings: int = 1,
) -> list[dict[str, Any]]:
    """Irrelevance SFT rows from accepted data: a request of a single-turn trajectory with
    calls, offered the tools of another accepted trajectory that shares no tool name and no
    topic word (:func:`topic_words`) with the request or its own tools, answered with the
    refusal.  ``per_trajectory`` rows per request on average (fractions sampled), each with
    a different donor; a request no donor qualifies for gets none.

    The donors' tool sets are real ones from the store and the requests real accepted
    requests, so the model sees the same kinds of text it is trained on elsewhere; only the
    pairing is new, and the topic check keeps a request from meeting tools that could serve
    it.
    """
    requests = []
    donors = []
    for t, source in kept:
        tools = _tools(t)
        if not tools:
            continue
        names = {tool["name"] for tool in tools}
        words = _tool_words(tools)
        donors.append((t.id, tools, names, words))
        first = next((m for m in source if m.get("role") == "user"), None)
        has_calls = any(m.get("role") == "assistant" and m.get("tool_calls") for m in source)
        if (t.mode in (Mode.SINGLE, Mode.PARALLEL, Mode.MULTIPLE) and has_calls and first
                and isinstance(first.get("content"), str) and first["content"].strip()):
            requests.append((t.id, first, names, words | topic_words(first["content"])))
    rows: list[dict[str, Any]] = []
    for tid, request, names, words in requests:
        n = _repeats(per_trajectory, rng)
        if not n:
            continue
        eligible = [d for d in donors if d[0] != tid and not (d[2] & names) and not (d[3] & words)]
        for donor_id, tools, _, _ in rng.sample(eligible, min(n, len(eligible))):
            messages = render_messages(
                [{"role": "user", "content": request["content"]},
                 {"role": "assistant", "content": refusal(request["content"], [_tool_name(t) for t in tools], wordings)}],
                tools,
            )
            rows.append({"messages": messages, "id": f"{tid}~{donor_id}", "mode": str(Mode.IRRELEVANCE),
                         "difficulty": str(Difficulty.EASY), "weight": 1.0})
    return rows


class NoTrainableRows(ValueError):
    """A trainer left every row out before training (its message says why): nothing to train on."""


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
