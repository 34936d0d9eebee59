"""The MCP Server Simulator: answers ``tools/call`` requests as a real MCP server would.

* Protocol errors are JSON-RPC errors, as MCP servers send them: an unknown tool or
  arguments that fail the tool's ``inputSchema`` give ``{"error": {"code": -32602, ...}}``.
* A result is a ``CallToolResult``: ``content`` (a text block with the JSON),
  ``structuredContent`` (when the tool declares an ``outputSchema``; it always validates
  against it) and ``isError``.  The model writes the result under ``json_schema =
  outputSchema``; a reply that is unusable or invalid is replaced by a deterministic
  instance synthesized from the schema.
* State: an :class:`EntityStore` remembers the records the conversation created or
  touched, keyed by their identifiers.  A later call naming an identifier sees the stored
  record (the model is shown it, and its fields are written over the result), updates
  change it, deletions remove it (a later lookup is a "not found" tool error).  Unknown
  identifiers are taken to name records that existed before the conversation.

The store changes only through :meth:`ServerSimulator.observe`, which reads a stored
response; a resumed conversation calls it on the replayed responses and gets the same state.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import ChatRequest
from synthesis.schema_utils import (
    NoValidValue,
    is_id_key,
    is_valid,
    synthesize_instance,
    validation_errors,
)

from . import prompts
from .phrasing import DELETE_VERBS, UPDATE_VERBS, without_envelope
from .runtime import Gen, ask_first, parse_json_reply, rng_for
from .values import polish_result

INVALID_PARAMS = -32602

def verb_of(tool_name: str) -> str:
    """First word of a tool name: ``create_order`` / ``createOrder`` / ``orders.create``."""
    words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", tool_name).lower())
    if not words:
        return ""
    # Dotted names (``orders.create``) put the verb last.
    return words[-1] if "." in tool_name and len(words) > 1 else words[0]


def rpc_request(rpc_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": rpc_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def rpc_error(rpc_id: int, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rpc_id, "error": err}


def rpc_result(
    rpc_id: int, value: Any, *, structured: bool, is_error: bool = False
) -> dict[str, Any]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if structured and isinstance(value, dict):
        result["structuredContent"] = value
    return {"jsonrpc": "2.0", "id": rpc_id, "result": result}


def response_text(response: dict[str, Any]) -> str:
    """What the Tool Agent reads back: the result's text, or the error's message."""
    if "error" in response:
        err = response["error"]
        return f"Error {err.get('code')}: {err.get('message')}"
    parts = (response.get("result") or {}).get("content") or []
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def response_value(response: dict[str, Any]) -> Any:
    """The JSON value of a successful result (structuredContent, else parsed text)."""
    result = response.get("result") or {}
    if result.get("isError") or "error" in response:
        return None
    if "structuredContent" in result:
        return result["structuredContent"]
    try:
        return json.loads(response_text(response))
    except (json.JSONDecodeError, TypeError):
        return None


@dataclass
class EntityStore:
    """Records by identifier value (as a string), and the identifiers deleted."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def get(self, value: Any) -> dict[str, Any] | None:
        key = _key(value)
        return None if key is None or key in self.deleted else self.records.get(key)

    def put(self, value: Any, data: dict[str, Any]) -> None:
        key = _key(value)
        if key is None:
            return
        self.deleted.discard(key)
        rec = self.records.setdefault(key, {})
        rec.update(copy.deepcopy(data))

    def delete(self, value: Any) -> None:
        key = _key(value)
        if key is not None:
            self.deleted.add(key)

    def is_deleted(self, value: Any) -> bool:
        key = _key(value)
        return key is not None and key in self.deleted

    def referenced(self, arguments: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
        """(argument name, identifier, stored record) for every known identifier argument."""
        out = []
        for k, v in _id_args(arguments):
            rec = self.get(v)
            if rec is not None:
                out.append((k, v, rec))
        return out


def _key(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    s = str(value).strip()
    return s or None


def _id_args(arguments: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in arguments.items() if is_id_key(k) and _key(v) is not None]


class ServerSimulator:
    """One conversation's simulated MCP server (see the module docstring)."""

    def __init__(
        self,
        tools: list[dict[str, Any]],
        *,
        seed: int = 0,
        use_model: bool = True,
        temperature: float = 0.3,
        max_tokens: int = 256,
    ):
        self.tools = {t["name"]: t for t in tools}
        self.seed = seed
        self.use_model = use_model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.store = EntityStore()

    # -- answering ------------------------------------------------------------------

    def protocol_error(self, rpc_id: int, name: str, arguments: Any) -> dict[str, Any] | None:
        tool = self.tools.get(name)
        if tool is None:
            return rpc_error(
                rpc_id, INVALID_PARAMS, f"Unknown tool: {name}", {"tools": sorted(self.tools)}
            )
        if not isinstance(arguments, dict):
            return rpc_error(
                rpc_id, INVALID_PARAMS, f"Invalid arguments for tool {name}: expected an object"
            )
        errors = validation_errors(arguments, tool.get("inputSchema"))
        if errors:
            return rpc_error(
                rpc_id,
                INVALID_PARAMS,
                f"Invalid arguments for tool {name}: {errors[0]}",
                {"errors": errors},
            )
        return None

    def handle(self, rpc_id: int, name: str, arguments: Any) -> Gen[dict[str, Any]]:
        """The JSON-RPC response to ``tools/call`` (asks the model unless it is an error)."""
        err = self.protocol_error(rpc_id, name, arguments)
        if err is not None:
            return err
        for k, v in _id_args(arguments):
            if self.store.is_deleted(v):
                return rpc_result(
                    rpc_id,
                    f"Error: no record with {k} {v!r} (it was deleted)",
                    structured=False,
                    is_error=True,
                )
        tool = self.tools[name]
        value = None
        if self.use_model:
            known = [rec for _, _, rec in self.store.referenced(arguments)][:3]
            req = ChatRequest(
                messages=prompts.server_messages(tool, arguments, known),
                json_schema=tool.get("outputSchema") or prompts.GENERIC_RESULT_SCHEMA,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
            reply = yield from ask_first("server", req)
            try:
                value = parse_json_reply(reply)
            except Exception:
                value = None
        return self.finish(rpc_id, name, arguments, value)

    def finish(
        self, rpc_id: int, name: str, arguments: dict[str, Any], value: Any
    ) -> dict[str, Any]:
        """Make ``value`` (the model's result, or None) valid and consistent; wrap it."""
        tool = self.tools[name]
        schema = tool.get("outputSchema")
        hints = dict(arguments)
        for _, _, rec in self.store.referenced(arguments):
            hints = {**rec, **hints}
        if not schema and isinstance(value, dict):
            # with no output schema to follow, a small model echoes the request's envelope
            # ({"method": name, "$schema": ...}): what is left, if anything, is the result
            value = without_envelope(value, name)
            if _reports_error(value):
                # the simulator decides when a call fails (a deleted record, a protocol error);
                # a small model's {"result": {"error": "Team offsite", "type": "error"}} for a
                # call that worked was answered "Done: ..." over an error
                value = None
        if isinstance(value, dict | list):
            keyed = field_keyed(value, schema)
            if not schema or is_valid(keyed, schema):
                value = keyed
        usable = value is not None and (
            is_valid(value, schema) if schema else isinstance(value, dict) and bool(value)
        )
        if not usable:
            rng = rng_for(self.seed, "server", rpc_id, name)
            if schema:
                try:
                    value = synthesize_instance(schema, rng=rng, hints=hints)
                except NoValidValue as exc:
                    return rpc_result(rpc_id, f"Error: the server could not build a result: {exc}"[:300],
                                      structured=False, is_error=True)
            else:
                value = {"success": True, **{k: v for k, v in arguments.items()}}
        else:
            # The model's result, with placeholder-like values (YOUR_API_KEY_HERE) replaced.
            value, _ = polish_result(value, schema, rng_for(self.seed, "server-polish", rpc_id, name))
        if schema:
            value = without_error_fields(value, schema)
        value = self._make_consistent(value, arguments, schema)
        structured = bool(schema) and (schema.get("type") in (None, "object"))
        return rpc_result(rpc_id, value, structured=structured)

    def _make_consistent(
        self, value: Any, arguments: dict[str, Any], schema: dict[str, Any] | None
    ) -> Any:
        if not isinstance(value, dict):
            return value
        out = copy.deepcopy(value)
        for _, _, rec in self.store.referenced(arguments):
            out = _overlay(out, rec, schema)
        # The call's own arguments win: an update shows the new values.
        out = _overlay(out, arguments, schema)
        return out

    # -- state ----------------------------------------------------------------------

    def observe(self, name: str, arguments: dict[str, Any], response: dict[str, Any]) -> None:
        """Update the store from a call and its (stored) response."""
        if "error" in response or (response.get("result") or {}).get("isError"):
            return
        if not isinstance(arguments, dict):
            return
        verb = verb_of(name)
        id_args = _id_args(arguments)
        if verb in DELETE_VERBS:
            for _, v in id_args:
                self.store.delete(v)
            return
        value = response_value(response)
        plain_args = {k: v for k, v in arguments.items() if not is_id_key(k)}
        for k, v in id_args:
            data = {k: v, **(plain_args if verb in UPDATE_VERBS else {})}
            if isinstance(value, dict) and not _own_id(value):
                # e.g. get_order(order_id=X) -> {"status": ...}: that is X's record
                data.update({kk: vv for kk, vv in value.items() if not isinstance(vv, dict | list)})
            self.store.put(v, data)
        for rec in _records_in(value):
            key = _own_id(rec)
            if key is not None:
                self.store.put(rec[key], rec)
                # a record created from arguments also carries them (create_order(item=...) -> {"id": X})
                if verb not in UPDATE_VERBS and not id_args:
                    self.store.put(rec[key], {k: v for k, v in plain_args.items() if k not in rec})


# A key a server sends is a field name ("order_id", "createdAt", "Content-Type", "display
# name"), never a value.  With a free-form result a small model writes values where names
# belong: {"2023-08-19T12:34:24.548.28.38": "Supplier contract"} passed every check, and
# the closing answer read out "the 2023 08 19 t12:34:24 548 28 38 is Supplier contract".
_FIELD_KEY_RE = re.compile(r"(?:[^\W\d]|_)[\w.:-]*(?: [^\W\d][\w-]*){0,2}")
MAX_FIELD_KEY = 40


def field_name_like(key: Any) -> bool:
    """Whether ``key`` reads as a field name: it starts with a letter or ``_``, is at most
    three words and 40 characters long.

    >>> [field_name_like(k) for k in ("order_id", "createdAt", "display name", "2023-08-19T12:34")]
    [True, True, True, False]
    >>> field_name_like("Draft for the tax return due in April"), field_name_like("número_de_pedido")
    (False, True)
    """
    return isinstance(key, str) and len(key) <= MAX_FIELD_KEY and _FIELD_KEY_RE.fullmatch(key) is not None


def field_keyed(value: Any, schema: Any = None) -> Any:
    """``value`` without the object entries, at any depth, whose key is no field name and
    not a property ``schema`` declares (a schema may name a field "200").

    >>> field_keyed({"id": 7, "2023-08-19T12:34:24": "Supplier contract", "items": [{"1": 2, "n": 3}]})
    {'id': 7, 'items': [{'n': 3}]}
    >>> field_keyed({"200": "OK", "17": 1}, {"properties": {"200": {"type": "string"}}})
    {'200': 'OK'}
    """
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, dict):
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {k: field_keyed(v, props.get(k)) for k, v in value.items() if k in props or field_name_like(k)}
    if isinstance(value, list):
        return [field_keyed(v, schema.get("items")) for v in value]
    return value


def _own_id(rec: dict[str, Any]) -> str | None:
    """The key holding a record's own identifier: ``id`` if present, else the first
    identifier-like key."""
    for k in ("id", "uuid"):
        if k in rec and _key(rec[k]) is not None:
            return k
    for k, v in rec.items():
        if is_id_key(k) and _key(v) is not None:
            return k
    return None


def _records_in(value: Any, depth: int = 0) -> list[dict[str, Any]]:
    if depth > 3:
        return []
    if isinstance(value, dict):
        out = [value]
        for v in value.values():
            if isinstance(v, dict | list):
                out += _records_in(v, depth + 1)
        return out
    if isinstance(value, list):
        return [r for v in value[:20] for r in _records_in(v, depth + 1)]
    return []


_ERROR_FIELD_RX = re.compile(r"(?i)^(?:error|err|fault|failure)s?(?:[_ ]?(?:code|message|msg|details?|type|reason))?$"
                             r"|[a-z_](?:error|fault)(?:[_ ]?(?:code|message|msg))?$")


def without_error_fields(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` less the error fields (``ErrorCode``, ``error_message``, ``errors``) its
    schema allows but does not require: the simulator answers a call that worked, and an
    error code in it ("Done: ... and the error code is ORQ") reads as a failure.

    >>> schema = {"type": "object", "properties": {"Sid": {"type": "string"}, "ErrorCode": {"type": "string"},
    ...           "error": {"type": "string"}}, "required": ["Sid", "error"]}
    >>> without_error_fields({"Sid": "BS1", "ErrorCode": "ORQ", "error": ""}, schema)
    {'Sid': 'BS1', 'error': ''}
    """
    if not isinstance(value, dict):
        return value
    required = set(schema.get("required") or ())
    out = {k: v for k, v in value.items() if k in required or not _ERROR_FIELD_RX.search(str(k))}
    return out if len(out) == len(value) or is_valid(out, schema) else value


def _reports_error(value: Any, depth: int = 0) -> bool:
    """Whether a free-form result says the call failed: an ``error``/``errors`` member, a
    ``type`` or ``status`` of "error"/"failed", here or in a nested ``result``/``data``.

    >>> _reports_error({"userid": "u1", "result": {"error": "Team offsite", "type": "error"}})
    True
    >>> _reports_error({"deleted": True, "errors": []}), _reports_error({"status": "active"})
    (False, False)
    """
    if not isinstance(value, dict) or depth > 2:
        return False
    if value.get("error") or value.get("errors"):
        return True
    if any(str(value.get(k, "")).lower() in ("error", "failed", "failure") for k in ("type", "status")):
        return True
    return any(_reports_error(value.get(k), depth + 1) for k in ("result", "data", "response"))


def _overlay(
    value: dict[str, Any], data: dict[str, Any], schema: dict[str, Any] | None
) -> dict[str, Any]:
    """Write ``data``'s fields over same-named fields of ``value`` (top level and one level
    down), keeping each change only if the result still validates.  Names match however
    they are written: an argument ``ServiceSid`` is the result's ``service_sid`` (a created
    function's result named another service than the one the call gave)."""
    targets = [value] + [v for v in value.values() if isinstance(v, dict)]
    by_norm = {_norm_key(k): v for k, v in data.items() if not isinstance(v, dict | list)}
    for target in targets:
        for k in list(target):
            v = data[k] if k in data else by_norm.get(_norm_key(k), _MISSING)
            if v is _MISSING or isinstance(v, dict | list) or target[k] == v:
                continue
            old = target[k]
            target[k] = copy.deepcopy(v)
            if schema and not is_valid(value, schema):
                target[k] = old
    return value


_MISSING = object()


def _norm_key(key: Any) -> str:
    """``ServiceSid``, ``service_sid`` and ``service-sid`` alike: ``servicesid``."""
    return re.sub(r"[^a-z0-9]", "", str(key).lower())
