"""BFCL mini on the embedded model: how long the loop's evaluation of one checkpoint takes.

    python bench/bench_bfcl_mini.py                      # all 240 items of mini-v1 (target: <= 10 min on 2 cores)
    python bench/bench_bfcl_mini.py --limit 5 --compare-batch 8   # batch sizes side by side on 30 items
    python bench/bench_bfcl_mini.py --limit 20 --pair-with var/training/sweep/X/final   # base vs a checkpoint, paired

It evaluates the way an iteration does (``loop.stages.evaluation_run``: the embedded
backend, unconstrained decoding, ``training.bfcl.EVAL_BATCH`` requests handed over at once) and prints
the wall time, the items per minute and the subset's scores. With ``--compare-batch N`` it
first runs the same items with N requests at a time, so the two figures come from one run.
With ``--pair-with PATH`` it then evaluates that checkpoint on the same items and prints the
paired before/after table with bootstrap 95% CIs, as an iteration stores it; ``--pair-with``
given more than once pairs each checkpoint with the same ``--model-path`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repo root

from synthesis.llm.registry import get_backend  # noqa: E402
from training.bfcl import EVAL_BATCH, run_bfcl_eval  # noqa: E402
from training.bfcl_subsets import DEFAULT_SUBSET, SUBSETS  # noqa: E402


def timed(backend, *, subset: str, limit: int | None, batch: int) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = run_bfcl_eval(backend, subset=subset, limit=limit, batch_size=batch)
    return time.perf_counter() - t0, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subset", default=DEFAULT_SUBSET, choices=sorted(SUBSETS))
    parser.add_argument("--limit", type=int, default=None, help="the first N items of each category")
    parser.add_argument("--model-path", default=None, help="a checkpoint folder (default: the base model)")
    parser.add_argument("--compare-batch", type=int, default=None, help="also run with this many requests at once")
    parser.add_argument("--pair-with", action="append", default=[], metavar="PATH",
                        help="also evaluate this checkpoint on the same items and print the paired table "
                             "(repeatable: each is paired with the one --model-path run)")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    options = {"constrain_tool_calls": False}
    if args.model_path:
        options["model_path"] = args.model_path
    backend = get_backend("embedded", **options)
    rows = []
    for batch in ([args.compare_batch] if args.compare_batch else []) + [EVAL_BATCH]:
        seconds, result = timed(backend, subset=args.subset, limit=args.limit, batch=batch)
        last_result = result
        items = len(result.items)
        rows.append({"batch": batch, "items": items, "seconds": seconds, "items_per_min": 60 * items / seconds,
                     "subset": result.overall.get("subset"),
                     "categories": {c: s.accuracy for c, s in result.categories.items()}})
        print(f"batch {batch:>3}: {items} items in {seconds:.0f} s ({60 * items / seconds:.1f} items/min)",
              flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    last = rows[-1]
    print(f"\nBFCL {args.subset}{f' (first {args.limit} per category)' if args.limit else ''}, "
          f"{args.model_path or 'base model'}, {machine}, load {os.getloadavg()[0]:.1f}")
    print(f"  wall time {last['seconds'] / 60:.1f} min for {last['items']} items (target: 240 items in <= 10 min)")
    if len(rows) == 2:
        print(f"  batch {EVAL_BATCH} vs {args.compare_batch}: {rows[0]['seconds'] / last['seconds']:.2f}x faster")
    for c, acc in last["categories"].items():
        print(f"  {c:<20} {acc:6.1%}")
    sub = last["subset"] or {}
    print(f"  non-live AST {sub.get('non_live_ast') or 0:.1%}, irrelevance {sub.get('irrelevance') or 0:.1%}")
    report = {"machine": machine, "runs": rows}
    if args.pair_with:
        from training.bfcl_compare import compare, outcomes, table

        report["items"] = {"before": [vars(i) for i in last_result.items]}
        report["pairs"] = []
        for path in args.pair_with:
            other = get_backend("embedded", constrain_tool_calls=False, model_path=path)
            seconds, paired = timed(other, subset=args.subset, limit=args.limit, batch=EVAL_BATCH)
            comparison = compare(outcomes(last_result.items), outcomes(paired.items))
            print(f"\n{args.model_path or 'base model'} -> {path} ({seconds / 60:.1f} min), paired:\n", flush=True)
            print(table(comparison), flush=True)
            report["pairs"].append({"pair_with": path, "seconds": seconds, "comparison": comparison,
                                    "items": [vars(i) for i in paired.items]})
            if args.output:  # after each pair: a long run stopped early keeps what it measured
                Path(args.output).write_text(json.dumps(report, indent=2, default=str))
        # the first pair under the keys one pair always had
        first = report["pairs"][0]
        report |= {"pair_with": first["pair_with"], "comparison": first["comparison"]}
        report["items"]["after"] = first["items"]
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
