"""Synthesis pipeline throughput beside the raw backend on the same prompts.

    python bench/bench_synthesis.py [--count 12] [--backend embedded]

Runs ``count`` trajectories (all modes) through the whole pipeline — planning, role-play
engine, self-reflection, verification, scoring, every step written to PostgreSQL — in a
scratch database.  Every batch the engine sends to the model is recorded with the time the
model took.  Then the same batches are replayed straight into the backend, and the two runs
are printed side by side: the gap is orchestration, validation and database overhead.
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
    args = parser.parse_args()
    _setup_django()

    from inftool_web.loop.iterations import iteration_create, iteration_plan, trajectories_run
    from inftool_web.synth.models import Trajectory
    from synthesis.llm.base import LLMBackend
    from synthesis.llm.registry import get_backend

    backend = get_backend("embedded")
    backend.complete_batch([__import__("synthesis.llm.base", fromlist=["ChatRequest"]).ChatRequest(
        messages=[{"role": "user", "content": "warm up"}], max_tokens=4)])

    class Recording(LLMBackend):
        name = "recording"

        def __init__(self):
            self.batches, self.model_s, self.tokens = [], 0.0, 0

        def complete_batch(self, requests):
            t0 = time.perf_counter()
            out = backend.complete_batch(requests)
            self.model_s += time.perf_counter() - t0
            self.tokens += sum(c.completion_tokens for choices in out for c in choices)
            self.batches.append(list(requests))
            return out

    rec = Recording()
    it = iteration_create(config={"count": args.count, "profile": "none", "max_turns": args.max_turns,
                                  "modes": {m: 1 for m in ("single", "parallel", "multiple", "irrelevance", "multi_turn")}})
    iteration_plan(iteration_id=it.pk)
    ids = list(it.trajectories.values_list("pk", flat=True))
    t0 = time.perf_counter()
    trajectories_run(trajectory_ids=ids, backends={"default": rec})
    pipeline_s = time.perf_counter() - t0
    finished = Trajectory.objects.filter(iteration=it).exclude(status__in=["pending", "running", "verifying"]).count()

    t0 = time.perf_counter()
    raw_tokens = 0
    for batch in rec.batches:
        raw_tokens += sum(c.completion_tokens for choices in backend.complete_batch(batch) for c in choices)
    raw_s = time.perf_counter() - t0

    overhead = 1 - rec.model_s / pipeline_s
    print(f"\nsynthesis pipeline vs raw backend — {os.cpu_count()} cores, {bench_api.cpu_model()}")
    print(f"{'':<34}{'pipeline':>12}{'raw backend':>14}")
    print(f"{'trajectories':<34}{finished:>12}{'':>14}")
    print(f"{'model batches':<34}{len(rec.batches):>12}{len(rec.batches):>14}")
    print(f"{'wall seconds':<34}{pipeline_s:>12.1f}{raw_s:>14.1f}")
    print(f"{'generated tokens':<34}{rec.tokens:>12}{raw_tokens:>14}")
    print(f"{'generated tokens/s':<34}{rec.tokens / pipeline_s:>12.1f}{raw_tokens / raw_s:>14.1f}")
    print(f"{'trajectories/min':<34}{finished / pipeline_s * 60:>12.2f}")
    print(f"{'time inside the model':<34}{rec.model_s:>12.1f}")
    print(f"overhead (orchestration, validation, database): {overhead:.1%} of pipeline time "
          f"(target < 10%)")
    print(f"pipeline tokens/s ÷ raw tokens/s: {(rec.tokens / pipeline_s) / (raw_tokens / raw_s):.2f}")


if __name__ == "__main__":
    main()
