"""Memory bound of dedup + tree on a synthetic corpus (#20); a benchmark, not a timed test.

    nice -n 10 .venv/bin/python bench/bench_tree_memory.py --tools 50000

Runs each mode in its own process and reports its peak RSS (ru_maxrss) and wall time:
  full: every tool with its full schemas in memory (what build_tree did before #20)
  slim: tools streamed and reduced to slim stand-ins (what build_tree does now)
Embeddings are synthetic (clustered unit vectors, 384 dimensions, float32), so the figures
measure the holding of tools, dedup and clustering, not the embedding model.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_tool(i: int, rng: np.random.Generator) -> dict:
    n_props = int(rng.integers(2, 30))
    props = {
        f"param_{i % 97}_{p}": {
            "type": "string", "description": f"Parameter {p} of operation {i}; " + "detail " * 20,
            "enum": [f"v{k}" for k in range(10)],
        }
        for p in range(n_props)
    }
    return {
        "name": f"op_{i % 40000}_{i % 11}",  # some exact twins
        "description": f"Operation {i} of api {i // 50}. " + "It does a thing. " * 15,
        "inputSchema": {"type": "object", "properties": props, "required": list(props)[:2]},
        "outputSchema": {"type": "object", "properties": {"result": {"type": "array", "items": props}}},
        "source": f"api{i // 50}",
    }


def run_mode(mode: str, n: int, seed: int = 0) -> dict:
    from synthesis.mcp_tree.dedup import DedupConfig, dedup_tools, slim_tool, tool_text
    from synthesis.mcp_tree.tree import TreeConfig, build_tree

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    tools = []
    for i in range(n):
        t = synthetic_tool(i, rng)
        tools.append(slim_tool(t) if mode == "slim" else t)
    t_load = time.perf_counter() - t0
    centers = rng.normal(size=(60, 384)).astype(np.float32)
    emb = np.empty((n, 384), dtype=np.float32)
    for a in range(0, n, 8192):
        b = min(n, a + 8192)
        emb[a:b] = centers[rng.integers(0, 60, b - a)] + 0.6 * rng.normal(size=(b - a, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    t1 = time.perf_counter()
    res = dedup_tools(tools, embeddings=emb, config=DedupConfig(lower=0.9, upper=0.96))
    t_dedup = time.perf_counter() - t1
    t2 = time.perf_counter()
    keep = res.canonical
    tree = build_tree(emb[keep], [tool_text(tools[i]) for i in keep], sources=[str(tools[i]["source"]) for i in keep],
                      config=TreeConfig(n_domains=15, n_categories=40, min_category_size=10))
    t_tree = time.perf_counter() - t2
    dom = sorted((len(d.members) for d in tree.domains()), reverse=True)
    return {
        "mode": mode, "tools": n, "canonical": len(keep), "duplicates": res.duplicates,
        "build_s": round(t_load, 1), "dedup_s": round(t_dedup, 1), "tree_s": round(t_tree, 1),
        "largest_domain_share": round(dom[0] / len(keep), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", type=int, default=50000)
    ap.add_argument("--mode", choices=["slim", "full"])
    ap.add_argument("--modes", default="slim,full")
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.tools)))
        return
    rows = []
    for mode in args.modes.split(","):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--tools", str(args.tools)],
                             capture_output=True, text=True, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["wall_s"] = round(time.perf_counter() - t, 1)
        rows.append(row)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
