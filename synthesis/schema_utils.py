"""JSON Schema helpers without a model: validation messages, unknown argument names, and
deterministic synthesis of a schema-valid instance.

Tool schemas come from converted OpenAPI specs and live MCP servers, so they can be odd:
missing ``type``, ``$ref`` into ``$defs``, nullable type lists, ECMA regexes that Python
rejects.  Nothing here raises on such a schema; it degrades (a broken schema is reported
as one problem, an unsatisfiable pattern yields a best-effort string).
"""

from __future__ import annotations

import copy
import functools
import random
import re
import string
from typing import Any

import jsonschema
from jsonschema import validators

from synthesis import refs
from synthesis.safe_regex import PatternError, compile_pattern, safe_search

_MAX_DEPTH = 6


# Formats that OpenAPI specs use beyond JSON Schema's own (OpenAPI's int32/int64/double,
# Google's google-datetime, and spellings seen in the corpus), checked on strings like the
# standard ones: a value written for such a parameter must read as what the format says.
_ISO_DT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_CUSTOM_FORMATS: dict[str, re.Pattern[str]] = {
    **dict.fromkeys(("int32", "int64", "int16", "int8", "uint8", "uint32", "uint64", "unsigned64", "integer", "int",
                     "long", "Int32", "Uint32", "int-32", "id64", "digits"), re.compile(r"^-?\d+$")),
    **dict.fromkeys(("double", "float", "decimal", "number", "money"), re.compile(r"^-?\d+(\.\d+)?$")),
    "integer-positive": re.compile(r"^[1-9]\d*$"),
    **dict.fromkeys(("datetime", "dateTime", "google-datetime", "iso-datetime", "iso8601-date-time", "rfc3339"), _ISO_DT),
    **dict.fromkeys(("guid", "uuid4", "UUID"), re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")),
    "base64url": re.compile(r"^[A-Za-z0-9_-]*={0,2}$"),
    **dict.fromkeys(("base64", "bytes"), re.compile(r"^[A-Za-z0-9+/]*={0,2}$")),
    "date-time-rfc1123": re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$"),
    **dict.fromkeys(("unix-time", "unixtime", "timestamp"), re.compile(r"^\d{9,13}$")),
    "google-duration": re.compile(r"^-?\d+(\.\d+)?s$"),
    **dict.fromkeys(("iso-country-code", "country-code-2", "countrycode"), re.compile(r"^[A-Z]{2}$")),
    "country-code-3": re.compile(r"^[A-Z]{3}$"),
    **dict.fromkeys(("ISO4217", "iso-currency-code"), re.compile(r"^[A-Z]{3}$")),
    "http-method": re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)$"),
    "slug": re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$"),
    **dict.fromkeys(("phone", "phone-number", "e164_phone_number", "+E.164"), re.compile(r"^\+?[0-9 ()-]{7,20}$")),
    "md5": re.compile(r"^[0-9a-f]{32}$"),
    "Y-m-d": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "ISODate": re.compile(r"^\d{4}-\d{2}-\d{2}"),
}
_FORMAT_CHECKER: Any = None
# JSON Schema's own formats that jsonschema checks only with optional packages (not
# installed here): checked by these, as RFC 3339 / RFC 3986 say.
_RFC3339_DT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_RFC3339_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _is_datetime(v: str) -> bool:
    from datetime import datetime

    if not _RFC3339_DT.match(v):
        return False
    try:
        datetime.fromisoformat(v.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_time(v: str) -> bool:
    if not _RFC3339_TIME.match(v):
        return False
    h, m, sec = int(v[:2]), int(v[3:5]), int(v[6:8])
    return h < 24 and m < 60 and sec < 61


_STANDARD_CHECKS: dict[str, Any] = {
    "date-time": _is_datetime,
    "time": _is_time,
    "uri": lambda v: bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$", v)),
    "iri": lambda v: bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$", v)),
    "url": lambda v: bool(re.match(r"^https?://[^\s/$.?#][^\s]*$", v)),
    "uri-reference": lambda v: not re.search(r"\s", v),
    "iri-reference": lambda v: not re.search(r"\s", v),
    "hostname": lambda v: bool(re.match(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$", v)),
    "duration": lambda v: bool(re.match(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$", v)),
    "byte": lambda v: bool(re.match(r"^[A-Za-z0-9+/]*={0,2}$", v)) and len(v) % 4 == 0,
    "json-pointer": lambda v: v == "" or v.startswith("/"),
}


def _format_checker() -> Any:
    global _FORMAT_CHECKER
    if _FORMAT_CHECKER is None:
        checker = copy.deepcopy(jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for name, rx in _CUSTOM_FORMATS.items():
            checker.checks(name)(lambda v, rx=rx: not isinstance(v, str) or bool(rx.search(v)))
        for name, check in _STANDARD_CHECKS.items():
            if name not in checker.checkers:
                checker.checks(name)(lambda v, check=check: not isinstance(v, str) or check(v))
        for alias, canonical in _FORMAT_ALIASES.items():
            if alias not in checker.checkers and canonical in checker.checkers:
                checker.checkers[alias] = checker.checkers[canonical]
        _FORMAT_CHECKER = checker
    return _FORMAT_CHECKER


def _safe_pattern(validator: Any, patrn: str, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not safe_search(patrn, instance):
        yield jsonschema.ValidationError(f"{instance[:200]!r} does not match {patrn[:200]!r}")


def _safe_pattern_properties(validator: Any, pattern_properties: dict, instance: Any, schema: dict) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for k, v in instance.items():
            if safe_search(pattern, k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


@functools.cache
def _safe_validator_class(cls: Any) -> Any:
    """``cls`` with its regex keywords on :mod:`synthesis.safe_regex`: a spec's pattern runs
    against model output, and ``re``'s backtracking could hang the worker."""
    return validators.extend(cls, {"pattern": _safe_pattern, "patternProperties": _safe_pattern_properties})


def _validator(schema: dict[str, Any]) -> Any:
    cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return _safe_validator_class(cls)(schema, format_checker=_format_checker())


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


def pointer_target(ref: str, root: dict[str, Any]) -> Any:
    """What a local ``$ref`` (``#/$defs/x``) points at in ``root``, or ``refs.MISSING``."""
    return refs.target(ref, root)


def resolve(node: Any, root: dict[str, Any]) -> Any:
    """Follow a local ``$ref`` (``#/...``) chain; unknown references give ``{}``."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        target = pointer_target(node["$ref"], root)
        if target is refs.MISSING:
            return {}
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
    # a response's own "$schema" / "$id" / "@context" is the address of its schema, not a topic
    # ("$schema": "Inventory count")
    (("$schema", "$id", "@context"), lambda r: f"https://example.com/schemas/{r.choice(_WORDS)}.json"),
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
    (("hash", "checksum", "etag", "digest"), lambda r: _hex(r, 16)),
    (("mime", "content_type", "media_type"),
     lambda r: r.choice(["application/json", "text/csv", "image/png", "audio/mpeg", "application/pdf"])),
    (("category", "genre", "kind", "type", "label", "segment"),
     lambda r: r.choice(["standard", "premium", "internal", "archived", "featured", "general", "priority"])),
    (("version",), lambda r: f"{r.randint(1, 4)}.{r.randint(0, 12)}.{r.randint(0, 9)}"),
    (("token", "cursor", "next_page", "page_token", "starting_after", "ending_before", "startingafter", "endingbefore"), lambda r: "".join(r.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(12))),
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
    # "school_number": "Supplier contract" read off a tool result; a number is digits
    (("number",), lambda r: str(r.randint(1000, 99999))),
    # a code or a record's key ("TeamBKey": "Customer onboarding") is a short code
    (("code", "abbr", "symbol", "ticker"), lambda r: _code(r)),
]  # fmt: skip

# Key shapes a fragment cannot name (a prefix, a suffix), tried before the fragments.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_KEY_SHAPE_RULES: list[tuple[re.Pattern[str], Any]] = [
    # a flag typed as a string ("isDead": "Supplier contract")
    (re.compile(r"^(?:is|has|can|should)[A-Z_]"), lambda r: r.choice(["true", "false"])),
    # a record's key ("TeamBKey": "Customer onboarding"), not a credential
    (re.compile(r"^(?!.*(?:api|secret|private|access)).*(?:_key|.Key)$", re.I), lambda r: _code(r)),
    # a month or a weekday typed as a string ("month": "Taiwan" was one)
    (re.compile(r"^(?:[a-z]+_)?month(?:name)?$", re.I), lambda r: r.choice(_MONTHS)),
    (re.compile(r"^(?:day_?of_?(?:the_?)?week|week_?day)$", re.I), lambda r: r.choice(_WEEKDAYS)),
    # when a thing happened (created_at, updatedAt): "Customer onboarding" was one
    (WHEN_KEY_RX := re.compile(r"(?:_at|[a-z]At)$"), lambda r: _FORMATS["date-time"](r)),
]


def _code(r: random.Random) -> str:
    return "".join(r.choice(string.ascii_uppercase) for _ in range(3))


def _hex(r: random.Random, n: int) -> str:
    return "".join(r.choice("0123456789abcdef") for _ in range(n))

def _b64(r: random.Random) -> str:
    import base64

    return base64.b64encode(" ".join(r.choice(_WORDS) for _ in range(3)).encode()).decode()


_FORMATS = {
    "date": lambda r: f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    "date-time": lambda r: (
        f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(7, 20):02d}:{r.choice(['00', '15', '30', '45'])}:00Z"
    ),
    "time": lambda r: f"{r.randint(7, 20):02d}:{r.choice(['00', '30'])}:00Z",
    "email": lambda r: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower()}@example.com",
    "idn-email": lambda r: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower()}@example.com",
    "uri": lambda r: f"https://example.com/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    "url": lambda r: f"https://example.com/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    "iri": lambda r: f"https://example.com/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    "uri-reference": lambda r: f"/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    "iri-reference": lambda r: f"/{r.choice(_WORDS)}/{r.randint(1, 999)}",
    "uri-template": lambda r: f"https://example.com/{r.choice(_WORDS)}/{{id}}",
    "uuid": lambda r: "-".join(
        "".join(r.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12)
    ),
    "ipv4": lambda r: f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "ip": lambda r: f"10.0.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "ipv6": lambda r: "2001:db8::" + format(r.randint(1, 0xFFFF), "x"),
    "hostname": lambda r: f"{r.choice(_WORDS)}.example.com",
    "idn-hostname": lambda r: f"{r.choice(_WORDS)}.example.com",
    "byte": _b64,
    "binary": lambda r: f"{r.choice(_TOPICS).replace(' ', '-')}.pdf",
    "password": lambda r: r.choice(_WORDS).capitalize() + r.choice("!#%&") + str(r.randint(100, 999)) + r.choice(_WORDS),
    "int32": lambda r: str(r.randint(1, 500)),
    "int64": lambda r: str(r.randint(1000, 999999)),
    "integer": lambda r: str(r.randint(1, 500)),
    "float": lambda r: f"{r.randint(1, 99)}.{r.randint(0, 99):02d}",
    "double": lambda r: f"{r.randint(1, 99)}.{r.randint(0, 99):02d}",
    "number": lambda r: f"{r.randint(1, 99)}.{r.randint(0, 99):02d}",
    "decimal": lambda r: f"{r.randint(1, 99)}.{r.randint(0, 99):02d}",
    "duration": lambda r: r.choice(["P1D", "PT30M", "PT2H", "P7D", "P1M"]),
    "json-pointer": lambda r: f"/{r.choice(_WORDS)}/{r.randint(0, 9)}",
    "relative-json-pointer": lambda r: f"{r.randint(0, 3)}/{r.choice(_WORDS)}",
    "regex": lambda r: "^[a-z]+$",
    "unix-time": lambda r: str(r.randint(1_700_000_000, 1_760_000_000)),
    "timestamp": lambda r: str(r.randint(1_700_000_000, 1_760_000_000)),
    "currency": lambda r: r.choice(["USD", "EUR", "JPY", "GBP"]),
    "country-code": lambda r: r.choice(["FR", "JP", "KE", "CA", "PT", "DE", "BR"]),
    "language": lambda r: r.choice(["en", "fr", "ja", "es", "de"]),
    "phone": lambda r: f"+1-555-{r.randint(100, 999)}-{r.randint(1000, 9999)}",
    "base64url": lambda r: _b64(r).rstrip("=").replace("+", "-").replace("/", "_"),
    "date-time-rfc1123": lambda r: (
        f"{r.choice(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])}, {r.randint(1, 28):02d} "
        f"{r.choice(['Jan', 'Mar', 'Jun', 'Sep', 'Nov'])} 2025 {r.randint(7, 20):02d}:00:00 GMT"
    ),
    "google-duration": lambda r: f"{r.choice([30, 60, 300, 3600])}s",
    "http-method": lambda r: r.choice(["GET", "POST", "PUT", "DELETE"]),
    "slug": lambda r: r.choice(_TOPICS).replace(" ", "-"),
    "integer-positive": lambda r: str(r.randint(1, 500)),
    "country-code-3": lambda r: r.choice(["FRA", "JPN", "KEN", "CAN", "PRT", "DEU"]),
    "iso-currency-code": lambda r: r.choice(["USD", "EUR", "JPY", "GBP"]),
    "md5": lambda r: _hex(r, 32),
    "google-fieldmask": lambda r: r.choice(["name", "name,description", "title,updateTime"]),
    "email-address": lambda r: f"{r.choice(_FIRST).lower()}@example.com",
    "person-name": _faked("name", lambda r: f"{r.choice(_FIRST)} {r.choice(_LAST)}"),
    "city-name": lambda r: r.choice(_CITIES),
    "street-address": _faked("street_address", lambda r: f"{r.randint(1, 999)} {r.choice(_WORDS).title()} Street"),
    "postal-code": _faked("postcode", lambda r: f"{r.randint(10000, 99999)}"),
    "organization-name": _faked("company", lambda r: f"{r.choice(_LAST)} Ltd"),
    "color": lambda r: r.choice(["#1f6feb", "#d73a49", "#2da44e", "red", "blue"]),
    "timezone": lambda r: r.choice(["Europe/Paris", "America/New_York", "Asia/Tokyo"]),
    "locale": lambda r: r.choice(["en-US", "fr-FR", "ja-JP"]),
    "bcp-47": lambda r: r.choice(["en-US", "fr-FR", "ja-JP"]),
    "mime-type": lambda r: r.choice(["application/json", "text/csv", "image/png"]),
}
# Other spellings of the formats above.
_FORMAT_ALIASES = {
    "datetime": "date-time", "dateTime": "date-time", "google-datetime": "date-time", "iso-datetime": "date-time",
    "iso8601-date-time": "date-time", "rfc3339": "date-time", "guid": "uuid", "uuid4": "uuid", "UUID": "uuid",
    "int16": "int32", "int8": "int32", "uint8": "int32", "uint32": "int32", "Uint32": "int32", "Int32": "int32",
    "int-32": "int32", "int": "int32", "uint64": "int64", "unsigned64": "int64", "long": "int64", "id64": "int64",
    "digits": "int64", "money": "decimal", "unixtime": "unix-time", "iso-country-code": "country-code",
    "country-code-2": "country-code", "countrycode": "country-code", "ISO4217": "currency",
    "phone-number": "phone", "e164_phone_number": "phone", "+E.164": "phone", "bytes": "byte", "base64": "byte",
    "URL": "url", "link": "url", "uriref": "uri-reference", "host-name": "hostname", "Y-m-d": "date",
    "ISODate": "date", "Duration": "duration", "emailAddress": "email", "mimetype": "mime-type",
    "field-mask": "google-fieldmask", "ip": "ipv4",
}  # fmt: skip
for _alias, _canonical in _FORMAT_ALIASES.items():
    _FORMATS.setdefault(_alias, _FORMATS[_canonical])


def is_id_key(name: str) -> bool:
    """Whether a property name looks like an identifier (``id``, ``order_id``, ``userId``)."""
    low = name.lower()
    return (
        # the short ones APIs use: pid (page, process), uid, gid, cid, tid, ...
        low in ("id", "uuid", "guid", "sid", "pid", "uid", "gid", "cid", "tid", "oid", "rid", "fid", "eid", "vid")
        or low.endswith(("_id", "-id", "_uuid", "uuid"))
        or (name.endswith(("Id", "ID")) and len(name) > 2)
        # run together: roundid, userid (not valid, paid, android, squid)
        or (len(low) >= 5 and low.endswith("id") and not low.endswith(("aid", "oid", "uid", "lid")))
    )


def make_id(prefix: str, rng: random.Random) -> str:
    """An id for a thing called ``prefix``: ``ord_4f2a91c0`` for an order; a bare ``id``,
    which says nothing of its thing, gets a 24-digit hex object id, as many APIs use (a
    teacher "id_1ad9d08f" read like a template).

    >>> make_id("order", random.Random(0))[:5], len(make_id("id", random.Random(0)))
    ('orde_', 24)
    """
    word = re.sub(r"[^a-z]", "", prefix.lower())[:4]
    if word in ("", "id"):
        return _hex(rng, 24)
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
        return int(_synth_number(node, rng, integer=True, name=name))
    if kind == "number":
        return _synth_number(node, rng, integer=False, name=name)
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


# Name fragments -> the range a person would use, when the schema leaves it open.
_NUMBER_RULES: list[tuple[tuple[str, ...], tuple[float, float]]] = [
    (("page",), (1, 5)),
    (("limit", "per_page", "perpage", "page_size", "pagesize", "max_results", "maxresults", "count", "size", "top"),
     (5, 50)),
    (("offset", "skip", "start"), (0, 40)),
    (("year",), (2018, 2025)),
    (("month",), (1, 12)),
    (("day",), (1, 28)),
    (("hour",), (0, 23)),
    (("minute", "second"), (0, 59)),
    (("age",), (18, 80)),
    (("lat",), (-60, 70)),
    (("lon", "lng"), (-170, 170)),
    (("amount", "price", "cost", "total", "balance", "fee", "budget", "salary"), (5, 500)),
    (("quantity", "qty", "guests", "adults", "people", "seats", "rooms", "nights", "days"), (1, 6)),
    (("rating", "stars", "score"), (1, 5)),
    (("percent", "discount"), (5, 50)),
    (("timestamp", "epoch", "_at", "time", "since", "until"), (1_700_000_000, 1_760_000_000)),
    (("id",), (100, 99999)),
]


def _synth_number(node: dict, rng: random.Random, *, integer: bool, name: str = "") -> float:
    lo = node.get("minimum")
    hi = node.get("maximum")
    low_name = name.lower()
    for fragments, (a, b) in _NUMBER_RULES if name else []:
        if any(f in low_name for f in fragments) or (fragments == ("id",) and is_id_key(name)):
            # the usual range, inside whatever bounds the schema sets
            if (lo is None or b >= lo) and (hi is None or a <= hi):
                lo = a if lo is None else max(lo, a)
                hi = b if hi is None else min(hi, b)
            break
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


# What a ``*name`` parameter names, read off the key's prefix (``project_name``) or, for a
# bare ``name``, the schema's description.  People get a person's name; things get a name
# a person would give that kind of thing, never "Amy Hernandez" for an emoji or a repository.
_PERSON_WORDS = (
    "person", "people", "user", "customer", "contact", "author", "owner", "recipient", "assignee",
    "member", "employee", "display", "full", "nick", "patient", "guest", "passenger", "traveler",
    "traveller", "student", "candidate", "driver", "sender", "speaker", "agent", "manager", "his", "her",
)  # fmt: skip
_EMOJI_WORDS = ("emoji", "reaction", "emoticon")
_SLUG_WORDS = (
    "repo", "repository", "bucket", "channel", "branch", "slug", "app", "package", "service", "host",
    "cluster", "database", "table", "index", "queue", "topic", "function", "container", "image",
    "namespace", "environment", "secret", "key", "tag", "label", "field", "column", "variable", "bot",
    "resource", "stack", "pipeline", "workflow", "job", "webhook", "zone", "region", "instance", "volume",
    "watcher", "monitor", "gateway", "vault", "server", "network", "registry", "disk", "vm", "machine", "subnet",
    "endpoint", "domain", "node", "pool", "snapshot", "deployment", "certificate", "policy", "rule", "schema",
)  # fmt: skip
# Of those, what a machine runs or holds; their names follow the operators' conventions.
_HOSTED_WORDS = frozenset((
    "bucket", "service", "host", "cluster", "database", "queue", "function", "container", "namespace",
    "resource", "stack", "pipeline", "instance", "volume", "watcher", "monitor", "gateway", "vault", "server",
    "network", "registry", "disk", "vm", "machine", "subnet", "endpoint", "node", "pool", "snapshot",
    "deployment", "certificate", "app",
))  # fmt: skip
_WORKLOADS = ["billing", "webshop", "payroll", "analytics", "checkout", "inventory", "crm", "reporting", "search"]
_ENVIRONMENTS = ["prod", "dev", "staging", "test"]
_TITLE_WORDS = (
    "project", "team", "board", "list", "folder", "playlist", "album", "campaign", "group", "workspace",
    "event", "product", "course", "page", "document", "doc", "report", "dashboard", "task", "template",
    "form", "survey", "plan", "store", "shop", "site", "collection", "meeting", "calendar", "sheet",
    "spreadsheet", "note", "card", "issue", "ticket", "milestone", "room", "space", "segment", "audience",
)  # fmt: skip
_EMOJI = ["thumbsup", "tada", "eyes", "rocket", "white_check_mark", "heart", "raised_hands", "fire"]


def _entity_of(key: str, node: dict) -> str | None:
    """The kind of thing a ``*name`` parameter names, or ``None`` when nothing says.

    >>> _entity_of("projectName", {}), _entity_of("display_name", {}), _entity_of("name", {})
    ('project', 'person', None)
    >>> _entity_of("name", {"description": "Reaction (emoji) name."})
    'emoji'
    >>> _entity_of("name", {"description": "The name of the repository."})
    'repository'
    >>> _entity_of("resourceGroupName", {}), _entity_of("networkWatcherName", {}), _entity_of("customer_name", {})
    ('resource', 'watcher', 'person')
    >>> _entity_of("connectionMonitorName", {}), _entity_of("userGroupName", {}), _entity_of("fooName", {})
    ('monitor', 'group', 'resource')
    """
    cut = key.lower().rfind("name")
    head = key[:cut] if cut > 0 else ""
    # the prefix's words, last (the head noun) first: "networkWatcher" -> watcher, network
    prefix = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", head)][::-1]
    words = prefix or re.findall(r"[a-z]+", str(node.get("description") or node.get("title") or "").lower())

    def singular(word: str) -> str:
        return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word

    if prefix and any(singular(w) in _SLUG_WORDS for w in prefix):
        # a thing a machine hosts ("resourceGroupName", "networkWatcherName") has a slug
        return next(singular(w) for w in prefix if singular(w) in _SLUG_WORDS)
    for word in words:
        w = singular(word)
        if w in _PERSON_WORDS:
            return "person"
        if w in _EMOJI_WORDS:
            return "emoji"
        if w in _SLUG_WORDS or w in _TITLE_WORDS:
            return w
    if prefix and prefix[0].isalpha() and len(prefix[0]) > 2:
        # a name of some other thing ("watcherName"): not a person's, so a slug
        return "resource"
    return None


def _entity_name(key: str, node: dict, rng: random.Random) -> str | None:
    """A value for a ``*name`` parameter that names a thing; ``None`` for a person's name
    (or when nothing says what it names).

    >>> r = random.Random(0)
    >>> _entity_name("name", {"description": "Reaction (emoji) name."}, r) in _EMOJI
    True
    >>> _entity_name("repo_name", {}, r).islower(), _entity_name("project_name", {}, r)[0].isupper()
    (True, True)
    >>> _entity_name("customer_name", {}, r) is None
    True
    """
    entity = _entity_of(key, node)
    if entity in (None, "person"):
        return None
    if entity == "emoji":
        return rng.choice(_EMOJI)
    if entity in _HOSTED_WORDS:
        # what a machine runs is named the way operators name it: the workload, the kind of
        # thing and the environment ("rg-billing-prod", "payroll-watcher-staging"), not a
        # topic ("tax-return" as a network watcher)
        app, env = rng.choice(_WORKLOADS), rng.choice(_ENVIRONMENTS)
        if re.search(r"resource_?group", key, re.I):
            return f"rg-{app}-{env}"
        return f"{app}-{env}" if entity == "resource" else f"{app}-{entity}-{env}"
    topic = rng.choice(_TOPICS)
    if entity in _SLUG_WORDS:
        return topic.replace(" ", "-")
    return topic.capitalize()


def _described_as_id(node: dict) -> bool:
    """Whether the schema's description says the value is an identifier.

    >>> _described_as_id({"description": "The page ID."}), _described_as_id({"description": "Unique identifier of the file"})
    (True, True)
    >>> _described_as_id({"description": "Name of the page, not its ID"})
    False
    """
    desc = str(node.get("description") or "")
    return bool(re.match(r"\s*(?:the\s+|a\s+|an\s+)?(?:unique\s+)?(?:[a-z]+\s+)?(?:id|identifier|uuid)\b", desc, re.I))


_LISTING_RX = re.compile(
    r"\b(one of|one or more of|values|(?:valid|possible|allowed|accepted|supported) values?|must be|can be|either"
    r"|options)\b", re.I)
_BULLET_RX = re.compile(r"^[ \t]*[*\-\u2022][ \t]")
_LISTED_RX = re.compile(r"^[ \t]*[*\-\u2022][ \t]*`?([A-Za-z0-9_.:/+-]{1,40})`?[ \t]*(?:[:\-\u2013\u2014(].*)?$")


def described_values(node: dict) -> list[str]:
    """The values a string's description lists as the ones it takes, where the schema has no
    ``enum`` (APIs.guru specs often write the enum as a bulleted list in prose): a bulleted
    block right after a line that says so, every bullet a single value.

    >>> described_values({"description": "Set to one of the following values:\\n* ONECLICK\\n* RECURRING\\n* PAYOUT"})
    ['ONECLICK', 'RECURRING', 'PAYOUT']
    >>> described_values({"description": "**Values**:\\n\\n- `Month`\\n\\n- `Year` (default)"})
    ['Month', 'Year']
    >>> described_values({"description": "Notes:\\n* Use this wisely\\n* Or not"})
    []
    >>> described_values({"description": "One of the following:\\n- Draft\\n- Pending Activation"})  # not all single values
    []
    >>> described_values({"description": "The ID is formed per type:\\n- hangout: not set\\n- meet: the code"})
    []
    """
    if node.get("enum"):
        return []
    lines = str(node.get("description") or "").splitlines()
    for i, line in enumerate(lines):
        if not _LISTING_RX.search(line) or _BULLET_RX.match(line):
            continue
        block: list[str] = []
        for nxt in lines[i + 1 :]:
            if _BULLET_RX.match(nxt):
                block.append(nxt)
            elif nxt.strip():
                break
        values = [m.group(1) for b in block if (m := _LISTED_RX.match(b))]
        if block and len(values) == len(block) and 2 <= len(values) <= 40:
            return list(dict.fromkeys(values))
    return []


def _synth_string(node: dict, rng: random.Random, name: str) -> str:
    """A realistic string for a parameter called ``name`` that validates against ``node``
    (format, pattern and length bounds); :class:`NoValidValue` when none can be made."""
    fmt = node.get("format")
    value: str | None = None
    listed = described_values(node)
    if listed and not fmt:
        value = rng.choice(listed)
    elif fmt in _FORMATS:
        value = _FORMATS[fmt](rng)
    elif name and (ids := re.fullmatch(r"(.+?)[_-]?(?:ids|Ids|IDs)", name)):
        # a list of ids in one string ("variable_ids": "Marketing campaign" was one)
        value = ",".join(make_id(ids.group(1), rng) for _ in range(2))
    elif name and (is_id_key(name) or _described_as_id(node)):
        value = make_id(name[:-3] if name.lower().endswith("_id") else name, rng)
    elif name and (shaped := next((make for rx, make in _KEY_SHAPE_RULES if rx.search(name)), None)):
        value = shaped(rng)
    elif name:
        low = name.lower()
        for fragments, maker in _NAME_RULES:
            if any(f in low for f in fragments):
                if "name" in fragments and "name" in low:
                    value = _entity_name(name, node, rng)
                value = value if value is not None else maker(rng)
                break
    if value is None:
        value = rng.choice(_TOPICS).capitalize()
    lo = int(node.get("minLength") or 0)
    hi = node.get("maxLength") if isinstance(node.get("maxLength"), int) else None
    if hi is not None and hi < lo:
        raise NoValidValue(f"maxLength {hi} is below minLength {lo}")
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        return pattern_value(pattern, rng, hint=_fit_length(value, lo, hi, rng), min_length=lo, max_length=hi)
    value = _fit_length(value, lo, hi, rng)
    if fmt and not is_valid(value, {"type": "string", "format": fmt}):
        raise NoValidValue(f"no value of length {lo}..{hi} has format {fmt!r}")
    return value


def _fit_length(value: str, lo: int, hi: int | None, rng: random.Random) -> str:
    if len(value) < lo:
        value = value + "".join(rng.choice(string.ascii_lowercase) for _ in range(lo - len(value)))
    if hi is not None and len(value) > hi:
        cut = value[:hi]
        value = cut.rsplit(" ", 1)[0] if " " in cut and len(cut.rsplit(" ", 1)[0]) >= max(lo, 1) else cut
    return value


# ---------------------------------------------------------------------------------------
# Strings that match a pattern


class NoValidValue(ValueError):
    """No value satisfying the schema could be made (an unsatisfiable ``pattern``, or
    bounds that contradict each other).  Callers reject what needed the value rather than
    use one that does not validate."""


_READABLE_WORD = string.ascii_lowercase * 3 + string.digits
_READABLE_ANY = string.ascii_lowercase * 2 + string.digits
_POOL = string.ascii_letters + string.digits + "-_."


def _pattern_tree() -> Any:
    import re._parser as parser  # the regex parser of the standard library (sre_parse)

    return parser


def regex_example(pattern: str, rng: random.Random, *, max_repeat: int = 6) -> str:
    """A short, readable string matched by ``pattern`` (Python ``re`` syntax), built from the
    standard library's own parse of it: repeats are kept small, ``\\w``/``.`` take lower-case
    letters and digits, negated classes take readable characters.  Deterministic for a
    given ``rng`` state.  Anchors and lookarounds are not checked here: callers verify with
    ``re.search`` (:func:`pattern_value`).

    >>> regex_example(r"^[A-Z]{2}-\\d{4}$", random.Random(1))
    'SZ-4177'
    """
    parser = _pattern_tree()
    from re import _constants as c

    groups: dict[int, str] = {}

    def chars_of(items: Any) -> list[str]:
        out: list[str] = []
        negate = False
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                out.append(chr(av))
            elif op is c.RANGE:
                lo, hi = av
                if hi - lo > 200:  # a unicode range: its ASCII part, else its start
                    ascii_part = [chr(i) for i in range(lo, min(hi, 126) + 1) if chr(i).isalnum()]
                    out += ascii_part or [chr(i) for i in range(lo, lo + 26)]
                else:
                    out += [chr(i) for i in range(lo, hi + 1)]
            elif op is c.CATEGORY:
                out += list(_category(av))
        if negate:
            banned = set(out)
            return [ch for ch in _POOL if ch not in banned] or [
                chr(i) for i in range(33, 127) if chr(i) not in banned
            ]
        return out

    def _category(cat: Any) -> str:
        return {
            c.CATEGORY_DIGIT: string.digits,
            c.CATEGORY_NOT_DIGIT: string.ascii_lowercase,
            c.CATEGORY_SPACE: " ",
            c.CATEGORY_NOT_SPACE: _READABLE_WORD,
            c.CATEGORY_WORD: _READABLE_WORD,
            c.CATEGORY_NOT_WORD: "-",
        }.get(cat, string.ascii_lowercase)

    def build(items: Any) -> str:
        out = []
        for op, av in items:
            if op is c.LITERAL:
                out.append(chr(av))
            elif op is c.NOT_LITERAL:
                out.append(next(ch for ch in _POOL if ch != chr(av)))
            elif op is c.ANY:
                out.append(rng.choice(_READABLE_ANY))
            elif op is c.IN:
                choices = chars_of(av)
                out.append(rng.choice(choices) if choices else "")
            elif op is c.CATEGORY:
                out.append(rng.choice(_category(av)))
            elif op is c.BRANCH:
                out.append(build(rng.choice(av[1])))
            elif op is c.SUBPATTERN:
                gid, _, _, sub = av
                text = build(sub)
                if gid:
                    groups[gid] = text
                out.append(text)
            elif op is getattr(c, "ATOMIC_GROUP", None):
                out.append(build(av))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                lo, hi, sub = av
                top = lo + max_repeat if hi == c.MAXREPEAT else min(hi, lo + max_repeat)
                times = rng.randint(lo, max(lo, top))
                out.append("".join(build(sub) for _ in range(times)))
            elif op is c.GROUPREF:
                out.append(groups.get(av, ""))
            elif op is c.ASSERT:
                out.append(build(av[1]) if av[0] >= 0 else "")
            elif op is c.GROUPREF_EXISTS:
                gid, yes, no = av
                out.append(build(yes) if gid in groups else (build(no) if no else ""))
            # AT (anchors), ASSERT_NOT: nothing to emit
        return "".join(out)

    return build(parser.parse(pattern))


def pattern_value(
    pattern: str, rng: random.Random, *, hint: str | None = None, min_length: int = 0, max_length: int | None = None
) -> str:
    """A value that ``re.search(pattern, value)`` accepts (JSON Schema's reading of
    ``pattern``) within the length bounds: ``hint`` (a realistic value for the parameter's
    name) when it already matches, else a short generated match.  Raises
    :class:`NoValidValue` when none can be made.

    >>> pattern_value(r"^\\d{5}$", random.Random(0), hint="Lisbon")
    '60487'
    >>> pattern_value(r"^[a-z]+$", random.Random(0), hint="lisbon")
    'lisbon'
    >>> pattern_value(r"^[-\\w.]+$", random.Random(0), hint="Holiday planning")
    'holiday-planning'
    """
    try:
        rx = compile_pattern(pattern)  # the hint may be model output: bounded-time matching
    except PatternError as exc:
        raise NoValidValue(str(exc)) from None

    def fits(v: str) -> bool:
        return rx.search(v) and len(v) >= min_length and (max_length is None or len(v) <= max_length)

    if hint is not None:
        # the hint, else its slug ("Holiday planning" -> "holiday-planning" for ^[-\w.]+$)
        for h in dict.fromkeys([hint, re.sub(r"\s+", "-", hint.strip()).lower()]):
            if fits(h):
                return h
    found: list[str] = []
    for k in range(24):
        try:
            v = regex_example(pattern, rng, max_repeat=2 + k // 4)
        except (RecursionError, ValueError, KeyError, IndexError, TypeError):
            break
        if len(v) < min_length and not rx.fullmatch(v):
            v = v + "".join(rng.choice(string.ascii_lowercase) for _ in range(min_length - len(v)))
        if fits(v):
            found.append(v)
            if len(found) >= 5:
                break
    if found:
        # the shortest of a few readable candidates, but not a degenerate one-character value
        return min(found, key=lambda v: (len(v) < 3, len(v)))
    raise NoValidValue(f"no value of length {min_length}..{max_length} matches pattern {pattern[:80]!r}")
