"""Progress for management commands: a tqdm bar on a terminal, plain lines elsewhere.

Written to a file or a pipe (``make run > log``, a container's log, CI), a tqdm bar that
refreshes every second leaves one line a second; there the progress is a plain line each
time another tenth of the work is done, or every ``interval_s`` seconds (30 by default),
and once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Counts ``done`` of ``total``; call :meth:`update_to` with the running count.

    >>> import io
    >>> out, now = io.StringIO(), [0.0]
    >>> p = Progress(10, desc="trajectories", unit="traj", stream=out, clock=lambda: now[0])
    >>> now[0] = 5.0; p.update_to(1)   # 10%: a line
    >>> now[0] = 6.0; p.update_to(1)   # nothing new
    >>> now[0] = 40.0; p.update_to(1)  # 30 s since the last line
    >>> p.close()
    >>> print(out.getvalue(), end="")
    trajectories: 1/10 (10%), 5s elapsed, 0.2 traj/s, about 45s left
    trajectories: 1/10 (10%), 40s elapsed, 0.025 traj/s, about 6m00s left
    trajectories: 1/10 (10%), done in 40s
    """

    def __init__(
        self,
        total: int,
        *,
        desc: str,
        unit: str,
        stream: IO[str],
        interval_s: float = 30.0,
        step_fraction: float = 0.1,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.interval_s, self.step_fraction, self.clock = interval_s, step_fraction, clock
        self.done = 0
        self.started = self.last_line_at = clock()
        self.next_mark = self._mark_after(0)
        self.bar = None
        if _is_terminal(stream) if terminal is None else terminal:
            from tqdm import tqdm  # lazy: only a terminal gets a bar

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=stream)

    def _mark_after(self, done: int) -> int:
        """The next count at which another ``step_fraction`` of the total is done."""
        if self.total <= 0:
            return 1
        step = max(1.0, self.total * self.step_fraction)
        k = int(done // step) + 1
        return min(self.total, int(-(-k * step // 1)))

    def update_to(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.done = done
            return
        now = self.clock()
        self.done = done
        if done >= self.next_mark or now - self.last_line_at >= self.interval_s:
            if done < self.total:  # the last line is close()'s
                self._line(now)
            self.next_mark = self._mark_after(done)

    def _line(self, now: float, final: bool = False) -> None:
        elapsed = now - self.started
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = f"{self.desc}: {self.done}/{self.total}{pct}, "
        if final:
            text += f"done in {_duration(elapsed)}"
        else:
            rate = self.done / elapsed if elapsed > 0 else 0.0
            text += f"{_duration(elapsed)} elapsed, {rate:.2g} {self.unit}/s"
            if rate > 0 and self.total > self.done:
                text += f", about {_duration((self.total - self.done) / rate)} left"
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_line_at = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            return
        self._line(self.clock(), final=True)
