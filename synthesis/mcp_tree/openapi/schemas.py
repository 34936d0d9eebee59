"""OpenAPI schema objects to inlined JSON Schema 2020-12."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from typing import Any

from .model import ConvertOptions
from .refs import SpecRefs
from .text import clean_text

_SIMPLE_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_TYPE_ALIASES = {
    "int": ("integer", None),
    "int32": ("integer", "int32"),
    "int64": ("integer", "int64"),
    "long": ("integer", "int64"),
    "float": ("number", "float"),
    "double": ("number", "double"),
    "decimal": ("number", None),
    "bool": ("boolean", None),
    "file": ("string", "binary"),
    "date": ("string", "date"),
    "datetime": ("string", "date-time"),
    "date-time": ("string", "date-time"),
    "dict": ("object", None),
    "map": ("object", None),
    "list": ("array", None),
    "str": ("string", None),
    "text": ("string", None),
}

# --------------------------------------------------------------------------- schemas


class Acc:
    """What one expansion used: inlined refs, cycle cuts to outer refs, schema nodes."""

    __slots__ = ("inlined", "cuts", "size")

    def __init__(self) -> None:
        self.inlined: set[str] = set()
        self.cuts: set[str] = set()
        self.size = 0


_NONNEG_INT_KEYS = (
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
)
_NUMBER_KEYS = ("minimum", "maximum")
_TEXT_KEYS = ("format", "contentMediaType", "contentEncoding")
_BOOL_KEYS = ("uniqueItems", "readOnly", "writeOnly", "deprecated")
_SINGLE_SCHEMA_KEYS = ("not", "contains", "propertyNames")
COMBINATORS = ("allOf", "anyOf", "oneOf")
_NULL_MARKERS = ({"type": "null"}, {"type": ["object", "null"]}, {"type": ["null", "object"]})
# allOf parts merge only when each part's keys are among these.
_MERGEABLE = frozenset(
    {"type", "properties", "required", "description", "title", "additionalProperties", "nullable"}
)
_PATTERN_CACHE: dict[str, bool] = {}


def pattern_ok(pattern: str) -> bool:
    """Whether Python's ``re`` (and so the 2020-12 ``regex`` format check) accepts it."""
    ok = _PATTERN_CACHE.get(pattern)
    if ok is None:
        try:
            with warnings.catch_warnings():
                # FutureWarnings about ECMA-style classes such as "[[a-z]" are noise here.
                warnings.simplefilter("ignore")
                re.compile(pattern)
            ok = True
        except (re.error, RecursionError, OverflowError, ValueError):
            ok = False
        if len(_PATTERN_CACHE) < 100_000:
            _PATTERN_CACHE[pattern] = ok
    return ok


_NAMED_GROUP_RE = re.compile(r"\(\?<(?![=!])")


_JS_LITERAL_RE = re.compile(r"^/(\^.*|.*\$)/[gimsuy]*$", re.S)


def _fix_pattern(pattern: str) -> str | None:
    # A JavaScript regex literal (/^...$/): Python would look for the slashes, and an anchor
    # after a literal "/" can never match, so no value could satisfy it.
    m = _JS_LITERAL_RE.match(pattern)
    if m and pattern_ok(m.group(1)):
        return m.group(1)
    if pattern_ok(pattern):
        return pattern
    # ECMA named groups are the one common difference with an exact Python spelling.
    fixed = _NAMED_GROUP_RE.sub("(?P<", pattern)
    if len(fixed) > 2 and fixed[0] == "/" and fixed.endswith("/"):
        fixed = fixed[1:-1]
    return fixed if pattern_ok(fixed) else None


def _as_number(v: Any) -> int | float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
        return int(f) if f.is_integer() else f
    return None


def _as_nonneg_int(v: Any) -> int | None:
    n = _as_number(v)
    if n is None or n < 0 or (isinstance(n, float) and not n.is_integer()):
        return None
    return int(n)


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool, list, dict))


