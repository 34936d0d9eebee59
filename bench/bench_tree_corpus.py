"""`make corpus-full` measured on the whole corpus (#20): build_tree's wall time and peak
memory, a killed run's resume, a re-run with nothing changed, and the method before, side
by side, on copies of one ingested database.

    python bench/bench_tree_corpus.py --before 134b137             # every step
    python bench/bench_tree_corpus.py --before 134b137 --only sample
    python bench/bench_tree_corpus.py --report                      # run nothing: read the databases, print

Steps (each database is a copy, ``CREATE DATABASE ... TEMPLATE``, of an ingested one):
  ingest  the whole corpus into ``inftool_tc_base`` (skipped when it already holds tools)
  after   ``manage.py build_tree`` of this checkout on the whole corpus, killed (SIGKILL) once
          half the tools have a stored vector (``--kill-at``, 0 = not killed), then run again
          to the end, then again with nothing changed
  kill    the same kill and resume on a copy of its own, when ``after`` is not killed
  judge   the judge phase alone, side by side: ``build_tree --force`` of ``--before`` and of
          this checkout on copies of the ``after`` database (all vectors stored) whose judge
          verdicts were deleted, one after the other
  sample  a seeded sample of ``--sample-size`` specs ingested into ``inftool_tc_sample``, and
          build_tree of this checkout and of a git worktree of ``--before`` on copies of it:
          their duplicate counts, judged pairs and trees side by side
Peak memory is the sum of the resident sets of the command's process tree, sampled every
0.2 s (psutil); wall time is the command's, start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
PY = sys.executable
BASE = "inftool_tc_base"
OUT = ROOT / "var" / "bench-tree-corpus"


def psql(sql: str, db: str = "postgres") -> str:
    r = subprocess.run(["psql", "-U", "postgres", "-h", "127.0.0.1", "-d", db, "-Atqc", sql],
                       check=True, capture_output=True, text=True)
    return r.stdout.strip()


def env_for(db: str) -> dict[str, str]:
    env = dict(os.environ)
    # INFTOOL_VAR_DIR: a worktree of an earlier commit reads this checkout's converted model.
    env.update(DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}", INFTOOL_DEMO_ON_EMPTY="false",
               INFTOOL_VAR_DIR=str(ROOT / "var"),
               PYTHONUNBUFFERED="1", REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"))
    return env


def copy_db(name: str, template: str = BASE, cwd: Path = ROOT) -> None:
    """``name`` as a copy of ``template``, migrated to the schema of the code in ``cwd``."""
    psql(f"drop database if exists {name}")
    psql(f"create database {name} template {template}")
    migrate_for(cwd, name)


def migrate_for(cwd: Path, db: str) -> None:
    """Bring ``db`` to the schema the code in ``cwd`` expects.  This checkout's is its own
    latest; an earlier commit's worktree gets each app migrated (forwards or backwards, by
    this checkout, which has every migration) to the last migration that commit has."""
    if cwd == ROOT:
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env_for(db), check=True)
        return
    for app_dir in sorted((ROOT / "inftool_web").glob("*/migrations")):
        theirs = sorted(p.stem for p in (cwd / app_dir.relative_to(ROOT)).glob("[0-9]*.py"))
        if theirs:
            subprocess.run([PY, "manage.py", "migrate", "-v0", app_dir.parent.name, theirs[-1]], cwd=ROOT,
                           env=env_for(db), check=True)


def measured(cmd: list[str], *, cwd: Path, db: str, log: Path, kill_when=None) -> dict:
    """Run ``cmd``; return wall time, peak RSS summed over its process tree, exit code."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env_for(db), stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        peak = 0
        killed = False
        last_check = 0.0
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            if kill_when and not killed and time.perf_counter() - last_check > 2:
                last_check = time.perf_counter()
                if kill_when():
                    for p in [*root.children(recursive=True), root]:
                        p.send_signal(signal.SIGKILL)
                    killed = True
            time.sleep(0.2)
    return {"wall_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak / 2**20),
            "rc": proc.returncode, "killed": killed, "log": str(log)}


