"""Progress output: a tqdm bar on a terminal; in a log file, a plain line every tenth of
the work or 30 s, not a bar redraw every second."""

from __future__ import annotations

import doctest
import io
import threading
import time

import pytest

import inftool_web.core.progress as progress_module
from inftool_web.core.progress import Progress
from inftool_web.loop.management.commands.synthesize import Command
from tests.factories import IterationFactory, TrajectoryFactory


def test_doctests():
    assert doctest.testmod(progress_module).failed == 0


def test_not_a_terminal_prints_a_line_every_tenth_or_thirty_seconds():
    out, now = io.StringIO(), [0.0]
    p = Progress(1000, desc="trajectories", unit="traj", stream=out, clock=lambda: now[0])
    assert p.bar is None
    for second in range(1, 1001):  # one trajectory a second, polled every second
        now[0] = float(second)
        p.update_to(second)
    p.close()
    lines = out.getvalue().splitlines()
    # 100 s per tenth: the 30 s lines come in between (at 30, 60, 90 s past each line)
    assert len(lines) == 10 * 4 and "\r" not in out.getvalue()
    assert lines[0] == "trajectories: 30/1000 (3%), 30s elapsed, 1 traj/s, about 16m10s left"
    assert lines[3] == "trajectories: 100/1000 (10%), 1m40s elapsed, 1 traj/s, about 15m00s left"
    assert lines[-1] == "trajectories: 1000/1000 (100%), done in 16m40s"


def test_fast_work_prints_only_the_tenths():
    out, now = io.StringIO(), [0.0]
    p = Progress(50, desc="x", unit="traj", stream=out, clock=lambda: now[0])
    for n in range(51):
        now[0] = n * 0.1
        p.update_to(n)
    p.close()
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        f"x: {n}/50 ({2 * n}%)" for n in (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    ]


def test_a_terminal_gets_the_bar():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    p = Progress(3, desc="trajectories", unit="traj", stream=out)
    assert p.bar is not None
    p.update_to(3)
    p.close()
    assert "3/3" in out.getvalue() and "\r" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_synthesize_watch_writes_plain_lines_to_a_log():
    it = IterationFactory()
    pks = [TrajectoryFactory(iteration=it, status="pending").pk for _ in range(20)]
    stop = threading.Event()

    def finish_two_at_a_time():
        from django.db import connection

        from inftool_web.synth.models import Trajectory

        try:
            for i in range(0, 20, 2):
                time.sleep(0.05)
                Trajectory.objects.filter(pk__in=pks[i : i + 2]).update(status="done", verdict="accepted")
        finally:
            connection.close()
            stop.set()

    threading.Thread(target=finish_two_at_a_time, daemon=True).start()
    err = io.StringIO()
    command = Command(stdout=io.StringIO(), stderr=err)
    command._watch(it, done=stop, poll_s=0.01)  # `stop` ends the watch should the writer fail
    text = err.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and 1 <= len(lines) <= 11
    assert lines[-1].startswith("trajectories: 20/20 (100%), done in")