class SchemaConverter:
    """Converts OpenAPI schema objects to inlined JSON Schema 2020-12, sharing results."""

    def __init__(self, doc: dict[str, Any], opts: ConvertOptions, warn: Callable[[str, str], None]):
        self.doc = doc
        self.opts = opts
        self.warn = warn
        self.refs = SpecRefs(doc, warn)
        self._ref_free: dict[str, bool] = {}
        self._cache: dict[
            tuple[str, int, str], tuple[Any, frozenset[str], frozenset[str], int]
        ] = {}
        self._stubs: dict[tuple[str, str], dict[str, Any]] = {}
        self._desc_cache: dict[str, str] = {}

    # -- references

    def resolve(self, ref: str) -> Any:
        """The node a local ``#/...`` pointer names, or None."""
        return self.refs.resolve(ref)

    def deref(self, node: Any, limit: int = 16) -> Any:
        """Follow a chain of ``$ref`` s (for parameters, bodies, responses)."""
        return self.refs.deref(node, limit)

    def _is_ref_free(self, ref: str, target: Any) -> bool:
        free = self._ref_free.get(ref)
        if free is None:
            free = (
                '"$ref"' not in json.dumps(target, default=str)
                if isinstance(target, (dict, list))
                else True
            )
            self._ref_free[ref] = free
        return free

    def _stub(self, ref: str, target: Any, mode: str) -> dict[str, Any]:
        key = (ref, mode)
        stub = self._stubs.get(key)
        if stub is None:
            label = ref.rsplit("/", 1)[-1] or ref
            stub = {}
            t = target.get("type") if isinstance(target, dict) else None
            if isinstance(t, str) and t in _SIMPLE_TYPES:
                stub["type"] = t
            elif isinstance(target, dict) and ("properties" in target or "allOf" in target):
                stub["type"] = "object"
            desc = self.describe(target.get("description")) if isinstance(target, dict) else ""
            kind = "object" if stub.get("type", "object") == "object" else "value"
            note = f"A {label} {kind} (nested fields omitted)."
            stub["description"] = f"{desc} {note}" if desc else note
            self._stubs[key] = stub
        return stub

    def describe(self, text: Any) -> str:
        if not isinstance(text, str):
            return ""
        out = self._desc_cache.get(text)
        if out is None:
            out = clean_text(text, self.opts.max_field_description_chars)
            self._desc_cache[text] = out
        return out

    def _ref(
        self,
        node: dict[str, Any],
        mode: str,
        budget: int,
        stack: tuple[str, ...],
        acc: Acc,
        nest: int,
    ) -> Any:
        ref = node["$ref"]
        if not isinstance(ref, str):
            result: Any = {}
        elif not ref.startswith("#"):
            self.warn("external_ref", f"external reference {ref} left open")
            result = {"description": f"Defined externally ({ref})."}
        else:
            target = self.resolve(ref)
            if target is None:
                self.warn("unresolved_ref", f"cannot resolve {ref}")
                result = {}
            elif ref in stack:
                acc.cuts.add(ref)
                result = self._stub(ref, target, mode)
            elif budget <= 0 and not self._is_ref_free(ref, target):
                result = self._stub(ref, target, mode)
            else:
                key = (ref, budget, mode)
                entry = self._cache.get(key)
                if (
                    entry is not None
                    and all(s not in entry[1] for s in stack)
                    and all(c in stack for c in entry[2])
                ):
                    result, inlined, cuts, size = entry
                else:
                    sub = Acc()
                    result = self.convert(target, mode, budget - 1, stack + (ref,), sub, nest + 1)
                    inlined = frozenset(sub.inlined)
                    cuts = frozenset(sub.cuts - sub.inlined - {ref})
                    size = sub.size
                    self._cache[key] = (result, inlined, cuts, size)
                acc.inlined |= inlined
                acc.inlined.add(ref)
                acc.cuts |= cuts
                acc.size += size
        if len(node) > 1:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            extra = self.convert(siblings, mode, budget, stack, acc, nest + 1)
            if isinstance(extra, dict) and extra and isinstance(result, dict):
                if "type" in extra and isinstance(extra["type"], list) and "type" in result:
                    # A sibling ``nullable`` only knew the null half; keep the target's type.
                    extra = dict(extra)
                    extra["type"] = (
                        _add_null(result["type"]) if "null" in extra["type"] else result["type"]
                    )
                result = {**result, **extra}
        return result

    # -- schema objects

    def convert(
        self, node: Any, mode: str, budget: int, stack: tuple[str, ...], acc: Acc, nest: int = 0
    ) -> Any:
        """JSON Schema 2020-12 for an OpenAPI schema object; ``mode`` is "in" or "out"."""
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return {}
        if "$ref" in node:
            return self._ref(node, mode, budget, stack, acc, nest)
        acc.size += 1
        if nest > self.opts.max_nesting:
            return {"description": "Deeply nested value (structure omitted)."}

        def sub(child: Any) -> Any:
            return self.convert(child, mode, budget, stack, acc, nest + 1)

        out: dict[str, Any] = {}
        fmt_from_type = self._types(node, out)
        self._annotations(node, out, fmt_from_type)
        self._bounds(node, out)
        self._object(node, out, mode, sub)
        self._subschemas(node, out, sub)
        return self._finish(node, out)

    def _types(self, node: dict[str, Any], out: dict[str, Any]) -> str | None:
        """``type`` (aliases such as "int64" or "datetime" mapped); the format an alias implies."""
        get = node.get
        fmt_from_type: str | None = None
        t = get("type")
        if t is not None:
            types: list[str] = []
            for item in t if isinstance(t, list) else [t]:
                if not isinstance(item, str):
                    continue
                name = item.strip().lower() if item not in _SIMPLE_TYPES else item
                if name in _SIMPLE_TYPES:
                    pass
                elif name in _TYPE_ALIASES:
                    name, fmt_from_type = _TYPE_ALIASES[name]
                else:
                    continue
                if name not in types:
                    types.append(name)
            if len(types) == 1:
                out["type"] = types[0]
            elif types:
                out["type"] = types

        return fmt_from_type

    def _annotations(self, node: dict[str, Any], out: dict[str, Any], fmt_from_type: str | None) -> None:
        """Title, description, format, enum, const, default and examples."""
        get = node.get
        title = get("title")
        if isinstance(title, str) and title:
            out["title"] = title[:120]
        desc = self.describe(get("description"))
        if desc:
            out["description"] = desc

        fmt = get("format")
        if isinstance(fmt, str) and fmt:
            out["format"] = fmt
        elif fmt_from_type:
            out["format"] = fmt_from_type
        for k in _TEXT_KEYS[1:]:
            v = get(k)
            if isinstance(v, str):
                out[k] = v

        enum = get("enum")
        if isinstance(enum, list):
            vals = [v for v in enum if _jsonable(v)]
            out["enum"] = vals
        if "const" in node and _jsonable(node["const"]):
            out["const"] = node["const"]
        if "default" in node and _jsonable(node["default"]):
            out["default"] = node["default"]

        examples = get("examples")
        if isinstance(examples, list):
            ex = [
                v
                for v in examples[:3]
                if isinstance(v, (str, int, float, bool)) and len(str(v)) <= 200
            ]
            if ex:
                out["examples"] = ex
        elif "example" in node:
            v = node["example"]
            if isinstance(v, (str, int, float, bool)) and len(str(v)) <= 200:
                out["examples"] = [v]


    def _bounds(self, node: dict[str, Any], out: dict[str, Any]) -> None:
        """Numeric and length bounds, flags and the pattern (dropped when Python cannot compile it)."""
        get = node.get
        for k in _NUMBER_KEYS:
            if k in node:
                n = _as_number(node[k])
                if n is not None:
                    out[k] = n
        for k, base in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            v = get(k)
            if isinstance(v, bool):
                # Draft 4 / OpenAPI 3.0 spelling: a flag on minimum/maximum.
                if v and base in out:
                    out[k] = out.pop(base)
            elif v is not None:
                n = _as_number(v)
                if n is not None:
                    out[k] = n
        if "multipleOf" in node:
            n = _as_number(node["multipleOf"])
            if n is not None and n > 0:
                out["multipleOf"] = n
        for k in _NONNEG_INT_KEYS:
            if k in node:
                n = _as_nonneg_int(node[k])
                if n is not None:
                    out[k] = n
        for k in _BOOL_KEYS:
            v = get(k)
            if isinstance(v, bool):
                out[k] = v

        pattern = get("pattern")
        if isinstance(pattern, str):
            fixed = _fix_pattern(pattern)
            if fixed is None:
                self.warn(
                    "invalid_pattern", f"dropped pattern {pattern[:80]!r} (not a Python regex)"
                )
            else:
                out["pattern"] = fixed

    def _object(self, node: dict[str, Any], out: dict[str, Any], mode: str, sub: Callable[[Any], Any]) -> None:
        """Properties (read-only ones left out of inputs, write-only of outputs) and ``required``."""
        get = node.get
        props = get("properties")
        dropped: set[str] = set()
        if isinstance(props, dict):
            skip_flag = "readOnly" if mode == "in" else "writeOnly"
            conv_props: dict[str, Any] = {}
            for pname, pschema in props.items():
                if isinstance(pschema, bool):
                    # ``properties: {additionalProperties: false}``: a misplaced keyword,
                    # not a field that accepts nothing.
                    continue
                c = sub(pschema)
                if isinstance(c, dict) and c.get(skip_flag) is True:
                    dropped.add(str(pname))
                    continue
                conv_props[str(pname)] = c
            out["properties"] = conv_props
        pprops = get("patternProperties")
        if isinstance(pprops, dict):
            conv = {
                k: sub(v)
                for k, v in pprops.items()
                if isinstance(k, str) and pattern_ok(k)
            }
            if conv:
                out["patternProperties"] = conv
        req = get("required")
        if isinstance(req, list):
            seen: list[str] = []
            for r in req:
                if isinstance(r, str) and r not in seen and r not in dropped:
                    seen.append(r)
            if seen:
                out["required"] = seen
        ap = get("additionalProperties")
        if isinstance(ap, bool):
            out["additionalProperties"] = ap
        elif isinstance(ap, dict):
            out["additionalProperties"] = sub(ap)


    def _subschemas(self, node: dict[str, Any], out: dict[str, Any], sub: Callable[[Any], Any]) -> None:
        """Items, prefix items, ``not``/``contains``/``propertyNames`` and the combinators."""
        get = node.get
        items = get("items")
        if isinstance(items, dict):
            out["items"] = sub(items)
        elif isinstance(items, list):
            conv_items = [sub(i) for i in items]
            if len(conv_items) == 1:
                out["items"] = conv_items[0]
            elif conv_items:
                out["prefixItems"] = conv_items
        elif isinstance(items, bool):
            out["items"] = items
        prefix = get("prefixItems")
        if isinstance(prefix, list) and "prefixItems" not in out:
            out["prefixItems"] = [sub(i) for i in prefix]
        for k in _SINGLE_SCHEMA_KEYS:
            v = get(k)
            if isinstance(v, (dict, bool)):
                out[k] = sub(v)

        for k in COMBINATORS:
            v = get(k)
            if isinstance(v, list) and v:
                out[k] = [sub(i) for i in v]


    def _finish(self, node: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """``nullable`` as a null type, then ``allOf`` merged and alternatives simplified."""
        get = node.get
        nullable = get("nullable") is True or get("x-nullable") is True
        if nullable:
            if "type" in out:
                out["type"] = _add_null(out["type"])
            if "enum" in out and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
        if "allOf" in out:
            out = _merge_all_of(out)
        for k in ("anyOf", "oneOf"):
            if k in out:
                out = _simplify_alternatives(out, k)
        return out

    def top(self, node: Any, mode: str, depth: int) -> tuple[Any, int]:
        """Convert a top-level schema, shrinking the inlining depth until it fits."""
        while True:
            acc = Acc()
            result = self.convert(node, mode, depth, (), acc)
            if acc.size <= self.opts.max_schema_nodes or depth <= 1:
                return result, acc.size
            depth -= 1


def _add_null(t: Any) -> Any:
    if isinstance(t, str):
        return t if t == "null" else [t, "null"]
    if isinstance(t, list):
        return t if "null" in t else [*t, "null"]
    return t


def _merge_all_of(out: dict[str, Any]) -> dict[str, Any]:
    parts = out["allOf"]
    if not all(isinstance(p, dict) and p.keys() <= _MERGEABLE for p in parts):
        return out
    merged: dict[str, Any] = {}
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in parts:
        for k, v in p.items():
            if k == "properties":
                props.update(v)
            elif k == "required":
                required.extend(r for r in v if r not in required)
            elif k in ("description", "title"):
                # In the usual ``allOf: [Base, {own fields}]`` the last part is the specific one.
                merged[k] = v
            elif k == "type":
                if "type" in merged and merged["type"] != v:
                    return out
                merged["type"] = v
            elif k in merged and merged[k] != v:
                return out
            else:
                merged[k] = v
    rest = {k: v for k, v in out.items() if k != "allOf"}
    if "type" in rest and "type" in merged and rest["type"] != merged["type"]:
        return out
    if props or "properties" in rest:
        merged_props = dict(props)
        merged_props.update(rest.pop("properties", {}))
        merged["properties"] = merged_props
        merged.setdefault("type", "object")
    own_req = rest.pop("required", [])
    required.extend(r for r in own_req if r not in required)
    if required:
        merged["required"] = required
    merged.update(rest)
    return merged


def _simplify_alternatives(out: dict[str, Any], key: str) -> dict[str, Any]:
    alts = out[key]
    real = [a for a in alts if a not in _NULL_MARKERS]
    nullable = len(real) < len(alts)
    if len(real) != 1 or not isinstance(real[0], dict):
        return out
    only = real[0]
    rest = {k: v for k, v in out.items() if k != key}
    if nullable and "type" not in only:
        return out
    if any(
        k in only and only[k] != v
        for k, v in rest.items()
        if k not in ("description", "title", "default", "examples")
    ):
        return out
    merged = {**only, **rest}
    if nullable:
        merged["type"] = _add_null(only["type"])
    return merged
