"""What the synthesize summary reports about the argument values of accepted trajectories."""

import pytest

from inftool_web.synth.selectors import iteration_value_checks
from tests.factories import IterationFactory, MessageFactory, TrajectoryFactory

pytestmark = pytest.mark.django_db

TOOL = {
    "name": "book_table",
    "inputSchema": {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date"},
            "guests": {"type": "integer", "minimum": 1, "maximum": 12},
            "code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{2}$"},
        },
        "required": ["day"],
    },
}


def call(args, cid="c1"):
    import json

    return {"id": cid, "type": "function", "function": {"name": "book_table", "arguments": json.dumps(args)}}


def test_every_value_of_accepted_trajectories_is_checked_and_rejected_ones_are_not():
    it = IterationFactory()
    good = TrajectoryFactory(iteration=it, verdict="accepted", status="done", offered_tools=[TOOL],
                             reference_calls=[{"name": "book_table", "arguments": {"day": "2025-06-14", "guests": 4}}])
    MessageFactory(trajectory=good, role="assistant", content="", tool_calls=[call({"day": "2025-06-14", "guests": 4})])
    bad = TrajectoryFactory(iteration=it, verdict="accepted", status="done", offered_tools=[TOOL],
                            reference_calls=[{"name": "book_table", "arguments": {"day": "14/06/2025", "code": "ABC-12"}}])
    MessageFactory(trajectory=bad, role="assistant", content="", tool_calls=[call({"day": "2025-06-14", "code": "abc", "x": 1})])
    # a rejected trajectory's values are not what the data holds
    TrajectoryFactory(iteration=it, verdict="rejected", status="done", offered_tools=[TOOL],
                      reference_calls=[{"name": "book_table", "arguments": {"guests": 99}}])
    checks = iteration_value_checks(iteration_id=it.pk)
    assert (checks.passed, checks.total) == (6, 9)
    assert sorted(checks.failures) == [
        "book_table.code: 'abc' does not match '^[A-Z]{3}-\\\\d{2}$'",
        "book_table.day: '14/06/2025' is not a 'date'",
        "book_table.x: not a parameter of the tool",
    ]