def build_tree(cwd: Path, db: str, log: Path, **kw) -> dict:
    return measured([PY, "manage.py", "build_tree"], cwd=cwd, db=db, log=log, **kw)


def step_ingest() -> dict:
    if psql(f"select 1 from pg_database where datname = '{BASE}'") != "1":
        psql(f"create database {BASE}")
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env_for(BASE), check=True)
    n = int(psql("select count(*) from catalog_tool", BASE))
    if n:
        return {"skipped": True, "tools": n}
    r = measured([PY, "manage.py", "ingest_openapi", "--workers", "2"], cwd=ROOT, db=BASE, log=OUT / "ingest.log")
    r["tools"] = int(psql("select count(*) from catalog_tool", BASE))
    return r


def _embedded_count(db: str) -> int:
    return int(psql("select count(*) from catalog_toolvector", db))


def _killed_then_resumed(db: str, tag: str, kill_at: float) -> dict:
    total = int(psql("select count(*) from catalog_tool", db))
    out: dict = {"tools": total}
    if kill_at > 0:
        out["killed"] = build_tree(ROOT, db, OUT / f"{tag}-killed.log",
                                   kill_when=lambda: _embedded_count(db) >= kill_at * total)
        out["stored_when_killed"] = _embedded_count(db)
    out["run"] = build_tree(ROOT, db, OUT / f"{tag}-1.log")
    m = re.search(r"embedding (\d+) tools", (OUT / f"{tag}-1.log").read_text())
    out["embedded_by_run"] = int(m.group(1)) if m else 0
    return out


def step_after(kill_at: float) -> dict:
    copy_db("inftool_tc_after")
    first = _killed_then_resumed("inftool_tc_after", "after", kill_at)
    first["again"] = build_tree(ROOT, "inftool_tc_after", OUT / "after-2.log")
    return first


def step_kill() -> dict:
    copy_db("inftool_tc_kill")
    return _killed_then_resumed("inftool_tc_kill", "kill", 0.5)


def _worktree(rev: str) -> Path:
    wt = OUT / "before-worktree"
    if not wt.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(wt), rev], cwd=ROOT, check=True,
                       capture_output=True)
    return wt


def _help(cwd: Path) -> str:
    return subprocess.run([PY, "manage.py", "build_tree", "--help"], cwd=cwd, env=env_for("postgres"),
                          capture_output=True, text=True).stdout


def step_judge(rev: str) -> dict:
    """The judge phase alone, side by side: on copies of the ``after`` database (every vector
    stored, so nothing is embedded) with the judge's verdicts deleted, ``build_tree --force``
    of ``rev`` and of this checkout, one after the other."""
    if int(psql("select count(*) from catalog_toolvector", "inftool_tc_after") or 0) == 0:
        raise SystemExit("run the 'after' step first: the judge step starts from its stored vectors")
    out: dict = {"rev": rev}
    for side, cwd in (("before", _worktree(rev)), ("after", ROOT)):
        db = f"inftool_tc_judge_{side}"
        copy_db(db, "inftool_tc_after", cwd)
        psql("delete from catalog_duplicatelink where method = 'judge'", db)
        # This checkout asks the embedded judge only when told to (--judge on); before
        # that option, build_tree asked it by default.
        judge = ["--judge", "on"] if "--judge" in _help(cwd) else []
        out[side] = measured([PY, "manage.py", "build_tree", "--force", *judge], cwd=cwd, db=db,
                             log=OUT / f"judge-{side}.log")
    return out


