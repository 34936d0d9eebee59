"""Dataset exports: trajectories as JSONL in OpenAI, ShareGPT and BFCL form, streamed.

Rows are read with a server-side cursor (``iterator(chunk_size=...)``) and their messages
fetched one chunk at a time, so memory stays flat whatever the export size.
"""

from __future__ import annotations

import json
from collections import defaultdict, namedtuple
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from inftool_web.synth.models import Message, Trajectory

FORMATS = ("openai", "sharegpt", "bfcl")
CHUNK_SIZE = 1000
_FLUSH_BYTES = 256 * 1024


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _as_dict(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


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


def normalize_call(call: dict) -> dict:
    """``{"name", "arguments": dict}`` from an OpenAI, MCP or plain call."""
    fn = call.get("function", call) if isinstance(call, dict) else {}
    args = fn.get("arguments", fn.get("args", {}))
    return {"name": fn.get("name", ""), "arguments": _as_dict(args) if not isinstance(args, dict) else args}


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


def to_openai(t, messages: list) -> dict:
    return {"messages": _openai_messages(t, messages)}


_SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


def to_sharegpt(t, messages: list) -> dict:
    conversations = []
    for m in messages:
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
    if t.kind == Trajectory.Kind.MULTI_TURN:
        ground_truth: list = [[_bfcl_call_string(c) for c in calls] for calls in calls_per_turn]
    elif t.kind == Trajectory.Kind.IRRELEVANCE:
        ground_truth = []
    else:
        refs = [normalize_call(c) for c in t.reference_calls or []] or (calls_per_turn[0] if calls_per_turn else [])
        ground_truth = [{c["name"]: {k: [v] for k, v in c["arguments"].items()}} for c in refs]
    return {
        "id": f"inftool_{t.kind}_{t.iteration_id}_{t.seq}",
        "question": turns,
        "ground_truth": ground_truth,
    }


# Each format: (conversation part, key of the tools part, tools part from the offered MCP tools).
FORMATS_SPEC = {
    "openai": (to_openai, "tools", lambda tools: [openai_tool(x) for x in tools]),
    "sharegpt": (to_sharegpt, "tools", lambda tools: _dumps([openai_tool(x) for x in tools])),
    "bfcl": (to_bfcl, "function", lambda tools: [_plain_tool(x) for x in tools]),
}

_TRAJECTORY_FIELDS = ("id", "iteration_id", "seq", "kind", "reference_calls")
_MESSAGE_FIELDS = ("trajectory_id", "index", "role", "content", "tool_calls", "tool_results", "tool_call_id")


class TrajectoryRow(NamedTuple):
    pk: int
    iteration_id: int
    seq: int
    kind: str
    reference_calls: list


_JSON_FIELDS = {"reference_calls", "tool_calls", "tool_results"}


def _as_text(fields: tuple[str, ...]) -> tuple[list[str], dict]:
    """Column names for ``values_list`` with the JSON columns read as text: most hold ``[]``,
    and skipping Django's per-value ``json.loads`` for those is most of the read cost."""
    names, annotations = [], {}
    for f in fields:
        if f in _JSON_FIELDS:
            annotations[f"{f}_text"] = Cast(f, TextField())
            names.append(f"{f}_text")
        else:
            names.append(f)
    return names, annotations


def _loads(text: str | None) -> Any:
    if not text or text == "[]":
        return []
    return json.loads(text)


def _message_row_type():
    known = {f.attname for f in Message._meta.concrete_fields}
    fields = tuple(f for f in _MESSAGE_FIELDS if f in known)
    return fields, namedtuple("MessageRow", fields)


def export_lines(qs: QuerySet[Trajectory], fmt: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """JSONL bytes, a few hundred KB at a time, for every trajectory of ``qs``.

    Trajectories come from a server-side cursor as plain tuples and their messages are
    fetched per chunk of ``chunk_size`` trajectories, so memory holds one chunk at a time.
    Offered tool sets repeat across trajectories: each distinct set (by its stored JSON) is
    converted once and its JSON fragment reused.
    """
    if fmt not in FORMATS_SPEC:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    convert, tools_key, convert_tools = FORMATS_SPEC[fmt]
    tools_prefix = f',"{tools_key}":'
    fragments: dict[str, str] = {}
    msg_fields, MessageRow = _message_row_type()
    t_names, t_annotations = _as_text(_TRAJECTORY_FIELDS)
    m_names, m_annotations = _as_text(msg_fields)
    json_positions = [i for i, f in enumerate(msg_fields) if f in _JSON_FIELDS]
    rows = (
        qs.order_by("id")
        .annotate(tools_json=Cast("offered_tools", TextField()), **t_annotations)
        .values_list(*t_names, "tools_json")
        .iterator(chunk_size=chunk_size)
    )
    buf: list[str] = []
    size = 0
    for chunk in _batched(rows, chunk_size):
        by_trajectory: dict[int, list] = defaultdict(list)
        for values in (Message.objects.filter(trajectory_id__in=[r[0] for r in chunk])
                       .annotate(**m_annotations).order_by("trajectory_id", "index").values_list(*m_names)):
            values = list(values)
            for i in json_positions:
                values[i] = _loads(values[i])
            by_trajectory[values[0]].append(MessageRow(*values))
        for *head, tools_json in chunk:
            t = TrajectoryRow(*head[:-1], _loads(head[-1]))
            fragment = fragments.get(tools_json)
            if fragment is None:
                if len(fragments) > 4096:
                    fragments.clear()
                fragment = fragments[tools_json] = _dumps(convert_tools(json.loads(tools_json or "[]") or []))
            line = _dumps(convert(t, by_trajectory.get(t.pk, [])))
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


def _batched(iterable, n: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
