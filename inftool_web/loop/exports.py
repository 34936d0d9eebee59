"""Dataset exports: trajectories as JSONL in OpenAI, ShareGPT and BFCL form, streamed; and
Hugging Face dataset folders (parquet splits and a card, ``export_hf_folder``).

Trajectories are read a chunk at a time by key (``id > last``) and each chunk's messages
with one query, so memory stays flat whatever the export size.
"""

from __future__ import annotations

import json
import json.encoder
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from django.db import connections
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from inftool_web.loop import hf_export
from inftool_web.loop.datacard import (
    data_card_get,
    data_card_markdown,
    iteration_build_data_card,
    size_category,
)
from inftool_web.loop.models import Iteration
from inftool_web.synth.models import Message, Trajectory
from inftool_web.synth.selectors import effective_verdict_value
from synthesis.records import normalize_call, reference_correction

FORMATS = ("openai", "sharegpt", "bfcl")
CHUNK_SIZE = 1000
_FLUSH_BYTES = 256 * 1024


# ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``, byte for byte, without
# building an encoder per call (json.dumps does): half the cost on small objects, and an
# export encodes two or three per trajectory.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_DECODER = json.JSONDecoder()
try:
    _c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
except (AttributeError, TypeError):  # no C accelerator, or another signature
    _c_encode = None


def _dumps(obj: Any) -> str:
    if _c_encode is None:
        return _ENCODER.encode(obj)
    return "".join(_c_encode(obj, 0))


def openai_tool(tool: dict) -> dict:
    """An MCP tool definition (or an OpenAI one, passed through) as an OpenAI function."""
    if tool.get("type") == "function" and "function" in tool:
        return tool
    return {
        "type": "function",
        "function": {
            "name": tool.get("name", ""),
            "description": tool.get("description", ""),
            "parameters": tool.get("inputSchema") or tool.get("parameters") or {"type": "object", "properties": {}},
        },
    }


def _plain_tool(tool: dict) -> dict:
    return openai_tool(tool)["function"]


def _openai_messages(t, messages: Iterable) -> list[dict]:
    out: list[dict] = []
    pending_ids: list[str] = []
    for m in messages:
        if m.role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.content or None}
            if m.tool_calls:
                calls = []
                for i, raw in enumerate(m.tool_calls):
                    call = normalize_call(raw)
                    call_id = (raw.get("id") if isinstance(raw, dict) else None) or f"call_{t.pk}_{m.index}_{i}"
                    calls.append({"id": call_id, "type": "function",
                                  "function": {"name": call["name"], "arguments": _dumps(call["arguments"])}})
                msg["tool_calls"] = calls
                pending_ids = [c["id"] for c in calls]
            out.append(msg)
        elif m.role == "tool":
            call_id = getattr(m, "tool_call_id", "") or ""
            for r in [] if call_id else m.tool_results or []:
                if isinstance(r, dict) and r.get("tool_call_id"):
                    call_id = r["tool_call_id"]
                    break
            if call_id in pending_ids:
                pending_ids.remove(call_id)
            elif pending_ids:
                call_id = pending_ids.pop(0)
            out.append({"role": "tool", "tool_call_id": call_id or f"call_{t.pk}_{m.index}",
                        "content": m.content or ""})
        else:
            out.append({"role": m.role, "content": m.content or ""})
    return out


def ground_truth(t, messages: list) -> list:
    """The conversation to export: :func:`synthesis.records.reference_correction`, the rule
    training uses too, applied to stored message rows."""
    first = next((i for i, m in enumerate(messages) if m.role == "assistant"), None)
    if first is None:
        return messages
    fix = reference_correction(t.mode, t.reference_calls, messages[first].tool_calls)
    if fix is None:
        return messages
    answer = MessageRow(messages[first].index, "assistant", fix.content or "", "", fix.calls, [])
    return [*messages[:first], answer]


def to_openai(t, messages: list) -> dict:
    return {"messages": _openai_messages(t, ground_truth(t, messages))}


_SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


def to_sharegpt(t, messages: list) -> dict:
    conversations = []
    for m in ground_truth(t, messages):
        value = m.content or ""
        if m.role == "assistant" and m.tool_calls:
            tags = [f"<tool_call>\n{_dumps(normalize_call(c))}\n</tool_call>" for c in m.tool_calls]
            value = "\n".join([value, *tags]) if value else "\n".join(tags)
        conversations.append({"from": _SHAREGPT_FROM.get(m.role, m.role), "value": value})
    return {"conversations": conversations}


