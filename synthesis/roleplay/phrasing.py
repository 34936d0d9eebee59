"""Plain-language requests and answers built from tool calls, without a model.

The role-play asks the model to write the user's request and the agent's final answer.
A small model often cannot (it writes ``GET /api/users/{id}`` or echoes the raw tool
output), so every such text is checked (:mod:`values`) and, when it fails, replaced by
the one built here from the same calls: grammatical, mentioning every value, naming no
tool.  The model's text is kept whenever it passes, so large models give varied prose and
small ones still give usable data.  The step's ``meta`` records which source was used.

>>> tool = {"name": "getForecast", "description": "Returns the weather forecast for a city."}
>>> request_text([{"name": "getForecast", "arguments": {"city": "Lisbon", "days": 3}}], [tool], random.Random(1))
'Could you get the weather forecast for Lisbon for 3 days?'
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from synthesis import records
from synthesis.schema_utils import is_id_key

VERBS = {
    "get", "list", "create", "update", "delete", "remove", "add", "send", "search", "find",
    "fetch", "retrieve", "return", "show", "set", "check", "cancel", "upload", "download",
    "post", "book", "schedule", "generate", "convert", "calculate", "validate", "verify",
    "start", "stop", "run", "register", "subscribe", "unsubscribe", "invite", "assign",
    "publish", "translate", "lookup", "query", "count", "export", "import", "approve",
    "reject", "enable", "disable", "reset", "replace", "move", "copy", "rename", "archive",
    "restore", "track", "compute", "estimate", "analyze", "analyse", "detect", "extract",
    "parse", "submit", "modify", "edit", "change", "tag", "mark", "invoke", "execute",
    "trigger", "request", "obtain", "read", "write", "save", "load", "describe", "patch",
    "put", "provide", "display", "resolve", "apply", "attach", "detach", "close",
    "open", "pause", "resume", "refresh", "revoke", "grant", "confirm", "accept", "decline",
    "link", "unlink", "sync", "merge", "split", "share", "order", "pay", "charge", "refund",
    "transfer", "notify", "monitor", "test", "ping", "upsert", "insert", "view",
}  # fmt: skip
VERBS |= {
    "place", "make", "build", "plan", "reserve", "rent", "buy", "sell", "purchase", "join",
    "leave", "follow", "unfollow", "like", "comment", "reply", "vote", "rate", "review", "sign",
    "login", "logout", "authenticate", "authorize", "browse", "filter", "sort", "predict",
    "recommend", "suggest", "classify", "summarize", "summarise", "transcribe", "scan", "print",
    "render", "preview", "encode", "decode", "encrypt", "decrypt", "hash", "compress", "shorten",
    "geocode", "route", "ship", "deliver", "dispatch", "receive", "claim", "redeem", "issue",
    "renew", "extend", "upgrade", "downgrade", "activate", "deactivate", "block", "unblock",
    "ban", "mute", "report", "flag", "pin", "star", "watch", "fork", "clone", "deploy", "lint",
    "install", "configure", "provision", "scale", "backup", "migrate", "clear", "purge",
    "flush", "increment", "decrement", "allocate", "release", "lock", "unlock", "hold", "retry",
    "skip", "label", "look", "identify", "initiate", "finalize", "download",
}  # fmt: skip
VERBS |= {"perform", "introspect", "inspect", "play", "pause", "favourite", "favorite", "unfeature", "feature",
          "suspend", "unsuspend", "bookmark", "mute", "unmute", "approve", "lookup", "locate", "fix", "ask", "tell",
          "give", "take", "use", "keep", "see", "try", "turn", "bring", "hide", "enroll", "answer", "explain",
          "fill", "store", "push", "pull", "list", "search", "find", "save", "send", "calculate", "compare", "email"}
# Verbs that read better as "get" in a request ("return me the forecast" does not).
_AS_GET = {"return", "retrieve", "fetch", "obtain", "read", "provide", "display", "describe", "query", "lookup"}
_LEADS = re.compile(
    r"^(this (endpoint|operation|method|api|call|resource|function|service|route)( will| can)?|"
    r"(an? )?(endpoint|api|method|operation|function) (to|that|which)|use this( endpoint)? to|"
    r"allows? (you |the user |users )?to|used to|lets? you|you can|it|will|can)\s+",
    re.I,
)
# Where a summary stops saying what the tool does and starts explaining how.
_CUT = re.compile(
    r"\s*(?:[,;:(\[]|\s[-–—]\s|\b(?:based on|by given|by the given|using|via|if|unless|when|where|which|that is|"
    r"in the \S+ api|in the \S+ \S+ api|according to|as json|as xml|for the current user|"
    r"with the (?:provided|given|specified)|identified by)\b)",
    re.I,
)
_BY_ID = re.compile(r"\s+(?:by|with|for)\s+(?:its\s+|their\s+|an?\s+|the\s+)?(?:given\s+|specified\s+)?"
                    r"(?:\w+\s+)?(?:id|ids|identifier|uuid|key|name)\b.*$", re.I)
_DANGLING = {"in", "the", "a", "an", "of", "to", "for", "and", "or", "with", "on", "at", "by", "from", "into", "this",
             "that", "its", "their", "your", "as", "via", "per"}
_DETERMINERS = {"the", "a", "an", "all", "one", "some", "every", "each", "this", "that", "these", "those", "my",
                "your", "its", "their", "our", "any", "multiple", "several", "new"}
_VAGUE = re.compile(r"\b(?:a specific|the specified|a specified|the given|a given|the provided|an existing|a single|"
                    r"one|a|an|the)\s+(?=\w)", re.I)


def humanize(name: str) -> str:
    """``getDistrictAdmins`` -> ``get district admins``; ``x-api_ID`` -> ``x api ID``."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    s = re.sub(r"[_\-./\[\]]+", " ", s)
    words = [w if w.isupper() and len(w) <= 4 else w.lower() for w in s.split()]
    return " ".join(words)


