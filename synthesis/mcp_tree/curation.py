"""Tool curation: is a tool worth asking for in a synthesized conversation?

A usability score in [0, 1] with the reasons it is below 1.  Five checks, each failing
with stable reason codes (reported by count, stored with every tool):

``user_facing``
    An action a person would ask an assistant for, not API plumbing: authentication and
    tokens (``auth_endpoint``), health, ping and service status (``health_endpoint``), the
    API's version (``version_endpoint``), metrics, usage and rate limits of the API
    (``metrics_endpoint``), specs, schemas, discovery documents, ``OPTIONS`` and the API's
    root or ``/info`` (``schema_endpoint``).
    Decided from the operation's *subject* (the path after its last parameter, or the
    name without its verb) so that ``getOrderStatus`` on ``/orders/{id}/status`` stays
    user-facing while ``getHealth`` on ``/health`` does not.
``described``
    A description that says what the tool does: not empty (``no_description``), not a
    bare URL (``description_is_url``), more than one word (``description_too_short``),
    and better neither the name again in words (``description_repeats_name``: "Get users"
    for ``get_users``) nor the converter's fallback built from the path
    (``description_generated``); these two are light penalties.
``schema_resolves``
    Every ``$ref`` resolves (``dangling_ref``) and the schemas are usable JSON Schema
    (``invalid_schema``).
``bounded_required``
    At most ``max_required`` required parameters (``too_many_required``).
``sourced_values``
    Every required value has a known source: an enum, an example, a default, a format, a
    pattern, bounds, or a telling name (``unsourced_required``); and none is a credential
    the user cannot give (``credential_required``).

The score is 1 minus the weights of the failed reasons (at least 0; see :data:`REASONS`).
Plumbing and broken schemas weigh 1 (always dropped); a missing or one-word description,
too many, unsourced or credential values weigh about half (dropped at the default
threshold 0.6); a description that only restates the name or was generated weighs 0.3, so
alone it keeps the tool and with any other flaw it does not.

>>> u = usability({"name": "getHealth", "description": "Service health.",
...                "inputSchema": {"type": "object"}, "method": "GET", "path": "/health"})
>>> u.score, u.codes
(0.0, ['health_endpoint'])
>>> u = usability({"name": "getOrderStatus", "description": "Get the status of an order.",
...                "inputSchema": {"type": "object", "properties": {"order_id": {"type": "string"}},
...                                "required": ["order_id"]},
...                "method": "GET", "path": "/orders/{order_id}/status"})
>>> u.score, u.codes, u.kept()
(1.0, [], True)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from synthesis import refs
from synthesis.schema_utils import is_id_key, required_names, resolve

from .openapi import fallback_description
from .tool_check import MAX_SCHEMA_CHARS, tool_problem

DEFAULT_THRESHOLD = 0.6
MAX_REQUIRED = 6

CHECKS = ("user_facing", "described", "schema_resolves", "bounded_required", "sourced_values")

# code -> (check, weight, what it means)
REASONS: dict[str, tuple[str, float, str]] = {
    "auth_endpoint": ("user_facing", 1.0, "authentication, login or token plumbing"),
    "health_endpoint": ("user_facing", 1.0, "a health, ping or service-status check"),
    "version_endpoint": ("user_facing", 1.0, "reports the API's own version"),
    "metrics_endpoint": ("user_facing", 1.0, "metrics, usage or rate limits of the API itself"),
    "schema_endpoint": ("user_facing", 1.0, "a spec, schema, metadata or discovery document"),
    "no_description": ("described", 0.5, "no description"),
    "description_is_url": ("described", 0.5, "the description is only a URL"),
    "description_repeats_name": ("described", 0.3, "the description only repeats the name"),
    "description_too_short": ("described", 0.5, "the description is a single word"),
    "description_generated": ("described", 0.3, "the description was generated from the path"),
    "dangling_ref": ("schema_resolves", 1.0, "a $ref that resolves to nothing"),
    "invalid_schema": ("schema_resolves", 1.0, "a schema that is not usable JSON Schema"),
    "too_many_required": ("bounded_required", 0.5, "too many required parameters"),
    "unsourced_required": ("sourced_values", 0.45, "a required value with no known source"),
    "credential_required": ("sourced_values", 0.45, "a required credential the user cannot give"),
}


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "weight": self.weight}


@dataclass(frozen=True)
class Usability:
    score: float
    reasons: tuple[Reason, ...] = ()
    passed: tuple[str, ...] = CHECKS

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def kept(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        return self.score >= threshold

    def reasons_as_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "reasons": self.reasons_as_dicts(),
            "passed": list(self.passed),
        }


def usability(tool: Mapping[str, Any], *, max_required: int = MAX_REQUIRED) -> Usability:
    """Score one tool.  ``tool``: an MCP tool dict (``name``, ``description``,
    ``inputSchema``, optional ``outputSchema``), optionally with the OpenAPI ``method`` and
    ``path`` it came from; the stored row's ``input_schema`` / ``output_schema`` spellings
    are accepted too."""
    name = str(tool.get("name") or "")
    description = tool.get("description")
    description = description if isinstance(description, str) else ""
    schema = tool.get("inputSchema", tool.get("input_schema"))
    output = tool.get("outputSchema", tool.get("output_schema"))
    method = str(tool.get("method") or "").upper()
    path = str(tool.get("path") or "")

    found: list[Reason] = []
    plumbing = _plumbing(name, description, method, path)
    if plumbing:
        found.append(_reason(plumbing[0], plumbing[1]))
    described = _description_problem(name, description, method, path)
    if described:
        found.append(_reason(*described))
    # Tools of an OpenAPI spec carry the method and path they came from.
    schema_issue = _schema_problem(
        name, description, schema, output, converted=bool(method and path)
    )
    if schema_issue:
        found.append(_reason(*schema_issue))
    else:
        required = required_names(schema)
        if len(required) > max_required:
            found.append(
                _reason(
                    "too_many_required",
                    f"{len(required)} required parameters; at most {max_required}",
                )
            )
        props = _properties(schema)
        credentials = [r for r in required if _is_credential(r)]
        if credentials:
            found.append(
                _reason(
                    "credential_required",
                    "the user would have to give " + ", ".join(credentials[:6]),
                )
            )
        unsourced = [
            r
            for r in required
            if r not in credentials and _value_source(r, resolve(props.get(r, {}), schema)) is None
        ]
        if unsourced:
            found.append(
                _reason(
                    "unsourced_required",
                    "no example, enum, default, format, pattern or telling name for "
                    + ", ".join(unsourced[:6])
                    + ("…" if len(unsourced) > 6 else ""),
                )
            )
    failed = {REASONS[r.code][0] for r in found}
    score = round(max(0.0, 1.0 - sum(r.weight for r in found)), 3)
    return Usability(
        score=score, reasons=tuple(found), passed=tuple(c for c in CHECKS if c not in failed)
    )


def _reason(code: str, message: str) -> Reason:
    return Reason(code=code, message=message, weight=REASONS[code][1])


@dataclass
class CurationReport:
    """How many tools a threshold keeps and, by reason code, why it drops the others."""

    threshold: float
    scored: int = 0
    kept: int = 0
    # Every reason of every dropped tool (a tool can count under several codes) ...
    dropped_by_reason: Counter = field(default_factory=Counter)
    # ... and each dropped tool once, under its heaviest reason.
    dropped_by_main_reason: Counter = field(default_factory=Counter)

    @property
    def dropped(self) -> int:
        return self.scored - self.kept

    def add(self, score: float, reasons: Iterable[Mapping[str, Any]]) -> None:
        self.scored += 1
        if score >= self.threshold:
            self.kept += 1
            return
        reasons = list(reasons)
        for r in reasons:
            self.dropped_by_reason[r["code"]] += 1
        if reasons:
            main = max(
                reasons,
                key=lambda r: (
                    r["weight"],
                    -list(REASONS).index(r["code"]) if r["code"] in REASONS else 0,
                ),
            )
            self.dropped_by_main_reason[main["code"]] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "scored": self.scored,
            "kept": self.kept,
            "dropped": self.dropped,
            "dropped_by_reason": dict(self.dropped_by_reason.most_common()),
            "dropped_by_main_reason": dict(self.dropped_by_main_reason.most_common()),
        }


def curation_report(
    scored: Iterable[tuple[float, Iterable[Mapping[str, Any]]]], threshold: float
) -> CurationReport:
    """Tally ``(score, reasons)`` pairs (reasons as stored: dicts with code and weight).

    >>> r = curation_report([(1.0, []), (0.0, [{"code": "health_endpoint", "weight": 1.0}])], 0.6)
    >>> r.kept, r.dropped, dict(r.dropped_by_reason)
    (1, 1, {'health_endpoint': 1})
    """
    report = CurationReport(threshold=threshold)
    for score, reasons in scored:
        report.add(score, reasons)
    return report


# ----------------------------------------------------------------------------- words

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_VERSION_WORD = re.compile(r"^v\d+(?:[._]\d+)*$|^\d+$|^\d{4}-\d{2}-\d{2}$")


def words(text: str) -> list[str]:
    """Lower-case words of a name, path segment or sentence (camelCase and snake_case split).

    >>> words("getAuthIntrospectV2")
    ['get', 'auth', 'introspect', 'v2']
    >>> words("rate-limit_get")
    ['rate', 'limit', 'get']
    """
    return [w.lower() for part in _NON_ALNUM.split(text) for w in _CAMEL.split(part) if w]


# ----------------------------------------------------------------------------- user-facing

# Words that make an operation plumbing wherever they are its subject.
_AUTH = frozenset({
    "auth", "oauth", "oauth2", "introspect", "introspection", "login", "logout", "logon", "logoff",
    "signin", "signout", "sso", "saml", "jwt", "jwks", "openid", "authenticate", "authentication",
    "apikey", "apikeys", "accesstoken", "refreshtoken", "credential", "credentials", "password",
    "passwords", "otp", "mfa", "2fa",
})  # fmt: skip
# Anywhere in a path (``/authn-gcp/{account}/status``, ``/oauth/clients/create``).
_AUTH_PREFIX = frozenset(
    {"auth", "oauth", "oauth2", "authn", "authz", "openid", "saml", "sso", "introspect"}
)
# "token" is also a coin, a game piece or a pagination cursor: plumbing only with one of these.
_TOKEN = frozenset({"token", "tokens"})
_TOKEN_CONTEXT = re.compile(
    r"\b(access|refresh|bearer|oauth|jwt|api[ _-]?key|auth\w*|log ?in|session|revoke[sd]?|credential\w*|"
    r"personal|sign[ -]?in)\b",
    re.I,
)
# Plumbing only when the operation is about the service itself (no path parameter); the
# strong words whenever they end the subject, the weak ones only when nothing else names it.
_STRONG = {
    "health_endpoint": frozenset(
        {
            "health",
            "healthcheck",
            "healthz",
            "ping",
            "heartbeat",
            "liveness",
            "readiness",
            "livez",
            "readyz",
            "alive",
            "uptime",
        }
    ),
    "metrics_endpoint": frozenset({"metrics", "prometheus", "ratelimit", "ratelimits"}),
    "schema_endpoint": frozenset({"swagger", "openapi", "apidocs", "wsdl", "wadl", "raml"}),
    "version_endpoint": frozenset(),
}
_WEAK = {
    "health_endpoint": frozenset({"status", "state"}),
    "metrics_endpoint": frozenset(
        {
            "stats",
            "statistics",
            "usage",
            "quota",
            "quotas",
            "limits",
            "rate",
            "limit",
            "throttle",
            "throttling",
        }
    ),
    "schema_endpoint": frozenset(
        {
            "schema",
            "schemas",
            "spec",
            "specs",
            "specification",
            "metadata",
            "meta",
            "discovery",
            "docs",
            "documentation",
            "definition",
            "definitions",
            "describe",
        }
    ),
    # "versions" (plural) lists versions of something the user has: packages, documents.
    "version_endpoint": frozenset(
        {"version", "build", "buildinfo", "versioninfo", "versioninformation"}
    ),
}
_FILLER = frozenset({
    "api", "apis", "rest", "service", "services", "server", "servers", "system", "platform", "check", "info", "information", "current", "the", "of", "a", "an", "for", "public",
    "internal", "json", "yaml", "yml", "xml", "endpoint", "endpoints", "root", "well", "known", "details",
    "web", "http", "instance", "node", "get", "all", "my", "this",
})  # fmt: skip
_VERBS = frozenset({
    "get", "list", "retrieve", "fetch", "read", "show", "query", "post", "put", "patch", "do", "call", "check",
    "head", "return", "returns", "describe", "view", "find", "obtain", "request",
})  # fmt: skip
_PHRASES = [
    (
        "health_endpoint",
        re.compile(
            r"\b(health ?check|liveness|readiness|heartbeat|(is|are) (up|alive|up and running|running|operational)|"
            r"ping (the|this) (server|service|api))\b",
            re.I,
        ),
    ),
    (
        "version_endpoint",
        re.compile(r"\b(api'?s? version|version of (the|this) (api|service|server))\b", re.I),
    ),
    (
        "schema_endpoint",
        re.compile(r"\b(openapi|swagger|api (spec|specification|definition|schema))\b", re.I),
    ),
    (
        "auth_endpoint",
        re.compile(
            r"\b(introspect\w*|log (in|out)|sign (in|out)|(access|refresh|bearer|jwt) tokens?)\b",
            re.I,
        ),
    ),
]
_MESSAGES = {
    "auth_endpoint": "authentication plumbing ({})",
    "health_endpoint": "a health or status check of the service ({})",
    "version_endpoint": "reports the version of the API ({})",
    "metrics_endpoint": "metrics or usage of the API itself ({})",
    "schema_endpoint": "serves the API's spec, schema or metadata ({})",
}
_READS = ("", "GET", "HEAD", "OPTIONS")
_ABOUT_SERVICE = re.compile(
    r"\b(api|apis|service|server|system|instance|platform|application|app|uptime|backend|deployment|"
    r"endpoint|health|running)\b",
    re.I,
)


def _segments(path: str) -> list[str]:
    path = path.split("#", 1)[0].split("?", 1)[0]
    return [s for s in path.strip("/").split("/") if s]


def _is_param(segment: str) -> bool:
    return "{" in segment or segment.startswith(":")


def _path_subject(segments: list[str]) -> tuple[list[list[str]], bool]:
    """The segments naming what the operation is about (each as its words), and whether the
    path has parameters."""
    params = [i for i, s in enumerate(segments) if _is_param(s)]
    if params:
        last = params[-1]
        after = segments[last + 1 :]
        subject = after or [s for s in segments[:last] if not _is_param(s)][-1:]
    else:
        subject = segments
    out = []
    for s in subject:
        ws = [w for w in words(s.lstrip("$")) if not _VERSION_WORD.match(w)]
        if ws:
            joined = "".join(ws)
            out.append([*ws, joined] if len(ws) > 1 else ws)
    # Leading prefixes (api, rest, public) say nothing about the subject.
    while out and all(w in _FILLER for w in out[0]):
        out.pop(0)
    return out, bool(params)


def _plumbing(name: str, description: str, method: str, path: str) -> tuple[str, str] | None:
    """(code, message) when the operation is API plumbing rather than a user's action."""
    segments = _segments(path)
    subject, has_params = _path_subject(segments)
    subject_words = {w for seg in subject for w in seg}
    first_sentence = (
        re.split(r"(?<=[.!?])\s", description.strip(), maxsplit=1)[0] if description else ""
    )
    token_context = bool(_TOKEN_CONTEXT.search(f"{' '.join(words(name))} {path} {first_sentence}"))

    def auth_in(ws: set[str]) -> str | None:
        hit = sorted(ws & _AUTH) or (sorted(ws & _TOKEN) if token_context else [])
        return hit[0] if hit else None

    hit = auth_in(subject_words) or next(
        (w for s in segments if not _is_param(s) for w in words(s) if w in _AUTH_PREFIX), None
    )
    if hit:
        return "auth_endpoint", _MESSAGES["auth_endpoint"].format(f"path {path!r}: {hit}")
    if method == "OPTIONS":  # what a client may do here (CORS preflight), never a user's request
        return "schema_endpoint", _MESSAGES["schema_endpoint"].format(f"OPTIONS {path}")
    if any(s.lower().endswith("$metadata") for s in segments):
        return "schema_endpoint", _MESSAGES["schema_endpoint"].format(f"path {path!r}: $metadata")
    reading = method in _READS
    if subject and not has_params and reading:
        last = set(subject[-1])
        for code, strong in _STRONG.items():
            hit_words = last & strong
            if hit_words:
                return code, _MESSAGES[code].format(f"path {path!r}: {sorted(hit_words)[0]}")
        content = {w for seg in subject for w in seg[: len(seg) - (len(seg) > 1)]} - _FILLER
        last_words = set(subject[-1]) - _FILLER
        about_service = bool(_ABOUT_SERVICE.search(first_sentence))
        for code, weak in _WEAK.items():
            if content and content <= (weak | _STRONG[code]):
                return code, _MESSAGES[code].format(f"path {path!r}")
            # "/aliases/v2/version", "Gets service version."
            if about_service and last_words and last_words <= weak:
                return code, _MESSAGES[code].format(f"path {path!r}, about the service")
    if (
        reading
        and not has_params
        and not subject
        and not set(words(name)) - _VERBS - _FILLER - {"root", "index"}
    ):
        # "/", "/api", "/info": what the API or its server says about itself
        return "schema_endpoint", _MESSAGES["schema_endpoint"].format(f"path {path!r}")
    if has_params or not reading:
        return None
    # The name, without its verb and fillers, is nothing but a plumbing word.
    name_words = [w for w in words(name) if not _VERSION_WORD.match(w)]
    content = set(name_words) - _VERBS - _FILLER
    joined = "".join(w for w in name_words if w not in _VERBS and w not in _FILLER)
    if content:
        hit = auth_in(content | {joined})
        if hit and content <= (_AUTH | _TOKEN | {hit}):
            return "auth_endpoint", _MESSAGES["auth_endpoint"].format(f"name {name!r}")
        # A weak word in a name ("GetStatus") is plumbing only when the description says the
        # status is the service's own, not a job's or an order's.
        about_service = not first_sentence or bool(_ABOUT_SERVICE.search(first_sentence))
        for code in _STRONG:
            if (
                joined in _STRONG[code]
                or content <= _STRONG[code]
                or (about_service and content <= (_STRONG[code] | _WEAK[code]))
            ):
                return code, _MESSAGES[code].format(f"name {name!r}")
    if (
        not method and not path
    ):  # a live MCP server's tool: its name and description are all there is
        for code, rx in _PHRASES:
            m = rx.search(first_sentence)
            if m:
                return code, _MESSAGES[code].format(f"description: {m.group(0)!r}")
    return None


