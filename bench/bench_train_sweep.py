"""A small SFT sweep on our own synthesized data (training/sweep.py), to choose the CPU
loop's recipe without BFCL.

    python bench/bench_train_sweep.py --database inftool_s10 --iteration 1 \\
        --point "learning_rate=5e-5,num_train_epochs=1" --point "learning_rate=1e-4,num_train_epochs=3"

Reads the iteration's finished trajectories from ``--database``, splits the accepted ones
by trajectory into training and validation (``--val-fraction``, seeded, by mode), trains
each point from the embedded base model on the training part (the ``cpu`` profile's SFT
settings with the point's changes and ``max_steps=-1``, so epochs count; ``data.KEY=VALUE``
changes how the rows are made, e.g. ``data.swap_negatives=1``), and scores the base model
and every trained checkpoint on the validation part's assistant steps, plus swap negatives
made within the validation part (``--validation-negatives``).  Prints a
Markdown table (training/RESULTS-sweep.md quotes it) and writes JSON (``--output``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
sys.path.insert(0, str(ROOT))

DEFAULT_POINTS = (
    "learning_rate=5e-5,num_train_epochs=1",
    "learning_rate=1e-4,num_train_epochs=2",
    "learning_rate=2e-4,num_train_epochs=3",
    "learning_rate=1e-3,num_train_epochs=3,lora_r=16,lora_alpha=32",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="PostgreSQL database holding the trajectories")
    parser.add_argument("--iteration", type=int, default=None, help="iteration number (default: the newest)")
    parser.add_argument("--point", action="append", default=[], metavar="KEY=VALUE,...",
                        help="SFT settings of one point (repeatable); default: a 4-point grid")
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--validation-negatives", type=float, default=1.0,
                        help="swap negatives per validation request with calls (irrelevance items made within "
                             "the validation split; 0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "bench-train-sweep.json")
    args = parser.parse_args()

    os.environ.update(DJANGO_SETTINGS_MODULE="inftool_web.settings", INFTOOL_DEMO_ON_EMPTY="false",
                      DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}")
    import django

    django.setup()
    from inftool_web.loop.models import Iteration
    from inftool_web.loop.selectors import training_trajectories
    from training.config import get_profile
    from training.sweep import markdown_table, parse_point, run_sweep

    qs = Iteration.objects.order_by("-number")
    iteration = qs.filter(number=args.iteration).first() if args.iteration else qs.first()
    if iteration is None:
        print(f"no iteration {args.iteration or ''} in {args.database}", file=sys.stderr)
        return 2
    records = list(training_trajectories(iteration_id=iteration.pk))
    points = [parse_point(p) for p in (args.point or DEFAULT_POINTS)]
    base = dataclasses.replace(get_profile("cpu").sft, max_steps=-1, save_steps=0)
    out_dir = ROOT / "var" / "training" / "sweep"
    t0 = time.perf_counter()

    def show(r) -> None:
        print(f"{r.name}: exact {r.exact:.1%}, execution {r.execution:.3f}, format {r.format:.3f}, "
              f"train {r.train_seconds:.0f} s, eval {r.eval_seconds:.0f} s", flush=True)

    summary = run_sweep(records, base, points, out_dir=out_dir, seed=args.seed, val_fraction=args.val_fraction,
                        on_result=show, validation_negatives=args.validation_negatives)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    summary |= {"commit": commit, "machine": machine, "database": args.database, "iteration": iteration.number,
                "seconds": time.perf_counter() - t0, "base_settings": dataclasses.asdict(base)}
    print(f"\n## SFT sweep at {commit}, {machine}: iteration {iteration.number}, "
          f"{summary['train_trajectories']} training / {summary['validation_trajectories']} validation "
          f"trajectories ({summary['train_rows']} rows, {summary['validation_items']} validation steps: "
          f"{summary['validation_modes']}), {summary['seconds'] / 60:.1f} min\n")
    print(markdown_table(summary))
    print(f"\nbest: {summary['best']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