def _base(word: str) -> str | None:
    w = word.lower()
    if w in VERBS:
        return w
    for cut in (1, 2):
        if len(w) > cut + 2 and w.endswith("s") and w[:-cut] in VERBS:
            return w[:-cut]
    if w.endswith("ies") and w[:-3] + "y" in VERBS:
        return w[:-3] + "y"
    # a verb again or undone: "Re-enable a local account", "Unarchive the project", "reopen"
    prefix = re.match(r"(re-?|un-?|pre-|de-)(?=[a-z]{4,}$)", w)
    if prefix and _base(w[prefix.end():]):
        return w[: prefix.end()] + _base(w[prefix.end():])  # type: ignore[operator]
    return None


def _lower_first(phrase: str) -> str:
    """Lower-case a leading capital unless the word is an acronym (``API``, ``iOS``)."""
    if not phrase:
        return phrase
    first = phrase.split(" ", 1)[0]
    if len(first) > 1 and any(c.isupper() for c in first[1:]):
        return phrase
    return phrase[0].lower() + phrase[1:]


def _untitle(words: list[str]) -> list[str]:
    """``Get Generated Items`` -> ``get generated items``: a Title Case summary reads as
    shouting in a sentence; acronyms (``ID``, ``API``) keep their case."""
    caps = sum(1 for w in words if w[:1].isupper())
    if len(words) < 2 or caps < 0.6 * len(words):
        return words
    return [w if (len(w) > 1 and w[1:].lower() != w[1:]) else w.lower() for w in words]


# Verbs that take something away: a request for a tool named so must say so, whatever the
# description's first sentence (a summary may name the thing, not the action).
_REMOVING = {"delete", "remove", "destroy", "purge", "revoke", "cancel", "unsubscribe", "unfavourite",
             "unfavorite", "unfollow", "unpin", "unlike", "unblock", "unmute", "detach", "clear", "disable", "erase"}


def action_phrase(tool: dict[str, Any]) -> str:
    """What calling ``tool`` does, as an imperative verb phrase (:func:`_summary_phrase`);
    for a tool whose name removes something, a phrase that removes too: from a later
    sentence of the description that says so, else from the name.

    >>> action_phrase({"name": "deletePersonalisedRadioByActivityTypeById",
    ...                "description": "Favourite Episode or Clip. Remove User favourite"})
    'remove user favourite'
    >>> action_phrase({"name": "delete_api_v1_lists_id", "description": "Show list"})
    'delete lists'
    >>> action_phrase({"name": "delete_list", "description": "Delete a list."})
    'delete a list'
    """
    phrase = _summary_phrase(tool)
    named = humanize(tool.get("name", "")).split()
    if not (named and named[0] in _REMOVING) or phrase.split()[:1] and phrase.split()[0] in _REMOVING:
        return phrase
    desc = (tool.get("description") or "").strip()
    for sentence in re.split(r"(?<=[.!?])\s|\n", desc)[1:]:
        alt = _summary_phrase({"name": "", "description": sentence}) if sentence.strip() else ""
        if alt.split()[:1] and alt.split()[0] in _REMOVING:
            return alt
    # from the name, without its path's noise ("delete api v1 lists id" -> "delete lists")
    words = [w for w in named if w not in ("api", "apis") and not re.fullmatch(r"v\d+", w)]
    while len(words) > 2 and words[-1] in ("id", "ids", "by"):
        words.pop()
    return _summary_phrase({"name": "_".join(words), "description": ""})


