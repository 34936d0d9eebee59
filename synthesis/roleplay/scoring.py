"""Execution-consistency scoring and the easy/hard split.

Definitions (all values in [0, 1]):

* **call similarity** ``sim(a, b)`` of two calls ``{"name", "arguments"}``: 0 when the names
  differ; otherwise ``0.5 + 0.5 * (matching argument names / all argument names of both)``,
  so equal names with equal arguments give 1.  Argument values are compared AST-style
  after normalisation (:func:`normalize_value`: strings case- and whitespace-insensitive,
  numbers by value, so ``1 == 1.0``, lists in order, objects key by key); an argument
  missing on one side matches when the other side holds the schema's default for it.
  Keys for which ``ignore_key(name)`` is true are left out (multi-turn: identifiers the
  server generated at run time cannot be known in advance).
* **call-set agreement** ``agree(A, B)`` of two lists of calls, compared as multisets (the
  order of parallel calls does not matter): ``1`` when both are empty (irrelevance: no
  call is the right answer), ``0`` when exactly one is empty, otherwise the best
  one-to-one assignment's summed similarity divided by ``max(|A|, |B|)``, so a missing or
  extra call costs as much as a wrong one.
* **reference agreement** ``R = agree(agent_calls, reference_calls)``.
* **self-consistency** ``S`` = the mean of ``agree(sample_i, agent_calls)`` over the k
  extra agent samples for the same prompt (None without samples).
* **execution success** ``E`` = the fraction of the agent's calls that the server answered
  without an error (neither a JSON-RPC error nor ``isError``); None when nothing ran.

The **execution-consistency score** is the weighted mean of the components that exist:
``(w_ref*R + w_sc*S + w_exec*E) / (sum of the weights of the present components)``.  A
trajectory is **hard** when the score is below the threshold (the model it was sampled
from does not reliably reproduce it), otherwise **easy**.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from synthesis.schema_utils import is_id_key, schema_properties

Call = dict[str, Any]


def normalize_value(v: Any) -> Any:
    """A comparable form of a JSON value.

    >>> normalize_value(" New  York ") == normalize_value("new york")
    True
    >>> normalize_value(2.0) == normalize_value(2)
    True
    """
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        f = float(v)
        return round(f, 6) if math.isfinite(f) else str(f)
    if isinstance(v, str):
        s = re.sub(r"\s+", " ", v.strip().lower())
        try:
            f = float(s)
        except ValueError:
            return s
        return round(f, 6) if math.isfinite(f) else s
    if isinstance(v, list | tuple):
        return tuple(normalize_value(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k), normalize_value(x)) for k, x in v.items()))
    return v


def _defaults(tools: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t in tools or []:
        props = schema_properties(t.get("inputSchema"))
        out[t.get("name", "")] = {
            k: p["default"] for k, p in props.items() if isinstance(p, dict) and "default" in p
        }
    return out


def call_similarity(
    a: Call,
    b: Call,
    *,
    defaults: dict[str, Any] | None = None,
    ignore_key: Callable[[str], bool] | None = None,
) -> float:
    """See the module docstring.

    >>> call_similarity({"name": "f", "arguments": {"x": 1}}, {"name": "f", "arguments": {"x": 1.0}})
    1.0
    >>> call_similarity({"name": "f", "arguments": {"x": 1, "y": 2}}, {"name": "f", "arguments": {"x": 1, "y": 3}})
    0.75
    >>> call_similarity({"name": "f", "arguments": {}}, {"name": "g", "arguments": {}})
    0.0
    """
    if a.get("name") != b.get("name"):
        return 0.0
    defaults = defaults or {}
    aa = dict(a.get("arguments") or {})
    bb = dict(b.get("arguments") or {})
    keys = [k for k in dict.fromkeys([*aa, *bb]) if not (ignore_key and ignore_key(k))]
    if not keys:
        return 1.0
    same = 0
    for k in keys:
        va = aa.get(k, defaults.get(k)) if k in aa or k in defaults else _MISSING
        vb = bb.get(k, defaults.get(k)) if k in bb or k in defaults else _MISSING
        if va is not _MISSING and vb is not _MISSING and normalize_value(va) == normalize_value(vb):
            same += 1
    return 0.5 + 0.5 * same / len(keys)


_MISSING = object()


def call_set_agreement(
    calls: Sequence[Call],
    reference: Sequence[Call],
    *,
    tools: Sequence[dict[str, Any]] | None = None,
    ignore_key: Callable[[str], bool] | None = None,
) -> float:
    """See the module docstring.

    >>> call_set_agreement([], [])
    1.0
    >>> call_set_agreement([{"name": "f", "arguments": {}}], [])
    0.0
    >>> a = {"name": "f", "arguments": {"c": "Paris"}}; b = {"name": "f", "arguments": {"c": "Rome"}}
    >>> call_set_agreement([b, a], [a, b])
    1.0
    """
    if not calls and not reference:
        return 1.0
    if not calls or not reference:
        return 0.0
    dflt = _defaults(tools)
    sim = [
        [
            call_similarity(c, r, defaults=dflt.get(r.get("name", "")), ignore_key=ignore_key)
            for r in reference
        ]
        for c in calls
    ]
    return _best_assignment(sim) / max(len(calls), len(reference))


def _best_assignment(sim: list[list[float]]) -> float:
    n, m = len(sim), len(sim[0])
    if min(n, m) <= 6 and max(n, m) <= 7:
        if n <= m:
            return max(
                sum(sim[i][j] for i, j in enumerate(p)) for p in itertools.permutations(range(m), n)
            )
        return max(
            sum(sim[i][j] for j, i in enumerate(p)) for p in itertools.permutations(range(n), m)
        )
    # Large sets (rare): greedy on the best remaining pair.
    pairs = sorted(((sim[i][j], i, j) for i in range(n) for j in range(m)), reverse=True)
    used_i: set[int] = set()
    used_j: set[int] = set()
    total = 0.0
    for s, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            total += s
    return total


def multi_turn_ignore_key(name: str) -> bool:
    """Identifiers are assigned by the server during the conversation, so a plan made in
    advance cannot know them."""
    return is_id_key(name)


@dataclass
class ScoreWeights:
    reference: float = 0.5
    consistency: float = 0.3
    execution: float = 0.2


@dataclass
class Score:
    value: float
    reference: float | None
    consistency: float | None
    execution: float | None

    def components(self) -> dict[str, float | None]:
        return {
            "reference": self.reference,
            "consistency": self.consistency,
            "execution": self.execution,
        }


def execution_consistency(
    *,
    agent_calls: Sequence[Call],
    reference_calls: Sequence[Call] | None,
    samples: Sequence[Sequence[Call]] = (),
    server_errors: Sequence[bool] = (),
    tools: Sequence[dict[str, Any]] | None = None,
    weights: ScoreWeights | None = None,
    ignore_key: Callable[[str], bool] | None = None,
) -> Score:
    """The execution-consistency score (module docstring).  ``reference_calls=None``
    means there is no reference; ``[]`` means the reference is "no call".

    >>> ref = [{"name": "f", "arguments": {"x": 1}}]
    >>> execution_consistency(agent_calls=ref, reference_calls=ref, samples=[ref, []]).value
    0.8125
    """
    w = weights or ScoreWeights()
    r = (
        None
        if reference_calls is None
        else call_set_agreement(agent_calls, reference_calls, tools=tools, ignore_key=ignore_key)
    )
    s = None
    if samples:
        s = sum(
            call_set_agreement(x, agent_calls, tools=tools, ignore_key=ignore_key) for x in samples
        ) / len(samples)
    e = None
    if server_errors:
        e = sum(1 for err in server_errors if not err) / len(server_errors)
    parts = [(w.reference, r), (w.consistency, s), (w.execution, e)]
    total_w = sum(wt for wt, v in parts if v is not None)
    value = sum(wt * v for wt, v in parts if v is not None) / total_w if total_w > 0 else 0.0
    return Score(value=round(value, 6), reference=r, consistency=s, execution=e)


def split_for(score: float, threshold: float) -> str:
    """``"hard"`` below the threshold (low consistency), else ``"easy"``.

    >>> split_for(0.4, 0.75), split_for(0.9, 0.75)
    ('hard', 'easy')
    """
    return "hard" if score < threshold else "easy"
