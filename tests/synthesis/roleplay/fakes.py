"""Tools and model stand-ins for the role-play tests."""

from __future__ import annotations

import json
import random
import re
import zlib
from typing import Any

from synthesis.llm.base import ChatRequest, ChatResult, ToolCall
from synthesis.llm.scripted import ScriptedBackend
from synthesis.schema_utils import synthesize_instance

ORDER_OUT = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "item": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": ["placed", "shipped", "delivered"]},
    },
    "required": ["order_id", "item", "quantity", "status"],
}

CREATE_ORDER = {
    "name": "create_order",
    "description": "Place an order for an item.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "item": {"type": "string", "description": "what to order"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
        },
        "required": ["item", "quantity"],
        "additionalProperties": False,
    },
    "outputSchema": ORDER_OUT,
}

GET_ORDER = {
    "name": "get_order",
    "description": "Look up an order by its id.",
    "inputSchema": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
    "outputSchema": ORDER_OUT,
}

DELETE_ORDER = {
    "name": "delete_order",
    "description": "Cancel and delete an order.",
    "inputSchema": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}

GET_WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
    "outputSchema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "temperature": {"type": "number"},
            "unit": {"type": "string"},
        },
        "required": ["city", "temperature"],
    },
}

SEND_EMAIL = {
    "name": "send_email",
    "description": "Send an email.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "to": {"type": "string", "format": "email"},
            "subject": {"type": "string"},
            "body": {"type": "string"},
        },
        "required": ["to", "subject"],
    },
}

ALL_TOOLS = [CREATE_ORDER, GET_ORDER, DELETE_ORDER, GET_WEATHER, SEND_EMAIL]


def _seed(req: ChatRequest) -> int:
    return zlib.crc32(json.dumps(req.messages, sort_keys=True, default=str).encode()) + (
        req.seed or 0
    )


def _props(schema: dict[str, Any] | None) -> set[str]:
    return set(((schema or {}).get("properties") or {}).keys())


def call(name: str, **arguments: Any) -> ChatResult:
    return ChatResult(
        text="",
        tool_calls=[ToolCall(name=name, arguments=arguments, id="x")],
        finish_reason="tool_calls",
    )


def text(t: str) -> ChatResult:
    return ChatResult(text=t)


def as_json(v: Any) -> ChatResult:
    return ChatResult(text=json.dumps(v))


def _said(req: ChatRequest) -> dict[str, Any]:
    """``key = value`` details the user gave so far (the fake User Simulator's format)."""
    from synthesis.roleplay.phrasing import humanize
    from synthesis.schema_utils import is_id_key

    out: dict[str, Any] = {}
    keys = {k for t in req.tools or [] for k in _props(t.get("inputSchema"))}
    for m in req.messages:
        if m["role"] == "tool" and isinstance(m.get("content"), str):
            try:
                result = json.loads(m["content"])
            except ValueError:
                result = None
            if isinstance(result, dict):  # ids the tools returned
                out.update({k: v for k, v in result.items() if is_id_key(k) and isinstance(v, str | int) and k not in out})
        if m["role"] == "user" and isinstance(m.get("content"), str):
            for k, v in re.findall(r'(\w+) = ("[^"]*"|[-\w.]+)', m["content"]):
                try:
                    out[k] = json.loads(v)
                except ValueError:
                    out[k] = v
            # the plain phrasing: "with item Widget and quantity 3"
            for k in keys:
                hit = re.search(re.escape(humanize(k)) + r" ([-\w.@]+?)(?:[,.?]?(?:\s|$))", m["content"], re.I)
                if hit and k not in out:
                    v = hit.group(1)
                    out[k] = int(v) if v.isdigit() else v
    return out


def smart_reply(req: ChatRequest) -> ChatResult:
    """A plausible, deterministic answer to any role-play request, without a model: the
    agent picks the tool whose required details the user gave and uses those values."""
    rng = random.Random(_seed(req))
    last = req.messages[-1]["content"] if req.messages else ""
    schema = req.json_schema
    props = _props(schema)
    if props == {"rationale", "decision"}:
        return as_json({"rationale": "The calls match the request.", "decision": "accept"})
    if props == {"goal_met", "message"}:
        m = re.search(r"Details not yet shared: (.*)\n", last)
        convo_turns = last.count("\nYou: ") + last.startswith("You: ")
        if "Conversation so far" in last and convo_turns >= 2:
            return as_json({"goal_met": True, "message": "Thanks, that is all."})
        detail = m.group(1) if m else "the rest"
        return as_json({"goal_met": False, "message": f"Please help me. Details: {detail}"})
    if props == {"query"}:
        rewrite = re.search(r"^Request: (.*)$", last, re.M)
        if rewrite:
            return as_json({"query": "Hello there. " + rewrite.group(1)})
        m = re.search(r"Include these exact values: (.*?)\. Do not", last)
        values = m.group(1) if m else "something no tool can do"
        return as_json({"query": f"Could you please take care of this for me: {values}?"})
    if props == {"goal"}:
        return as_json({"goal": "I want my order placed and checked."})
    if props == {"action", "tools"}:
        history = [m for m in req.messages if m["role"] != "system"]
        if history and history[-1]["role"] == "tool":
            return as_json({"action": "answer", "tools": []})
        names = schema["properties"]["tools"]["items"]["enum"]
        said = _said(req)
        by_name = {t["name"]: t for t in req.tools or []}

        called = {tc.get("function", {}).get("name") for m in req.messages for tc in m.get("tool_calls") or []}

        def fit(n: str) -> int:
            required = (by_name.get(n, {}).get("inputSchema") or {}).get("required") or []
            return sum(1 for r in required if r in said) - len(required) - 10 * (n in called)

        best = max(names, key=fit)
        if fit(best) < 0 and called:  # nothing more the user asked for: answer
            return as_json({"action": "answer", "tools": []})
        return as_json({"action": "call_tools", "tools": [best]})
    if schema is not None:
        return as_json(synthesize_instance(schema, rng=rng))
    tools = {t["name"]: t for t in req.tools or []}
    choice = req.tool_choice
    if isinstance(choice, dict):
        name = choice["name"]
        return call(
            name,
            **synthesize_instance(tools[name]["inputSchema"], rng=rng, optional_ratio=0.0, hints=_said(req)),
        )
    if choice == "required" and tools:
        name = next(iter(tools))
        return call(
            name, **synthesize_instance(tools[name]["inputSchema"], rng=rng, optional_ratio=0.0)
        )
    return text("Done: here is what I found.")


def smart_backend(*replies: Any) -> ScriptedBackend:
    """Plays ``replies`` first, then answers everything with :func:`smart_reply`."""
    return ScriptedBackend(replies=list(replies), default=smart_reply)