def _summary_phrase(tool: dict[str, Any]) -> str:
    """What calling ``tool`` does, as an imperative verb phrase, from the first sentence of its
    description (the operation's summary) or else its name.

    >>> _summary_phrase({"name": "f", "description": "Performs introspection of the provided Bearer JWT token."})
    'perform introspection of the provided Bearer JWT token'
    >>> _summary_phrase({"name": "f", "description": "Deleted domains, latest if date not specified."})
    'get the deleted domains'
    >>> _summary_phrase({"name": "getApiVersion", "description": "API version"})
    'get the API version'
    >>> _summary_phrase({"name": "f", "description": "Find payment by ID. Return information about the payment."})
    'find payment'
    >>> _summary_phrase({"name": "f", "description": "Re-enable a local account whose login is disabled."})
    're-enable a local account whose login is disabled'
    >>> _summary_phrase({"name": "f", "description": "Enables or disables authenticator service instances"})
    'enable or disable authenticator service instances'
    >>> _summary_phrase({"name": "f", "description": "List of categories"})
    'list the categories'
    >>> _summary_phrase({"name": "f", "description": "List of all users in the account."})
    'list all users in the account'
    """
    desc = (tool.get("description") or "").strip()
    first = re.split(r"(?<=[.!?])\s|\n", desc, maxsplit=1)[0] if desc else ""
    first = re.sub(r"[*`_]{1,2}(\w[^*`]*?)[*`_]{1,2}", r"\1", first)
    first = re.sub(r"\s*\([^)]*\)", "", first).strip().rstrip(".!?:;,")
    for _ in range(3):
        first = _LEADS.sub("", first).strip()
    phrase = ""
    if first and not re.search(r"https?://|[{}<>`|]", first):
        words = _untitle(first.split())
        verb = _base(words[0])
        if verb is None and len(words) > 2 and words[1].lower() in _DETERMINERS - {"new"} and words[0].isalpha() \
                and not words[0].lower().endswith(("ing", "ed", "s")):
            verb = words[0].lower()  # "Reload the gateway": a verb we do not list, before its object
        if verb is None and words[0].lower().endswith("ing") and len(words[0]) > 5 and len(words) > 1 \
                and words[1].lower() in _DETERMINERS:
            stem = words[0].lower()[:-3]
            verb = _base(stem) or _base(stem + "e") or (_base(stem[:-1]) if stem[-1:] == stem[-2:-1] else None)
        if verb is None and len(words) > 1 and re.fullmatch(r"[A-Za-z]{3,}s", words[0]) and not words[0].endswith("ss") \
                and words[1].lower() in _DETERMINERS | {"information", "details", "data", "introspection"}:
            # a third-person verb we do not list ("Performs the ...")
            verb = words[0][:-2].lower() if words[0].lower().endswith(("ches", "shes", "xes", "sses")) else words[0][:-1].lower()
        if verb:
            verb = "get" if verb in _AS_GET else verb
            rest = _CUT.split(" ".join(words[1:]), maxsplit=1)[0]
            # "Creates or updates a user": the second verb in its base form too
            pair = re.match(r"(or|and|and/or)\s+(\S+)(.*)$", rest, re.I)
            if pair and _base(pair.group(2)):
                rest = f"{pair.group(1).lower()} {_base(pair.group(2))}{pair.group(3)}"
            # "List of categories" names the list, not the action: "list the categories"
            if verb == "list" and re.match(r"of\s+\S", rest, re.I):
                rest = rest[3:].lstrip()
                if rest.split()[0].lower() not in _DETERMINERS:
                    rest = "the " + rest
            phrase = f"{verb} {rest}".strip()
        elif len(words) <= 10:
            body = _CUT.split(" ".join(words), maxsplit=1)[0].strip()
            if body:
                lead = body.split()[0].lower()
                phrase = "get " + ("" if lead in _DETERMINERS else "the ") + _lower_first(body)
    if not phrase:
        words = humanize(tool.get("name", "")).split()
        verb = _base(words[0]) if words else None
        if verb:
            phrase = " ".join(["get" if verb in _AS_GET else verb, *words[1:]])
        else:
            phrase = "look up the " + " ".join(words) if words else "help me"
    phrase = _lower_first(_BY_ID.sub("", phrase))
    # the request is the user's own: "the user's profiles" -> "my profiles"
    phrase = re.sub(r"\b(the (current|authenticated|logged[- ]in) user'?s|the user's|your)\b", "my", phrase)
    phrase = re.sub(r"\b(the (current|authenticated|logged[- ]in) user|the user)\b", "me", phrase)
    words = phrase.split()
    if len(words) > 12:
        words = words[:12]
        # a cut phrase must not end on a word that leads somewhere ("... log this action in the")
        while len(words) > 2 and words[-1].lower() in _DANGLING:
            words.pop()
        phrase = " ".join(words)
    return re.sub(r"\s+", " ", phrase).strip().rstrip(".,;:")


# The answer to a request that no offered tool can serve (the irrelevance mode's reference):
# records' sentence, the one training rewords (training.dataset.reworded_refusals).
REFUSAL = records.REFUSAL


# ---------------------------------------------------------------------------------------
# Values as people mention them

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_DATE_RX = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME_RX = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::00(?:\.0+)?)?(Z|[+-]00:?00)?")


