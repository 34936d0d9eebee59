"""Reads for the catalog: the curation summary of the stored tools, and the tree's state."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Q

from synthesis.mcp_tree.curation import REASONS

from .models import Tool, TreeNode


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
