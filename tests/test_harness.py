"""The test harness itself: what a stuck test leaves behind cannot hold the run forever."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import ROOT

STUCK = '''
import threading

def test_leaves_a_thread_that_never_ends():
    threading.Thread(target=threading.Event().wait, name="never-ends").start()
'''


def test_a_thread_left_stuck_ends_the_process_with_its_stack_and_a_failure(tmp_path):
    (tmp_path / "test_stuck.py").write_text(STUCK)
    env = {**os.environ, "INFTOOL_TEST_EXIT_GRACE_S": "3"}
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-p", "no:django", "--rootdir", str(tmp_path), str(tmp_path / "test_stuck.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    took = time.monotonic() - start
    assert "1 passed" in run.stdout, run.stdout + run.stderr
    # the test passed, but the process could not exit: it says which thread held it, and fails
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert "Timeout (0:00:03)!" in run.stderr and "in _shutdown" in run.stderr, run.stderr
    assert took < 100


def test_a_scenario_whose_task_ignores_cancellation_fails_fast_and_names_it(monkeypatch):
    from tests.web import scenario as sc

    monkeypatch.setattr(sc, "CANCEL_GRACE_S", 0.5)
    release = threading.Event()

    async def stubborn():
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                pass  # what hung CI: a task that does not end when cancelled

    async def scenario():
        asyncio.get_running_loop().create_task(stubborn(), name="stubborn-reader")
        await asyncio.sleep(0.1)

    start = time.monotonic()
    try:
        with pytest.raises(pytest.fail.Exception, match="stubborn-reader"):
            sc.run_scenario(scenario, timeout=2)
    finally:
        release.set()  # let the left-behind loop end
    assert time.monotonic() - start < 30


def test_a_scenario_past_its_deadline_fails():
    from tests.web.scenario import run_scenario

    async def scenario():
        await asyncio.sleep(60)

    with pytest.raises(TimeoutError):
        run_scenario(scenario, timeout=0.5)
