"""JSON Schema helpers without a model: validation messages, unknown argument names, and
deterministic synthesis of a schema-valid instance.

Tool schemas come from converted OpenAPI specs and live MCP servers, so they can be odd:
missing ``type``, ``$ref`` into ``$defs``, nullable type lists, ECMA regexes that Python
rejects.  Nothing here raises on such a schema; it degrades (a broken schema is reported
as one problem, an unsatisfiable pattern yields a best-effort string).
"""

from __future__ import annotations

import copy
import random
import re
import string
from typing import Any

import jsonschema
from jsonschema import validators

_MAX_DEPTH = 6


def _validator(schema: dict[str, Any]) -> Any:
    cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validation_errors(instance: Any, schema: dict[str, Any] | None, *, limit: int = 5) -> list[str]:
    """Human-readable validation errors (empty when valid), each with its JSON path.

    >>> validation_errors({"n": "x"}, {"type": "object", "properties": {"n": {"type": "integer"}}})
    ["$.n: 'x' is not of type 'integer'"]
    """
    if not schema:
        return []
    try:
        errors = sorted(
            _validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path)
        )
    except (jsonschema.exceptions.SchemaError, re.error, TypeError, ValueError) as e:
        return [f"the schema itself is unusable ({type(e).__name__}: {str(e)[:120]})"]
    out = []
    for e in errors[:limit]:
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        out.append(f"{path}: {e.message[:200]}")
    return out


def is_valid(instance: Any, schema: dict[str, Any] | None) -> bool:
    return not validation_errors(instance, schema, limit=1)


