"""Reads for the catalog: tools, domains, the curation summary of the stored tools, and the tree's state."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.contrib.postgres.search import TrigramSimilarity
from django.db import connection
from django.db.models import Count, F, Q, QuerySet

from inftool_web.core.filters import FilterError, is_id
from synthesis.mcp_tree.curation import REASONS

from .models import DuplicateLink, Tool, ToolVector, TreeBuild, TreeNode


@dataclass(frozen=True)
class ReasonCount:
    code: str
    tools: int
    meaning: str


@dataclass(frozen=True)
class CurationSummary:
    """What a threshold keeps of the stored tools, and why it drops the others."""

    threshold: float
    total: int
    scored: int
    kept: int
    canonical_kept: int  # what role-play can draw from (duplicates are never offered)
    dropped_by_reason: list[ReasonCount] = field(default_factory=list)

    @property
    def unscored(self) -> int:
        return self.total - self.scored

    @property
    def dropped(self) -> int:
        return self.scored - self.kept


def curation_summary(*, threshold: float) -> CurationSummary:
    """Counts at ``threshold``, with every reason code of the dropped tools (a tool with two
    reasons counts under both), most frequent first."""
    counts = Tool.objects.aggregate(
        total=Count("id"),
        scored=Count("id", filter=Q(usability_score__isnull=False)),
        kept=Count("id", filter=Q(usability_score__gte=threshold)),
        canonical_kept=Count("id", filter=Q(usability_score__gte=threshold, canonical__isnull=True)),
    )
    table = Tool._meta.db_table
    with connection.cursor() as cur:
        # One row per (dropped tool, reason); the reasons are a JSON list on the tool.
        cur.execute(
            f"SELECT r->>'code' AS code, count(*) FROM {table} t,"  # noqa: S608 - the table name is ours
            " jsonb_array_elements(t.usability_reasons) r"
            " WHERE t.usability_score < %s GROUP BY 1 ORDER BY 2 DESC, 1",
            [threshold],
        )
        reasons = [ReasonCount(code=code, tools=n, meaning=REASONS.get(code, ("", 0, ""))[2])
                   for code, n in cur.fetchall()]
    return CurationSummary(threshold=threshold, dropped_by_reason=reasons, **counts)


def parse_min_score(text: str | None) -> float | None:
    """The ``min_score`` filter: a number from 0 to 1, or None when absent or empty.

    >>> parse_min_score("0.6"), parse_min_score("")
    (0.6, None)
    """
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise FilterError({"min_score": f"must be a number from 0 to 1, not {text[:40]!r}"}) from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise FilterError({"min_score": f"must be a number from 0 to 1, not {text[:40]!r}"})
    return value


# A longer search string only costs the database more (trigram similarity of every word).
MAX_QUERY_LENGTH = 200


def tool_list(*, q: str = "", domain: str = "", category: str = "", min_score: float | None = None) -> QuerySet[Tool]:
    """Tools matching ``q`` by name similarity or by description words (both backed by
    trigram GIN indexes), and scoring at least ``min_score`` for usability when given
    (unscored tools are left out).  A ``q`` over MAX_QUERY_LENGTH raises FilterError."""
    if len(q) > MAX_QUERY_LENGTH:
        raise FilterError({"q": f"must be at most {MAX_QUERY_LENGTH} characters, not {len(q)}"})
    qs = Tool.objects.select_related("source", "domain", "category")
    if min_score is not None:
        qs = qs.filter(usability_score__gte=min_score)
    if domain:
        qs = qs.filter(domain_id=int(domain)) if is_id(domain) else qs.filter(domain__name=domain)
    if category:
        qs = qs.filter(category_id=int(category)) if is_id(category) else qs.filter(category__name=category)
    q = q.strip()
    if q:
        qs = (
            qs.filter(Q(name__trigram_similar=q) | Q(name__icontains=q) | Q(description__icontains=q))
            .annotate(similarity=TrigramSimilarity("name", q))
            .order_by("-similarity", "name", "id")
        )
    else:
        qs = qs.order_by("name", "id")
    return qs


def domain_list() -> QuerySet[TreeNode]:
    return TreeNode.objects.filter(level=TreeNode.Level.DOMAIN).order_by("name")


def tool_tree() -> list[tuple[TreeNode, list[TreeNode]]]:
    """Domains with their categories, each annotated with its number of tools."""
    domains = list(TreeNode.objects.filter(level="domain").annotate(n=Count("domain_tools")).order_by("name"))
    cats: dict[int, list[TreeNode]] = defaultdict(list)
    for c in TreeNode.objects.filter(level="category").annotate(n=Count("tools")).order_by("name"):
        cats[c.parent_id].append(c)
    return [(d, cats.get(d.pk, [])) for d in domains]


def duplicate_groups(tools: list[Tool]) -> dict[int, list[Tool]]:
    """For each listed tool, the other members of its duplicate group (canonical first)."""
    roots = {t.canonical_id or t.pk for t in tools}
    members: dict[int, list[Tool]] = defaultdict(list)
    for t in (Tool.objects.filter(Q(pk__in=roots) | Q(canonical_id__in=roots))
              .select_related("source").order_by("canonical_id", "name")):
        members[t.canonical_id or t.pk].append(t)
    return {t.pk: [m for m in members[t.canonical_id or t.pk] if m.pk != t.pk] for t in tools}


@dataclass(frozen=True)
class TreeState:
    tools: int
    domains: int
    unplaced: int  # tools in no domain: stored after the last build

    @property
    def needs_build(self) -> bool:
        """Tools are stored and some are in no tree (none built yet, or new since)."""
        return self.tools > 0 and (self.domains == 0 or self.unplaced > 0)


def tree_state() -> TreeState:
    counts = Tool.objects.aggregate(total=Count("id"), unplaced=Count("id", filter=Q(domain__isnull=True)))
    return TreeState(tools=counts["total"], domains=TreeNode.objects.filter(level=TreeNode.Level.DOMAIN).count(),
                     unplaced=counts["unplaced"])


def tree_is_current(*, fingerprint: str) -> TreeBuild | None:
    """The last build, when it was made from exactly this fingerprint and its tree is still stored."""
    last = TreeBuild.objects.first()
    if last is None or last.fingerprint != fingerprint or not TreeNode.objects.exists():
        return None
    return last


def tool_vectors(*, ids: list[int], recipe: str) -> np.ndarray:
    """The stored float32 vectors of ``ids``, one row each, in order (an id may repeat),
    read in batches straight into the array.  A tool without a vector of ``recipe`` is an
    error: the caller stored them."""
    rows_of: dict[int, list[int]] = {}
    for k, pk in enumerate(ids):
        rows_of.setdefault(pk, []).append(k)
    wanted = list(rows_of)
    out: np.ndarray | None = None
    seen = 0
    for start in range(0, len(wanted), 5000):
        batch = ToolVector.objects.filter(tool_id__in=wanted[start : start + 5000], recipe=recipe,
                                          content_hash=F("tool__content_hash")).values_list("tool_id", "vector")
        for pk, vec in batch.iterator(chunk_size=1000):
            v = np.frombuffer(bytes(vec), dtype="<f4")
            if out is None:
                out = np.empty((len(ids), v.size), dtype=np.float32)
            out[rows_of[pk]] = v
            seen += 1
    if seen < len(wanted):
        raise ValueError(f"{len(wanted) - seen} of {len(wanted)} tools have no stored {recipe} vector")
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def judge_verdicts_kept(*, changed: set[int]) -> dict[tuple[int, int], tuple[bool, str]]:
    """The stored judge verdicts between tools neither of which changed since: a rebuild
    reuses them instead of asking the judge again.  Keys are (tool id, canonical id)."""
    rows = DuplicateLink.objects.filter(method=DuplicateLink.Method.JUDGE).values_list(
        "tool_id", "canonical_id", "is_duplicate", "rationale")
    return {(a, b): (dup, why) for a, b, dup, why in rows.iterator(chunk_size=5000)
            if a not in changed and b not in changed}
