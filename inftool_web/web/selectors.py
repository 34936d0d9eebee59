"""Reads behind the pages: summaries, stratification and dataset statistics in few queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import MD5, Cast, Concat, Floor, Least

from inftool_web.catalog.models import Tool, TreeNode
from inftool_web.loop.models import CategoryResult, EvaluationRun, Iteration
from inftool_web.synth.models import Trajectory

MODES = tuple(Trajectory.Kind.values)
MODE_LABELS = {m: m.replace("_", "-") for m in MODES}

EFFECTIVE_VERDICT = Case(
    When(audit_decision="accept", then=Value("accepted")),
    When(audit_decision__in=["reject", "flag"], then=Value("rejected")),
    default=F("verdict"),
    output_field=CharField(),
)


@dataclass
class IterationSummary:
    iteration: Iteration
    total: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    pending: int = 0
    easy: int = 0
    hard: int = 0
    bfcl_overall: float | None = None

    @property
    def hard_share(self) -> float | None:
        return self.hard / (self.easy + self.hard) if self.easy + self.hard else None

    @property
    def easy_share(self) -> float | None:
        return self.easy / (self.easy + self.hard) if self.easy + self.hard else None

    @property
    def finished(self) -> int:
        return self.accepted + self.rejected

    @property
    def progress(self) -> tuple[int, int]:
        """(done, total) from the iteration's own progress when it reports one, else from rows."""
        p = self.iteration.progress or {}
        if isinstance(p.get("done"), int) and isinstance(p.get("total"), int) and p["total"] > 0:
            return p["done"], p["total"]
        target = (self.iteration.config or {}).get("count") or self.total or 0
        return min(self.finished, target), target

    @property
    def progress_pct(self) -> int:
        done, total = self.progress
        return round(100 * done / total) if total else 0


def iteration_summaries(iterations: list[Iteration]) -> list[IterationSummary]:
    summaries = {it.pk: IterationSummary(iteration=it) for it in iterations}
    rows = (
        Trajectory.objects.filter(iteration_id__in=summaries)
        .annotate(eff=EFFECTIVE_VERDICT)
        .values("iteration_id", "kind", "difficulty", "eff")
        .annotate(n=Count("id"))
    )
    for r in rows:
        s = summaries[r["iteration_id"]]
        s.total += r["n"]
        s.by_mode[r["kind"]] = s.by_mode.get(r["kind"], 0) + r["n"]
        if r["eff"] == "accepted":
            s.accepted += r["n"]
        elif r["eff"] == "rejected":
            s.rejected += r["n"]
        else:
            s.pending += r["n"]
        if r["difficulty"] == "easy":
            s.easy += r["n"]
        elif r["difficulty"] == "hard":
            s.hard += r["n"]
    evals = (
        EvaluationRun.objects.filter(iteration_id__in=summaries, status="succeeded", overall__isnull=False)
        .order_by("iteration_id", "-created_at").values("iteration_id", "overall")
    )
    for e in evals:
        s = summaries[e["iteration_id"]]
        if s.bfcl_overall is None:
            s.bfcl_overall = e["overall"]
    return [summaries[it.pk] for it in iterations]


def recent_trajectories(*, iteration: Iteration | None = None, limit: int = 20) -> QuerySet[Trajectory]:
    qs = Trajectory.objects.select_related("iteration", "domain")
    if iteration is not None:
        qs = qs.filter(iteration=iteration)
    return qs.order_by("-created_at", "-id")[:limit]


def live_trajectories(*, iteration: Iteration, limit: int = 12) -> list[Trajectory]:
    """The newest trajectories of an iteration with their messages, for the live feed."""
    return list(
        Trajectory.objects.filter(iteration=iteration).select_related("domain")
        .prefetch_related("messages").order_by("-created_at", "-id")[:limit]
    )


# ------------------------------------------------------------------ iteration statistics
@dataclass
class IterationStats:
    score_hist: list[int]
    by_mode_difficulty: list[tuple[str, list[int]]]
    by_domain_difficulty: list[tuple[str, list[int]]]
    per_domain_category: list[tuple[str, int]]
    compared: list[Iteration]
    tokens_by_mode: list[tuple[str, list[float]]]  # per compared iteration: mean tokens per mode
    acceptance_by_mode: list[tuple[str, list[float]]]
    repair_by_mode: list[tuple[str, list[float]]]
    turn_labels: list[str]
    turns_hist: list[tuple[str, list[float]]]