# ----------------------------------------------------------------------------- description

_URL = re.compile(r"https?://\S+|www\.\S+", re.I)


def _joined(ws) -> str:
    return "".join(w for w in ws if w not in ("the", "a", "an"))


def _description_problem(
    name: str, description: str, method: str, path: str
) -> tuple[str, str] | None:
    text = description.strip()
    if not text:
        return "no_description", "the description is empty"
    without_urls = _URL.sub(" ", text)
    desc_words = [w for w in words(without_urls) if not _VERSION_WORD.match(w)]
    if _URL.search(text) and len(desc_words) < 2:
        return "description_is_url", f"the description is a link ({text[:80]!r})"
    if len(without_urls.split()) < 2:  # "Placeholder", "Delete", "ecommerceDelivery"
        return (
            "description_too_short",
            f"the description {text[:80]!r} does not say what the tool does",
        )
    # "get_users" described as "Get users" (the words of the name, in its order, and nothing more)
    if _joined(desc_words) == _joined(w for w in words(name) if not _VERSION_WORD.match(w)):
        return "description_repeats_name", f"the description {text[:80]!r} only repeats the name"
    if method and path:
        generated = fallback_description(method, path, [], "").rstrip(".")
        if text.startswith(generated):
            return (
                "description_generated",
                "the spec has no summary or description; this one was built from the path",
            )
    return None


