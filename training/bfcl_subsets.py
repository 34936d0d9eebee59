"""Committed BFCL V3 subsets; BFCL mini, the one every checkpoint of the loop is measured on.

The full BFCL V3 run (4,441 items, multi-turn included) takes hours on a CPU; an iteration
of the loop measures both its input and its output checkpoint, so it needs a subset that
is small enough to run twice an iteration and large enough to see a change. BFCL mini is:

- **fixed**: the item ids are committed (``training/data/bfcl-<name>.json``), so every run
  of a version scores the same items, whatever the sampler or the data files do later;
- **seeded**: the ids were drawn by :func:`draw` (a seeded sample per category, kept in the
  file's order), which ``python -m training.bfcl --check-subset mini-v1`` re-runs against
  the file (``--write-subset`` wrote it);
- **versioned**: a new draw or new categories are a new name (``mini-v2``); results store
  the name they were measured on, and only results of the same name are compared;
- **scored with the official checker**, exactly as the full run:
  ``python -m training.bfcl --subset mini-v1`` (``run_bfcl_eval(..., subset="mini-v1")``).

``mini-v1``: 40 items each of simple, multiple, parallel, parallel_multiple, irrelevance
and live_simple (240 items, all single-turn), from ``bfcl-eval==2025.7.9``.

>>> sorted(SUBSETS["mini-v1"].counts.items())[:2]
[('irrelevance', 40), ('live_simple', 40)]
>>> sum(SUBSETS["mini-v1"].counts.values())
240
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_SUBSET = "mini-v1"


@dataclass(frozen=True)
class Subset:
    name: str
    seed: int
    counts: dict[str, int]
    bfcl_eval: str  # the bfcl-eval release the ids come from

    @property
    def path(self) -> Path:
        return DATA_DIR / f"bfcl-{self.name}.json"


SUBSETS: dict[str, Subset] = {
    "mini-v1": Subset(
        name="mini-v1",
        seed=20261205,
        counts={
            "simple": 40,
            "multiple": 40,
            "parallel": 40,
            "parallel_multiple": 40,
            "irrelevance": 40,
            "live_simple": 40,
        },
        bfcl_eval="2025.7.9",
    ),
}


class SubsetError(ValueError):
    """An unknown subset name, or a committed id file that does not match the data."""


def get_subset(name: str) -> Subset:
    try:
        return SUBSETS[name]
    except KeyError:
        raise SubsetError(f"unknown BFCL subset {name!r}; known: {', '.join(SUBSETS)}") from None


def draw(name: str, ids_of: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """The seeded draw behind a subset: per category, ``count`` of the ids ``ids_of(category)``
    gives (every id of the category's data file), kept in that order."""
    subset = get_subset(name)
    out: dict[str, list[str]] = {}
    for category, count in subset.counts.items():
        ids = list(ids_of(category))
        if count > len(ids):
            raise SubsetError(f"{category} has {len(ids)} items, fewer than the {count} asked for")
        keep = set(random.Random(f"{subset.seed}:{category}").sample(range(len(ids)), count))
        out[category] = [i for n, i in enumerate(ids) if n in keep]
    return out


@cache
def _read(name: str) -> dict[str, tuple[str, ...]]:
    subset = get_subset(name)
    try:
        doc = json.loads(subset.path.read_text())
    except (OSError, ValueError) as exc:
        raise SubsetError(f"cannot read {subset.path}: {exc}") from exc
    if doc.get("name") != name or doc.get("bfcl_eval") != subset.bfcl_eval:
        raise SubsetError(f"{subset.path} is not {name} of bfcl-eval {subset.bfcl_eval}")
    items = doc.get("items") or {}
    if {c: len(v) for c, v in items.items()} != subset.counts:
        raise SubsetError(f"{subset.path} does not hold {subset.counts}")
    return {c: tuple(v) for c, v in items.items()}


def subset_ids(name: str = DEFAULT_SUBSET) -> dict[str, list[str]]:
    """The committed item ids of a subset, by category."""
    return {c: list(v) for c, v in _read(name).items()}


def write(name: str, ids_of: Callable[[str], list[str]]) -> Path:
    subset = get_subset(name)
    doc = {
        "name": name,
        "bfcl_eval": subset.bfcl_eval,
        "seed": subset.seed,
        "counts": subset.counts,
        "items": draw(name, ids_of),
    }
    subset.path.parent.mkdir(parents=True, exist_ok=True)
    subset.path.write_text(json.dumps(doc, indent=1) + "\n")
    _read.cache_clear()
    return subset.path
