"""The synthesized data of two commits side by side: this checkout and an earlier one.

    python bench/bench_data_quality.py --before 2f15d78 [--count 30] [--seed 0] [--max-turns N] [--modes parallel]

Each side gets a git worktree (the earlier commit) or this checkout, its own database
(``inftool_dq_before`` / ``inftool_dq_after``) and Redis db, the 40-spec sample corpus and
``manage.py synthesize --count N`` with the embedded model, both running at the same time
on the same seeds.  Printed per side: accepted share overall and per mode, how many argument
values of accepted trajectories validate against their schemas (checked with this
checkout's validator for both), and the requests of the accepted trajectories.  The full
logs are written beside the results (``bench/RESULTS-data-quality.md`` is written by hand
from them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
PY = sys.executable


def sh(cmd: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def side_env(name: str, redis_db: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/inftool_dq_{name}",
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        INFTOOL_DEMO_ON_EMPTY="false",
        INFTOOL_VAR_DIR=str(ROOT / "var"),
        PYTHONUNBUFFERED="1",
        # Both sides run at once: one core each.  Two torch processes with a thread per core
        # each oversubscribe a 2-core box (seen: 3 steps per trajectory in 33 minutes).
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // 2))),
    )
    return env


def prepare(name: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["psql", "-U", "postgres", "-h", "127.0.0.1", "-qc", f"drop database if exists inftool_dq_{name}"],
                   check=True, capture_output=True)
    subprocess.run(["psql", "-U", "postgres", "-h", "127.0.0.1", "-qc", f"create database inftool_dq_{name}"],
                   check=True, capture_output=True)
    for cmd in (["manage.py", "migrate", "-v0"], ["manage.py", "ingest_openapi", "--sample"]):
        subprocess.run([PY, *cmd], cwd=cwd, env=env, check=True, capture_output=True)


def _json(v):
    """A jsonb column as Django's connection hands it to a raw cursor (text)."""
    return json.loads(v) if isinstance(v, str) else v