def schema_properties(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The declared top-level properties, following a local ``$ref`` and ``allOf``."""
    if not isinstance(schema, dict):
        return {}
    schema = resolve(schema, schema)
    props = dict(schema.get("properties") or {})
    for sub in schema.get("allOf") or []:
        props.update(schema_properties(resolve(sub, schema)))
    return props


def required_names(schema: dict[str, Any] | None) -> list[str]:
    if not isinstance(schema, dict):
        return []
    schema = resolve(schema, schema)
    req = list(schema.get("required") or [])
    for sub in schema.get("allOf") or []:
        req += [r for r in required_names(resolve(sub, schema)) if r not in req]
    return req


def unknown_argument_names(arguments: dict[str, Any], schema: dict[str, Any] | None) -> list[str]:
    """Argument names the schema does not declare (invented names), when it declares any.

    >>> unknown_argument_names({"city": "x", "colour": 1}, {"properties": {"city": {}}})
    ['colour']
    """
    props = schema_properties(schema)
    if not props:
        return []
    return [k for k in arguments if k not in props]


def resolve(node: Any, root: dict[str, Any]) -> Any:
    """Follow a local ``$ref`` (``#/...``) chain; unknown references give ``{}``."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        ref = node["$ref"]
        if not ref.startswith("#"):
            return {}
        target: Any = root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return {}
            target = target[part]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **rest} if rest and isinstance(target, dict) else target
        seen += 1
    return node


# ---------------------------------------------------------------------------------------
# Instance synthesis

_FIRST = ["Alex", "Maria", "Kenji", "Priya", "Lucas", "Amara", "Sofia", "Omar", "Lena", "Diego"]
_LAST = [
    "Morgan",
    "Rossi",
    "Tanaka",
    "Sharma",
    "Silva",
    "Okafor",
    "Novak",
    "Haddad",
    "Berg",
    "Ruiz",
]
_CITIES = [
    "Paris", "Tokyo", "Nairobi", "Toronto", "Lisbon", "Seoul", "Austin", "Berlin", "Lima", "Oslo",
    "Chicago", "Madrid", "Mumbai", "Sydney", "Cape Town", "Mexico City", "Istanbul", "Dublin",
    "Singapore", "Buenos Aires", "Vancouver", "Amsterdam", "Cairo", "Bangkok", "Denver",
    "Manchester", "Lagos", "Helsinki", "Osaka", "Boston",
]  # fmt: skip
_COUNTRIES = ["France", "Japan", "Kenya", "Canada", "Portugal", "Korea", "Brazil", "Germany"]
_WORDS = [
    "blue",
    "river",
    "quick",
    "summit",
    "harbor",
    "maple",
    "orbit",
    "lantern",
    "cedar",
    "delta",
]
_STATUSES = ["active", "pending", "confirmed", "completed"]

_FAKERS: dict[str, Any] = {}


def _fake(rng: random.Random) -> Any:
    """A Faker (``en_US``) seeded from ``rng``: realistic names, places and companies,
    deterministic for a given ``rng`` state.  ``None`` when Faker is not installed."""
    fake = _FAKERS.get("en_US")
    if fake is None:
        try:
            from faker import Faker
        except ImportError:  # pragma: no cover - a declared dependency
            return None
        fake = _FAKERS["en_US"] = Faker("en_US")
    fake.seed_instance(rng.getrandbits(64))
    return fake


def _faked(method: str, fallback: Any) -> Any:
    def make(rng: random.Random) -> str:
        fake = _fake(rng)
        return str(getattr(fake, method)()) if fake is not None else fallback(rng)

    return make


_TOPICS = [
    "quarterly budget", "team offsite", "product launch", "customer onboarding", "spring sale",
    "website redesign", "supplier contract", "hiring plan", "safety audit", "board meeting",
    "travel itinerary", "tax return", "marketing campaign", "inventory count", "release notes",
]  # fmt: skip

# Name fragments -> value makers, tried in order (first match wins).
_NAME_RULES: list[tuple[tuple[str, ...], Any]] = [
    (("email",), lambda r: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower()}@example.com"),
    (
        ("url", "uri", "link", "website", "href"),
        lambda r: f"https://example.com/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    ),
    (("phone", "mobile", "tel"), lambda r: f"+1-555-{r.randint(100, 999)}-{r.randint(1000, 9999)}"),
    (("filename", "file_name", "file", "path"),
     lambda r: r.choice(_TOPICS).replace(" ", "-") + r.choice([".pdf", ".csv", ".docx", ".png"])),
    (("first_name", "firstname", "given"), _faked("first_name", lambda r: r.choice(_FIRST))),
    (("last_name", "lastname", "surname", "family_name"), _faked("last_name", lambda r: r.choice(_LAST))),
    (("company", "organization", "organisation", "org_name", "employer", "vendor", "merchant"),
     _faked("company", lambda r: f"{r.choice(_LAST)} Ltd")),
    (("job", "occupation", "position"), _faked("job", lambda r: "engineer")),
    (("street", "address"), _faked("street_address", lambda r: f"{r.randint(1, 999)} {r.choice(_WORDS).title()} Street")),
    (("city", "town", "location", "destination", "origin"), lambda r: r.choice(_CITIES)),
    (("country_code",), _faked("country_code", lambda r: "FR")),
    (("country",), _faked("country", lambda r: r.choice(_COUNTRIES))),
    (("zip", "postal", "postcode"), _faked("postcode", lambda r: f"{r.randint(10000, 99999)}")),
    (("timezone", "time_zone"), _faked("timezone", lambda r: "Europe/Paris")),
    (("currency",), _faked("currency_code", lambda r: r.choice(["USD", "EUR", "JPY", "GBP"]))),
    (("color", "colour"), _faked("color_name", lambda r: r.choice(["red", "green", "blue", "black"]))),
    (("title", "subject", "headline", "summary"),
     lambda r: f"{r.choice(_TOPICS).capitalize()} {r.choice(['update', 'notes', 'review', 'plan', 'summary'])}"),
    (("username", "user_name", "login", "handle"), _faked("user_name", lambda r: f"{r.choice(_FIRST).lower()}{r.randint(10, 99)}")),
    (("name", "author", "owner", "customer", "contact", "recipient", "assignee"),
     _faked("name", lambda r: f"{r.choice(_FIRST)} {r.choice(_LAST)}")),
    (("hash", "checksum", "etag", "digest"), lambda r: "".join(r.choice("0123456789abcdef") for _ in range(16))),
    (("mime", "content_type", "media_type"),
     lambda r: r.choice(["application/json", "text/csv", "image/png", "audio/mpeg", "application/pdf"])),
    (("category", "genre", "kind", "type", "label", "segment"),
     lambda r: r.choice(["standard", "premium", "internal", "archived", "featured", "general", "priority"])),
    (("version",), lambda r: f"{r.randint(1, 4)}.{r.randint(0, 12)}.{r.randint(0, 9)}"),
    (("token", "cursor", "next_page", "page_token"), lambda r: "".join(r.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(12))),
    (("weekday", "day_of_week"), lambda r: r.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])),
    (("language", "lang", "locale"), lambda r: r.choice(["en", "fr", "ja", "es"])),
    (("status", "state"), lambda r: r.choice(_STATUSES)),
    (
        ("description", "message", "text", "body", "comment", "note", "content"),
        lambda r: r.choice(
            ["Notes on the {t}.", "Please review the {t} before Friday.", "Reminder about the {t}.",
             "Quick question about the {t}.", "Draft for the {t}, comments welcome."]
        ).format(t=r.choice(_TOPICS)),
    ),
    (("query", "search", "keyword", "term", "q"), lambda r: r.choice(_TOPICS)),
    (("date",), lambda r: f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"),
    (("time",), lambda r: f"{r.randint(7, 20):02d}:{r.choice(['00', '15', '30', '45'])}"),
]  # fmt: skip

_FORMATS = {
    "date": lambda r: f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    "date-time": lambda r: (
        f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(7, 20):02d}:{r.choice(['00', '30'])}:00Z"
    ),
    "time": lambda r: f"{r.randint(7, 20):02d}:{r.choice(['00', '30'])}:00Z",
    "email": lambda r: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower()}@example.com",
    "uri": lambda r: f"https://example.com/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    "url": lambda r: f"https://example.com/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    "uuid": lambda r: "-".join(
        "".join(r.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12)
    ),
    "ipv4": lambda r: f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "hostname": lambda r: f"{r.choice(_WORDS)}.example.com",
}


