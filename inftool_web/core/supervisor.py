"""Keeps the processes of ``make run`` alive: one that dies is started again after a
backoff, and the others (the web server above all) go on meanwhile.

A process that exits is restarted after ``backoff_initial`` seconds, doubling on each
exit in a row up to ``backoff_max``; one that then stays up ``stable_after`` seconds is
back to the initial backoff.  While a worker is down, ``/healthz`` (staff) and the
dashboard say so: they ask the workers themselves (core/health.py), not this supervisor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # when down: the time of the next start
    backoff: float = 0.0
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        *,
        env: Mapping[str, str] | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        stable_after: float = 60.0,
        log: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.children = {name: Child(name, list(argv)) for name, argv in commands.items()}
        self.env = dict(env) if env is not None else None
        self.backoff_initial, self.backoff_max, self.stable_after = backoff_initial, backoff_max, stable_after
        self.log, self.clock = log, clock

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        # its own process group: a stop signal reaches the Celery worker's pool processes too
        child.proc = subprocess.Popen(child.argv, env=self.env, start_new_session=True)
        child.started_at, child.restart_at = self.clock(), None

    def tick(self) -> None:
        """Notice exits and start again what is due; call a few times a second."""
        now = self.clock()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.log(f"starting {child.name} again (restart {child.restarts})")
                    self._spawn(child)
                continue
            if child.proc is None or child.proc.poll() is None:
                if child.proc is not None and now - child.started_at >= self.stable_after:
                    child.backoff = 0.0  # it has been up a while: the next exit restarts fast
                continue
            code = child.proc.returncode
            child.exit_codes.append(code)
            child.backoff = min(self.backoff_max, child.backoff * 2 if child.backoff else self.backoff_initial)
            child.restart_at = now + child.backoff
            self.log(f"{child.name} exited with code {code}; starting it again in {child.backoff:.0f} s "
                     "(the rest of the stack stays up)")

    def stop(self, timeout: float = 30.0) -> None:
        for child in self.children.values():
            if child.up:
                os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.name} did not stop in time; killing it")
                os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