def _bfcl_call_string(call: dict) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in call["arguments"].items())
    return f"{call['name']}({args})"


def to_bfcl(t, messages: list) -> dict:
    """BFCL V3 style: ``question`` is a list of turns (each a list of messages) and
    ``ground_truth`` lists, per call, the acceptable values of each argument; multi-turn
    rows hold one list of call strings per user turn, as BFCL's multi-turn files do."""
    turns: list[list[dict]] = []
    calls_per_turn: list[list[dict]] = []
    system: list[dict] = []
    for m in messages:
        if m.role == "system":
            system.append({"role": "system", "content": m.content or ""})
        elif m.role == "user":
            turns.append([*system, {"role": "user", "content": m.content or ""}])
            system = []
            calls_per_turn.append([])
        elif m.role == "assistant" and m.tool_calls and calls_per_turn:
            calls_per_turn[-1].extend(normalize_call(c) for c in m.tool_calls)
    if t.mode == Trajectory.Mode.MULTI_TURN:
        ground_truth: list = [[_bfcl_call_string(c) for c in calls] for calls in calls_per_turn]
    elif t.mode == Trajectory.Mode.IRRELEVANCE:
        ground_truth = []
    else:
        refs = [normalize_call(c) for c in t.reference_calls or []] or (calls_per_turn[0] if calls_per_turn else [])
        ground_truth = [{c["name"]: {k: [v] for k, v in c["arguments"].items()}} for c in refs]
    return {
        "id": f"inftool_{t.mode}_{t.iteration_id}_{t.seq}",
        "question": turns,
        "ground_truth": ground_truth,
    }


@dataclass(frozen=True)
class _Format:
    convert: Callable[[Any, list], dict]  # the conversation part of a line
    tools_key: str
    convert_tools: Callable[[list], Any]  # the tools part, from the offered MCP tools
    needs_references: bool = False  # reads Trajectory.reference_calls
    needs_tool_results: bool = False  # reads Message.tool_results (to pair results with calls)


FORMATS_SPEC = {
    "openai": _Format(to_openai, "tools", lambda tools: [openai_tool(x) for x in tools], needs_references=True,
                      needs_tool_results=True),
    "sharegpt": _Format(to_sharegpt, "tools", lambda tools: _dumps([openai_tool(x) for x in tools]),
                        needs_references=True),
    "bfcl": _Format(to_bfcl, "function", lambda tools: [_plain_tool(x) for x in tools], needs_references=True),
}


class TrajectoryRow(NamedTuple):
    pk: int
    iteration_id: int
    seq: int
    mode: str
    reference_calls: list


class MessageRow(NamedTuple):
    index: int
    role: str
    content: str
    tool_call_id: str
    tool_calls: list
    tool_results: list


def _loads(text: str | None) -> Any:
    """A JSON column read as text; most hold ``[]`` (sent as NULL, see the queries)."""
    if not text or text == "[]":
        return []
    return _DECODER.raw_decode(text)[0]


def _messages_sql(*, tool_results: bool) -> str:
    # ``= ANY(array)`` is one parameter where Django's ``__in`` writes (and psycopg parses) a
    # thousand; JSON columns come as text so the ``[]`` most of them hold is never parsed.
    results = "NULLIF(tool_results::text, '[]')" if tool_results else "NULL"
    return (
        f'SELECT trajectory_id, "index", role, content, tool_call_id, NULLIF(tool_calls::text, \'[]\'), {results} '
        f"FROM {Message._meta.db_table} WHERE trajectory_id = ANY(%s) ORDER BY trajectory_id, \"index\""
    )


def _messages_of(db: str, messages_sql: str, ids: list[int]) -> dict[int, list[MessageRow]]:
    """The stored messages of these trajectories, in order, by trajectory id."""
    by_trajectory: dict[int, list[MessageRow]] = defaultdict(list)
    with connections[db].cursor() as cursor:
        cursor.execute(messages_sql, [ids])
        for trajectory_id, index, role, content, call_id, calls, results in cursor.fetchall():
            by_trajectory[trajectory_id].append(MessageRow(
                index, role, content, call_id, _loads(calls) if calls else [],
                # read only where the tool message does not name its call itself
                _loads(results) if results and role == "tool" and not call_id else []))
    return by_trajectory


