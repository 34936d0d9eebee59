"""Synthesis pipeline throughput beside the raw backend on the same prompts.

    python bench/bench_synthesis.py [--count 10] [--max-turns 2] [--compare-rounds]

Runs ``count`` trajectories (all modes) through the whole pipeline — planning, role-play
engine, self-reflection, verification, scoring, every step written to PostgreSQL — in a
scratch database, every model request recorded.  Then the same requests are handed to the
backend all at once, so that its batch is full from first token to last, and the runs are
printed side by side: the gap is what the pipeline loses to orchestration, database writes
and conversations waiting on one another.  With ``--compare-rounds`` the same trajectories
(same seed) run again with requests sent in rounds, one batch per round, as the engine did
before conversations went in one by one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
sys.path.insert(0, str(ROOT))
BENCH_DB = "inftool_bench_synth"

import bench_api  # noqa: E402  (admin, cpu_model)


def _setup_django() -> None:
    bench_api.admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    bench_api.admin(f'CREATE DATABASE "{BENCH_DB}"')
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inftool_web.settings")
    os.environ["INFTOOL_DEMO_ON_EMPTY"] = "false"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("ingest_openapi", sample=True, sample_size=12, workers=1, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare-rounds", action="store_true",
                        help="then the same trajectories with requests sent in rounds (the engine before "
                             "conversations were in flight one by one), for the ratio")
    args = parser.parse_args()
    _setup_django()

    from inftool_web.loop.iterations import iteration_create, iteration_plan, trajectories_run
    from inftool_web.synth.models import Trajectory
    from synthesis.llm.base import ChatRequest, Generation, LLMBackend
    from synthesis.llm.registry import get_backend

    backend = get_backend("embedded")
    backend.complete_batch([ChatRequest(messages=[{"role": "user", "content": "warm up"}], max_tokens=4)])

    class Recording(LLMBackend):
        """The embedded backend, every request recorded; requests go in one by one as the
        engine hands them over (``submit``), as they do without the recording."""

        name = "recording"

        def __init__(self):
            self.requests, self.tokens, self.batches = [], 0, 0

        def _count(self, out):
            self.tokens += sum(c.completion_tokens for c in out)

        def complete_batch(self, requests):
            self.batches += 1
            self.requests += list(requests)
            out = backend.complete_batch(requests)
            for choices in out:
                self._count(choices)
            return out

        def submit(self, request, *, on_text=None):
            self.requests.append(request)
            gen = backend.submit(request, on_text=on_text)
            gen.done.add_done_callback(lambda _f: self._count(gen.results()))
            return Generation(gen.done, gen.results, gen.cancel)

    class InRounds(Recording):
        """The same, but without ``submit``: the engine sends rounds (one batch per round)."""

        submit = LLMBackend.submit

    def pipeline(recorder) -> dict:
        it = iteration_create(config={"count": args.count, "profile": "none", "max_turns": args.max_turns,
                                      "seed": args.seed,
                                      "modes": {m: 1 for m in ("single", "parallel", "multiple", "irrelevance",
                                                               "multi_turn")}})
        iteration_plan(iteration_id=it.pk)
        ids = list(it.trajectories.values_list("pk", flat=True))
        t0 = time.perf_counter()
        trajectories_run(trajectory_ids=ids, backends={"default": recorder})
        seconds = time.perf_counter() - t0
        rows = Trajectory.objects.filter(iteration=it)
        return {"seconds": seconds, "tokens": recorder.tokens, "requests": len(recorder.requests),
                "finished": rows.exclude(status__in=["pending", "running", "verifying"]).count(),
                "accepted": rows.filter(verdict="accepted").count()}

    streamed = Recording()
    runs = {"in flight": pipeline(streamed)}
    if args.compare_rounds:
        runs["in rounds"] = pipeline(InRounds())

    # The raw backend on the same requests, all handed over at once: the batch stays full
    # from the first token to the last, with nothing between the requests.
    t0 = time.perf_counter()
    raw_tokens = sum(c.completion_tokens for choices in backend.complete_batch(streamed.requests) for c in choices)
    raw_s = time.perf_counter() - t0

    print(f"\nsynthesis pipeline vs raw backend — {os.cpu_count()} cores, {bench_api.cpu_model()}, "
          f"{args.count} trajectories, max {args.max_turns} turns, seed {args.seed}")
    print(f"{'':<26}" + "".join(f"{name:>14}" for name in runs) + f"{'raw, at once':>14}")
    def line(label, values, raw=""):
        print(f"{label:<26}" + "".join(f"{v:>14}" for v in values) + f"{raw:>14}")
    line("trajectories finished", [r["finished"] for r in runs.values()])
    line("accepted", [r["accepted"] for r in runs.values()])
    line("model requests", [r["requests"] for r in runs.values()], len(streamed.requests))
    line("wall seconds", [f"{r['seconds']:.1f}" for r in runs.values()], f"{raw_s:.1f}")
    line("generated tokens", [r["tokens"] for r in runs.values()], raw_tokens)
    line("generated tokens/s", [f"{r['tokens'] / r['seconds']:.1f}" for r in runs.values()], f"{raw_tokens / raw_s:.1f}")
    line("trajectories/min", [f"{r['finished'] / r['seconds'] * 60:.2f}" for r in runs.values()])
    line("accepted/min", [f"{r['accepted'] / r['seconds'] * 60:.2f}" for r in runs.values()])
    first = runs["in flight"]
    print(f"pipeline tokens/s ÷ raw tokens/s (same requests at once): "
          f"{(first['tokens'] / first['seconds']) / (raw_tokens / raw_s):.2f} (target >= 0.8)")
    if "in rounds" in runs:
        r = runs["in rounds"]
        print(f"in flight ÷ in rounds: tokens/s {(first['tokens'] / first['seconds']) / (r['tokens'] / r['seconds']):.2f}, "
              f"wall {r['seconds'] / first['seconds']:.2f}x faster")


if __name__ == "__main__":
    main()
