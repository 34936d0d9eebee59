"""The engine with a backend that decodes token by token (its own ``submit``): each
conversation's requests go in as soon as it asks, so the batch stays full and no
conversation waits for another's reply."""

from __future__ import annotations

import concurrent.futures
import json
import queue
import threading
import time

import pytest

from synthesis.llm.base import BackendUnavailable, Generation, LLMBackend
from synthesis.roleplay import MemorySink, RoleplayConfig, TrajectorySpec, run_trajectories

from .fakes import GET_WEATHER, smart_backend


class StreamingBackend(LLMBackend):
    """Answers like ``inner``, one request at a time on a thread of its own, after a delay
    chosen per request; records the order requests arrive and finish in."""

    name = "streaming-fake"

    def __init__(self, inner, delay=lambda request: 0.0, fail=lambda request: None):
        self.inner, self.delay, self.fail = inner, delay, fail
        self.arrived: list[str] = []
        self.cancelled = 0
        self.batch_calls = 0
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def complete_batch(self, requests):
        self.batch_calls += 1
        return [g.results() for g in [self.submit(r) for r in requests]]

    def submit(self, request, *, on_text=None):
        done: concurrent.futures.Future = concurrent.futures.Future()
        state = {"cancelled": False}
        with self._lock:
            self.arrived.append(_tag(request))
        self._queue.put((request, done, state))

        def cancel():
            state["cancelled"] = True
            self.cancelled += 1

        return Generation(done, done.result, cancel)

    def _run(self):
        pending = []
        while True:
            try:
                while True:
                    item = self._queue.get(timeout=0.001 if pending else 0.05)
                    pending.append((time.monotonic() + self.delay(item[0]), item))
            except queue.Empty:
                pass
            now = time.monotonic()
            for entry in sorted([p for p in pending if p[0] <= now], key=lambda p: p[0]):
                pending.remove(entry)
                request, done, state = entry[1]
                if state["cancelled"]:
                    continue
                error = self.fail(request)
                if error is not None:
                    done.set_exception(error)
                else:
                    done.set_result(self.inner.complete_batch([request])[0])


def _tag(request) -> str:
    return json.dumps(request.messages[-1].get("content", ""))[:80]


def _specs(n, mode="single"):
    return [TrajectorySpec(id=f"t{i}", mode=mode, tools=[GET_WEATHER], seed=i) for i in range(n)]


def test_streaming_backend_gives_the_same_trajectories_as_batches():
    config = RoleplayConfig(consistency_samples=1, verifier_count=1)
    batched_sink, streamed_sink = MemorySink(), MemorySink()
    batched = run_trajectories(_specs(6), {"default": smart_backend()}, batched_sink, config)
    streamed = run_trajectories(_specs(6), {"default": StreamingBackend(smart_backend())}, streamed_sink, config)
    assert [r.id for r in streamed] == [r.id for r in batched]
    for a, b in zip(batched, streamed, strict=True):
        assert a.finish.status == b.finish.status
        assert [type(s).__name__ for s in a.steps] == [type(s).__name__ for s in b.steps]
        assert [getattr(s, "content", None) for s in a.steps] == [getattr(s, "content", None) for s in b.steps]


def test_a_slow_reply_does_not_hold_the_other_conversations():
    """t0's first request takes 1.5 s; every other is instant.  In rounds, the others would
    wait for it and finish with t0; here they all finish before it."""
    finished: list[str] = []

    class Recording(MemorySink):
        def on_finish(self, step):
            finished.append(step.trajectory_id)
            super().on_finish(step)

    specs = _specs(5)
    be = StreamingBackend(smart_backend(), delay=lambda r: 1.5 if r is first[0] else 0.0)
    first: list = [None]
    real_submit = be.submit

    def submit(request, *, on_text=None):
        if first[0] is None:  # the very first request: t0's first step
            first[0] = request
        return real_submit(request, on_text=on_text)

    be.submit = submit
    t = time.monotonic()
    results = run_trajectories(specs, {"default": be}, Recording(), RoleplayConfig(consistency_samples=0,
                                                                                   verifier_count=1))
    assert [r.id for r in results] == [s.id for s in specs]  # results keep the specs' order
    assert finished[-1] == "t0" and set(finished[:-1]) == {"t1", "t2", "t3", "t4"}
    assert time.monotonic() - t < 10
    assert be.batch_calls == 0  # every request went in on its own


def test_a_failed_request_fails_only_its_conversation_and_unavailable_stops_the_run():
    be = StreamingBackend(smart_backend(), fail=lambda r: RuntimeError("boom") if "t1" in _tag(r) else None)
    results = run_trajectories(_specs(3), {"default": be}, MemorySink(),
                               RoleplayConfig(consistency_samples=0, verifier_count=1))
    assert len(results) == 3  # a request error becomes an error result; every conversation ends

    first: list = []

    def unavailable(request):
        return BackendUnavailable("model server down") if request is first[0] else None

    # The first request fails fast; the other three are still decoding when it does.
    be = StreamingBackend(smart_backend(), delay=lambda r: 0.05 if r is first[0] else 2.0, fail=unavailable)
    submit = be.submit

    def remember_first(request, *, on_text=None):
        if not first:
            first.append(request)
        return submit(request, on_text=on_text)

    be.submit = remember_first
    with pytest.raises(BackendUnavailable):
        run_trajectories(_specs(4), {"default": be}, MemorySink(),
                         RoleplayConfig(consistency_samples=0, verifier_count=1))
    assert be.cancelled == 3  # the requests still in flight were cancelled, not left decoding


def test_a_request_refused_at_submit_fails_only_its_conversation():
    class Refusing(StreamingBackend):
        def submit(self, request, *, on_text=None):
            if self.refuse_next:
                self.refuse_next = False
                raise ValueError("tool_choice names no offered tool")
            return super().submit(request, on_text=on_text)

    be = Refusing(smart_backend())
    be.refuse_next = True
    results = run_trajectories(_specs(3), {"default": be}, MemorySink(),
                               RoleplayConfig(consistency_samples=0, verifier_count=1))
    assert len(results) == 3 and all(r.finish is not None for r in results)


def test_max_concurrent_bounds_the_requests_in_flight():
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    class Bounded(StreamingBackend):
        def submit(self, request, *, on_text=None):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            gen = super().submit(request, on_text=on_text)

            def done(_):
                with lock:
                    in_flight[0] -= 1

            gen.done.add_done_callback(done)
            return gen

    be = Bounded(smart_backend(), delay=lambda r: 0.01)
    run_trajectories(_specs(8), {"default": be}, MemorySink(),
                     RoleplayConfig(consistency_samples=0, verifier_count=1, max_concurrent=3))
    assert 1 <= peak[0] <= 3
