"""Run every benchmark in turn (``make bench``); each prints its own side-by-side table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("LLM backends", ["bench_llm.py"]),
    ("MCP tree", ["bench_mcp_tree.py"]),
    ("synthesis pipeline", ["bench_synthesis.py"]),
    ("BFCL mini on the embedded model (the loop's evaluation of one checkpoint)", ["bench_bfcl_mini.py"]),
    ("the loop: one iteration measured paired, then each Tool Agent's acceptance (about 75 min)", ["bench_loop.py"]),
    ("REST API and exports", ["bench_api.py"]),
    ("load: API clients and websocket subscribers", ["bench_load.py"]),
    ("load: 1, 2 and 4 Celery worker processes, fixed-latency model server", ["bench_workers.py", "--count", "12"]),
]


def main() -> int:
    only = set(sys.argv[1:])
    failed = []
    for title, args in BENCHES:
        if only and args[0].removesuffix(".py").removeprefix("bench_") not in only:
            continue
        if not (HERE / args[0]).exists():
            continue
        print(f"\n===== {title} ({args[0]}) =====", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE.parent)
        if rc:
            failed.append(args[0])
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