def step_sample(rev: str, size: int) -> dict:
    base = "inftool_tc_sample"
    psql(f"drop database if exists {base}")
    psql(f"create database {base}")
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env_for(base), check=True)
    subprocess.run([PY, "manage.py", "ingest_openapi", "--sample", "--sample-size", str(size), "--workers", "2"],
                   cwd=ROOT, env=env_for(base), check=True, capture_output=True)
    wt = _worktree(rev)
    out: dict = {"rev": rev, "specs": size, "tools": int(psql("select count(*) from catalog_tool", base))}
    for side, cwd in (("before", wt), ("after", ROOT)):
        db = "inftool_tc_before" if side == "before" else "inftool_tc_sample_after"
        copy_db(db, base, cwd)
        out[side] = build_tree(cwd, db, OUT / f"sample-{side}.log")
    return out


def _summary_table(log: Path) -> dict[str, str]:
    rows = {}
    if log.exists():
        for line in log.read_text().splitlines():
            m = re.match(r"^([a-z][a-z ()>=.0-9-]+?)\s{2,}(\S+)$", line.strip())
            if m:
                rows[m.group(1)] = m.group(2)
    return rows


def groups(db: str) -> dict[int, int]:
    rows = psql("select id, coalesce(canonical_id, id) from catalog_tool", db).splitlines()
    return {int(a): int(b) for a, b in (r.split("|") for r in rows)}


def judged(db: str) -> list[tuple[int, int, bool]]:
    rows = psql("select tool_id, canonical_id, is_duplicate from catalog_duplicatelink where method = 'judge'", db)
    return [(int(a), int(b), c == "t") for a, b, c in (r.split("|") for r in rows.splitlines())]


def merged(db: str) -> set[frozenset[int]]:
    rows = psql("select tool_id, canonical_id from catalog_duplicatelink "
                "where method in ('semantic', 'judge') and is_duplicate", db)
    return {frozenset((int(a), int(b))) for a, b in (r.split("|") for r in rows.splitlines())}


def agreement(pairs: list[tuple[int, int, bool]], other: dict[int, int]) -> tuple[int, int]:
    """How many judged pairs the other side's grouping decides the same way."""
    same = sum(1 for a, b, dup in pairs if (other.get(a) == other.get(b)) == dup)
    return same, len(pairs)


def tree_of(db: str) -> list[tuple[str, str, int, list[tuple[str, str, int]]]]:
    doms = psql("select id, name, name_source, size from catalog_treenode where level = 'domain' order by size desc", db)
    out = []
    for row in doms.splitlines():
        pk, name, source, size = row.split("|")
        cats = psql(f"select name, name_source, size from catalog_treenode where parent_id = {pk} order by size desc", db)
        out.append((name, source, int(size), [(c.split("|")[0], c.split("|")[1], int(c.split("|")[2]))
                                              for c in cats.splitlines()]))
    return out


