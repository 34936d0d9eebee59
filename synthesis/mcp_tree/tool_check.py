"""Is an MCP tool definition usable for role-play?  One reason when it is not.

Tools converted from OpenAPI specs are built valid (see ``openapi``); tools listed by a
live MCP server arrive as the server wrote them.  A definition whose ``inputSchema`` is not
valid JSON Schema, refers to nothing or to itself, or is too big or too deep to offer to a
model would fail every trajectory it is drawn into, so it is refused where it enters, with
a reason that says what to fix.

>>> tool_problem({"name": "get_weather", "inputSchema": {"type": "object"}}) is None
True
>>> tool_problem({"name": "f", "inputSchema": {"type": "object", "properties": {"n": {"type": "nope"}}}})
"inputSchema is not valid JSON Schema: 'nope' is not valid under any of the given schemas (at properties.n.type)"
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema import validators

from .openapi import TOOL_NAME_RE

# Limits of a schema offered to a model; the converter's own stay well inside them.
MAX_SCHEMA_CHARS = 100_000
MAX_SCHEMA_DEPTH = 32
MAX_DESCRIPTION_CHARS = 10_000


def tool_problem(tool: Any) -> str | None:
    """Why ``tool`` (an MCP tool dict) cannot be used, or None when it can."""
    if not isinstance(tool, dict):
        return "a tool definition must be a JSON object"
    name = tool.get("name")
    if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
        return f"name {str(name)[:80]!r} must be 1-64 letters, digits, '_' or '-'"
    description = tool.get("description", "")
    if not isinstance(description, str):
        return "description must be a string"
    if len(description) > MAX_DESCRIPTION_CHARS:
        return f"description is {len(description)} characters; at most {MAX_DESCRIPTION_CHARS}"
    problem = schema_problem(tool.get("inputSchema"), what="inputSchema", object_only=True)
    if problem:
        return problem
    if tool.get("outputSchema") is not None:
        return schema_problem(tool["outputSchema"], what="outputSchema", object_only=False)
    return None


def schema_problem(schema: Any, *, what: str = "schema", object_only: bool = False) -> str | None:
    """Why ``schema`` cannot be offered to a model and checked against, or None."""
    if not isinstance(schema, dict):
        return f"{what} must be a JSON object, not {type(schema).__name__}"
    if object_only and schema.get("type", "object") != "object":
        return f"{what} must describe an object (type 'object'), not {schema.get('type')!r}"
    depth = _depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        return f"{what} is nested {depth} levels deep; at most {MAX_SCHEMA_DEPTH}"
    try:
        size = len(json.dumps(schema, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        return f"{what} is not JSON: {exc}"
    if size > MAX_SCHEMA_CHARS:
        return f"{what} is {size} characters of JSON; at most {MAX_SCHEMA_CHARS}"
    cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        return f"{what} is not valid JSON Schema: {exc.message[:200]}" + (f" (at {where})" if where else "")
    problem = _refs_problem(schema)
    if problem:
        return f"{what}: {problem}"
    for path, node in _nodes(schema):
        for pattern in _patterns(node):
            try:
                re.compile(pattern)
            except re.error as exc:
                return f"{what}: pattern {pattern[:80]!r} at {path or '$'} is not a regular expression Python accepts ({exc})"
    return None


def _depth(node: Any, level: int = 0) -> int:
    if level > MAX_SCHEMA_DEPTH:  # deep enough to refuse; stop before Python's own limit
        return level
    if isinstance(node, dict):
        return max((_depth(v, level + 1) for v in node.values()), default=level)
    if isinstance(node, list):
        return max((_depth(v, level + 1) for v in node), default=level)
    return level


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _nodes(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, f"{path}[{i}]")


def _patterns(node: dict) -> list[str]:
    found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
    if isinstance(node.get("patternProperties"), dict):
        found += list(node["patternProperties"])
    return found


def _target(ref: str, root: dict) -> tuple[bool, Any]:
    target: Any = root
    for part in ref[1:].strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return False, None
    return True, target


def _refs_problem(root: dict) -> str | None:
    """Every ``$ref`` must be local and resolve, and no chain of them may come back on itself
    (a recursive schema has no finite example, and the converter cuts such cycles too)."""
    where: dict[str, str] = {}
    for path, node in _nodes(root):
        if isinstance(node.get("$ref"), str):
            where.setdefault(node["$ref"], path or "$")
    inner: dict[str, list[str]] = {}
    for ref, path in where.items():
        if not ref.startswith("#"):
            return f"$ref {ref[:120]!r} at {path} points outside the schema; only local '#/...' references work"
        found, target = _target(ref, root)
        if not found:
            return f"$ref {ref[:120]!r} at {path} refers to nothing in the schema"
        if target is root:
            return f"$ref {ref[:120]!r} at {path} is recursive (it refers to the whole schema)"
        inner[ref] = [n["$ref"] for _, n in _nodes(target) if isinstance(n.get("$ref"), str)]
    state: dict[str, int] = {}  # 1: on the current chain, 2: done

    def cycle_from(ref: str) -> str | None:
        state[ref] = 1
        for nxt in inner.get(ref, []):
            if state.get(nxt) == 1:
                return nxt
            if nxt not in state and (found := cycle_from(nxt)):
                return found
        state[ref] = 2
        return None

    for ref in inner:
        if ref not in state and (found := cycle_from(ref)):
            return f"$ref {found[:120]!r} at {where[found]} is recursive (the schema refers to itself)"
    return None