def is_id_key(name: str) -> bool:
    """Whether a property name looks like an identifier (``id``, ``order_id``, ``userId``)."""
    low = name.lower()
    return (
        low in ("id", "uuid", "guid")
        or low.endswith(("_id", "-id", "_uuid", "uuid"))
        or (name.endswith(("Id", "ID")) and len(name) > 2)
        # run together: roundid, userid (not valid, paid, android, squid)
        or (len(low) >= 5 and low.endswith("id") and not low.endswith(("aid", "oid", "uid", "lid")))
    )


def make_id(prefix: str, rng: random.Random) -> str:
    word = re.sub(r"[^a-z]", "", prefix.lower())[:4] or "id"
    return f"{word}_{''.join(rng.choice(string.hexdigits.lower()[:16]) for _ in range(8))}"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _types(node: dict[str, Any]) -> list[str]:
    t = node.get("type")
    if isinstance(t, list):
        return [x for x in t if x != "null"] or ["null"]
    if isinstance(t, str):
        return [t]
    if "properties" in node or "additionalProperties" in node:
        return ["object"]
    if "items" in node:
        return ["array"]
    if "enum" in node or "const" in node:
        return []
    return ["string"]


def synthesize_instance(
    schema: dict[str, Any] | None,
    *,
    rng: random.Random | None = None,
    hints: dict[str, Any] | None = None,
    name: str = "",
    optional_ratio: float = 0.5,
) -> Any:
    """A deterministic (for a given ``rng`` state) instance of ``schema``.

    ``hints`` maps property names to preferred values (used when a value for a property of
    the same normalised name validates), which lets a simulated result echo its call's
    arguments.  Optional properties are included with probability ``optional_ratio``.

    >>> synthesize_instance({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 3}}}, rng=random.Random(0))
    {'n': 3}
    """
    rng = rng or random.Random(0)
    root = schema if isinstance(schema, dict) else {}
    hint_map = {_norm(k): v for k, v in (hints or {}).items()}
    return _synth(root, root, rng, hint_map, name, 0, optional_ratio)