def iteration_stats(*, iteration: Iteration, compare_with: int = 3) -> IterationStats:
    own = Trajectory.objects.filter(iteration=iteration)

    hist = [0] * 10
    for r in (own.filter(score__isnull=False)
              .annotate(b=Least(Cast(Floor(F("score") * 10), IntegerField()), Value(9)))
              .values("b").annotate(n=Count("id"))):
        hist[r["b"]] += r["n"]

    mode_diff: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    dom_diff: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in own.exclude(difficulty="").values("kind", "difficulty", "domain__name").annotate(n=Count("id")):
        i = 0 if r["difficulty"] == "easy" else 1
        mode_diff[MODE_LABELS.get(r["kind"], r["kind"])][i] += r["n"]
        dom_diff[r["domain__name"] or "(none)"][i] += r["n"]
    by_mode = [(MODE_LABELS[m], mode_diff[MODE_LABELS[m]]) for m in MODES if MODE_LABELS[m] in mode_diff]
    by_domain = sorted(dom_diff.items(), key=lambda kv: -sum(kv[1]))[:12]

    per_dc = [
        (f"{r['domain__name'] or '(none)'} / {r['category__name'] or '—'}", r["n"])
        for r in own.values("domain__name", "category__name").annotate(n=Count("id")).order_by("-n")[:12]
    ]

    compared = list(
        Iteration.objects.filter(number__lte=iteration.number).order_by("-number")[: compare_with + 1]
    )[::-1]
    ids = [it.pk for it in compared]
    per = (
        Trajectory.objects.filter(iteration_id__in=ids)
        .values("iteration_id", "kind")
        .annotate(
            n=Count("id"),
            tokens=Avg(F("prompt_tokens") + F("completion_tokens")),
            judged=Count("id", filter=~Q(verdict="") | ~Q(audit_decision="")),
            accepted=Count("id", filter=Q(audit_decision="accept") | Q(audit_decision="", verdict="accepted")),
            repaired=Count("id", filter=Q(repaired=True)),
        )
    )
    table = {(r["iteration_id"], r["kind"]): r for r in per}

    def series(metric) -> list[tuple[str, list[float]]]:
        out = []
        for it in compared:
            out.append((f"#{it.number}", [metric(table.get((it.pk, m))) for m in MODES]))
        return out

    tokens = series(lambda r: float(r["tokens"] or 0) if r else 0.0)
    acceptance = series(lambda r: r["accepted"] / r["judged"] if r and r["judged"] else 0.0)
    repair = series(lambda r: r["repaired"] / r["n"] if r and r["n"] else 0.0)

    turns: dict[tuple[int, int], int] = {}
    max_turn = 1
    for r in (Trajectory.objects.filter(iteration_id__in=ids, kind="multi_turn", num_turns__gt=0)
              .values("iteration_id", "num_turns").annotate(n=Count("id"))):
        turns[(r["iteration_id"], r["num_turns"])] = r["n"]
        max_turn = max(max_turn, r["num_turns"])
    turn_labels = [str(i) for i in range(1, max_turn + 1)]
    turns_hist = [(f"#{it.number}", [float(turns.get((it.pk, t), 0)) for t in range(1, max_turn + 1)])
                  for it in compared]
    return IterationStats(
        score_hist=hist, by_mode_difficulty=by_mode, by_domain_difficulty=by_domain,
        per_domain_category=per_dc, compared=compared, tokens_by_mode=tokens,
        acceptance_by_mode=acceptance, repair_by_mode=repair, turn_labels=turn_labels, turns_hist=turns_hist,
    )


# ------------------------------------------------------------------ trajectories
def trajectory_detail(*, pk: int) -> Trajectory:
    return (
        Trajectory.objects.select_related("iteration", "domain", "category", "persona")
        .prefetch_related("messages", "reflections", "votes", "audits__reviewer")
        .get(pk=pk)
    )


def votes_by_round(trajectory: Trajectory) -> list[tuple[int, list]]:
    rounds: dict[int, list] = defaultdict(list)
    for v in trajectory.votes.all():
        rounds[v.round].append(v)
    return sorted(rounds.items())


# ------------------------------------------------------------------ tools
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


# ------------------------------------------------------------------ audit
def audit_sample(*, iteration: Iteration, size: int, seed: str) -> list[Trajectory]:
    """A reproducible random sample: the order of md5(id || seed) is fixed for a given seed,
    and growing the size only appends to the same sample."""
    return list(
        Trajectory.objects.filter(iteration=iteration)
        .exclude(status__in=["pending", "running"])
        .annotate(sample_key=MD5(Concat(Cast("id", CharField()), Value(str(seed)))))
        .select_related("domain")
        .prefetch_related("messages", "votes", "audits__reviewer")
        .order_by("sample_key", "id")[:size]
    )


# ------------------------------------------------------------------ evaluations
@dataclass
class EvaluationTable:
    runs: list[EvaluationRun]
    categories: list[str]
    cells: dict[str, list[CategoryResult | None]]


def evaluation_table() -> EvaluationTable:
    runs = list(
        EvaluationRun.objects.select_related("checkpoint", "iteration")
        .prefetch_related("results").order_by("created_at", "id")
    )
    categories = sorted({r.category for run in runs for r in run.results.all()})
    cells: dict[str, list[CategoryResult | None]] = {c: [] for c in categories}
    for run in runs:
        by_cat = {r.category: r for r in run.results.all()}
        for c in categories:
            cells[c].append(by_cat.get(c))
    return EvaluationTable(runs=runs, categories=categories, cells=cells)
