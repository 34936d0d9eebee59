"""OpenAPI / Swagger to MCP tool conversion.

Reads Swagger 2.0 and OpenAPI 3.0 / 3.1 documents (JSON or YAML, a file, text or an
already-parsed dict) and turns every operation into an MCP tool: a legal unique name, a
cleaned description, one ``inputSchema`` gathering path, query, header and cookie
parameters, form fields and the request body, and an ``outputSchema`` from the first
2xx JSON response.  Every emitted schema is valid JSON Schema 2020-12 whose patterns
compile with Python's ``re``.

Public API
----------
``load_spec(source) -> dict``
    Parse a spec from a path, JSON/YAML text, bytes or a dict; raises :class:`SpecError`.
``convert_spec(source, *, options=None, source_name="") -> ConversionResult``
    Convert a whole spec.  Raises :class:`SpecError` (``reason_code`` in
    :data:`REASON_CODES`) for a malformed or unsupported spec; otherwise returns every
    convertible operation as a :class:`ToolDef`, with per-operation
    :class:`ConversionWarning` s for what was dropped or repaired.
``ConvertOptions``
    Limits: how deep ``$ref`` s are inlined, the largest schema kept, description caps.
``ToolDef.to_dict() -> dict``
    Every field as JSON-ready plain data (for storage).
``ToolDef.to_mcp() -> dict``
    The MCP ``Tool`` dict (``name``, ``description``, ``inputSchema``, ``outputSchema``,
    ``annotations``).

Schemas are fully inlined (no ``$ref``).  A ``$ref`` that recurs on its own path, or
lies deeper than ``max_ref_depth`` references, becomes a stub such as
``{"type": "object", "description": "A microsoft.graph.user (nested fields omitted)."}``;
a schema bigger than ``max_schema_nodes`` is rebuilt with a shallower depth.  Resolved
subschemas are shared between tools: treat ``input_schema`` / ``output_schema`` as
read-only (serialise them, don't mutate them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REASON_CODES = {
    "unreadable": "the file could not be read",
    "invalid_json": "the text is not valid JSON",
    "invalid_yaml": "the text is not valid YAML",
    "yaml_aliases": "YAML aliases would expand the document too far (a billion-laughs bomb)",
    "not_a_mapping": "the document is not a JSON/YAML object",
    "unsupported_version": "not Swagger 2.0 or OpenAPI 3.x (e.g. Swagger 1.2)",
    "unknown_format": "neither a 'swagger' nor an 'openapi' version field",
    "invalid_paths": "'paths' is not an object",
    "no_operations": "the spec declares no operations",
    "no_valid_operations": "every operation was malformed",
    "conversion_failed": "an unexpected error while converting",
}
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
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
# Headers that belong to transport or auth, not to what the caller decides.
_SKIPPED_HEADERS = frozenset({"accept", "content-type", "authorization", "content-length"})
# Credentials declared as plain parameters instead of security schemes (``x-tyk-authorization``,
# ``Ocp-Apim-Subscription-Key``, ``?api_key=``): the MCP server holds them, the caller does not.
_CREDENTIAL_HEADER_RX = re.compile(r"auth|api[-_]?key|subscription[-_]?key|token|secret|password|session", re.I)
_CREDENTIAL_QUERY = frozenset({"api_key", "apikey", "api-key", "access_token", "auth_token", "client_secret"})
# Transport and credential parameters on every operation of a Google discovery API.
_GOOGLE_STANDARD_PARAMS = (
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "upload_protocol",
    "uploadType",
)
_LOCATION_RANK = {"path": 0, "query": 1, "header": 2, "cookie": 3, "formData": 4, "body": 5}


# Bumped whenever a change to the converter changes its output for the same spec, so that
# ingestion converts specs again instead of skipping them as unchanged.
CONVERTER_VERSION = "2"  # 2: credentials declared as plain parameters are left out


def spec_digest(raw: bytes) -> str:
    """What ingestion compares to skip an unchanged spec: the file and the converter version."""
    import hashlib

    return hashlib.sha256(raw + b"\0converter=" + CONVERTER_VERSION.encode()).hexdigest()


class SpecError(Exception):
    """A spec that cannot be converted; ``reason_code`` is one of :data:`REASON_CODES`."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True, slots=True)
