"""Before/after on the same BFCL items: paired differences with bootstrap confidence intervals.

Two checkpoints measured on the same items (a committed subset such as BFCL mini) differ
item by item; this compares them per category and for the summary groups, pairing every
item with itself, and gives a percentile bootstrap 95% confidence interval of the
difference (items resampled within each category, so every category keeps its size and a
group mean keeps its weights).

>>> before = {"simple": {"a": False, "b": False, "c": True, "d": False}}
>>> after = {"simple": {"a": True, "b": False, "c": True, "d": True}}
>>> row = compare(before, after, resamples=2000, seed=1)["categories"]["simple"]
>>> row["n"], row["before"], row["after"], row["diff"]
(4, 0.25, 0.75, 0.5)
>>> 0.0 <= row["ci_low"] <= row["diff"] <= row["ci_high"] <= 1.0
True
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from training.bfcl import CATEGORIES, NON_LIVE

# The groups the loop is judged on: non-live AST (the unweighted mean of four categories, as
# BFCL's "non_live_ast" over python), and every category held (unweighted).
NON_LIVE_AST = NON_LIVE[:4]  # simple, multiple, parallel, parallel_multiple

Outcomes = Mapping[str, Mapping[str, bool]]  # category -> item id -> correct


def outcomes(items: Iterable[Any]) -> dict[str, dict[str, bool]]:
    """``{category: {id: valid}}`` from item results (``BFCLItemResult`` s or dicts with
    ``category``, ``id`` and ``valid``)."""
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        get = item.get if isinstance(item, Mapping) else lambda k, item=item: getattr(item, k)
        out.setdefault(get("category"), {})[get("id")] = bool(get("valid"))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def compare(
    before: Outcomes, after: Outcomes, *, resamples: int = 5000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """Paired before/after per category and group, over the items both sides hold.

    Returns ``{"categories": {name: row}, "groups": {name: row}, "resamples", "level",
    "unpaired"}``, each row ``{"n", "before", "after", "diff", "ci_low", "ci_high"}``
    (accuracies in 0..1); ``unpaired`` counts items only one side measured (left out).
    """
    paired: dict[str, list[tuple[int, int]]] = {}
    unpaired = 0
    for category in sorted(set(before) | set(after)):
        b, a = before.get(category, {}), after.get(category, {})
        both = sorted(set(b) & set(a))
        unpaired += len(set(b) ^ set(a))
        if both:
            paired[category] = [(int(b[i]), int(a[i])) for i in both]

    groups = {
        "non_live_ast": [c for c in NON_LIVE_AST if c in paired],
        "all": list(paired),
    }

    def stats(pairs_by_cat: Mapping[str, list[tuple[int, int]]]) -> dict[str, tuple[float, float]]:
        cat = {
            c: (_mean([p[0] for p in ps]), _mean([p[1] for p in ps])) for c, ps in pairs_by_cat.items()
        }
        out = dict(cat)
        for name, members in groups.items():
            if members:
                out[f"group:{name}"] = (
                    _mean([cat[c][0] for c in members]),
                    _mean([cat[c][1] for c in members]),
                )
        return out

    point = stats(paired)
    rng = random.Random(seed)
    diffs: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(resamples):
        sample = {c: [ps[rng.randrange(len(ps))] for _ in ps] for c, ps in paired.items()}
        for key, (b, a) in stats(sample).items():
            diffs[key].append(a - b)

    def row(key: str, n: int) -> dict[str, Any]:
        b, a = point[key]
        ds = sorted(diffs[key])
        lo_i = int((1 - level) / 2 * len(ds))
        hi_i = min(len(ds) - 1, int((1 + level) / 2 * len(ds)))
        return {
            "n": n,
            "before": b,
            "after": a,
            "diff": a - b,
            "ci_low": ds[lo_i] if ds else a - b,
            "ci_high": ds[hi_i] if ds else a - b,
        }

    return {
        "categories": {c: row(c, len(ps)) for c, ps in paired.items()},
        "groups": {
            name: row(f"group:{name}", sum(len(paired[c]) for c in members))
            for name, members in groups.items()
            if members
        },
        "resamples": resamples,
        "level": level,
        "unpaired": unpaired,
    }


def table(comparison: Mapping[str, Any]) -> str:
    """The comparison as a Markdown table (percentage points for differences)."""
    level = round(comparison.get("level", 0.95) * 100)
    lines = [
        f"| | items | before | after | difference | {level}% CI of the difference |",
        "|---|---:|---:|---:|---:|---|",
    ]

    def line(name: str, r: Mapping[str, Any]) -> str:
        return (
            f"| {name} | {r['n']} | {r['before']:.1%} | {r['after']:.1%} | "
            f"{(r['diff']) * 100:+.1f} pts | [{r['ci_low'] * 100:+.1f}, {r['ci_high'] * 100:+.1f}] |"
        )

    # BFCL's own order (a JSONB column hands the keys back sorted by length)
    rank = {c: i for i, c in enumerate(CATEGORIES)}
    for name in sorted(comparison["categories"], key=lambda c: rank.get(c, len(rank))):
        lines.append(line(name, comparison["categories"][name]))
    for name in ("non_live_ast", "all"):
        if name in comparison["groups"]:
            lines.append(line(f"**{name}** (mean)", comparison["groups"][name]))
    return "\n".join(lines)
