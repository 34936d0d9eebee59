"""Which ``pattern``s and ``format``s the corpus's tools carry, and how often.

    python -m synthesis.mcp_tree.corpus_stats [CORPUS_API_DIR] [--top 200] [--out FILE]

Converts every spec (as ingestion does) and counts the string ``pattern`` and ``format``
values in the converted tools' input schemas, at any depth.  The result (a JSON file) is
the fixture of the value-synthesis coverage test: every one of the most frequent patterns
and every format must get values that validate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .openapi import convert_spec


def _walk(node: Any, patterns: Counter, formats: Counter, depth: int = 0) -> None:
    if depth > 40:
        return
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            patterns[node["pattern"]] += 1
        if isinstance(node.get("format"), str):
            formats[node["format"]] += 1
        for k, v in node.items():
            if k not in ("pattern", "format", "enum", "const", "example", "examples", "default"):
                _walk(v, patterns, formats, depth + 1)
    elif isinstance(node, list):
        for x in node:
            _walk(x, patterns, formats, depth + 1)


def collect(api_dir: Path) -> tuple[Counter, Counter, int]:
    patterns: Counter = Counter()
    formats: Counter = Counter()
    tools = 0
    for path in sorted(api_dir.rglob("*.json")):
        try:
            result = convert_spec(path.read_bytes(), source_name=path.relative_to(api_dir).as_posix())
        except Exception:  # noqa: BLE001 - a spec the converter refuses has no tools to count
            continue
        for tool in result.tools:
            tools += 1
            _walk(tool.to_mcp().get("inputSchema"), patterns, formats)
    return patterns, formats, tools


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("api_dir", nargs="?", default=None)
    parser.add_argument("--top", type=int, default=200)
    parser.add_argument("--out", default="tests/synthesis/roleplay/data/corpus_patterns.json")
    args = parser.parse_args(argv)
    api_dir = Path(args.api_dir) if args.api_dir else next(Path("var/corpus").glob("*/api"))
    patterns, formats, tools = collect(api_dir)
    data = {
        "source": str(api_dir),
        "tools": tools,
        "distinct_patterns": len(patterns),
        "patterns": [{"pattern": p, "count": n} for p, n in patterns.most_common(args.top)],
        "formats": [{"format": f, "count": n} for f, n in formats.most_common()],
    }
    Path(args.out).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"{tools} tools, {len(patterns)} distinct patterns, {len(formats)} formats -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
