"""Checks over finished trajectories that the summaries and data cards report.

:func:`argument_value_checks` validates every argument value of a set of calls against its
tool's ``inputSchema``, one value at a time (``type``, ``enum``, bounds, ``pattern`` and
``format`` with the format checker), so a report can say "1,204 of 1,204 values valid"
rather than "the calls validate".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from synthesis.schema_utils import resolve, schema_properties, validation_errors


@dataclass
class ValueChecks:
    passed: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        return None if self.total == 0 else round(self.passed / self.total, 6)

    def add(self, other: ValueChecks) -> None:
        self.passed += other.passed
        self.total += other.total
        self.failures += other.failures[: max(0, 50 - len(self.failures))]


def argument_value_checks(calls: Iterable[dict[str, Any]], tools: Iterable[dict[str, Any]]) -> ValueChecks:
    """Each argument value of ``calls`` (``{"name", "arguments"}``) checked against its
    parameter's schema; a value of an undeclared parameter or an unknown tool fails.

    >>> tool = {"name": "f", "inputSchema": {"type": "object", "properties": {
    ...     "day": {"type": "string", "format": "date"}, "n": {"type": "integer", "maximum": 9}}}}
    >>> c = argument_value_checks([{"name": "f", "arguments": {"day": "2025-06-14", "n": 3}},
    ...                            {"name": "f", "arguments": {"day": "14/06/2025", "n": "3"}}], [tool])
    >>> c.passed, c.total, c.failures[0]
    (2, 4, "f.day: '14/06/2025' is not a 'date'")
    """
    by_name = {t["name"]: t for t in tools}
    out = ValueChecks()
    for call in calls:
        tool = by_name.get(call.get("name", ""))
        args = call.get("arguments") or {}
        for key, value in args.items():
            out.total += 1
            if tool is None:
                out.failures.append(f"{call.get('name')}: not an offered tool")
                continue
            root = tool.get("inputSchema") or {}
            props = schema_properties(root)
            if props and key not in props:
                out.failures.append(f"{tool['name']}.{key}: not a parameter of the tool")
                continue
            sub = resolve(props.get(key) or {}, root)
            sub = dict(sub) if isinstance(sub, dict) else {}
            for defs in ("$defs", "definitions", "components"):
                if defs in root and defs not in sub:
                    sub[defs] = root[defs]
            errors = validation_errors(value, sub, limit=1)
            if errors:
                out.failures.append(f"{tool['name']}.{key}: {errors[0].split(': ', 1)[-1]}")
            else:
                out.passed += 1
    return out