def report(results: dict) -> None:
    print(json.dumps({k: v for k, v in results.items() if k != "report"}, indent=1))
    print("\n## whole corpus, this checkout")
    whole = _summary_table(OUT / "after-1.log")
    print("\n".join(f"| {k} | {v} |" for k, v in whole.items()))
    if psql("select 1 from pg_database where datname = 'inftool_tc_after'") == "1":
        _print_tree("whole corpus", "inftool_tc_after")
    if "judge" in results:
        print(f"\n## the judge phase, side by side (forced rebuilds, verdicts deleted; before = {results['judge']['rev']})")
        sides = [k for k in ("before", "after") if k in results["judge"]]
        tables = {k: _summary_table(OUT / f"judge-{k}.log") for k in sides}
        print("\n| | " + " | ".join(sides) + " |\n|---|" + "---|" * len(sides))
        print("| wall s | " + " | ".join(str(results["judge"][k]["wall_s"]) for k in sides) + " |")
        print("| peak RSS, process tree MB | " + " | ".join(str(results["judge"][k]["peak_rss_mb"]) for k in sides) + " |")
        for k in ("judged pairs", "duplicates removed", "canonical tools", "dedup s", "tree s",
                  "peak RSS after dedup MB", "peak RSS after tree MB"):
            print(f"| {k} | " + " | ".join(tables[x].get(k, "") for x in sides) + " |")
    print("\n## seeded sample, side by side")
    dbs = {"before": "inftool_tc_before", "after": "inftool_tc_sample_after"}
    have = {k: v for k, v in dbs.items() if (OUT / f"sample-{k}.log").exists()
            and psql(f"select 1 from pg_database where datname = '{v}'") == "1"}
    tables = {k: _summary_table(OUT / f"sample-{k}.log") for k in have}
    keys = ["tools", "embedded now", "exact duplicates", "candidate pairs", "judged pairs", "duplicates removed", "canonical tools",
            "domains", "categories", "embedding s", "dedup s", "tree s", "total s"]
    print("\n| | " + " | ".join(have) + " |\n|---|" + "---|" * len(have))
    for k in keys:
        print(f"| {k} | " + " | ".join(tables[s].get(k, "") for s in have) + " |")
    if len(have) == 2:
        g = {k: groups(v) for k, v in have.items()}
        j = {k: judged(v) for k, v in have.items()}
        for side, other in (("before", "after"), ("after", "before")):
            same, n = agreement(j[side], g[other])
            dups = sum(1 for *_, d in j[side] if d)
            print(f"\n{side}'s judged pairs: {n} ({dups} judged duplicates); {other}'s groups agree on "
                  f"{same}/{n}" + (f" = {same / n:.1%}" if n else ""))
        m = {k: merged(v) for k, v in have.items()}
        both = m["before"] & m["after"]
        print(f"\nsemantic + judge merges: before {len(m['before'])}, after {len(m['after'])}, in both {len(both)}")
        same_group = sum(1 for p in m["before"] if len({g["after"].get(x) for x in p}) == 1)
        print(f"before's merges that after also groups together: {same_group}/{len(m['before'])}")
        same_group = sum(1 for p in m["after"] if len({g["before"].get(x) for x in p}) == 1)
        print(f"after's merges that before also groups together: {same_group}/{len(m['after'])}")
    for side, db in have.items():
        _print_tree(f"sample, {side}", db)


def _print_tree(title: str, db: str) -> None:
    tree = tree_of(db)
    total = sum(s for _, _, s, _ in tree) or 1
    print(f"\n### {title}: {len(tree)} domains, {sum(len(c) for *_, c in tree)} categories")
    print("| domain (name source) | tools | share | categories (tools) |\n|---|---|---|---|")
    for name, source, size, cats in tree:
        cat_text = "; ".join(f"{c} ({n})" for c, _, n in cats)
        print(f"| {name} ({source}) | {size} | {size / total:.1%} | {cat_text} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="the earlier commit whose build_tree runs beside this one on the sample")
    ap.add_argument("--only", nargs="+", choices=["ingest", "after", "kill", "judge", "sample"], default=None)
    ap.add_argument("--kill-at", type=float, default=0.5,
                    help="share of the tools with a stored vector at which the first whole-corpus run is killed")
    ap.add_argument("--sample-size", type=int, default=300, help="specs in the side-by-side sample")
    ap.add_argument("--report", action="store_true", help="run nothing: read the databases and print")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results_file = OUT / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    if not args.report:
        steps = args.only or ["ingest", "after", *(["sample"] if args.before else [])]
        for step in steps:
            if step == "ingest":
                results["ingest"] = step_ingest()
            elif step == "after":
                results["after"] = step_after(args.kill_at)
            elif step == "kill":
                results["kill"] = step_kill()
            elif step == "judge":
                if not args.before:
                    ap.error("the judge step needs --before REV")
                results["judge"] = step_judge(args.before)
            elif step == "sample":
                if not args.before:
                    ap.error("the sample step needs --before REV")
                results["sample"] = step_sample(args.before, args.sample_size)
            results["machine"] = {"cores": os.cpu_count(), "load_after": os.getloadavg()[0]}
            results_file.write_text(json.dumps(results, indent=1))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
