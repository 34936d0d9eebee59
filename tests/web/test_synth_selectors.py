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


def test_accepted_trajectories_below_the_usability_threshold_are_counted():
    from inftool_web.synth.selectors import iteration_accepted_below_usability
    from tests.factories import ToolFactory

    it = IterationFactory()
    good, plumbing, unscored = ToolFactory(usability_score=0.9), ToolFactory(usability_score=0.2), ToolFactory()
    a = TrajectoryFactory(iteration=it, verdict="accepted", status="done")
    a.tools.set([good])
    b = TrajectoryFactory(iteration=it, verdict="accepted", status="done")
    b.tools.set([good, plumbing])
    c = TrajectoryFactory(iteration=it, verdict="accepted", status="done")
    c.tools.set([unscored])
    d = TrajectoryFactory(iteration=it, verdict="rejected", status="done")
    d.tools.set([plumbing])
    assert iteration_accepted_below_usability(iteration_id=it.pk, threshold=0.6) == 2
    assert iteration_accepted_below_usability(iteration_id=it.pk, threshold=0.1) == 1


def test_the_synthesize_summary_prints_acceptance_values_threshold_and_the_card():
    import io

    from inftool_web.loop.datacard import iteration_build_data_card
    from inftool_web.loop.management.commands.synthesize import Command
    from tests.factories import ToolFactory

    it = IterationFactory(config={"count": 3, "min_usability": 0.6})
    tool = ToolFactory(usability_score=0.9, input_schema=TOOL["inputSchema"], name="book_table")
    for i, verdict in enumerate(["accepted", "accepted", "rejected"]):
        t = TrajectoryFactory(iteration=it, mode="single", verdict=verdict, status="done", offered_tools=[TOOL],
                              goal=f"Could you book a table on June {14 + i}, 2025 for {2 + i} guests?",
                              reference_calls=[{"name": "book_table", "arguments": {"day": f"2025-06-{14 + i}", "guests": 2 + i}}])
        t.tools.set([tool])
        MessageFactory(trajectory=t, role="user", content=t.goal)
    iteration_build_data_card(iteration=it, embeddings=False)
    cmd = Command(stdout=io.StringIO())
    cmd._summary(it)
    out = cmd.stdout.getvalue()
    assert "single" in out and "67%" in out  # 2 of 3 accepted
    assert "argument values in accepted trajectories valid against their schemas" in out and ": 4 of 4 (100.0%)" in out
    assert "below the usability threshold 0.6: 0" in out
    assert "data card (manage.py data_card" in out and "distinct-2" in out
