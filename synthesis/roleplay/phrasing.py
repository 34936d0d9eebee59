"""Plain-language requests and answers built from tool calls, without a model.

The role-play asks the model to write the user's request and the agent's final answer.
A small model often cannot (it writes ``GET /api/users/{id}`` or echoes the raw tool
output), so every such text is checked (:mod:`values`) and, when it fails, replaced by
the one built here from the same calls: grammatical, mentioning every value, naming no
tool.  The model's text is kept whenever it passes, so large models give varied prose and
small ones still give usable data.  The step's ``meta`` records which source was used.

>>> tool = {"name": "getForecast", "description": "Returns the weather forecast for a city."}
>>> request_text([{"name": "getForecast", "arguments": {"city": "Lisbon", "days": 3}}], [tool], random.Random(1))
'Could you get the weather forecast for a city, with city Lisbon and days 3?'
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

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
# Verbs that read better as "get" in a request ("return me the forecast" does not).
_AS_GET = {"return", "retrieve", "fetch", "obtain", "read", "provide", "display", "describe", "query"}
_LEADS = re.compile(
    r"^(this (endpoint|operation|method|api|call|resource|function|service|route)( will| can)?|"
    r"(an? )?(endpoint|api|method|operation|function) (to|that|which)|use this( endpoint)? to|"
    r"allows? (you |the user |users )?to|used to|lets? you|you can|it|will|can)\s+",
    re.I,
)
_OPENERS = [
    ("Can you {a}", "?"), ("Could you {a}", "?"), ("Please {a}", "."), ("I need you to {a}", "."),
    ("Would you {a}", "?"), ("I'd like you to {a}", "."), ("Hi! Can you {a}", "?"),
]  # fmt: skip


def humanize(name: str) -> str:
    """``getDistrictAdmins`` -> ``get district admins``; ``x-api_ID`` -> ``x api ID``."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    s = re.sub(r"[_\-./]+", " ", s)
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
    return None


def action_phrase(tool: dict[str, Any]) -> str:
    """What calling ``tool`` does, as an imperative phrase: ``get the weather forecast``."""
    desc = (tool.get("description") or "").strip()
    first = re.split(r"(?<=[.!?])\s|\n", desc, maxsplit=1)[0] if desc else ""
    first = re.sub(r"\s*\([^)]*\)", "", first).strip().rstrip(".!?:;,")
    for _ in range(3):
        first = _LEADS.sub("", first).strip()
    phrase = ""
    if first and not re.search(r"https?://|[{}<>`|]", first):
        words = first.split()
        verb = _base(words[0])
        if verb:
            verb = "get" if verb in _AS_GET else verb
            rest = " ".join(words[1:])
            phrase = f"{verb} {rest}".strip()
        elif len(words) <= 10:
            phrase = "get " + first[0].lower() + first[1:]
    if not phrase:
        words = humanize(tool.get("name", "")).split()
        verb = _base(words[0]) if words else None
        if verb:
            phrase = " ".join(["get" if verb in _AS_GET else verb, *words[1:]])
        else:
            phrase = "look up " + " ".join(words) if words else "help me"
    phrase = phrase[0].lower() + phrase[1:] if phrase[:2] != phrase[:2].upper() else phrase
    if len(phrase) > 90:
        phrase = phrase[:90].rsplit(" ", 1)[0]
    return re.sub(r"\s+", " ", phrase).strip()


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def details(arguments: dict[str, Any]) -> str:
    """``city Lisbon and days 3`` (nested objects flattened one level)."""
    parts = []
    for k, v in arguments.items():
        if isinstance(v, dict):
            parts += [f"{humanize(k)} {humanize(k2)} {_fmt(v2)}" for k2, v2 in v.items() if not isinstance(v2, dict | list)]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            continue
        else:
            parts.append(f"{humanize(k)} {_fmt(v)}")
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def request_text(calls: list[dict[str, Any]], tools: list[dict[str, Any]], rng: random.Random) -> str:
    """A user's request whose answer is exactly ``calls``."""
    by_name = {t["name"]: t for t in tools}
    clauses = []
    previous = None
    for c in calls:
        d = details(c.get("arguments") or {})
        if c["name"] == previous:
            clauses.append(f"the same again with {d}" if d else "the same again")
            continue
        a = action_phrase(by_name.get(c["name"]) or {"name": c["name"]})
        clauses.append(f"{a}, with {d}" if d else a)
        previous = c["name"]
    body = clauses[0] if len(clauses) == 1 else "; ".join(clauses[:-1]) + "; and also " + clauses[-1]
    opener, end = rng.choice(_OPENERS)
    text = opener.format(a=body)
    return text.rstrip(".?! ") + end


def answer_text(results: list[tuple[str, dict[str, Any]]]) -> str:
    """The agent's closing answer from ``(tool name, MCP response)`` pairs."""
    parts = []
    for name, resp in results:
        res = (resp or {}).get("result") or {}
        if "error" in (resp or {}) or res.get("isError"):
            err = (resp or {}).get("error") or {}
            msg = err.get("message") if isinstance(err, dict) else None
            if not msg:
                msg = " ".join(c.get("text", "") for c in res.get("content") or [] if isinstance(c, dict))
            parts.append(f"{humanize(name)} did not go through: {str(msg or 'the server returned an error')[:160]}")
            continue
        data = res.get("structuredContent")
        if data is None:
            text = " ".join(c.get("text", "") for c in res.get("content") or [] if isinstance(c, dict))
            try:
                data = json.loads(text)
            except (TypeError, ValueError):
                data = text
        parts.append(_summary(data))
    good = [p for p in parts if p]
    if not good:
        return "Done."
    return ("Done. " if len(good) == 1 else "All done. ") + " ".join(p[0].upper() + p[1:] + ("" if p.endswith(".") else ".") for p in good)


def _summary(data: Any, limit: int = 4) -> str:
    if isinstance(data, dict):
        scal = [(k, v) for k, v in data.items() if not isinstance(v, dict | list) and v not in (None, "")]
        lists = [(k, v) for k, v in data.items() if isinstance(v, list)]
        bits = [f"{humanize(k)}: {_fmt(v)}" for k, v in scal[:limit]]
        for k, v in lists[:1]:
            n = len(v)
            first = _summary(v[0], 2) if v else ""
            bits.append(f"{humanize(k)}: {n} item{'' if n == 1 else 's'}" + (f" (the first: {first})" if first else ""))
        if not bits:
            nested = [(k, v) for k, v in data.items() if isinstance(v, dict)]
            for k, v in nested[:1]:
                inner = _summary(v, limit)
                if inner:
                    bits.append(f"{humanize(k)}: {inner}")
        return "; ".join(bits)
    if isinstance(data, list):
        if not data:
            return "no results"
        return f"{len(data)} results, the first: {_summary(data[0], 2)}" if isinstance(data[0], dict) else ", ".join(_fmt(x) for x in data[:5])
    return str(data)[:200] if data not in (None, "") else ""
