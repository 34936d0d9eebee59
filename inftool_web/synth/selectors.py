"""Reads over trajectories for summaries and reports (writes live in ``services``)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, CharField, F, Q, QuerySet, Value, When
from django.db.models.functions import MD5, Cast, Concat

from inftool_web.core.filters import FilterError, is_id
from synthesis.records import Mode, reference_correction, values
from synthesis.roleplay.checks import ValueChecks, argument_value_checks

from .models import Message, Persona, Trajectory

MODES = values(Mode)
DIFFICULTIES = tuple(Trajectory.Difficulty.values)
# "pending" = no verdict yet and not audited
VERDICTS = ("accepted", "rejected", "pending")
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


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
        for name, valid in (("mode", MODES), ("difficulty", DIFFICULTIES), ("verdict", VERDICTS)):
            if name not in raw:
                continue
            if raw[name] in valid:
                values[name] = raw[name]
            else:
                errors[name] = f"unknown {name} {raw[name]!r}; valid: {', '.join(valid)}"
        if "domain" in raw:
            values["domain"] = raw["domain"]
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
        qs = qs.filter(mode=f.mode)
    if f.domain:
        qs = qs.filter(domain_id=int(f.domain)) if is_id(f.domain) else qs.filter(domain__name=f.domain)
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


def persona_list() -> QuerySet[Persona]:
    return Persona.objects.select_related("domain").order_by("name", "id")



def calls_of(tool_calls: Any) -> list[dict[str, Any]]:
    """``{"name", "arguments": dict}`` for each stored call (OpenAI or plain form); the
    arguments of a call whose JSON does not parse are one unknown parameter, so they fail.

    >>> calls_of([{"function": {"name": "f", "arguments": '{"a": 1}'}}, {"name": "g", "arguments": "{"}])
    [{'name': 'f', 'arguments': {'a': 1}}, {'name': 'g', 'arguments': {'<unparseable arguments>': '{'}}]
    """
    out = []
    for tc in tool_calls or []:
        if not isinstance(tc, dict):
            continue
        fn = tc.get("function", tc) if isinstance(tc.get("function", tc), dict) else {}
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                args = {"<unparseable arguments>": args}
        if not isinstance(args, dict):
            args = {"<not an object>": args}
        out.append({"name": fn.get("name", ""), "arguments": args})
    return out


def iteration_value_checks(*, iteration_id: int) -> ValueChecks:
    """Every argument value of the accepted trajectories of an iteration (their reference
    calls and every call the Tool Agent made) checked against its tool's schema."""
    checks = ValueChecks()
    accepted = Trajectory.objects.filter(iteration_id=iteration_id, verdict=Trajectory.Verdict.ACCEPTED)
    calls_by_traj: dict[int, list[dict[str, Any]]] = {}
    for tid, tool_calls in Message.objects.filter(
        trajectory__in=accepted, role="assistant"
    ).exclude(tool_calls=[]).values_list("trajectory_id", "tool_calls"):
        calls_by_traj.setdefault(tid, []).extend(calls_of(tool_calls))
    for t in accepted.only("id", "offered_tools", "reference_calls"):
        calls = list(t.reference_calls or []) + calls_by_traj.get(t.id, [])
        checks.add(argument_value_checks(calls, t.offered_tools or []))
    return checks


def iteration_accepted_below_usability(*, iteration_id: int, threshold: float) -> int:
    """Accepted trajectories of an iteration that offer a tool scored below ``threshold``
    (or never scored): role-play should draw none."""
    return (
        Trajectory.objects.filter(iteration_id=iteration_id, verdict=Trajectory.Verdict.ACCEPTED)
        .filter(Q(tools__usability_score__lt=threshold) | Q(tools__usability_score__isnull=True))
        .distinct()
        .count()
    )


def trajectory_detail(*, pk: int) -> Trajectory:
    return (
        Trajectory.objects.select_related("iteration", "domain", "category", "persona")
        .prefetch_related("messages", "reflections", "votes", "audits__reviewer")
        .get(pk=pk)
    )


def training_correction(trajectory: Trajectory) -> dict[str, Any] | None:
    """What exports and training put in place of the Tool Agent's first answer, where they
    replace it (:func:`synthesis.records.reference_correction`): ``{"calls", "content"}``,
    else ``None``.  The page shows the agent's answer as it was, so a reviewer sees why an
    accepted trajectory whose agent called the wrong tool still teaches the right one."""
    messages = list(trajectory.messages.all())
    first = next((m for m in messages if m.role == "assistant"), None)
    if first is None or trajectory.verdict != "accepted":
        return None
    fix = reference_correction(trajectory.mode, trajectory.reference_calls, first.tool_calls)
    return None if fix is None else {"calls": fix.calls, "content": fix.content}


def votes_by_round(trajectory: Trajectory) -> list[tuple[int, list]]:
    rounds: dict[int, list] = defaultdict(list)
    for v in trajectory.votes.all():
        rounds[v.round].append(v)
    return sorted(rounds.items())


def audit_sample(*, iteration_id: int, size: int, seed: str) -> list[Trajectory]:
    """A reproducible random sample: the order of md5(id || seed) is fixed for a given seed,
    and growing the size only appends to the same sample."""
    return list(
        Trajectory.objects.filter(iteration_id=iteration_id)
        .exclude(status__in=["pending", "running"])
        .annotate(sample_key=MD5(Concat(Cast("id", CharField()), Value(str(seed)))))
        .select_related("domain")
        .prefetch_related("messages", "votes", "audits__reviewer")
        .order_by("sample_key", "id")[:size]
    )


def trajectory_brief() -> QuerySet[Trajectory]:
    """Trajectories with what a row of a list shows (iteration, domain)."""
    return Trajectory.objects.select_related("iteration", "domain")
