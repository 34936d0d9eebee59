"""Reads for the loop: trajectories in the plain shape ``training/`` takes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Avg, Count, F, IntegerField, Q, QuerySet, Value
from django.db.models.functions import Cast, Floor, Least

from inftool_web.synth.models import Message, Trajectory
from inftool_web.synth.selectors import effective_verdict_value
from synthesis.records import Audit, Difficulty, Mode, TrajectoryRecord, Verdict, values

from .models import CategoryResult, EvaluationRun, Iteration


def message_openai(m: Message) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        msg["tool_calls"] = m.tool_calls
    if m.role == "tool":
        msg["tool_call_id"] = m.tool_call_id
        if m.name:
            msg["name"] = m.name
    return msg


def training_trajectories(*, iteration_id: int, chunk: int = 500) -> Iterator[TrajectoryRecord]:
    """Finished trajectories of an iteration as the typed records ``training/`` takes; the
    audit decision travels along and overrides the verdict downstream."""
    qs = (
        Trajectory.objects.filter(iteration_id=iteration_id, status__in=["done", "rejected"])
        .order_by("seq").prefetch_related("messages")
    )
    for t in qs.iterator(chunk_size=chunk):
        yield TrajectoryRecord(
            id=str(t.pk),
            messages=[message_openai(m) for m in t.messages.all()],
            tools=t.offered_tools,
            mode=Mode(t.mode),
            difficulty=Difficulty(t.difficulty or "easy"),
            verdict=Verdict(t.verdict or "rejected"),
            audit=Audit(t.audit_decision) if t.audit_decision else None,
            reference_calls=None if t.mode == Mode.MULTI_TURN else (t.reference_calls or []),
        )


def iteration_list() -> QuerySet[Iteration]:
    return Iteration.objects.order_by("-number")


def evaluation_list(*, iteration: int | None = None) -> QuerySet[EvaluationRun]:
    qs = EvaluationRun.objects.select_related("checkpoint", "iteration").prefetch_related("results")
    if iteration is not None:
        qs = qs.filter(iteration_id=iteration)
    return qs.order_by("created_at", "id")


MODES = values(Mode)
MODE_LABELS = {m.value: m.label for m in Mode}


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
        .annotate(eff=effective_verdict_value())
        .values("iteration_id", "mode", "difficulty", "eff")
        .annotate(n=Count("id"))
    )
    for r in rows:
        s = summaries[r["iteration_id"]]
        s.total += r["n"]
        s.by_mode[r["mode"]] = s.by_mode.get(r["mode"], 0) + r["n"]
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
    for r in own.exclude(difficulty="").values("mode", "difficulty", "domain__name").annotate(n=Count("id")):
        i = 0 if r["difficulty"] == "easy" else 1
        mode_diff[MODE_LABELS.get(r["mode"], r["mode"])][i] += r["n"]
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
        .values("iteration_id", "mode")
        .annotate(
            n=Count("id"),
            tokens=Avg(F("prompt_tokens") + F("completion_tokens")),
            judged=Count("id", filter=~Q(verdict="") | ~Q(audit_decision="")),
            accepted=Count("id", filter=Q(audit_decision="accept") | Q(audit_decision="", verdict="accepted")),
            repaired=Count("id", filter=Q(repaired=True)),
        )
    )
    table = {(r["iteration_id"], r["mode"]): r for r in per}

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
    for r in (Trajectory.objects.filter(iteration_id__in=ids, mode="multi_turn", num_turns__gt=0)
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


def iteration_comparisons() -> list[Iteration]:
    """Iterations whose input and output checkpoints were measured on the same BFCL items,
    oldest first, each with its paired before/after (``Iteration.comparison``)."""
    return list(
        Iteration.objects.select_related("input_checkpoint", "output_checkpoint")
        .exclude(comparison={}).order_by("number")
    )


def iteration_get() -> QuerySet[Iteration]:
    """Iterations with the checkpoints their pages show."""
    return Iteration.objects.select_related("input_checkpoint", "output_checkpoint")