class ConversionWarning:
    operation: str  # "GET /pets/{id}"; "" for the spec as a whole
    code: str  # unresolved_ref, external_ref, invalid_pattern, parameter_skipped, ...
    message: str


@dataclass(frozen=True, slots=True)
class SourceInfo:
    api_title: str
    api_version: str
    spec_version: str  # "2.0", "3.0.1", "3.1.0"
    categories: tuple[str, ...] = ()
    provider: str = ""  # info.x-providerName (APIs.guru)
    service: str = ""  # info.x-serviceName
    base_url: str = ""
    source_name: str = ""  # what the caller called it: a corpus path, an upload name


@dataclass(frozen=True, slots=True)
class ParamBinding:
    """Where one ``inputSchema`` property goes in the HTTP request."""

    arg: str  # property name in inputSchema
    location: str  # path | query | header | cookie | formData | body
    name: str  # the HTTP name; for location "body", the body field ("" = the whole body)
    required: bool = False


@dataclass(slots=True)
class ToolDef:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    method: str  # upper case
    path: str
    source: SourceInfo
    operation_id: str = ""
    summary: str = ""
    tags: tuple[str, ...] = ()
    deprecated: bool = False
    bindings: tuple[ParamBinding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready plain data (schemas are shared, not copied)."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "method": self.method,
            "path": self.path,
            "operation_id": self.operation_id,
            "summary": self.summary,
            "tags": list(self.tags),
            "deprecated": self.deprecated,
            "bindings": [dataclasses.asdict(b) for b in self.bindings],
            "source": {
                **dataclasses.asdict(self.source),
                "categories": list(self.source.categories),
            },
        }

    def to_mcp(self) -> dict[str, Any]:
        """The MCP ``Tool`` definition."""
        tool: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }
        if self.output_schema is not None:
            tool["outputSchema"] = self.output_schema
        m = self.method
        tool["annotations"] = {
            "title": self.summary or self.name,
            "readOnlyHint": m in ("GET", "HEAD", "OPTIONS"),
            "destructiveHint": m == "DELETE",
            "idempotentHint": m in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"),
            "openWorldHint": True,
        }
        return tool


@dataclass(slots=True)
class ConversionResult:
    source: SourceInfo
    tools: list[ToolDef]
    warnings: list[ConversionWarning]
    operations: int  # operations declared in the spec
    skipped: int  # operations dropped (each with an "operation_skipped" warning)


@dataclass(slots=True)
class ConvertOptions:
    max_ref_depth: int = field(
        default=3, metadata={"help": "references inlined along one path in inputSchema"}
    )
    max_output_ref_depth: int = field(default=2, metadata={"help": "the same for outputSchema"})
    max_schema_nodes: int = field(
        default=400,
        metadata={"help": "schemas bigger than this are rebuilt one reference level shallower"},
    )
    max_description_chars: int = field(default=1024, metadata={"help": "cap on tool descriptions"})
    max_field_description_chars: int = field(
        default=300, metadata={"help": "cap on property descriptions"}
    )
    max_nesting: int = field(default=48, metadata={"help": "inline nesting beyond this is stubbed"})
    drop_auth_params: bool = field(
        default=True,
        metadata={"help": "leave out API-key parameters and Google's standard query parameters"},
    )

    def __post_init__(self) -> None:
        if self.max_ref_depth < 1 or self.max_output_ref_depth < 1:
            raise ValueError(
                "max_ref_depth and max_output_ref_depth must be >= 1 (the top-level body is a $ref)"
            )
        if self.max_schema_nodes < 1:
            raise ValueError("max_schema_nodes must be >= 1")


# --------------------------------------------------------------------------- loading


