"""Async test scenarios (websocket consumers over the real Redis channel layer) on an event
loop of their own, with a deadline.

``async_to_sync(scenario)()`` runs the loop in a non-daemon executor thread and shuts it down
by cancelling every task left (a consumer that closed a socket keeps waiting on the channel
layer until it hears a disconnect).  Once, in CI, one of those tasks never finished its
cancellation: the test failed after pytest-timeout's 15 minutes, and then the interpreter
waited for the stuck thread at exit until CI killed the whole run.  Here the loop runs in a
daemon thread, leftover tasks are cancelled with a bound, and a loop that still does not
stop fails its test with the stuck tasks named, leaving nothing that keeps the process alive.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

CANCEL_GRACE_S = 10.0


async def _cancel_leftovers(grace: float) -> list[str]:
    """Cancel every other task of this loop; the ones still running after ``grace`` seconds."""
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for task in left:
        task.cancel()
    if not left:
        return []
    _, pending = await asyncio.wait(left, timeout=grace)
    return [repr(t) for t in pending]


def run_scenario(scenario: Callable[[], Awaitable[object]], timeout: float = 120.0) -> None:
    """Run ``scenario()`` to its end, or fail the test after ``timeout`` seconds (plus the
    grace given to cancelled tasks) with what was still running."""
    outcome: dict[str, object] = {}

    async def main() -> None:
        try:
            await asyncio.wait_for(scenario(), timeout)
        finally:
            outcome["stuck"] = await _cancel_leftovers(CANCEL_GRACE_S)
            # thread-sensitive calls ran in asgiref's one sync thread: close its connections,
            # or the test database cannot be dropped at the end of the session
            await sync_to_async(connections.close_all)()

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="async-scenario", daemon=True)
    thread.start()
    thread.join(timeout + 2 * CANCEL_GRACE_S + 10)
    if thread.is_alive():
        frame = sys._current_frames().get(thread.ident)
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
        pytest.fail(f"the scenario's event loop did not stop; tasks that ignored cancellation: "
                    f"{outcome.get('stuck')}\n{where}")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    assert not outcome.get("stuck"), f"tasks that ignored cancellation: {outcome['stuck']}"