def _synth(
    node: Any, root: dict, rng: random.Random, hints: dict, name: str, depth: int, opt: float
) -> Any:
    node = resolve(node, root)
    if not isinstance(node, dict):
        return None
    if name and _norm(name) in hints and depth > 0:
        value = hints[_norm(name)]
        if _valid_fragment(value, node, root):
            return copy.deepcopy(value)
    if "const" in node:
        return copy.deepcopy(node["const"])
    if node.get("enum"):
        return copy.deepcopy(rng.choice(node["enum"]))
    for key in ("default", "examples", "example"):
        if key in node:
            value = node[key]
            if key == "examples" and isinstance(value, list):
                if not value:
                    continue
                value = value[0]
            if _valid_fragment(value, node, root):
                return copy.deepcopy(value)
    if node.get("allOf"):
        merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        for sub in node["allOf"]:
            sub = resolve(sub, root)
            if isinstance(sub, dict):
                for k, v in sub.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged["required"] = list(
                            dict.fromkeys((merged.get("required") or []) + list(v))
                        )
                    else:
                        merged.setdefault(k, v)
        return _synth(merged, root, rng, hints, name, depth, opt)
    for key in ("oneOf", "anyOf"):
        if node.get(key):
            options = [resolve(o, root) for o in node[key]]
            options = [
                o for o in options if isinstance(o, dict) and o.get("type") != "null"
            ] or options
            base = {k: v for k, v in node.items() if k not in ("oneOf", "anyOf")}
            choice = options[0] if isinstance(options[0], dict) else {}
            return _synth({**base, **choice}, root, rng, hints, name, depth, opt)
    types = _types(node)
    kind = types[0] if types else "string"
    if kind == "object":
        return _synth_object(node, root, rng, hints, depth, opt)
    if kind == "array":
        return _synth_array(node, root, rng, hints, name, depth, opt)
    if kind == "integer":
        return int(_synth_number(node, rng, integer=True))
    if kind == "number":
        return _synth_number(node, rng, integer=False)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _synth_string(node, rng, name)


def _valid_fragment(value: Any, node: dict, root: dict) -> bool:
    # Validate against the fragment with the root's definitions alongside, for $refs.
    frag = dict(node)
    for defs in ("$defs", "definitions", "components"):
        if defs in root and defs not in frag:
            frag[defs] = root[defs]
    return not validation_errors(value, frag, limit=1)


def _synth_object(
    node: dict, root: dict, rng: random.Random, hints: dict, depth: int, opt: float
) -> dict:
    out: dict[str, Any] = {}
    if depth >= _MAX_DEPTH:
        return out
    props = node.get("properties") or {}
    required = set(node.get("required") or [])
    for key, sub in props.items():
        if key in required or _norm(key) in hints or rng.random() < opt:
            out[key] = _synth(sub, root, rng, hints, key, depth + 1, opt)
    for key in required - set(out):
        out[key] = _synth(
            node.get("additionalProperties")
            if isinstance(node.get("additionalProperties"), dict)
            else {},
            root,
            rng,
            hints,
            key,
            depth + 1,
            opt,
        )
    min_props = node.get("minProperties") or 0
    extra = node.get("additionalProperties")
    i = 0
    while len(out) < min_props and extra is not False and i < 20:
        out[f"item_{i}"] = _synth(
            extra if isinstance(extra, dict) else {"type": "string"},
            root,
            rng,
            hints,
            "",
            depth + 1,
            opt,
        )
        i += 1
    return out


