"""Descriptions and names: cleaned text, fallback descriptions, legal unique tool names."""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

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


def unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while True:
        suffix = f"_{i}"
        cand = name[: 64 - len(suffix)] + suffix
        if cand not in taken:
            return cand
        i += 1