# ----------------------------------------------------------------------------- schemas


def _properties(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    node = resolve(schema, schema)
    props = dict(node.get("properties") or {}) if isinstance(node, dict) else {}
    for sub in (node.get("allOf") or []) if isinstance(node, dict) else []:
        sub = resolve(sub, schema)
        if isinstance(sub, dict):
            props.update(sub.get("properties") or {})
    return props


def _dangling_refs(root: dict[str, Any]) -> list[str]:
    out: list[str] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and refs.target(ref, root) is refs.MISSING:
                out.append(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(set(out))


def _schema_problem(
    name: str, description: str, schema: Any, output: Any, *, converted: bool
) -> tuple[str, str] | None:
    for what, node in (("inputSchema", schema), ("outputSchema", output)):
        if isinstance(node, dict):
            dangling = _dangling_refs(node)
            if dangling:
                return "dangling_ref", f"{what}: $ref {dangling[0][:120]!r} resolves to nothing"
    if converted:
        # The OpenAPI converter emits valid JSON Schema 2020-12 whose patterns compile (see
        # openapi); checking that against the meta-schema again costs ~30 ms a tool, an
        # hour on the whole corpus.  What it does not promise is checked here.
        problem = _converted_problem(schema, "inputSchema") or (
            _converted_problem(output, "outputSchema") if output is not None else None
        )
        return ("invalid_schema", problem) if problem else None
    tool = {"name": name or "tool", "description": description, "inputSchema": schema}
    if output is not None:
        tool["outputSchema"] = output
    problem = tool_problem(tool)
    # An odd name is the namer's business, not the schema's.
    if problem and not problem.startswith("name "):
        return "invalid_schema", problem[:300]
    return None


def _converted_problem(schema: Any, what: str) -> str | None:
    if not isinstance(schema, dict):
        return f"{what} must be a JSON object, not {type(schema).__name__}"
    if what == "inputSchema" and schema.get("type", "object") != "object":
        return f"{what} must describe an object (type 'object'), not {schema.get('type')!r}"
    size = len(json.dumps(schema, ensure_ascii=False))
    if size > MAX_SCHEMA_CHARS:
        return f"{what} is {size} characters of JSON; at most {MAX_SCHEMA_CHARS}"
    return None


# ----------------------------------------------------------------------------- value sources

# Name words that say what a value is, so that a realistic one can be made (what
# ``synthesis.schema_utils`` fills by name, and a few common measures).
_TELLING = frozenset({
    "email", "url", "uri", "link", "website", "href", "phone", "mobile", "tel", "telephone", "fax",
    "filename", "file", "path", "folder", "directory", "first", "last", "given", "surname", "company",
    "organization", "organisation", "org", "employer", "vendor", "merchant", "job", "occupation", "position",
    "street", "address", "city", "town", "location", "destination", "origin", "country", "zip", "zipcode",
    "postal", "postcode", "timezone", "tz", "currency", "color", "colour", "title", "subject", "headline",
    "summary", "username", "user", "handle", "name", "author", "owner", "customer", "contact", "recipient",
    "assignee", "hash", "checksum", "etag", "digest", "mime", "category", "genre", "kind", "type", "label",
    "segment", "version", "cursor", "page", "weekday", "language", "lang", "locale", "status", "state",
    "description", "message", "text", "body", "comment", "note", "notes", "content", "query", "search",
    "keyword", "keywords", "term", "terms", "q", "date", "time", "datetime", "timestamp", "year", "month",
    "day", "hour", "minute", "week", "start", "end", "since", "until", "before", "after", "from", "to",
    "limit", "count", "size", "offset", "per", "quantity", "amount", "price", "total", "number", "num",
    "lat", "latitude", "lon", "lng", "long", "longitude", "radius", "distance", "age", "width", "height",
    "weight", "length", "sku", "isbn", "symbol", "ticker", "airport", "iata", "icao", "region", "zone",
    "province", "county", "unit", "units", "temperature", "duration", "tag", "tags", "slug", "domain",
    "host", "hostname", "ip", "port", "rating", "score", "gender", "birth", "birthday", "dob", "sort",
    "order", "direction", "format", "item", "product", "words", "word", "sentence", "question",
    "answer", "place", "venue", "event", "team", "player", "league", "season", "game", "movie",
    "song", "artist", "album", "book", "recipe", "ingredient", "food", "drink", "flight", "hotel", "room",
    "channel", "repo", "repository", "branch", "project", "account", "invoice", "payment", "card", "iban",
    "bic", "swift", "vat", "tax", "percent", "percentage", "ratio", "rate", "level", "priority", "role",
    "group", "department", "plan", "image", "photo", "video", "audio", "sid", "pid", "uid", "guid", "hashtag",
    "logo", "avatar", "icon", "member", "timeline",
})  # fmt: skip
_CREDENTIAL = re.compile(
    r"^(x[-_])?(authorization|auth|api[-_]?key|apikey|access[-_]?token|auth[-_]?token|bearer|secret|"
    r"client[-_]?secret|password|passwd|private[-_]?key|session[-_]?token|x[-_]api[-_]key|token|"
    r"refresh[-_]?token|id[-_]?token|authorization[-_]?code|code[-_]?verifier|nonce|otp)$",
    re.I,
)


def _is_credential(name: str) -> bool:
    return bool(_CREDENTIAL.match(name.strip()))


def _value_source(name: str, schema: Any, _depth: int = 0) -> str | None:
    """Where a realistic value for property ``name`` comes from, or None when nothing says.

    >>> _value_source("unit", {"type": "string", "enum": ["c", "f"]})
    'enum'
    >>> _value_source("when", {"type": "string", "format": "date"})
    'format'
    >>> _value_source("orderId", {"type": "string"})
    'name'
    >>> _value_source("blob", {"type": "string"}) is None
    True
    """
    if not isinstance(schema, dict):
        return None
    if "enum" in schema or "const" in schema:
        return "enum"
    if schema.get("examples") or "example" in schema or "x-example" in schema:
        return "example"
    if "default" in schema:
        return "default"
    if isinstance(schema.get("format"), str) and schema["format"]:
        return "format"
    if isinstance(schema.get("pattern"), str) and schema["pattern"]:
        return "pattern"
    types = schema.get("type")
    types = {types} if isinstance(types, str) else set(types or [])
    if "boolean" in types:
        return "boolean"
    if types & {"integer", "number"} and "minimum" in schema and "maximum" in schema:
        return "bounds"
    if _depth < 3:
        for key in ("anyOf", "oneOf"):
            alts = [a for a in schema.get(key) or [] if isinstance(a, dict)]
            if alts and all(_value_source(name, a, _depth + 1) for a in alts):
                return "alternatives"
        if "array" in types or "items" in schema:
            items = schema.get("items")
            if isinstance(items, dict) and _value_source(name, items, _depth + 1):
                return "items"
            return None
        props = schema.get("properties")
        if "object" in types or isinstance(props, dict):
            if not isinstance(props, dict) or not props:
                return None  # an opaque object: nothing says what goes in it
            required = [r for r in schema.get("required") or [] if isinstance(r, str)]
            if all(_value_source(r, props.get(r, {}), _depth + 1) for r in required):
                return "properties"
            return None
    if is_id_key(name.strip(" :-_.")):
        return "name"
    ws = {_singular(w) for w in words(name)} | set(words(name))
    if ws & _TELLING or "".join(words(name)) in _TELLING:
        return "name"
    return None


def _singular(word: str) -> str:
    """categories -> category, domains -> domain (enough to look a name up)."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word