def _synth_array(
    node: dict, root: dict, rng: random.Random, hints: dict, name: str, depth: int, opt: float
) -> list:
    if depth >= _MAX_DEPTH:
        return []
    lo = int(node.get("minItems") or 0)
    hi = node.get("maxItems")
    hi = int(hi) if isinstance(hi, int) else max(lo, 2)
    count = max(lo, min(hi, rng.randint(1, 2)))
    items = node.get("items")
    if isinstance(node.get("prefixItems"), list):
        out = [_synth(s, root, rng, hints, name, depth + 1, opt) for s in node["prefixItems"]]
        return out[: max(count, len(out))]
    out = []
    singular = name[:-1] if name.endswith("s") else name
    for _ in range(count * 3):
        if len(out) >= count:
            break
        value = _synth(
            items if isinstance(items, dict) else {}, root, rng, hints, singular, depth + 1, opt
        )
        if node.get("uniqueItems") and value in out:
            continue
        out.append(value)
    return out


def _synth_number(node: dict, rng: random.Random, *, integer: bool) -> float:
    lo = node.get("minimum")
    hi = node.get("maximum")
    if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(
        node.get("exclusiveMinimum"), bool
    ):
        lo = node["exclusiveMinimum"] + (1 if integer else 0.01)
    if isinstance(node.get("exclusiveMaximum"), int | float) and not isinstance(
        node.get("exclusiveMaximum"), bool
    ):
        hi = node["exclusiveMaximum"] - (1 if integer else 0.01)
    if lo is None and hi is None:
        lo, hi = 1, 100
    elif lo is None:
        lo = min(hi, 1) if hi >= 1 else hi - 10
    elif hi is None:
        hi = lo + 100
    if hi < lo:
        hi = lo
    step = node.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        k_lo = int(-(-lo // step))
        k_hi = int(hi // step)
        k = rng.randint(k_lo, max(k_lo, k_hi))
        value = k * step
        return int(value) if integer else value
    if integer:
        import math

        return rng.randint(math.ceil(lo), max(math.ceil(lo), math.floor(hi)))
    return round(rng.uniform(lo, hi), 2)


def _synth_string(node: dict, rng: random.Random, name: str) -> str:
    fmt = node.get("format")
    value: str | None = None
    if fmt in _FORMATS:
        value = _FORMATS[fmt](rng)
    elif name and is_id_key(name):
        value = make_id(name[:-3] if name.lower().endswith("_id") else name, rng)
    elif name:
        low = name.lower()
        for fragments, maker in _NAME_RULES:
            if any(f in low for f in fragments):
                value = maker(rng)
                break
    if value is None:
        value = rng.choice(_TOPICS).capitalize()
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        value = _fit_pattern(value, pattern, rng)
    lo = int(node.get("minLength") or 0)
    hi = node.get("maxLength")
    if len(value) < lo:
        value = value + "x" * (lo - len(value))
    if isinstance(hi, int) and len(value) > hi:
        value = value[:hi]
    return value


def _fit_pattern(value: str, pattern: str, rng: random.Random) -> str:
    try:
        rx = re.compile(pattern)
    except re.error:
        return value
    if rx.search(value):
        return value
    candidates = (
        ["".join(rng.choice(string.digits) for _ in range(n)) for n in (1, 2, 3, 4, 5, 6, 8, 10)]
        + ["".join(rng.choice(string.ascii_uppercase) for _ in range(n)) for n in (2, 3)]
        + ["".join(rng.choice(string.ascii_lowercase) for _ in range(n)) for n in (3, 6)]
        + ["2025-01-15", "abc123", "ABC-123", "a1b2c3d4"]
    )
    for c in candidates:
        if rx.search(c):
            return c
    return value