def read_side(name: str) -> dict:
    """What the side's database holds, read with this checkout's code."""
    import django

    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/inftool_dq_{name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inftool_web.settings")
    if not hasattr(read_side, "ready"):
        django.setup()
        read_side.ready = True  # type: ignore[attr-defined]
    from django.db import connections

    from synthesis.roleplay.checks import ValueChecks, argument_value_checks

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = f"inftool_dq_{name}"
    with connections["default"].cursor() as cur:
        # The column is "mode" since synth migration 0006, "kind" in earlier commits.
        cur.execute("select column_name from information_schema.columns where table_name = 'synth_trajectory' "
                    "and column_name in ('mode', 'kind')")
        mode_column = cur.fetchone()[0]
        cur.execute(f"select id, {mode_column}, status, verdict, goal, offered_tools, reference_calls "
                    "from synth_trajectory where iteration_id = (select max(id) from loop_iteration) order by seq")
        rows = cur.fetchall()
        cur.execute("select trajectory_id, tool_calls from synth_message where role = 'assistant' "
                    "and tool_calls::text <> '[]' and trajectory_id = any(%s)", [[r[0] for r in rows]])
        calls: dict[int, list] = {}
        for tid, tcs in cur.fetchall():
            for tc in _json(tcs) or []:
                fn = tc.get("function", tc)
                args = fn.get("arguments")
                args = json.loads(args) if isinstance(args, str) and args.strip() else (args or {})
                calls.setdefault(tid, []).append({"name": fn.get("name"), "arguments": args})
        cur.execute("select trajectory_id, data from synth_trajectorystep where trajectory_id = any(%s) order by index",
                    [[r[0] for r in rows if r[3] == "accepted"]])
        steps: dict[int, list] = {}
        for tid, data in cur.fetchall():
            steps.setdefault(tid, []).append(_json(data))
    by_mode: Counter = Counter()
    ok_mode: Counter = Counter()
    recheck = recheck_accepted(steps)
    values = ValueChecks()
    accepted = []
    for tid, kind, _status, verdict, goal, tools, refs in rows:
        tools, refs = _json(tools), _json(refs)
        by_mode[kind] += 1
        if verdict == "accepted":
            ok_mode[kind] += 1
            values.add(argument_value_checks(list(refs or []) + calls.get(tid, []), tools or []))
            accepted.append((kind, goal))
    return {"by_mode": by_mode, "ok_mode": ok_mode, "values": values, "accepted": accepted, "n": len(rows),
            "recheck": recheck}


def recheck_accepted(steps: dict[int, list]) -> dict[int, list[str]]:
    """This checkout's rule checks applied to each accepted trajectory's stored steps: what
    they would reject today (a side measured before a check was added is judged by it too)."""
    from synthesis.roleplay import multi_turn, single_turn
    from synthesis.roleplay.config import RoleplayConfig
    from synthesis.roleplay.steps import MessageStep, ResumeState, ScenarioStep

    out = {}
    for tid, rows in steps.items():
        state = ResumeState.from_steps(rows)
        scenario = next((s for s in state.steps if isinstance(s, ScenarioStep)), None)
        if scenario is None:
            continue
        if scenario.mode == "multi_turn":
            msgs = [s for s in state.steps if isinstance(s, MessageStep) and s.role != "system"]
            problems = multi_turn.rule_problems(msgs, scenario)
        else:
            problems = single_turn.rule_problems(scenario, RoleplayConfig())
        if problems:
            out[tid] = problems
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the earlier commit (e.g. 2f15d78)")
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-turns", type=int, default=None, help="synthesize --max-turns (multi-turn length)")
    ap.add_argument("--modes", nargs="+", default=None, help="synthesize --modes (default: every mode)")
    ap.add_argument("--out", default=str(ROOT / "var" / "bench-data-quality"))
    ap.add_argument("--only", choices=["before", "after"], default=None,
                    help="run one side (the other is read from its database as an earlier run left it)")
    ap.add_argument("--report", action="store_true", help="run nothing: read both databases and print")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wt = out / "before-worktree"
    if not wt.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(wt), args.before], cwd=ROOT, check=True)
    sides = {"before": (wt, side_env("before", 11)), "after": (ROOT, side_env("after", 12))}
    run = {} if args.report else {n: v for n, v in sides.items() if args.only in (None, n)}
    for name, (cwd, env) in run.items():
        prepare(name, cwd, env)
    cmd = [PY, "manage.py", "synthesize", "--count", str(args.count), "--seed", str(args.seed)]
    if args.max_turns:
        cmd += ["--max-turns", str(args.max_turns)]
    if args.modes:
        cmd += ["--modes", *args.modes]
    t0 = time.monotonic()
    procs = {name: sh(cmd, cwd, env, out / f"{name}.log") for name, (cwd, env) in run.items()}
    took = {}
    while procs:
        for name, p in list(procs.items()):
            if p.poll() is not None:
                took[name] = time.monotonic() - t0
                print(f"{name}: exit {p.returncode} after {took[name] / 60:.1f} min", flush=True)
                del procs[name]
        time.sleep(5)
    results = {name: read_side(name) for name in sides}
    modes = sorted(set().union(*(r["by_mode"] for r in results.values())))
    print(f"\n{'':14}" + "".join(f"{n:>18}" for n in results))
    for m in [*modes, "total"]:
        cells = []
        for r in results.values():
            made = sum(r["by_mode"].values()) if m == "total" else r["by_mode"][m]
            ok = sum(r["ok_mode"].values()) if m == "total" else r["ok_mode"][m]
            cells.append(f"{ok}/{made} ({100 * ok / made:.0f}%)" if made else "-")
        print(f"{'accepted ' + m:<14}" + "".join(f"{c:>18}" for c in cells))
    cells = [f"{r['values'].passed}/{r['values'].total}" for r in results.values()]
    print(f"{'values valid':<14}" + "".join(f"{c:>18}" for c in cells))
    cells = [f"{len(r['recheck'])}" for r in results.values()]
    print(f"{'rechecked: rejected today':<14}" + "".join(f"{c:>18}" for c in cells))
    print(f"{'minutes':<14}" + "".join(f"{took[n] / 60:>18.1f}" if n in took else f"{'(earlier run)':>18}" for n in results))
    for name, r in results.items():
        print(f"\n--- {name}: requests of accepted trajectories")
        for kind, goal in r["accepted"]:
            print(f"  [{kind}] {goal[:220]}")
        for f in r["values"].failures[:10]:
            print(f"  invalid value: {f}")
        for tid, problems in r["recheck"].items():
            print(f"  accepted {tid}, rejected by today's rule checks: {'; '.join(problems)[:300]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
