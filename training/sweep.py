"""Choose SFT settings on our own synthesized data, never on BFCL.

The accepted trajectories are split by trajectory (seeded, stratified by mode) into a
training and a validation part.  Every point of a sweep trains on the training part from
the same base checkpoint; each checkpoint (and the base, as the first row) then answers the
validation part's assistant steps, greedy, and is scored with the reward's own terms:

- ``exact``: the share of steps whose calls match the reference exactly (for irrelevance
  steps: no call at all);
- ``execution``: the mean execution fidelity (partial credit for right names and values);
- ``format``: the mean format score (``<tool_call>`` blocks well formed).

The point with the best ``balanced`` score wins: the mean over modes of each mode's
``exact`` (then ``exact`` over all steps, then ``execution``).  Over all steps alone, a
model that refuses everything scored 60% on a split of 9 irrelevance steps in 15, above
the base model and close to the best point.  BFCL only measures the
trained models afterwards; no BFCL item, function or answer enters the choice.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesis.records import TrajectoryRecord
from training.config import SFTRunConfig, with_overrides
from training.dataset import DatasetConfig, as_record, build_grpo_rows, build_sft_rows
from training.rewards import score_completion


@dataclass(frozen=True)
class SweepPoint:
    """One set of SFT settings, named for the table (e.g. ``lr=1e-4 epochs=2``)."""

    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PointResult:
    name: str
    overrides: dict[str, Any]
    exact: float
    execution: float
    format: float
    by_mode: dict[str, dict[str, float]]
    train_seconds: float
    eval_seconds: float
    train_loss: float | None
    steps: int | None
    checkpoint: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def split_records(
    records: Iterable[TrajectoryRecord | dict[str, Any]], *, val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[TrajectoryRecord], list[TrajectoryRecord]]:
    """Accepted trajectories split into (train, validation), whole trajectories on one side,
    each mode split in the same proportion (at least one validation trajectory per mode
    that has two or more).

    >>> recs = [{"id": str(i), "mode": m, "verdict": "accepted",
    ...          "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    ...         for i, m in enumerate(["single"] * 10 + ["irrelevance"] * 5)]
    >>> train, val = split_records(recs, val_fraction=0.2, seed=1)
    >>> len(train), len(val), sorted({r.mode.value for r in val})
    (12, 3, ['irrelevance', 'single'])
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    by_mode: dict[str, list[TrajectoryRecord]] = defaultdict(list)
    for r in records:
        record = as_record(r)
        if record.accepted:
            by_mode[str(record.mode)].append(record)
    rng = random.Random(seed)
    train: list[TrajectoryRecord] = []
    val: list[TrajectoryRecord] = []
    for mode in sorted(by_mode):
        group = sorted(by_mode[mode], key=lambda r: str(r.id))
        rng.shuffle(group)
        k = round(len(group) * val_fraction)
        if len(group) >= 2:
            k = min(max(k, 1), len(group) - 1)
        else:
            k = 0
        val.extend(group[:k])
        train.extend(group[k:])
    return train, val


def validation_items(
    records: Sequence[TrajectoryRecord], *, steps_per_trajectory: int = 2, swap_negatives: float = 0.0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The assistant steps of the validation trajectories as prompts with reference calls
    (the GRPO rows' shape: the same rendering the model is trained and queried with), and
    ``swap_negatives`` irrelevance prompts per request with calls, made within the
    validation split as :func:`training.dataset.swap_negatives` makes them (mode
    ``irrelevance``, reference: no call; their ids hold a ``~``)."""
    rows, _ = build_grpo_rows(
        records, DatasetConfig(grpo_hard_only=False, grpo_steps_per_trajectory=steps_per_trajectory)
    )
    if swap_negatives > 0:
        sft, _ = build_sft_rows(records, DatasetConfig(hard_weight=0, easy_weight=0, swap_negatives=swap_negatives,
                                                       seed=seed))
        rows += [{"prompt": r["messages"][:-1], "reference_calls": "[]", "mode": r["mode"], "id": r["id"]}
                 for r in sorted(sft, key=lambda r: r["id"])]
    return rows


def split_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A point's settings split into the trainer's and the data's (``data.KEY``).

    >>> split_overrides({"learning_rate": 1e-4, "data.swap_negatives": 1})
    ({'learning_rate': 0.0001}, {'swap_negatives': 1})
    """
    trainer = {k: v for k, v in overrides.items() if not k.startswith("data.")}
    data = {k.removeprefix("data."): v for k, v in overrides.items() if k.startswith("data.")}
    return trainer, data


Generate = Callable[[str | None, list[list[dict[str, str]]]], list[str]]


def embedded_generate(max_tokens: int = 256, num_threads: int | None = None) -> Generate:
    """Greedy replies of a checkpoint (None: the packaged base model) from the embedded
    backend, unconstrained, as BFCL is decoded.  The backend is closed after each call."""

    def generate(model_path: str | None, prompts: list[list[dict[str, str]]]) -> list[str]:
        from synthesis.llm.base import ChatRequest
        from synthesis.llm.embedded import EmbeddedBackend, EmbeddedOptions

        options = EmbeddedOptions(model_path=model_path, constrain_tool_calls=False,
                                  max_batch_size=16, num_threads=num_threads)
        backend = EmbeddedBackend(options)
        try:
            requests = [ChatRequest(messages=p, max_tokens=max_tokens, temperature=0.0) for p in prompts]
            answers = backend.complete_batch(requests)
        finally:
            backend.close()
        return [(a[0].text if a else "") or "" for a in answers]

    return generate


def score_replies(items: Sequence[Mapping[str, Any]], replies: Sequence[str]) -> dict[str, Any]:
    """``exact``, ``execution`` and ``format`` over the items, overall and by mode.

    >>> items = [{"mode": "single", "reference_calls": '[{"name": "f", "arguments": {"a": 1}}]'},
    ...          {"mode": "irrelevance", "reference_calls": "[]"}]
    >>> s = score_replies(items, ['<tool_call>\\n{"name": "f", "arguments": {"a": 1}}\\n</tool_call>',
    ...                           '<tool_call>\\n{"name": "f", "arguments": {}}\\n</tool_call>'])
    >>> s["exact"], s["by_mode"]["irrelevance"]["exact"]
    (0.5, 0.0)
    """
    if len(items) != len(replies):
        raise ValueError(f"{len(replies)} replies for {len(items)} items")
    sums: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "exact": 0.0, "execution": 0.0, "format": 0.0})
    for item, reply in zip(items, replies, strict=True):
        terms = score_completion(reply, item["reference_calls"])
        for key in ("all", str(item.get("mode", "?"))):
            s = sums[key]
            s["n"] += 1
            s["exact"] += terms.execution >= 1.0
            s["execution"] += terms.execution
            s["format"] += terms.format
    means = {k: {"n": int(v["n"]), **{m: v[m] / v["n"] for m in ("exact", "execution", "format")}}
             for k, v in sums.items()}
    overall = means.pop("all", {"n": 0, "exact": 0.0, "execution": 0.0, "format": 0.0})
    return {**overall, "by_mode": means}


def run_sweep(
    records: Iterable[TrajectoryRecord | dict[str, Any]],
    base: SFTRunConfig,
    points: Sequence[SweepPoint],
    *,
    out_dir: Path,
    seed: int = 0,
    val_fraction: float = 0.2,
    generate: Generate | None = None,
    train: Callable[[SFTRunConfig, list[dict[str, Any]]], Any] | None = None,
    on_result: Callable[[PointResult], None] | None = None,
    data: DatasetConfig | None = None,
    validation_negatives: float = 0.0,
) -> dict[str, Any]:
    """Train every point on the training split and score it (and the base model, first) on
    the validation split.  Returns the split sizes, every result and the best point.

    ``data``: how the training rows are made (a point's ``data.KEY`` settings change it for
    that point); ``validation_negatives``: swap negatives per validation request
    (:func:`validation_items`), so that a mix's effect on refusing shows on held-out data.
    """
    if not points:
        raise ValueError("a sweep needs at least one point")
    names = [p.name for p in points]
    if len(set(names)) != len(names) or "base" in names:
        raise ValueError("sweep point names must be unique and not 'base'")
    generate = generate or embedded_generate()
    if train is None:
        from training.sft import run_sft as train
    train_recs, val_recs = split_records(records, val_fraction=val_fraction, seed=seed)
    if not train_recs or not val_recs:
        raise ValueError(
            f"too few accepted trajectories to split: {len(train_recs)} train, {len(val_recs)} validation"
        )
    data_base = dataclasses.replace(data or DatasetConfig(), seed=seed)
    rows, stats = build_sft_rows(train_recs, data_base)
    items = validation_items(val_recs, swap_negatives=validation_negatives, seed=seed)
    prompts = [list(i["prompt"]) for i in items]
    results: list[PointResult] = []
    row_counts: dict[str, int] = {}

    def record(result: PointResult) -> None:
        results.append(result)
        if on_result:
            on_result(result)

    base_path = base.model_name_or_path or None
    t = time.perf_counter()
    scored = score_replies(items, generate(base_path, prompts))
    record(PointResult("base", {}, scored["exact"], scored["execution"], scored["format"], scored["by_mode"],
                       0.0, time.perf_counter() - t, None, None, base_path))
    for point in points:
        trainer, data_changes = split_overrides(point.overrides)
        config = with_overrides(base, trainer, output_dir=str(out_dir / _slug(point.name)), seed=seed)
        point_rows = rows
        if data_changes:
            point_rows, point_stats = build_sft_rows(train_recs, with_overrides(data_base, data_changes))
            row_counts[point.name] = point_stats.sft_rows
        t = time.perf_counter()
        result = train(config, point_rows)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        scored = score_replies(items, generate(result.checkpoint_dir, prompts))
        metrics = getattr(result, "metrics", {}) or {}
        record(PointResult(point.name, dict(point.overrides), scored["exact"], scored["execution"],
                           scored["format"], scored["by_mode"], train_s, time.perf_counter() - t,
                           metrics.get("train_loss"), _steps(getattr(result, "log_history", None) or []),
                           result.checkpoint_dir))
    trained = results[1:]
    best = max(trained, key=lambda r: (balanced(r.by_mode), r.exact, r.execution, -r.train_seconds))
    return {
        "seed": seed,
        "val_fraction": val_fraction,
        "train_trajectories": len(train_recs),
        "validation_trajectories": len(val_recs),
        "train_rows": len(rows),
        "train_rows_by_point": row_counts,
        "data": dataclasses.asdict(data_base),
        "validation_items": len(items),
        "validation_modes": dict(sorted(Counter(str(i["mode"]) for i in items).items())),
        "dataset_stats": {k: v for k, v in dataclasses.asdict(stats).items() if k != "errors"},
        "results": [r.to_dict() for r in results],
        "best": best.name,
    }


def balanced(by_mode: Mapping[str, Mapping[str, float]]) -> float:
    """The mean over modes of each mode's ``exact``: every mode counts the same, however
    many validation steps it has.

    >>> balanced({"irrelevance": {"n": 9, "exact": 1.0}, "single": {"n": 2, "exact": 0.0}})
    0.5
    """
    return sum(m["exact"] for m in by_mode.values()) / len(by_mode) if by_mode else 0.0


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The sweep's results as a Markdown table (best point in bold)."""
    modes = list(summary.get("validation_modes") or {})
    head = "| settings | balanced | exact | execution | format | " + " | ".join(f"{m} exact" for m in modes)
    head += " | train loss | steps | train s |"
    lines = [head, "|" + "---|" * (5 + len(modes)) + "---:|---:|---:|"]
    for r in summary["results"]:
        name = f"**{r['name']}**" if r["name"] == summary.get("best") else r["name"]
        per_mode = " | ".join(
            f"{r['by_mode'].get(m, {}).get('exact', 0):.0%}" for m in modes)
        loss = "" if r["train_loss"] is None else f"{r['train_loss']:.3f}"
        lines.append(f"| {name} | {balanced(r['by_mode']):.1%} | {r['exact']:.1%} | {r['execution']:.3f} | {r['format']:.3f} | {per_mode} | "
                     f"{loss} | {r['steps'] or ''} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def _steps(log_history: list[dict[str, Any]]) -> int | None:
    """The optimizer steps a run took: the last step its trainer logged."""
    return max((int(h["step"]) for h in log_history if "step" in h), default=None)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "point"


def parse_point(text: str) -> SweepPoint:
    """``"lr=1e-4,epochs=2"``-style points: ``KEY=VALUE`` pairs of SFT settings (JSON values).

    >>> parse_point("learning_rate=1e-4,num_train_epochs=2")
    SweepPoint(name='learning_rate=1e-4,num_train_epochs=2', overrides={'learning_rate': 0.0001, 'num_train_epochs': 2})
    """
    overrides: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE in {part!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return SweepPoint(text, overrides)


__all__ = [
    "PointResult", "SweepPoint", "balanced", "embedded_generate", "markdown_table", "parse_point", "run_sweep",
    "score_replies", "split_overrides", "split_records", "validation_items",
]
