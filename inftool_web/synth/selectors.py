"""Reads over trajectories for summaries and reports (writes live in ``services``)."""

from __future__ import annotations

import json
from typing import Any

from synthesis.roleplay.checks import ValueChecks, argument_value_checks

from .models import Message, Trajectory


def _calls_of(tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tc in tool_calls or []:
        fn = tc.get("function", tc)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                args = {"<unparseable arguments>": args}
        out.append({"name": fn.get("name", ""), "arguments": args if isinstance(args, dict) else {"<not an object>": args}})
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
        calls_by_traj.setdefault(tid, []).extend(_calls_of(tool_calls))
    for t in accepted.only("id", "offered_tools", "reference_calls"):
        calls = list(t.reference_calls or []) + calls_by_traj.get(t.id, [])
        checks.add(argument_value_checks(calls, t.offered_tools or []))
    return checks