def spoken(value: Any) -> str:
    """How a person writes ``value`` in a message: dates and date-times in words, whole
    floats without ``.0``, lists joined.  Anything else as it is, so it can be copied.

    >>> spoken("2025-06-14"), spoken("2021-02-27T10:32:00Z"), spoken(3.0), spoken("Lisbon")
    ('June 14, 2025', 'February 27, 2021 at 10:32 UTC', '3', 'Lisbon')
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        items = [spoken(x) for x in value]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""
    if isinstance(value, str):
        m = _DATETIME_RX.fullmatch(value)
        if m and 1 <= int(m[2]) <= 12 and 1 <= int(m[3]) <= 31:
            zone = " UTC" if m[6] else ""
            return f"{_MONTHS[int(m[2]) - 1]} {int(m[3])}, {m[1]} at {m[4]}:{m[5]}{zone}"
        m = _DATE_RX.fullmatch(value)
        if m and 1 <= int(m[2]) <= 12 and 1 <= int(m[3]) <= 31:
            return f"{_MONTHS[int(m[2]) - 1]} {int(m[3])}, {m[1]}"
    return str(value)


def spoken_forms(value: Any) -> set[str]:
    """Every form in which a request may mention ``value`` (lower-cased): as written, and
    as :func:`spoken` writes it.

    >>> sorted(spoken_forms("2025-06-14"))
    ['2025-06-14', 'june 14, 2025']
    """
    forms = {" ".join(str(value).lower().split()), " ".join(spoken(value).lower().split())}
    if isinstance(value, float) and value.is_integer():
        forms.add(str(int(value)))
    return {f for f in forms if f}


def mentions(text: str, value: Any) -> bool:
    """Whether ``text`` mentions ``value`` in one of its :func:`spoken_forms`, as a whole:
    a value inside a longer token is not said by it (the id ``264edf40`` is not what
    "subscription subs_264edf40" gives, nor ``VKK`` what "VKKJ9" does).

    >>> mentions("for subscription subs_264edf40, please", "264edf40")
    False
    >>> mentions("for subscription subs_264edf40, please", "subs_264edf40")
    True
    >>> mentions("the weather in Paris's old town", "Paris"), mentions("ship on June 14, 2025", "2025-06-14")
    (True, True)
    >>> mentions("please order 2 desk lamps", "desk lamp"), mentions("use key VKKJ9", "VKK")
    (True, False)
    """
    low = " ".join(text.lower().split())
    for f in spoken_forms(value):
        if re.fullmatch(r"-?\d+(\.\d+)?", f):
            # a number is said as a number: 2 is not said by "12" or "2025-06-02"
            if re.search(rf"(?<![\d.\-]){re.escape(f)}(?![\d]|\.\d)", low):
                return True
        elif f in low:
            # as a whole: no letter, digit or underscore runs on at either end of it
            head = r"(?<![a-z0-9_])" if f[0].isalnum() or f[0] == "_" else ""
            # ("desk lamp" is said by "2 desk lamps": a plural ending may follow a word)
            tail = (r"(?:e?s)?(?![a-z0-9_])" if f[-1].isalpha() else r"(?![a-z0-9_])") if (
                f[-1].isalnum() or f[-1] == "_") else ""
            if re.search(head + re.escape(f) + tail, low):
                return True
    return False


_VALUE_TOKEN = re.compile(r"[^\s\"“”'()\[\]{},;:!?]+")


def new_values(text: str, source: str) -> list[str]:
    """Value-like tokens of ``text`` (with a digit, or an inner ``.``/``_``/``@``, or a
    capital inside a word) that ``source`` does not contain: what a rewrite or a simulated
    user made up instead of copying.

    >>> new_values("Get player 2. Use official 4DC 2017-2022 for x2.x2.xx.", "Get player 2 in xml.")
    ['4DC', '2017-2022', 'x2.x2.xx']
    >>> new_values("Could you fetch the forecast for Oslo on June 14, 2025?", "Get the forecast for Oslo on June 14, 2025.")
    []
    """
    low = " ".join(source.lower().split())
    out = []
    # a name the source does not have: a capitalised word inside a sentence ("the usage of API Nexar")
    for m in re.finditer(r"(?<=[a-z,;] )([A-Z][a-zA-Z]{2,})\b", text):
        if m.group(1).lower() not in low and m.group(1) not in out:
            out.append(m.group(1))
    for tok in _VALUE_TOKEN.findall(text):
        tok = tok.strip(".-'’")
        valueish = re.search(r"\d", tok) or re.search(r"\w[._@/]\w", tok) or re.search(r"[a-z][A-Z]", tok)
        if tok and valueish and tok.lower() not in low and tok not in out:
            out.append(tok)
    return out


def _q(v: Any) -> str:
    return f"“{spoken(v)}”"


_LIMIT_KEYS = {"limit", "per page", "page size", "max results", "max", "count", "size", "top", "n", "num",
               "max items", "maxresults", "pagesize", "perpage", "page limit", "results", "rows", "number"}
_COUNTED = {"days", "hours", "nights", "people", "guests", "adults", "children", "minutes", "weeks", "months",
            "years", "seats", "rooms", "tickets", "passengers", "servings"}
_SEARCH_KEYS = {"q", "query", "search", "keyword", "keywords", "term", "search term", "search query", "text query"}


_PLACE_WORDS = {"city", "town", "location", "place", "region", "country", "state", "area"}


def clause(key: str, value: Any, rng: random.Random) -> tuple[str, str]:
    """How a request mentions argument ``key=value``: ``("prep", "in Lisbon")`` for a phrase
    that follows the action, or ``("with", "quantity 2")`` for one of a "with ..." list.

    >>> r = random.Random(0)
    >>> clause("city", "Lisbon", r), clause("start_date", "2025-06-14", r)
    (('prep', 'in Lisbon'), ('prep', 'from June 14, 2025'))
    >>> clause("limit", 10, r)[0], clause("quantity", 2, r)
    ('prep', ('with', 'quantity 2'))
    >>> clause("api-version", "2023-09-01", r)
    ('with', 'api version 2023-09-01')
    """
    words = humanize(key).lower().split()
    low = " ".join(words)
    last = words[-1] if words else ""
    v = spoken(value)
    if isinstance(value, bool):
        rest = " ".join(words[1:]) if words and words[0] in ("include", "with", "show", "includes") else ""
        if rest:
            return ("prep", f"including {rest}" if value else f"without {rest}")
        return ("with", f"{low} turned {'on' if value else 'off'}")
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        return ("with", f"{low} (" + "; ".join(details(x) for x in value) + ")")
    if isinstance(value, dict | list) and any(isinstance(x, dict | list) for x in (value.values() if isinstance(value, dict) else value)):
        return ("with", f"{low} " + details(value) if isinstance(value, dict) else "")
    if isinstance(value, dict):
        inner = [f"{humanize(k2).lower()} {spoken(v2)}" for k2, v2 in value.items() if not isinstance(v2, dict | list)]
        return ("with", f"{low} " + ", ".join(inner)) if inner else ("with", "")
    if last in _PLACE_WORDS or low in ("where", "near"):
        return ("prep", f"in {v}")
    if last in ("destination",) or low in ("to city", "arrival city", "destination city"):
        return ("prep", f"to {v}")
    if last in ("origin",) or low in ("from city", "departure city", "origin city"):
        return ("prep", f"from {v}")
    dateish = bool(_DATE_RX.fullmatch(str(value)) or _DATETIME_RX.fullmatch(str(value)))
    if dateish and {"version", "revision", "release"} & set(words):
        return ("with", f"{low} {value}")  # a dated version is a name: "api version 2023-09-01"
    if dateish:
        if words and words[0] in ("start", "from", "since", "after", "begin", "min", "earliest") or last in ("from", "since", "after", "start"):
            return ("prep", f"from {v}" if words[0] != "since" else f"since {v}")
        if words and words[0] in ("end", "to", "until", "before", "max", "latest") or last in ("to", "until", "before", "end"):
            return ("prep", f"until {v}")
        return ("prep", f"on {v}" if "at" not in v else f"on {v}")
    if low in _COUNTED and isinstance(value, int) and not isinstance(value, bool):
        return ("prep", f"for {v} {low}" if value != 1 else f"for 1 {low[:-1]}")
    if low in _LIMIT_KEYS and isinstance(value, int):
        return ("prep", rng.choice([f"(at most {v} results)", f"limited to {v} results", f"just the first {v}"]))
    if low in ("offset", "skip", "start", "start index"):
        return ("prep", f"skipping the first {v}")
    if low in ("page", "page number", "pageno", "page no"):
        return ("prep", f"page {v}" if rng.random() < 0.5 else f"on page {v}")
    if low in _SEARCH_KEYS:
        return ("prep", rng.choice([f"matching {_q(value)}", f"for {_q(value)}", f"about {v}"]))
    if low in ("sort", "sort by", "order by", "orderby", "sortby", "sort field"):
        return ("prep", f"sorted by {v}")
    if low in ("order", "direction", "sort order", "dir", "sort direction") and str(value).lower() in ("asc", "desc", "ascending", "descending"):
        return ("prep", f"in {v} order")
    if last in ("format", "output") and len(v) <= 12:
        return ("prep", f"in {v} format")
    if last in ("unit", "units", "currency"):
        return ("prep", f"in {v}")
    if last in ("name",) and len(words) == 1:
        return ("prep", f"named {_q(value)}")
    if last in ("title", "subject", "headline"):
        return ("prep", f"titled {_q(value)}" if last != "subject" else f"with the subject {_q(value)}")
    if low in ("to", "recipient", "recipients", "email to", "to email"):
        return ("prep", f"to {v}")
    if low in ("from", "sender", "from email"):
        return ("prep", f"from {v}")
    if last in ("message", "body", "text", "content", "comment", "note", "description") and " " in v:
        return ("prep", f"saying {_q(value)}")
    if last in ("email",):
        return ("prep", f"for {v}")
    return ("with", f"{low} {v}")


def _id_noun(key: str) -> str:
    """The thing an id names: ``order_id`` -> ``order``, ``paymentId`` -> ``payment``."""
    words = humanize(key).lower().split()
    while words and words[-1] in ("id", "ids", "uuid", "guid", "sid", "key", "code", "number", "name"):
        words = words[:-1]
    if len(words) == 1 and words[0].endswith("id") and len(words[0]) > 4:
        words = [words[0][:-2]]
    return " ".join(words)


def _join(parts: list[str], rng: random.Random) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def describe_call(action: str, arguments: dict[str, Any], rng: random.Random, *, skip: tuple[str, ...] = ()) -> str:
    """``action`` with every argument mentioned the way a person would: an id where the
    action names its thing (``cancel payment pay_4f2a``), places, dates and limits as
    phrases, the rest as a "with ..." list.

    >>> describe_call("cancel a payment", {"payment_id": "pay_4f2a"}, random.Random(0))
    'cancel payment pay_4f2a'
    >>> describe_call("get the weather forecast", {"city": "Oslo", "days": 3, "unit": "celsius", "detail": "hourly"}, random.Random(0))
    'get the weather forecast in Oslo, for 3 days, in celsius, with detail hourly'
    """
    text = action
    preps: list[str] = []
    withs: list[str] = []
    for key, value in arguments.items():
        if key in skip or value is None or value == "" or value == []:
            continue
        scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
        noun = _id_noun(key)
        if scalar and noun:
            # the action names the thing this value picks: "cancel a payment" -> "cancel payment pay_4f2a"
            vague = r"(?:a specific|the specified|a specified|the given|a given|the provided|an existing|a single|an?)"
            det = rf"(?:(?:{vague}|one|the|this)\s+)?" if is_id_key(key) else rf"{vague}\s+"
            rx = re.compile(rf"\b{det}{re.escape(noun)}s?\b", re.I)
            if rx.search(text):
                bare = noun.split()[-1] in _PLACE_WORDS or _DATE_RX.fullmatch(str(value))
                text = rx.sub((spoken(value) if bare else f"{noun} {spoken(value)}").replace("\\", "\\\\"), text, count=1)
                continue
        if is_id_key(key) and scalar:
            # a bare id names the thing the action is about: "unfollow the given account" -> "account id_0ef7"
            m = None if noun else re.search(r"\b(?:a specific|the specified|the given|a given|the provided|an existing|this)\s+(\w+)", text, re.I)
            if m:
                text = text[: m.start()] + f"{m.group(1)} {value}" + text[m.end():]
                continue
            preps.append(f"for {noun} {value}" if noun else f"with ID {value}")
            continue
        kind, phrase = clause(key, value, rng)
        if phrase:
            (preps if kind == "prep" else withs).append(phrase)
    out = " ".join([text, ", ".join(preps)]).strip()
    if withs:
        out += ", with " + _join(withs, rng)
    return out


def details(arguments: dict[str, Any]) -> str:
    """``city Lisbon and days 3``; nested objects and lists of objects spelt out, so that
    every value is said.

    >>> details({"items": [{"sku": "A1", "qty": 2}], "address": {"city": "Oslo"}})
    'items (sku A1 and qty 2) and address city Oslo'
    """
    parts = []
    for k, v in arguments.items():
        if isinstance(v, dict):
            inner = details(v)
            if inner:
                parts.append(f"{humanize(k)} {inner}")
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            inner = "; ".join(details(x) if isinstance(x, dict) else spoken(x) for x in v)
            if inner:
                parts.append(f"{humanize(k)} ({inner})")
        else:
            parts.append(f"{humanize(k)} {spoken(v)}")
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# ---------------------------------------------------------------------------------------
# Requests in a persona's voice

REGISTERS = {
    "casual": [("Hey, can you {a}", "?"), ("Could you {a}", "?"),
               ("I need to {a}, can you help", "?"), ("Quick question, can you {a}", "?"), ("{A}, please", "!"),
               ("Hi! Can you {a}", "?")],
    "formal": [("Could you please {a}", "?"), ("Would you {a}, please", "?"), ("I would like you to {a}", "."),
               ("Please {a}", "."), ("I'd appreciate it if you could {a}", "."), ("Good morning. Could you {a}", "?")],
    "terse": [("{A}", "."), ("{A}, please", "."), ("Need to {a}", "."), ("Please {a}", "."), ("Can you {a}", "?")],
    "warm": [("Hi! Could you {a}", "?"), ("Hello, would you {a}", "? Thanks!"), ("Hi there, I need to {a}", "."),
             ("Good morning! Can you {a}", "?"), ("Hi, could you help me {a}", "?")],
}  # fmt: skip
_STYLE_WORDS = {
    "terse": ("terse", "precise", "short", "methodical", "exact", "numbers", "technical", "blunt", "brief"),
    "formal": ("formal", "polite", "unsure", "careful", "spells out", "courteous", "professional"),
    "warm": ("warm", "friendly", "small talk", "chatty", "calm", "cheerful"),
    "casual": ("casual", "informal", "enthusiastic", "energetic", "creative", "vague", "relaxed"),
}


def register_of(style: str) -> str:
    """The register of a persona's communication style (see :data:`REGISTERS`).

    >>> register_of("terse and precise, uses technical terms"), register_of("")
    ('terse', 'casual')
    """
    low = style.lower()
    best = max(_STYLE_WORDS, key=lambda r: sum(w in low for w in _STYLE_WORDS[r]))
    return best if any(w in low for w in _STYLE_WORDS[best]) else "casual"


def opening(body: str, style: str, rng: random.Random) -> str:
    """``body`` (a verb phrase) as a request in the register of ``style``."""
    opener, end = rng.choice(REGISTERS[register_of(style)])
    text = opener.format(a=body, A=body[:1].upper() + body[1:])
    return text.rstrip(".?! ") + end


def request_text(
    calls: list[dict[str, Any]], tools: list[dict[str, Any]], rng: random.Random, *, style: str = ""
) -> str:
    """A user's request whose answer is exactly ``calls``, in the register of ``style``.

    Repeated calls of one tool that differ in one argument read as one action with several
    values ("... in Lisbon and in Tokyo"); several tools as several actions.
    """
    by_name = {t["name"]: t for t in tools}
    groups: list[list[dict[str, Any]]] = []
    for c in calls:
        if groups and groups[-1][0]["name"] == c["name"]:
            groups[-1].append(c)
        else:
            groups.append([c])
    clauses = []
    for group in groups:
        action = action_phrase(by_name.get(group[0]["name"]) or {"name": group[0]["name"]})
        args = [g.get("arguments") or {} for g in group]
        if len(group) == 1:
            clauses.append(describe_call(action, args[0], rng))
            continue
        keys = set().union(*args)
        differing = sorted(k for k in keys if len({json.dumps(a.get(k), sort_keys=True) for a in args}) > 1)
        if len(differing) == 1 and all(differing[0] in a for a in args):
            k = differing[0]
            common = {kk: vv for kk, vv in args[0].items() if kk != k}
            # one action, several values: "... for Lisbon and Oslo" / "... in Lisbon and in Oslo"
            said = [describe_call(action, {k: a[k]}, random.Random(0)) for a in args]
            # an empty value ("" or []) says nothing to split the clause on
            sep = spoken(args[0][k])
            head, found, tail = said[0].partition(sep) if sep else ("", "", "")
            if found and head and all(s == head + spoken(a[k]) + tail for s, a in zip(said, args, strict=True)):
                clauses.append(describe_call(head + _join([spoken(a[k]) for a in args], rng) + tail, common, rng))
                continue
            first = describe_call(action, {k: args[0][k], **common}, rng)
            others = [describe_call("", {k: a[k]}, rng).strip(" ,") for a in args[1:]]
            if all(o and not o.startswith("with") for o in others):
                clauses.append(first + " " + " ".join(f"and {o}" for o in others))
                continue
        done = [describe_call(action, args[0], rng)]
        for a in args[1:]:
            again = describe_call("", a, rng).strip(" ,")
            again = again[len("with "):] if again.startswith("with ") else again
            done.append(rng.choice(["the same again", "and once more", "then again"]) + (f" {again}" if again else ""))
        clauses.append(", ".join(done[:1]) + "; " + "; ".join(done[1:]))
    if len(clauses) == 1:
        body = clauses[0]
    else:
        body = "; ".join(clauses[:-1]) + rng.choice(["; and also ", ", and then ", "; after that, "]) + clauses[-1]
    return opening(body, style, rng)


# Verbs of tool names: calls that delete, that update, that change state in any way (the
# rest read); the server simulator keeps its store by them, the answer reports by them.
DELETE_VERBS = {"delete", "remove", "cancel", "destroy", "drop", "archive", "unsubscribe"}
UPDATE_VERBS = {"update", "modify", "edit", "set", "change", "patch", "rename", "move", "assign", "add"}
STATE_CHANGING_VERBS = DELETE_VERBS | UPDATE_VERBS | {
    "create", "submit", "send", "post", "put", "charge", "refund", "capture", "void", "close", "revoke",
}
# Words a person uses to ask for a change (beside the tool-name verbs that change state).
CHANGE_WORDS = STATE_CHANGING_VERBS | {
    "erase", "clear", "make", "new", "register", "open", "start", "book", "schedule", "write", "generate",
    "upload", "publish", "replace", "adjust", "switch", "enable", "disable", "mark", "save", "apply",
    "transfer", "pay", "rid", "stop", "pause", "resume", "restart", "activate", "deactivate", "reset",
    "trigger", "launch", "invite", "import", "upgrade", "approve", "reject", "attach", "detach", "kill",
    "terminate", "purge", "wipe",
}  # not "order", "record", "log" or "store": nouns as often as verbs
# In a tool's name, where "like" or "follow" is a verb, not a word of a request.
_NAME_CHANGE_VERBS = CHANGE_WORDS | {
    "follow", "unfollow", "subscribe", "insert", "upsert", "like", "unlike", "block", "unblock", "mute"}
_READ_VERBS = frozenset({
    "get", "list", "search", "find", "read", "show", "fetch", "query", "retrieve", "describe", "check", "count",
    "lookup", "view", "download", "export", "browse", "validate", "estimate", "calculate", "preview"})


def changes_state(tool_name: str) -> bool:
    """Whether a tool's name says it changes something: its first word that is a verb of
    reading or of changing decides (``Account_deleteUser``, ``ConnectionMonitors_Get``,
    ``get_post``); a name with neither reads.

    >>> [changes_state(n) for n in ("Account_deleteUser", "ConnectionMonitors_Get", "get_post", "Trending_Hashtags")]
    [True, False, False, False]
    """
    for word in re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", tool_name).lower()):
        if word in _READ_VERBS:
            return False
        if word in _NAME_CHANGE_VERBS:
            return True
    return False


def answer_text(results: list[tuple[str, dict[str, Any]]]) -> str:
    """The agent's closing answer from ``(tool name, MCP response)`` pairs, in sentences.

    >>> answer_text([("get_order", {"result": {"structuredContent": {"order_id": "ord_1", "status": "shipped"}}})])
    'Here is what I found: the order ID is ord_1 and the status is shipped.'
    >>> answer_text([("f", {"result": {"structuredContent": {"method": "f", "$schema": "x", "status": "ok"}}})])
    'Here is what I found: the status is ok.'
    >>> answer_text([("f", {"result": {"structuredContent": {"text": "Hi", "success": True}}})])
    'Done: the text is Hi.'
    >>> answer_text([("f", {"result": {"structuredContent": {"success": True}}})])
    'Done, it worked.'

    A call that changes something is reported done, not "found" (a deleted user's echoed id):

    >>> answer_text([("Account_deleteUser", {"result": {"structuredContent": {"userId": "user_2a6ae2eb"}}})])
    'Done: the user ID is user_2a6ae2eb.'
    """
    parts = []
    writes: list[bool] = []
    failed = []
    for name, resp in results:
        res = (resp or {}).get("result") or {}
        if "error" in (resp or {}) or res.get("isError"):
            err = (resp or {}).get("error") or {}
            msg = err.get("message") if isinstance(err, dict) else None
            if not msg:
                msg = " ".join(c.get("text", "") for c in res.get("content") or [] if isinstance(c, dict))
            failed.append(f"I could not {humanize(name)}: {str(msg or 'the server returned an error')[:160]}")
            continue
        data = res.get("structuredContent")
        if data is None:
            text = " ".join(c.get("text", "") for c in res.get("content") or [] if isinstance(c, dict))
            try:
                data = json.loads(text)
            except (TypeError, ValueError):
                data = text
        parts.append(_summary(data))
        writes.append(changes_state(name))
    good = [p for p in parts if p]
    out = []
    if good:
        lead = ("Done: " if all(writes) else "Here is what I found: ") if len(good) == 1 else "All done. "
        if len(good) == 1 and good[0].startswith("it worked"):
            # {"success": true, ...}: "Done: the text is ...", not "I found: it worked"
            rest = good[0].removeprefix("it worked").removeprefix(",").removeprefix(" and").strip()
            good, lead = ([rest] if rest else ["it worked"]), "Done: " if rest else "Done, "
        out.append(lead + " ".join((p if i == 0 and len(good) == 1 else p[0].upper() + p[1:]) + ("" if p.endswith(".") else ".")
                                   for i, p in enumerate(good)))
    out += [f + ("" if f.endswith(".") else ".") for f in failed]
    return " ".join(out) or "Done."


def without_envelope(data: dict[str, Any], tool_name: str | None = None) -> dict[str, Any]:
    """``data`` less what a small model echoes of the request instead of a result: meta keys
    (``$schema``, ``@context``), ``method``/``jsonrpc``/``params``, and the tool's own name.

    >>> without_envelope({"method": "f", "$schema": "x", "tool": "f", "status": "ok"}, "f")
    {'status': 'ok'}
    """
    return {k: v for k, v in data.items()
            if not str(k).startswith(("$", "@")) and k not in ("method", "jsonrpc", "params")
            and (tool_name is None or v != tool_name)}


def _the(key: str) -> str:
    words = humanize(key).split()
    words = ["ID" if w.lower() == "id" else w for w in words]
    return "the " + " ".join(words)


# Keys whose true value says the call worked ({"success": true}): said as "it worked".
_OUTCOME_KEYS = frozenset({"success", "succeeded", "ok", "done", "completed", "deleted", "created", "updated",
                           "saved", "sent", "removed", "accepted", "result"})


_NEGATED = {"is": "is not", "has": "has no", "can": "cannot"}


def _bit(key: str, value: Any) -> str:
    """One scalar of a result as a person says it: "the status is shipped"; booleans as
    "it worked", "it is active", "it has attachments", "the archived flag is off".

    >>> _bit("success", True), _bit("is_active", False), _bit("hasAttachments", True), _bit("archived", True)
    ('it worked', 'it is not active', 'it has attachments', 'the archived flag is on')
    """
    if not isinstance(value, bool):
        return f"{_the(key)} is {spoken(value)}"
    words = humanize(key).lower().split()
    if words and words[-1] in _OUTCOME_KEYS and len(words) == 1:
        return "it worked" if value else "it did not work"
    if len(words) > 1 and words[0] in _NEGATED:
        rest = " ".join(words[1:])
        return f"it {words[0] if value else _NEGATED[words[0]]} {rest}"
    return f"{_the(key)} flag is {'on' if value else 'off'}"


def _summary(data: Any, limit: int = 4) -> str:
    if isinstance(data, dict):
        data = without_envelope(data)
        scal = [(k, v) for k, v in data.items() if not isinstance(v, dict | list) and v not in (None, "")]
        # "it worked" first: it is what the user wants to hear
        scal.sort(key=lambda kv: not (isinstance(kv[1], bool) and humanize(kv[0]).lower() in _OUTCOME_KEYS))
        lists = [(k, v) for k, v in data.items() if isinstance(v, list)]
        bits = [_bit(k, v) for k, v in scal[:limit]]
        for k, v in lists[:1]:
            n = len(v)
            first = _summary(v[0], 2) if v else ""
            bits.append(f"{_the(k)} has {n} item{'' if n == 1 else 's'}" + (f" (the first: {first})" if first else ""))
        if not bits:
            nested = [(k, v) for k, v in data.items() if isinstance(v, dict)]
            for k, v in nested[:1]:
                inner = _summary(v, limit)
                if inner:
                    bits.append(f"for {_the(k)[4:]}, {inner}")
        return _join(bits, random.Random(0))
    if isinstance(data, list):
        if not data:
            return "there are no results"
        if isinstance(data[0], dict):
            return f"there are {len(data)} results; in the first, {_summary(data[0], 2)}"
        return ", ".join(spoken(x) for x in data[:5])
    return str(data)[:200] if data not in (None, "") else ""
