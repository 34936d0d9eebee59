"""Reads behind the REST API and the exports: filtered querysets, never lists in memory."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import Case, CharField, F, Q, QuerySet, Value, When

from inftool_web.catalog.models import Tool, TreeNode
from inftool_web.loop.models import EvaluationRun, Iteration
from inftool_web.synth.models import Persona, Trajectory

MODES = tuple(Trajectory.Kind.values)
DIFFICULTIES = tuple(Trajectory.Difficulty.values)
# "pending" = no verdict yet and not audited
VERDICTS = ("accepted", "rejected", "pending")
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _is_id(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²', which ``int`` refuses."""
    return text.isascii() and text.isdigit()


class FilterError(ValueError):
    """Bad filter values; ``errors`` maps each parameter to a message naming the valid values."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class TrajectoryFilters:
    iteration: int | None = None
    mode: str | None = None
    domain: str | None = None
    difficulty: str | None = None
    verdict: str | None = None
    audited: bool | None = None

    PARAMS = ("iteration", "mode", "domain", "difficulty", "verdict", "audited")

    @classmethod
    def from_params(cls, params) -> TrajectoryFilters:
        """Parse query parameters; every bad one is reported at once, with its valid values."""
        errors: dict[str, str] = {}
        values: dict = {}
        raw = {k: params.get(k) for k in cls.PARAMS if params.get(k) not in (None, "")}
        if "iteration" in raw:
            try:
                values["iteration"] = int(raw["iteration"])
            except ValueError:
                errors["iteration"] = f"{raw['iteration']!r} is not an iteration id (an integer)"
        if "mode" in raw:
            if raw["mode"] in MODES:
                values["mode"] = raw["mode"]
            else:
                errors["mode"] = f"unknown mode {raw['mode']!r}; valid: {', '.join(MODES)}"
        if "domain" in raw:
            values["domain"] = raw["domain"]
        if "difficulty" in raw:
            if raw["difficulty"] in DIFFICULTIES:
                values["difficulty"] = raw["difficulty"]
            else:
                errors["difficulty"] = (
                    f"unknown difficulty {raw['difficulty']!r}; valid: {', '.join(DIFFICULTIES)}"
                )
        if "verdict" in raw:
            if raw["verdict"] in VERDICTS:
                values["verdict"] = raw["verdict"]
            else:
                errors["verdict"] = f"unknown verdict {raw['verdict']!r}; valid: {', '.join(VERDICTS)}"
        if "audited" in raw:
            key = raw["audited"].lower()
            if key in BOOLEANS:
                values["audited"] = BOOLEANS[key]
            else:
                errors["audited"] = f"{raw['audited']!r} is not a boolean; valid: true, false"
        if errors:
            raise FilterError(errors)
        return cls(**values)


def effective_verdict_q(verdict: str) -> Q:
    """The SQL form of ``Trajectory.effective_verdict``: an audit beats the verifiers."""
    if verdict == "accepted":
        return Q(audit_decision="accept") | Q(audit_decision="", verdict="accepted")
    if verdict == "rejected":
        return Q(audit_decision__in=["reject", "flag"]) | Q(audit_decision="", verdict="rejected")
    return Q(audit_decision="", verdict="")


def effective_verdict_value() -> Case:
    """``Trajectory.effective_verdict`` computed in SQL, for annotating a queryset."""
    return Case(
        When(audit_decision="accept", then=Value("accepted")),
        When(audit_decision__in=["reject", "flag"], then=Value("rejected")),
        default=F("verdict"),
        output_field=CharField(),
    )


def trajectory_list(*, filters: TrajectoryFilters | None = None) -> QuerySet[Trajectory]:
    qs = Trajectory.objects.all()
    f = filters or TrajectoryFilters()
    if f.iteration is not None:
        qs = qs.filter(iteration_id=f.iteration)
    if f.mode:
        qs = qs.filter(kind=f.mode)
    if f.domain:
        qs = qs.filter(domain_id=int(f.domain)) if _is_id(f.domain) else qs.filter(domain__name=f.domain)
    if f.difficulty:
        qs = qs.filter(difficulty=f.difficulty)
    if f.verdict:
        qs = qs.filter(effective_verdict_q(f.verdict))
    if f.audited is not None:
        qs = qs.exclude(audit_decision="") if f.audited else qs.filter(audit_decision="")
    return qs.order_by("id")


def trajectory_get(*, pk: int) -> Trajectory:
    return (
        Trajectory.objects.select_related("iteration", "domain", "category", "persona")
        .prefetch_related("messages")
        .get(pk=pk)
    )


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
        qs = qs.filter(domain_id=int(domain)) if _is_id(domain) else qs.filter(domain__name=domain)
    if category:
        qs = qs.filter(category_id=int(category)) if _is_id(category) else qs.filter(category__name=category)
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


def persona_list() -> QuerySet[Persona]:
    return Persona.objects.select_related("domain").order_by("name", "id")


def iteration_list() -> QuerySet[Iteration]:
    return Iteration.objects.order_by("-number")


def evaluation_list(*, iteration: int | None = None) -> QuerySet[EvaluationRun]:
    qs = EvaluationRun.objects.select_related("checkpoint", "iteration").prefetch_related("results")
    if iteration is not None:
        qs = qs.filter(iteration_id=iteration)
    return qs.order_by("created_at", "id")
