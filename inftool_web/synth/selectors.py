"""Reads over trajectories for summaries and reports (writes live in ``services``)."""

from __future__ import annotations

import json
from typing import Any

from synthesis.roleplay.checks import ValueChecks, argument_value_checks

from .models import Message, Trajectory


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
    from django.db.models import Q

    return (
        Trajectory.objects.filter(iteration_id=iteration_id, verdict=Trajectory.Verdict.ACCEPTED)
        .filter(Q(tools__usability_score__lt=threshold) | Q(tools__usability_score__isnull=True))
        .distinct()
        .count()
    )