def export_lines(qs: QuerySet[Trajectory], fmt: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """JSONL bytes, a few hundred KB at a time, for every trajectory of ``qs``.

    Trajectories come as plain tuples in chunks of ``chunk_size`` (keyset pagination, see
    ``_keyset_chunks``) and each chunk's messages with one query, so memory holds one chunk
    at a time.
    Only the columns the format uses are read, and JSON columns are parsed only where the
    format looks inside them. Offered tool sets repeat across trajectories: each distinct set
    (by its stored JSON) is converted once and its JSON fragment reused.
    """
    if fmt not in FORMATS_SPEC:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    spec = FORMATS_SPEC[fmt]
    convert = spec.convert
    tools_prefix = f',"{spec.tools_key}":'
    fragments: dict[str, str] = {}
    messages_sql = _messages_sql(tool_results=spec.needs_tool_results)
    references = {"refs_json": Cast("reference_calls", TextField())} if spec.needs_references else {}
    columns = ("id", "iteration_id", "seq", "mode", "tools_json", *references)
    chunks = _keyset_chunks(qs.annotate(tools_json=Cast("offered_tools", TextField()), **references), columns,
                            chunk_size)
    buf: list[str] = []
    size = 0
    for chunk in chunks:
        by_trajectory = _messages_of(qs.db, messages_sql, [r[0] for r in chunk])
        for pk, iteration_id, seq, mode, tools_json, *refs in chunk:
            t = TrajectoryRow(pk, iteration_id, seq, mode, _loads(refs[0]) if refs else [])
            fragment = fragments.get(tools_json)
            if fragment is None:
                if len(fragments) > 4096:
                    fragments.clear()
                fragment = fragments[tools_json] = _dumps(spec.convert_tools(_loads(tools_json) or []))
            line = _dumps(convert(t, by_trajectory.get(pk, [])))
            line = f"{line[:-1]}{tools_prefix}{fragment}}}"
            buf.append(line)
            size += len(line)
            if size >= _FLUSH_BYTES:
                buf.append("")
                yield "\n".join(buf).encode()
                buf, size = [], 0
    if buf:
        buf.append("")
        yield "\n".join(buf).encode()


def _keyset_chunks(qs: QuerySet, columns: tuple[str, ...], chunk_size: int) -> Iterator[list[tuple]]:
    """``qs`` as lists of ``columns`` tuples (the first column the primary key), in key order.

    Each chunk is its own ``WHERE id > last ORDER BY id LIMIT n`` query, which starts
    returning rows at once. A server-side cursor outside a transaction is declared WITH HOLD,
    and PostgreSQL then computes the whole result before the first row: about a second for
    100,000 trajectories before the first byte, and a copy of the result on the server.
    """
    qs = qs.order_by("pk")
    last = None
    while True:
        page = qs if last is None else qs.filter(pk__gt=last)
        rows = list(page.values_list(*columns)[:chunk_size])
        if rows:
            yield rows
        if len(rows) < chunk_size:
            return
        last = rows[-1][0]


# ----------------------------------------------------------------------------- folders

DATA_FILE = "data.jsonl"
CARD_FILE = "README.md"


def export_cards(qs: QuerySet[Trajectory]) -> list[dict]:
    """The data card of every iteration ``qs`` draws from (built now where none is stored),
    with its audit section as of now."""
    ids = qs.order_by().values_list("iteration_id", flat=True).distinct()
    cards = []
    for it in Iteration.objects.select_related("input_checkpoint").filter(pk__in=ids).order_by("number"):
        if not it.data_card or it.data_card.get("error"):
            iteration_build_data_card(iteration=it)
        cards.append(data_card_get(iteration=it))
    return cards


def export_folder(qs: QuerySet[Trajectory], fmt: str, folder: str | Path, *, filters: dict | None = None) -> int:
    """Write ``data.jsonl`` (the export) and ``README.md`` (the data card of its iterations,
    a Hugging Face dataset card whose ``configs`` point at the data file) into ``folder``,
    so that ``datasets.load_dataset(folder)`` loads it.  Returns the number of rows."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(folder / DATA_FILE, "wb") as out:
        for chunk in export_lines(qs, fmt):
            out.write(chunk)
            rows += chunk.count(b"\n")
    cards = export_cards(qs)
    readme = data_card_markdown(cards, data_file=DATA_FILE,
                                export={"format": fmt, "rows": rows, "filters": dict(filters or {})})
    (folder / CARD_FILE).write_text(readme, encoding="utf-8")
    return rows


# ----------------------------------------------------------------------------- Hugging Face folders
# Parquet shards in train/validation splits and a dataset card (inftool_web.loop.hf_export
# writes them; this part reads the rows and the cards).

HF_FORMAT = "hf"


def export_records(qs: QuerySet[Trajectory], *, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[dict, dict]]:
    """``(meta, record)`` per trajectory of ``qs``, in key order: ``record`` is the OpenAI
    export line as a dict (``messages``, ``tools``), ``meta`` the trajectory's id, iteration
    number, mode, difficulty, effective verdict and score."""
    spec = FORMATS_SPEC["openai"]
    messages_sql = _messages_sql(tool_results=True)
    qs = qs.annotate(tools_json=Cast("offered_tools", TextField()), refs_json=Cast("reference_calls", TextField()),
                     effective=effective_verdict_value())
    columns = ("id", "iteration_id", "seq", "mode", "tools_json", "refs_json", "iteration__number", "difficulty",
               "effective", "score")
    tools_cache: dict[str, list] = {}
    for chunk in _keyset_chunks(qs, columns, chunk_size):
        by_trajectory = _messages_of(qs.db, messages_sql, [r[0] for r in chunk])
        for pk, iteration_id, seq, mode, tools_json, refs_json, number, difficulty, verdict, score in chunk:
            tools = tools_cache.get(tools_json)
            if tools is None:
                if len(tools_cache) > 4096:
                    tools_cache.clear()
                tools = tools_cache[tools_json] = spec.convert_tools(_loads(tools_json) or [])
            t = TrajectoryRow(pk, iteration_id, seq, mode, _loads(refs_json))
            record = {**spec.convert(t, by_trajectory.get(pk, [])), "tools": tools}
            meta = {"id": f"inftool-{number}-{seq}", "trajectory_id": pk, "iteration": number, "mode": mode,
                    "difficulty": difficulty, "verdict": verdict, "score": score}
            yield meta, record


def export_hf_folder(qs: QuerySet[Trajectory], folder: str | Path, *, filters: dict | None = None, seed: int = 0,
                     validation_fraction: float = 0.1, license: str = "other",
                     rows_per_shard: int | None = None):
    """Write ``qs`` as a Hugging Face dataset folder (see :mod:`inftool_web.loop.hf_export`):
    parquet shards split by trajectory and a README.md card holding the data cards of the
    exported iterations, the license and the source corpus.  Returns the split sizes."""
    cards = export_cards(qs)
    body = data_card_markdown(cards, license=license) if cards else f"---\nlicense: {license}\n---\n\n# InfTool export\n"
    settings = {"format": HF_FORMAT, "seed": seed, "validation_fraction": validation_fraction,
                "filters": dict(filters or {})}

    def card(rows: dict[str, int]) -> str:
        return hf_export.dataset_card(body, rows=rows, data_cards=cards, license=license, export=settings,
                                      size_categories=[size_category(sum(rows.values()))])

    rows = (hf_export.hf_row(meta, record) for meta, record in export_records(qs))
    kwargs = {"rows_per_shard": rows_per_shard} if rows_per_shard else {}
    return hf_export.write_hf_folder(rows, folder, card=card, seed=seed, validation_fraction=validation_fraction,
                                     **kwargs)


def export_hf_archive(qs: QuerySet[Trajectory], *, filters: dict | None = None, seed: int = 0,
                      validation_fraction: float = 0.1) -> Iterator[bytes]:
    """The Hugging Face dataset folder of ``qs`` as zip bytes, for a download: the folder is
    built in a temporary directory (before the first byte) and removed once sent."""
    folder = Path(tempfile.mkdtemp(prefix="inftool-hf-"))
    try:
        export_hf_folder(qs, folder, filters=filters, seed=seed, validation_fraction=validation_fraction)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def chunks() -> Iterator[bytes]:
        try:
            yield from hf_export.zip_folder(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return chunks()