class _YamlLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader that keeps timestamps as strings, so schemas stay JSON-serialisable."""


_YamlLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# YAML aliases let a few lines stand for a huge document ("billion laughs": nine levels of
# nine aliases are 9**9 nodes); walking it (conversion, JSON dumps) would never finish.
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 2_000_000  # nodes once every alias is expanded


def _check_yaml_aliases(data: str | bytes) -> None:
    """Refuse a YAML document with too many aliases, or whose aliases expand it past
    MAX_YAML_NODES, from its event stream alone (nothing is built or expanded)."""
    sizes: dict[str, int] = {}  # anchor -> expanded node count
    stack: list[list[Any]] = [[None, 0]]  # [anchor, expanded size so far] per open collection
    aliases = 0
    for event in yaml.parse(data, Loader=_YamlLoader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise SpecError("yaml_aliases", f"more than {MAX_YAML_ALIASES} YAML aliases; write the document out")
            stack[-1][1] += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            stack[-1][1] += 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size
            stack[-1][1] += size
        if stack[-1][1] > MAX_YAML_NODES or (len(stack) > 1 and stack[0][1] > MAX_YAML_NODES):
            raise SpecError("yaml_aliases", f"YAML aliases expand the document past {MAX_YAML_NODES} nodes")


def load_spec(source: str | bytes | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Parse a spec given as a path, JSON or YAML text/bytes, or a mapping."""
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{")
    ):
        try:
            data: str | bytes = Path(source).read_bytes()
        except OSError as exc:
            raise SpecError("unreadable", f"{source}: {exc}") from exc
    else:
        data = source
    head = (
        data[:64].lstrip()
        if isinstance(data, str)
        else data[:64].lstrip().decode("utf-8", "replace")
    )
    if head.startswith("{"):
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise SpecError("invalid_json", str(exc)) from exc
    else:
        try:
            _check_yaml_aliases(data)
            doc = yaml.load(data, Loader=_YamlLoader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise SpecError("invalid_yaml", str(exc).replace("\n", " ")) from exc
    if not isinstance(doc, dict):
        raise SpecError("not_a_mapping", f"the document is a {type(doc).__name__}, not an object")
    return doc


# --------------------------------------------------------------------------- text

_TAG_RE = re.compile(r"<(?:br|p|li|div|tr|h\d)\b[^>]*>|</(?:p|li|div|tr|h\d)>", re.I)
_ANY_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]*>|<!--.*?-->", re.S)
_MD_IMAGE_RE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_REF_LINK_RE = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_MD_NOISE_RE = re.compile(
    r"(?m)^\s{0,3}(?:#{1,6}\s*|>\s?|[-*+]\s+(?=\S)|\|?\s*:?-{3,}.*$)|\*\*|__|`+|~~"
)
_WS_RE = re.compile(r"\s+")
_NOISY = frozenset("<>[]`*#_|&~\n\r\t")


def clean_text(text: Any, cap: int) -> str:
    """Strip HTML and markdown noise, collapse whitespace, cap at a sentence or word end.

    >>> clean_text("<p>Get a **pet**. See [docs](http://x).</p>", 100)
    'Get a pet. See docs.'
    """
    if not isinstance(text, str) or not text:
        return ""
    if not _NOISY.isdisjoint(text):
        if "<" in text:
            text = _ANY_TAG_RE.sub("", _TAG_RE.sub(" ", text))
        if "&" in text:
            text = html.unescape(text)
        if "[" in text:
            text = _MD_REF_LINK_RE.sub(r"\1", _MD_LINK_RE.sub(r"\1", _MD_IMAGE_RE.sub("", text)))
        text = _MD_NOISE_RE.sub("", text).replace("|", " ")
    text = _WS_RE.sub(" ", text).strip()
    if len(text) > cap:
        cut = text[: cap - 1]
        stop = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        if stop >= cap // 2:
            text = cut[: stop + 1]
        else:
            space = cut.rfind(" ")
            text = (cut[:space] if space >= cap // 2 else cut).rstrip(" ,;:") + "…"
    return text


_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _humanize(segment: str) -> str:
    return (
        _WS_RE.sub(
            " ", _CAMEL_RE.sub(" ", segment).replace("_", " ").replace("-", " ").replace(".", " ")
        )
        .strip()
        .lower()
    )


_VERBS = {
    "post": "Create",
    "put": "Replace",
    "patch": "Update",
    "delete": "Delete",
    "head": "Check",
    "options": "Describe the options of",
    "trace": "Trace",
}


def fallback_description(method: str, path: str, arg_names: list[str], api_title: str) -> str:
    """A readable description for an operation that has none, from its path and parameters.

    >>> fallback_description("get", "/users/{userId}/messages", ["userId", "top"], "Mail")
    'List the messages of a user (by userId), in the Mail API. Parameters: userId, top.'
    """
    segs = [s for s in path.strip("/").split("/") if s]
    statics = [(i, s) for i, s in enumerate(segs) if not (s.startswith("{") and s.endswith("}"))]
    ends_with_param = bool(segs) and segs[-1].startswith("{")
    m = method.lower()
    verb = ("Get" if ends_with_param else "List the") if m == "get" else _VERBS.get(m, m.upper())
    if not statics:
        text = f"{verb} the API root"
    else:
        resource = _humanize(statics[-1][1]) or "resource"
        if m == "get" and ends_with_param:
            text = f"Get one {_singular(resource)}"
        elif m in ("put", "patch", "delete") and ends_with_param:
            text = f"{verb} one {_singular(resource)}"
        else:
            text = f"{verb} {resource}" if verb.endswith("the") else f"{verb} {resource}"
        if len(statics) > 1:
            owner = _humanize(statics[-2][1])
            owner_params = [
                s[1:-1] for s in segs[statics[-2][0] + 1 : statics[-1][0]] if s.startswith("{")
            ]
            text += f" of {_a(_singular(owner))}" if owner_params else f" of {owner}"
            if owner_params:
                text += f" (by {', '.join(owner_params)})"
        if ends_with_param:
            last = [s[1:-1] for s in segs[statics[-1][0] + 1 :]]
            text += f" by {', '.join(last)}"
    if api_title:
        text += f", in the {api_title} API"
    text += "."
    if arg_names:
        shown = arg_names[:8]
        text += f" Parameters: {', '.join(shown)}{', …' if len(arg_names) > 8 else ''}."
    return text


def _a(noun: str) -> str:
    vowel = noun[:1] in ("a", "e", "i", "o") or noun[:2] in ("un", "up", "um", "ut")
    return f"an {noun}" if vowel else f"a {noun}"


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ses") or word.endswith("xes"):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


# --------------------------------------------------------------------------- names

_ILLEGAL_NAME_RE = re.compile(r"[^a-zA-Z0-9_-]+")


def tool_name(operation_id: str | None, method: str, path: str) -> str:
    """An MCP-legal name from the operationId, else from method and path.

    >>> tool_name("users.user/ListUser", "get", "/users")
    'users_user_ListUser'
    >>> tool_name(None, "get", "/pets/{petId}/photos")
    'get_pets_petId_photos'
    """
    raw = (
        operation_id
        if isinstance(operation_id, str) and operation_id.strip()
        else f"{method}_{path}"
    )
    name = _ILLEGAL_NAME_RE.sub("_", raw)
    name = re.sub(r"__+", "_", name).strip("_-") or method.lower()
    if len(name) > 64:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
        name = name[:55].rstrip("_-") + "_" + digest
    return name


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while True:
        suffix = f"_{i}"
        cand = name[: 64 - len(suffix)] + suffix
        if cand not in taken:
            return cand
        i += 1


# --------------------------------------------------------------------------- schemas


class _Acc:
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
_COMBINATORS = ("allOf", "anyOf", "oneOf")
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


class _SchemaConverter:
    """Converts OpenAPI schema objects to inlined JSON Schema 2020-12, sharing results."""

    def __init__(self, doc: dict[str, Any], opts: ConvertOptions, warn: Callable[[str, str], None]):
        self.doc = doc
        self.opts = opts
        self.warn = warn
        self._targets: dict[str, Any] = {}
        self._ref_free: dict[str, bool] = {}
        self._cache: dict[
            tuple[str, int, str], tuple[Any, frozenset[str], frozenset[str], int]
        ] = {}
        self._stubs: dict[tuple[str, str], dict[str, Any]] = {}
        self._desc_cache: dict[str, str] = {}

    # -- references

    def resolve(self, ref: str) -> Any:
        """The node a local ``#/...`` pointer names, or None."""
        if ref in self._targets:
            return self._targets[ref]
        node: Any = None
        if ref.startswith("#"):
            node = self.doc
            pointer = unquote(ref[1:])
            for raw in pointer.split("/")[1:] if pointer else []:
                part = raw.replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict):
                    node = node.get(part)
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    node = None
                if node is None:
                    break
        self._targets[ref] = node
        return node

    def deref(self, node: Any, limit: int = 16) -> Any:
        """Follow a chain of ``$ref`` s (for parameters, bodies, responses)."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < limit:
            ref = node["$ref"]
            target = self.resolve(ref)
            if target is None:
                self.warn("unresolved_ref", f"cannot resolve {ref}")
                return None
            node = target
            seen += 1
        return node

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
        acc: _Acc,
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
                    sub = _Acc()
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
        self, node: Any, mode: str, budget: int, stack: tuple[str, ...], acc: _Acc, nest: int = 0
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
        out: dict[str, Any] = {}
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

        nb = budget
        nxt = nest + 1
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
                c = self.convert(pschema, mode, nb, stack, acc, nxt)
                if isinstance(c, dict) and c.get(skip_flag) is True:
                    dropped.add(str(pname))
                    continue
                conv_props[str(pname)] = c
            out["properties"] = conv_props
        pprops = get("patternProperties")
        if isinstance(pprops, dict):
            conv = {
                k: self.convert(v, mode, nb, stack, acc, nxt)
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
            out["additionalProperties"] = self.convert(ap, mode, nb, stack, acc, nxt)

        items = get("items")
        if isinstance(items, dict):
            out["items"] = self.convert(items, mode, nb, stack, acc, nxt)
        elif isinstance(items, list):
            conv_items = [self.convert(i, mode, nb, stack, acc, nxt) for i in items]
            if len(conv_items) == 1:
                out["items"] = conv_items[0]
            elif conv_items:
                out["prefixItems"] = conv_items
        elif isinstance(items, bool):
            out["items"] = items
        prefix = get("prefixItems")
        if isinstance(prefix, list) and "prefixItems" not in out:
            out["prefixItems"] = [self.convert(i, mode, nb, stack, acc, nxt) for i in prefix]
        for k in _SINGLE_SCHEMA_KEYS:
            v = get(k)
            if isinstance(v, (dict, bool)):
                out[k] = self.convert(v, mode, nb, stack, acc, nxt)

        for k in _COMBINATORS:
            v = get(k)
            if isinstance(v, list) and v:
                out[k] = [self.convert(i, mode, nb, stack, acc, nxt) for i in v]

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
            acc = _Acc()
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


# --------------------------------------------------------------------------- operations


def _json_media(content: Any) -> Any:
    """The schema of the most JSON-like media type in an OAS3 ``content`` map."""
    if not isinstance(content, dict) or not content:
        return None
    best = None
    best_rank = 99
    for mt, obj in content.items():
        if not isinstance(obj, dict):
            continue
        m = str(mt).lower()
        rank = (
            0
            if m.startswith("application/json")
            else 1
            if "json" in m
            else 2
            if m in ("application/x-www-form-urlencoded", "multipart/form-data")
            else 3
            if m in ("*/*", "application/*")
            else 4
        )
        if rank < best_rank:
            best, best_rank = obj, rank
    return best


class _Converter:
    def __init__(self, doc: dict[str, Any], opts: ConvertOptions, source_name: str):
        self.doc = doc
        self.opts = opts
        self.warnings: list[ConversionWarning] = []
        self._warned: set[tuple[str, str]] = set()
        self.current_op = ""
        self.schemas = _SchemaConverter(doc, opts, self.warn)
        self.skip_params = self._auth_params() if opts.drop_auth_params else set()
        swagger = doc.get("swagger")
        openapi = doc.get("openapi")
        if openapi is not None:
            version = str(openapi)
            if not version.startswith("3."):
                raise SpecError("unsupported_version", f"openapi {version!r} is not 3.x")
            self.v2 = False
        elif swagger is not None:
            version = str(swagger)
            if version not in ("2.0", "2"):
                raise SpecError("unsupported_version", f"swagger {version!r} is not 2.0")
            self.v2 = True
        elif "swaggerVersion" in doc:
            raise SpecError(
                "unsupported_version", f"swagger {doc['swaggerVersion']!r} (1.x) is not supported"
            )
        else:
            raise SpecError(
                "unknown_format", "no 'swagger' or 'openapi' field: not an OpenAPI document"
            )
        info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
        cats = info.get("x-apisguru-categories")
        self.source = SourceInfo(
            api_title=str(info.get("title") or "").strip()[:200],
            api_version=str(info.get("version") or "")[:50],
            spec_version=version,
            categories=tuple(str(c) for c in cats) if isinstance(cats, list) else (),
            provider=str(info.get("x-providerName") or ""),
            service=str(info.get("x-serviceName") or ""),
            base_url=self._base_url(),
            source_name=source_name,
        )

    def warn(self, code: str, message: str) -> None:
        key = (code, message)
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(ConversionWarning(self.current_op, code, message))

    def _auth_params(self) -> set[tuple[str, str]]:
        """Parameters the client fills in, not the caller: API keys and Google's standard ones."""
        d = self.doc
        comps = d.get("components") if isinstance(d.get("components"), dict) else {}
        schemes = d.get("securityDefinitions") or comps.get("securitySchemes") or {}
        out: set[tuple[str, str]] = set()
        if isinstance(schemes, dict):
            for scheme in schemes.values():
                if isinstance(scheme, dict) and scheme.get("type") == "apiKey":
                    name, loc = scheme.get("name"), scheme.get("in")
                    if isinstance(name, str) and isinstance(loc, str):
                        out.add((loc, name))
        info = d.get("info") if isinstance(d.get("info"), dict) else {}
        origins = info.get("x-origin") if isinstance(info.get("x-origin"), list) else []
        if any(isinstance(o, dict) and o.get("format") == "google" for o in origins):
            out |= {("query", n) for n in _GOOGLE_STANDARD_PARAMS}
        return out

    def _base_url(self) -> str:
        d = self.doc
        if self.v2:
            host = d.get("host")
            if not isinstance(host, str) or not host:
                return ""
            schemes = d.get("schemes") if isinstance(d.get("schemes"), list) else []
            scheme = "https" if "https" in schemes or not schemes else str(schemes[0])
            base = d.get("basePath") if isinstance(d.get("basePath"), str) else ""
            return f"{scheme}://{host}{base}".rstrip("/")
        servers = d.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            url = servers[0].get("url")
            return url.rstrip("/") if isinstance(url, str) else ""
        return ""

    # -- whole spec

    def run(self) -> ConversionResult:
        paths = self.doc.get("paths")
        if paths is None:
            paths = {}
        if not isinstance(paths, dict):
            raise SpecError("invalid_paths", f"'paths' is a {type(paths).__name__}, not an object")
        tools: list[ToolDef] = []
        taken: set[str] = set()
        operations = skipped = 0
        for path, item in paths.items():
            item = self.schemas.deref(item)
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
            for method in HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                operations += 1
                self.current_op = f"{method.upper()} {path}"
                if not isinstance(op, dict):
                    self.warn(
                        "operation_skipped", f"operation is a {type(op).__name__}, not an object"
                    )
                    skipped += 1
                    continue
                tool = self._operation(str(path), method, op, shared, taken)
                taken.add(tool.name)
                tools.append(tool)
        self.current_op = ""
        if operations == 0:
            raise SpecError("no_operations", "the spec declares no operations under 'paths'")
        if not tools:
            raise SpecError("no_valid_operations", f"all {operations} operations were malformed")
        return ConversionResult(self.source, tools, self.warnings, operations, skipped)

    # -- one operation

    def _parameters(self, shared: list[Any], own: Any) -> list[dict[str, Any]]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*shared, *(own if isinstance(own, list) else [])]:
            p = self.schemas.deref(raw)
            if not isinstance(p, dict):
                self.warn("parameter_skipped", "a parameter is not an object")
                continue
            name, loc = p.get("name"), p.get("in")
            if not isinstance(name, str) or not name or loc not in _LOCATION_RANK:
                self.warn("parameter_skipped", f"parameter {name!r} in {loc!r} is not usable")
                continue
            merged[(loc, name)] = p  # the operation's own wins over the path item's
        return list(merged.values())

    def _param_schema(self, p: dict[str, Any]) -> Any:
        if "schema" in p and (not self.v2 or p.get("in") == "body"):
            return p["schema"]
        if "content" in p:
            media = _json_media(p["content"])
            return media.get("schema") if isinstance(media, dict) else {}
        # Swagger 2 non-body parameters carry their schema keywords inline.
        return {
            k: v
            for k, v in p.items()
            if k
            not in (
                "name",
                "in",
                "required",
                "description",
                "schema",
                "allowEmptyValue",
                "collectionFormat",
            )
        }

    def _operation(
        self, path: str, method: str, op: dict[str, Any], shared: list[Any], taken: set[str]
    ) -> ToolDef:
        sc = self.schemas
        depth = self.opts.max_ref_depth
        props: dict[str, Any] = {}
        required: list[str] = []
        bindings: list[ParamBinding] = []
        path_params = set()
        params = self._parameters(shared, op.get("parameters"))
        params.sort(
            key=lambda p: _LOCATION_RANK[p["in"]]
        )  # stable: declared order within a location
        body_schema: Any = None
        body_required = False
        body_desc = ""
        size = 0

        def claim(arg: str, location: str) -> str:
            if arg not in props:
                return arg
            renamed = _unique(f"{location}_{arg}", set(props))
            self.warn("name_clash_renamed", f"{location} parameter {arg!r} renamed to {renamed!r}")
            return renamed

        for p in params:
            loc = p["in"]
            name = p["name"]
            if loc == "header" and name.lower() in _SKIPPED_HEADERS:
                continue
            if self.opts.drop_auth_params and (
                (loc in ("header", "cookie") and _CREDENTIAL_HEADER_RX.search(name))
                or (loc == "query" and name.lower() in _CREDENTIAL_QUERY)
            ):
                self.warn("credential_param_skipped", f"{loc} parameter {name!r} looks like a credential")
                continue
            if (loc, name) in self.skip_params:
                continue
            if loc == "body":
                body_schema = p.get("schema", {})
                body_required = p.get("required") is True
                body_desc = sc.describe(p.get("description"))
                continue
            schema, n = sc.top(self._param_schema(p), "in", depth)
            size += n
            schema = dict(schema) if isinstance(schema, dict) else {}
            desc = sc.describe(p.get("description"))
            if desc:
                schema["description"] = desc
            if p.get("deprecated") is True:
                schema["deprecated"] = True
            if (
                "example" in p
                and isinstance(p["example"], (str, int, float, bool))
                and "examples" not in schema
            ):
                schema["examples"] = [p["example"]]
            is_required = loc == "path" or p.get("required") is True
            if loc == "path":
                path_params.add(name)
            arg = claim(name, loc)
            props[arg] = schema
            if is_required:
                required.append(arg)
            bindings.append(ParamBinding(arg, loc, name, is_required))

        if not self.v2 and "requestBody" in op:
            rb = sc.deref(op["requestBody"])
            if isinstance(rb, dict):
                media = _json_media(rb.get("content"))
                if isinstance(media, dict):
                    body_schema = media.get("schema", {})
                    body_required = rb.get("required") is True
                    body_desc = sc.describe(rb.get("description"))

        if body_schema is not None:
            body, n = sc.top(body_schema, "in", depth)
            size += n
            if (
                isinstance(body, dict)
                and isinstance(body.get("properties"), dict)
                and body.get("type", "object") == "object"
                and not any(k in body for k in _COMBINATORS)
            ):
                body_req = set(body.get("required", ())) if body_required else set()
                for fname, fschema in body["properties"].items():
                    arg = claim(fname, "body")
                    props[arg] = fschema
                    if fname in body_req:
                        required.append(arg)
                    bindings.append(ParamBinding(arg, "body", fname, fname in body_req))
            else:
                if not isinstance(body, dict) and not isinstance(body, bool):
                    body = {}
                if body_desc and isinstance(body, dict):
                    body = {**body, "description": body_desc}
                arg = claim("body", "body")
                props[arg] = body
                if body_required:
                    required.append(arg)
                bindings.append(ParamBinding(arg, "body", "", body_required))

        input_schema: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            input_schema["required"] = required

        output_schema = self._output(op)

        op_id = op.get("operationId") if isinstance(op.get("operationId"), str) else ""
        name = _unique(tool_name(op_id, method, path), taken)
        summary = clean_text(op.get("summary"), 200)
        long = clean_text(op.get("description"), self.opts.max_description_chars)
        if summary and long:
            description = (
                long
                if long.lower().startswith(summary.lower().rstrip("."))
                else f"{summary.rstrip('.')}. {long}"
            )
            description = clean_text(description, self.opts.max_description_chars)
        else:
            description = summary or long
        if not description:
            description = fallback_description(method, path, list(props), self.source.api_title)
        tags = op.get("tags") if isinstance(op.get("tags"), list) else []
        return ToolDef(
            name=name,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            method=method.upper(),
            path=path,
            source=self.source,
            operation_id=op_id,
            summary=summary,
            tags=tuple(str(t) for t in tags),
            deprecated=op.get("deprecated") is True,
            bindings=tuple(bindings),
        )

    def _output(self, op: dict[str, Any]) -> dict[str, Any] | None:
        responses = op.get("responses")
        if not isinstance(responses, dict):
            return None
        codes = sorted(
            (str(c) for c in responses if str(c)[:1] == "2"),
            key=lambda c: (not c.isdigit(), c),
        )
        sc = self.schemas
        for code in codes:
            resp = sc.deref(
                responses.get(code)
                if code in responses
                else responses.get(int(code))
                if code.isdigit()
                else None
            )
            if not isinstance(resp, dict):
                continue
            if self.v2:
                schema = resp.get("schema")
            else:
                media = _json_media(resp.get("content"))
                schema = media.get("schema") if isinstance(media, dict) else None
            if schema is None:
                continue
            out, _ = sc.top(schema, "out", self.opts.max_output_ref_depth)
            if (
                isinstance(out, dict)
                and out.get("type") == "object"
                and not any(k in out for k in _COMBINATORS)
            ):
                return out
            if (
                isinstance(out, dict)
                and "type" not in out
                and isinstance(out.get("properties"), dict)
                and not any(k in out for k in _COMBINATORS)
            ):
                return {"type": "object", **out}
            return {
                "type": "object",
                "properties": {"result": out if isinstance(out, (dict, bool)) else {}},
            }
        return None


def convert_spec(
    source: str | bytes | Path | Mapping[str, Any],
    *,
    options: ConvertOptions | None = None,
    source_name: str = "",
) -> ConversionResult:
    """Convert a spec to MCP tools; raises :class:`SpecError` instead of returning a partial result."""
    doc = load_spec(source)
    if not source_name and (
        isinstance(source, Path)
        or (isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{"))
    ):
        source_name = str(source)
    try:
        return _Converter(doc, options or ConvertOptions(), source_name).run()
    except SpecError:
        raise
    except RecursionError as exc:
        raise SpecError("conversion_failed", "schema nesting too deep") from exc
    except Exception as exc:  # noqa: BLE001 - any bug must surface as a recorded SpecError, not a half result
        raise SpecError("conversion_failed", f"{type(exc).__name__}: {exc}") from exc
