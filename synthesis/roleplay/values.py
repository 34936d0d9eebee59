"""Plausibility of argument values, and realistic replacements.

A tool-use example teaches a model to copy values from a request into a call, so its
values must look like what a person would type: ``"Lisbon"``, ``"2025-06-14"``,
``"ord_4f2a91c0"``; never ``"{city}"``, ``"string"``, ``"12345678910111111"`` or the tool's
own name.  Small models write such placeholders often; large ones rarely.  So reference
calls are written by the model and then checked value by value here:

* :func:`implausible` names what is wrong with one value (or returns ``None``);
* :func:`polish_arguments` keeps every plausible value the model wrote, drops an
  implausible optional one, and replaces an implausible required one by a realistic value
  for its name and schema (:func:`schema_utils.synthesize_instance`, which knows names
  like ``city``, ``email``, ``*_id`` and formats like ``date``), so the data stays
  schema-valid and readable whatever the model.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from synthesis.safe_regex import PatternError, safe_search
from synthesis.schema_utils import (
    WHEN_KEY_RX,
    NoValidValue,
    described_values,
    is_id_key,
    resolve,
    synthesize_instance,
    validation_errors,
)

from .phrasing import VERBS, humanize

PLACEHOLDER_WORDS = {
    "string", "object", "array", "integer", "number", "boolean", "null", "none", "value",
    "example", "sample", "placeholder", "todo", "tbd", "xxx", "lorem", "ipsum", "foo", "bar",
    "baz", "test", "dummy", "n/a", "na", "your", "insert", "unknown",
}  # fmt: skip
_PLACEHOLDER_CORE = r"\{\{?[^}]*\}\}?|\[[a-z_' ]{1,30}\]|<[a-z][\w -]{0,30}>|\$\{|%s"
# In a person's request, and in a message a call sends, "your" is a word ("check your
# records", "Thanks for your order"); "your_api_key", "YOUR TOKEN" and a whole value of
# "your email" are still placeholders.
_QUERY_PLACEHOLDER_RX = re.compile(f"(?i:{_PLACEHOLDER_CORE})" + r"|\b[Yy]our[_-]|\bYOUR[ _-]")
_PLACEHOLDER_RX = re.compile(_QUERY_PLACEHOLDER_RX.pattern + r"|^(?i:your)\s+\w+(\s+\w+)?$")
_REPEAT_RX = re.compile(r"(.)\1{4,}")
# What self-reflection tells the agent, copied into a value: a text argument read "Notes on
# the release notes. This is a note that is being... is the same words over and over; use a
# real value from the conversation".
_FEEDBACK_RX = re.compile(
    r"use a real value from the conversation|appears nowhere in the conversation|ask the user for it or use one"
    r"|is the same words over and over|Not usable: |Write it again\b|a tool call was required", re.I)
_UUID_RX = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_LONG_DIGITS_RX = re.compile(r"\d{13,}")
_MONTH_RX = re.compile(r"(?i)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?|0?[1-9]|1[0-2]|\d{4}-(?:0[1-9]|1[0-2])")
_WEEKDAY_RX = re.compile(r"(?i)(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?|[0-7]")
# A regular expression pasted as a value: a character class, an escape or a quantifier.
_REGEX_TEXT_RX = re.compile(r"\[(\^)?[^\]]*[a-z0-9]-[a-z0-9][^\]]*\]?|\\[dwsbDWS]|\{\d+(,\d*)?\}|\(\?[:=!<P]", re.I)
_SEQUENTIAL = ("0123456789", "1234567890", "9876543210")
# Parameters whose values are long codes by nature (tokens, hashes, cursors, encoded data).
_LONG_CODE_KEY_RX = re.compile(r"token|key|secret|signature|hash|digest|checksum|sha|cursor|etag|jwt|cert|"
                               r"nonce|base64|blob|data|payload|content|code", re.I)
# Names whose values are free text (a message body, a note): longer values are fine.
_TEXT_KEYS = ("body", "message", "text", "description", "comment", "note", "content", "summary", "bio", "reason")


def textual_key(key: str) -> bool:
    """Whether a parameter's values are free text (a message body, a note)."""
    return any(k in key.lower() for k in _TEXT_KEYS)


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def implausible(
    value: Any, key: str = "", schema: dict[str, Any] | None = None, *, tool_names: tuple[str, ...] = ()
) -> str | None:
    """Why ``value`` (of parameter ``key``) is not what a person would type, or ``None``.

    >>> implausible("{city}", "city"), implausible("Lisbon", "city")
    ('a template placeholder', None)
    >>> implausible("string", "name"), implausible("12345678910111111", "amount")
    ('a type name or placeholder word', 'a run of sequential digits')
    >>> implausible("2021-2022-02-22", "merchantAccount"), implausible("2021-02-01", "api-version")
    ('a date where no date belongs', None)
    >>> implausible(10563, "day"), implausible(14, "day"), implausible(30, "days")
    ('outside 1-31, the range of a day', None, None)
    >>> implausible(" drops to ", "previous_container"), implausible(" Hi there ", "message") is None
    ('spaces around the value (a fragment cut from a sentence)', True)
    >>> implausible("ZB878894A16CDAEB0E4E8E54F6FDE4EAD3E2EFD64E3782E71E3C2E1C1E2E4F0F8F5C0FED5", "ServiceSid")
    'an implausibly long code'
    >>> implausible("ZS28F68D7CB8743B6D82C9169F2BDBBF59", "ServiceSid") is None
    True
    >>> implausible("ZEBDABAEABBAEBAEABBAEBAEBAEBAEBAEB", "EnvironmentSid")
    'a code of a few characters over and over'
    >>> implausible("1012-07-22T12:52:04.112Z", "DateUpdated"), implausible("2025-07-22", "since") is None
    ('a year far from our time', True)
    >>> implausible("The user would need to present their assessment. The user would need to present their assessment so", "text")
    'the same words over and over'
    >>> implausible("10520160", "resourceGroupName"), implausible("The name of the resource group", "resourceGroupName")
    ('a number where a name belongs', 'a description of the parameter, not a value')
    >>> implausible("10520160", "groupName", {"pattern": "^[-a-z0-9.]+$"}), implausible("10520160", "name", {"pattern": "^[0-9]+$"})
    ('a number where a name belongs', None)
    >>> implausible("service_sid", "ServiceSid"), implausible("GMT-3002", "timeZone"), implausible("GMT+3", "timeZone")
    ('a parameter name, not a value', 'not an offset from UTC (at most 14 hours)', None)
    >>> implausible("UTC+05:30", "tz"), implausible("GMT-0800", "tz")
    (None, None)
    >>> implausible("#1", "keyId"), implausible("34, 37, 41, 43", "keyId"), implausible("34, 37, 41", "keyIds")
    ('a position in a list, not an id', 'several values in one id', None)
    >>> implausible("Marketing campaign", "variable_ids"), implausible("Marketing campaign", "campaignId"), implausible("C024BE91L", "channel_id")
    ('words where an id belongs', 'words where an id belongs', None)
    >>> implausible("that_man's_name_of_heroes", "podcastId")
    'words where an id belongs'
    >>> implausible("Taiwan", "month"), implausible("October", "month"), implausible("10", "month"), implausible("Fri", "dayOfWeek")
    ('not a month (October, Oct, 10)', None, None, None)
    >>> implausible("replaceLocalLeagueWithLocalEligibleGradingLevel", "locale"), implausible("pt_BR", "locale")
    ('not a locale (en, en-US, pt_BR)', None)
    >>> implausible("Thanks for your order, it ships today.", "message"), implausible("your email", "email")
    (None, 'a template placeholder')
    >>> implausible("Customer onboarding", "created_at"), implausible("now", "updatedAt"), implausible("Paris", "at")
    ('not a date or time', None, None)
    >>> implausible(36525332678873282385022014766559387660, "accountid"), implausible(2**40, "accountid")
    ('a number too large for JSON to hold exactly', None)
    >>> implausible("Notes. This is a note... is the same words over and over; use a real value from the conversation", "text")
    'words of the repair request, not a value'
    >>> implausible(0, "limit"), implausible(0, "page_size"), implausible(0, "offset"), implausible(10, "limit")
    ('a limit of 0 or less, which asks for nothing', 'a limit of 0 or less, which asks for nothing', None, None)
    >>> implausible("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256") is None
    True
    >>> implausible("122b5986-15dc-be81-0bea-cd557705a54b", "fileUuid") is None
    True
    >>> listing = {"description": "One of the following values:\\n* ONECLICK\\n* RECURRING"}
    >>> implausible("no_autofill", "contract", listing), implausible("ONECLICK,RECURRING", "contract", listing)
    ('not one of the values its description lists', None)
    """
    schema = schema or {}
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        span = _CLOCK_KEYS.get(key.lower().replace("_", ""))
        if span and not (span[0] <= value <= span[1]) and "maximum" not in schema:
            return f"outside {span[0]}-{span[1]}, the range of a {key}"
        if abs(value) >= 2**53:
            # beyond what JSON numbers hold exactly (a reference's account id had 108 digits)
            return "a number too large for JSON to hold exactly"
        if key.lower().replace("_", "").replace("-", "") in _LIMIT_KEYS and value <= 0:
            return "a limit of 0 or less, which asks for nothing"  # "limited to 0 results"
        text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        # round figures (100000, 1700000000) are what people type: trailing zeros do not count
        if any(s in text for s in _SEQUENTIAL) or _REPEAT_RX.search(text.replace(".", "").rstrip("0")):
            return "a run of sequential or repeated digits"
        return None
    if not isinstance(value, str):
        return None
    s = value.strip()
    if schema.get("enum") and value in schema["enum"]:
        return None
    if not s:
        return "an empty string"
    if s != value and not textual_key(key):
        return "spaces around the value (a fragment cut from a sentence)"
    listed = described_values(schema)
    if listed and not schema.get("format"):
        allowed = {v.lower() for v in listed}
        if not all(part.strip().lower() in allowed for part in s.split(",")):
            return "not one of the values its description lists"
        return None
    if not re.search(r"[^\W_]", s):
        return "punctuation, not a value"
    if _FEEDBACK_RX.search(s):
        return "words of the repair request, not a value"
    if _PLACEHOLDER_RX.search(s):
        return "a template placeholder"
    if s.lower().strip(".") in PLACEHOLDER_WORDS or s.lower() == key.lower():
        return "a type name or placeholder word"
    if re.fullmatch(r"[a-z]+(_[a-z]+)*_(id|sid|uid|name|key|code|type|value|string|number)s?", s):
        return "a parameter name, not a value"
    if describes_parameter(s, key, schema):
        return "a description of the parameter, not a value"
    if len(s.split()) >= 8 and repeats_itself(s):
        return "the same words over and over"
    if s.isdigit() and key and humanize(key).split()[-1] in ("name", "title") and _letters_allowed(schema):
        return "a number where a name belongs"
    if key and is_id_key(key) and not re.search(r"(?:ids|Ids|IDs|s)$", key):
        # a parallel reference read keyId "#1" and then keyId "34, 37, 41, 43, 44, 46, 47, 50, 51"
        if re.fullmatch(r"#\s*\d{1,3}", s):
            return "a position in a list, not an id"
        if len(re.findall(r"[^,;\s]+", s)) >= 3 and len(re.findall(r"[,;]", s)) >= 2 and not re.search(r"[a-z]{3}", s, re.I):
            return "several values in one id"
    if re.fullmatch(r"(?i)(?:[a-z]+_)?month(?:name)?", key) and not _MONTH_RX.fullmatch(s.strip()):
        return "not a month (October, Oct, 10)"  # "month": "Taiwan"
    if re.fullmatch(r"(?i)(?:day_?of_?(?:the_?)?week|week_?day)", key) and not _WEEKDAY_RX.fullmatch(s.strip()):
        return "not a day of the week (Monday, Mon, 1)"
    if key.lower() in ("locale", "accept-language") and not re.fullmatch(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,4})*", s):
        return "not a locale (en, en-US, pt_BR)"  # "replaceLocalLeagueWithLocalEligibleGradingLevel"
    offset = re.fullmatch(r"(?:GMT|UTC)\s*[+-]\s*(\d{1,2})(?::?(\d{2}))?", s, re.I)
    if offset and (int(offset.group(1)) > 14 or int(offset.group(2) or 0) >= 60):
        return "not an offset from UTC (at most 14 hours)"
    low = _norm(s)
    if low and any(low == _norm(t) or (len(_norm(t)) > 6 and _norm(t) in low) or (len(low) > 8 and low in _norm(t))
                   for t in tool_names):
        return "the tool's own name"
    if is_id_key(key) and re.match(r"^\d{4}-\d{2}-\d{2}", s):
        return "a date where an id belongs"
    if (is_id_key(key) or re.search(r"(?:_ids|Ids|IDs)$", key)) and (
            re.fullmatch(r"[A-Za-z]+(?: [A-Za-z]+)+", s) or re.search(r"[a-z]'[a-z]", s)):
        return "words where an id belongs"  # "variable_ids": "Marketing campaign"
    if (_DATE_IN_TEXT_RX.search(s) and not _is_date_key(key, schema) and not textual_key(key)
            and not _DATED_KEY_RX.search(key) and not schema.get("pattern") and not schema.get("format")):
        return "a date where no date belongs"
    if any(seq in s for seq in _SEQUENTIAL) or any(seq[:6] in re.sub(r"\D", "", s) and len(re.sub(r"\D", "", s)) >= 9 for seq in _SEQUENTIAL):
        return "a run of sequential digits"
    if _REPEAT_RX.search(s.rstrip("0") if s.isdigit() else s):
        return "a run of one repeated character"
    if len(s) >= 16 and s.isalnum() and s.isascii() and len(set(s.lower())) <= max(5, len(s) // 6):
        return "a code of a few characters over and over"
    if not textual_key(key) and not schema.get("pattern") and any(
        s.count(a) != s.count(b) for a, b in ("{}", "[]", "()")
    ):
        return "unbalanced brackets"
    if _REGEX_TEXT_RX.search(s) and not schema.get("pattern"):
        return "the text of a pattern, not a value"
    if _UUID_RX.fullmatch(s):
        return None
    parts = [p for p in re.split(r"[.\-_:/|]+", s) if p]
    if len(parts) >= 3 and max(parts.count(p) for p in parts) >= 3 and not s.replace(".", "").isdigit():
        return "the same fragment repeated"
    if re.match(r"^\d{4}-\d{2}-\d{2}T", s) and not _parses_as_date(s):
        return "not a valid date or time"
    year = re.match(r"^(\d{4})-\d{2}-\d{2}(?!\d)", s)
    if year and not 1900 <= int(year.group(1)) <= 2100:
        return "a year far from our time"
    if not textual_key(key) and not schema.get("pattern"):
        if len(parts) >= 8 or sum(1 for p in parts if len(p) == 1) >= 5:
            return "a string of many fragments"
        if re.search(r"[*,;|\\^~`$!?]", s) and " " not in s:
            return "stray punctuation in a value"
    mixed = [p for p in parts if re.search(r"\d", p) and re.search(r"[A-Za-z]", p)]
    if len(parts) >= 5 and len(mixed) >= 3 and not schema.get("pattern"):
        return "a string of random fragments"
    if _LONG_DIGITS_RX.search(s) and not schema.get("pattern"):
        return "an implausibly long number"
    if (len(s) > 40 and re.fullmatch(r"[A-Za-z0-9_-]+", s) and re.search(r"\d", s) and re.search(r"[A-Za-z]", s)
            and not schema.get("pattern") and not schema.get("maxLength") and not _LONG_CODE_KEY_RX.search(key)):
        return "an implausibly long code"
    textual = any(k in key.lower() for k in _TEXT_KEYS)
    limit = 300 if textual else 80
    if len(s) > limit and not schema.get("maxLength"):
        return f"longer than {limit} characters"
    if not textual and s.count(" ") > 8:
        return "a sentence where a short value belongs"
    if re.fullmatch(r"(GET|POST|PUT|PATCH|DELETE)\s+/.*", s):
        return "an HTTP request line"
    if _is_date_key(key, schema) and re.search(r"\d", s) and not _parses_as_date(s):
        return "not a valid date or time"
    if (_is_date_key(key, schema) and WHEN_KEY_RX.search(key) and not re.search(r"\d", s)
            and s.lower() not in _RELATIVE_TIMES):
        return "not a date or time"  # "created_at": "Customer onboarding"
    return None


# A value that says what the parameter is rather than being one: "The name of the group",
# "The path to collect data in a database", "ID of the user you want".
_DESCRIBING_RX = re.compile(
    r"^(the|a|an|your|my)\s+((unique|specified|given|full|optional|required|desired)\s+)?"
    r"(name|id|identifier|path|value|number|type|key|url|uri|code|date|time|amount|count|size|format|version|"
    r"list|set|string|title|address|location|token|reference|label|kind|mode|status|field|parameter)s?\s+"
    r"(of|to|for|that|which|used|you|where|in|from|under|with)\b|"
    r"^(id|identifier|name|path|url|value)\s+of\s+(the|a|an|your)\b|"
    r"\b(you('re| are)? (want|wish|would like|need)|you'?re in|to be (used|returned|retrieved|updated|deleted))\b",
    re.I,
)
_FUNCTION_WORD_RX = re.compile(r"\b(the|of|to|for|a|an|in|you|your|that|which|be|is|are)\b", re.I)
# Keys whose values may be titles or free text that start like a description ("The Name of the Rose").
_TITLE_KEY_RX = re.compile(r"title|query|search|^q$|keyword|term|phrase|caption|headline|subject", re.I)


def _letters_allowed(schema: dict[str, Any]) -> bool:
    """Whether a string of letters may fill a string of this schema (its ``pattern`` aside,
    nothing else restricts it)."""
    pattern = schema.get("pattern")
    if not isinstance(pattern, str):
        return True
    try:
        return safe_search(pattern, "payments-eu") or safe_search(pattern, "payments")
    except PatternError:
        return True


def describes_parameter(value: str, key: str = "", schema: dict[str, Any] | None = None) -> bool:
    """Whether ``value`` describes its parameter instead of being a value for it: a
    schema's description pasted or paraphrased ("The name of the group you're in" for
    ``resourceGroupName``, described "The name of the resource group."), or a phrase that
    only says what would go there ("The path to collect data in a database").

    >>> d = {"description": "The name of the resource group."}
    >>> describes_parameter("The name of the group you're in", "resourceGroupName", d)
    True
    >>> describes_parameter("The path to collect data in a database", "subscriptionId")
    True
    >>> describes_parameter("rg-payments-eu", "resourceGroupName", d), describes_parameter("Kenneth Lewis", "name")
    (False, False)
    >>> describes_parameter("The Name of the Rose", "title"), describes_parameter("The Beatles", "artist")
    (False, False)
    >>> describes_parameter("Text to translate into French", "text", {"description": "The text to translate."})
    True
    >>> describes_parameter("Bonjour, je voudrais un café", "text", {"description": "The text to translate."})
    False
    >>> describes_parameter("fullName, initials and username", "member_fields",
    ...                     {"description": "all or a comma-separated list of: avatarHash, fullName, initials, username"})
    False
    >>> describes_parameter("Romance Standard Time", "localTimeZoneName", {"description": 'Default "Romance Standard Time"'})
    False
    >>> describes_parameter("The time for the call is 3pm, tell me if you need more.", "message", {"description": "The message."})
    False
    """
    s = " ".join(value.split())
    words = s.split()
    if len(words) < 3:
        return False
    if not _TITLE_KEY_RX.search(key) and not textual_key(key) and _DESCRIBING_RX.search(s):
        return True  # (a message may well say "the time for the call" or "if you need more")
    description = str((schema or {}).get("description") or "")
    mine = content_words(s)
    # a paraphrase is a phrase ("the name of the group"); a list of the described fields
    # ("fullName, initials and username") or a named value ("Romance Standard Time") is not
    if not description or len(mine) < 2 or not _FUNCTION_WORD_RX.search(s):
        return False
    theirs = {singular(w) for w in content_words(description) | content_words(humanize(key))}
    shared = {w for w in mine if singular(w) in theirs}
    return len(shared) >= 2 and len(shared) >= 0.6 * len(mine)


def singular(w: str) -> str:
    """``groups`` -> ``group`` (words of five letters or more; ``bus`` stays)."""
    return w[:-1] if len(w) > 4 and w.endswith("s") else w


def shown(value: Any) -> str:
    """``value`` as a problem message quotes it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Parameters that count a unit of a clock or calendar, and the values they take.
_CLOCK_KEYS = {"day": (1, 31), "dayofmonth": (1, 31), "month": (1, 12), "hour": (0, 23), "minute": (0, 59),
               "second": (0, 59), "weekday": (0, 7), "dayofweek": (0, 7)}
_DATE_IN_TEXT_RX = re.compile(r"(?<!\d)(19|20)\d{2}-\d{2}-\d{2}(?!\d)")
# Parameters whose values may carry a date without being dates: versions (``2021-02-01``),
# names, periods and searches.
_DATED_KEY_RX = re.compile(r"version|release|revision|period|season|range|window|interval|filter|query|search|"
                           r"term|tag|name|title|label|path|file|url|time|day|month|year|week|from|to$|start|end|"
                           r"expir|birth|valid", re.I)


# Parameters that cap how many results come back.
_LIMIT_KEYS = {"limit", "perpage", "pagesize", "maxresults", "maxitems", "top", "first", "last"}
_RELATIVE_TIMES = {"now", "today", "yesterday", "tomorrow", "never", "null", "none", "n/a"}


def _is_date_key(key: str, schema: dict[str, Any]) -> bool:
    if schema.get("format") in ("date", "date-time"):
        return True
    low = key.lower()
    return schema.get("format") is None and not schema.get("pattern") and (
        low in ("date", "datetime", "timestamp", "since", "until")
        or low.endswith(("_date", "date", "_at", "_time", "datetime"))
    ) and low not in ("update", "mandate")


def _parses_as_date(s: str) -> bool:
    """ISO dates and date-times (``2025-06-14``, ``2025-06-14T09:30:00Z``), or a bare time.

    >>> _parses_as_date("2025-06-14T09:30:00.15Z"), _parses_as_date("2015-11-26T01:33:54.15MZT18|")
    (True, False)
    """
    from datetime import date, datetime, time

    for parse in (datetime.fromisoformat, date.fromisoformat, time.fromisoformat):
        try:
            parse(s.replace("Z", "+00:00") if parse is not date.fromisoformat else s)
            return True
        except ValueError:
            continue
    # unix timestamps and other plain numbers are fine for keys like created_at
    return bool(re.fullmatch(r"\d{9,13}(\.\d+)?", s))


def plausible_value(
    key: str, prop: dict[str, Any], root: dict[str, Any], rng: random.Random, *, tool_names: tuple[str, ...] = ()
) -> Any:
    """A synthesized value for property ``key`` (schema ``prop``, its ``$ref``s resolved in
    ``root``) that is not implausible, or ``None`` after a few tries.

    >>> plausible_value("id", {"type": "string", "example": "{{PAGE_ID}}"}, {}, random.Random(0)) != "{{PAGE_ID}}"
    True
    """
    defs = {d: root[d] for d in ("$defs", "definitions") if d in root}
    sub = resolve(prop, root)
    sub = sub if isinstance(sub, dict) else {}
    # after the first try, without the spec's own example: where it is a placeholder
    # ("{{PAGE_ID}}", "Your super awesome message") every try would return it again
    bare = {k: v for k, v in sub.items() if k not in ("default", "example", "examples")} if sub else None
    for k in range(6):
        use = prop if k == 0 or not bare else bare
        try:
            candidate = synthesize_instance(
                {"type": "object", "properties": {key: use or {"type": "string"}}, "required": [key], **defs},
                rng=random.Random(rng.random() + k),
                optional_ratio=0.3,
            ).get(key)
        except NoValidValue:
            return None
        if candidate is not None and _deep_problem(candidate, key, sub, tool_names) is None:
            return candidate
    return None


def polish_result(value: Any, schema: dict[str, Any] | None, rng: random.Random) -> tuple[Any, list[str]]:
    """A simulated tool result with implausible string values (``YOUR_API_KEY_HERE``,
    ``{``, ``string``) replaced by synthesized ones, at any depth, and the paths changed.

    A replacement that would break ``schema`` is not made.

    >>> polish_result({"token": "YOUR_API_KEY_HERE", "n": 2}, None, random.Random(0))[1]
    ['token']
    """
    root = schema if isinstance(schema, dict) else {}
    changed: list[str] = []

    def walk(node: Any, sub: Any, path: str) -> Any:
        sub = resolve(sub, root) if isinstance(sub, dict) else {}
        sub = sub if isinstance(sub, dict) else {}
        if isinstance(node, list):
            return [walk(x, sub.get("items") or {}, path) for x in node]
        if not isinstance(node, dict):
            return node
        props = sub.get("properties") or {}
        extra = sub.get("additionalProperties") if isinstance(sub.get("additionalProperties"), dict) else {}
        out = {}
        for k, v in node.items():
            child = props.get(k) or extra
            resolved = resolve(child, root)
            if isinstance(v, str) and implausible(v, k, resolved if isinstance(resolved, dict) else {}):
                new = plausible_value(k, child, root, rng)
                if isinstance(new, str):
                    changed.append(f"{path}{k}")
                    out[k] = new
                    continue
            out[k] = walk(v, child, f"{path}{k}.")
        return out

    polished = walk(value, root, "")
    if changed and root and validation_errors(polished, root):
        return value, []
    return polished, changed


def polish_arguments(
    arguments: dict[str, Any],
    schema: dict[str, Any] | None,
    rng: random.Random,
    *,
    tool_names: tuple[str, ...] = (),
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``arguments`` with implausible top-level values dropped (optional) or replaced
    (required), and a note per change ``{"argument", "problem", "action"}``.

    The result validates against ``schema`` whenever ``arguments`` did (a replacement that
    would not validate is not made: the value is kept and the note says so).

    >>> schema = {"type": "object", "required": ["networkWatcherName", "connectionMonitorName"], "properties": {
    ...     "networkWatcherName": {"type": "string"}, "connectionMonitorName": {"type": "string"}}}
    >>> out, notes = polish_arguments({"networkWatcherName": "networkWatcher12", "connectionMonitorName": "networkWatcher12"},
    ...                               schema, random.Random(0))
    >>> out["networkWatcherName"], out["connectionMonitorName"] != "networkWatcher12", notes[0]["action"]
    ('networkWatcher12', True, 'replaced')
    """
    schema = schema or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    out = dict(arguments)
    notes: list[dict[str, str]] = []

    def mend(key: str, problem: str, old: Any) -> None:
        """Drop an optional ``key``, else replace its value where a new one validates."""
        nonlocal out
        if key not in required:
            out.pop(key)
            notes.append({"argument": key, "problem": problem, "action": "dropped"})
            return
        replacement = plausible_value(key, props.get(key) or {}, schema, rng, tool_names=tool_names)
        trial = {**out, key: replacement}
        if replacement is None or replacement == old or validation_errors(trial, schema):
            notes.append({"argument": key, "problem": problem, "action": "kept"})
            return
        out = trial
        notes.append({"argument": key, "problem": problem, "action": "replaced"})

    for key, value in arguments.items():
        sub = resolve(props.get(key) or {}, schema)
        sub = sub if isinstance(sub, dict) else {}
        problem = _deep_problem(value, key, sub, tool_names)
        if problem is not None:
            mend(key, problem, value)
    # Two identifiers or names of one call with the same value name two things as one (a
    # planned call's network watcher and connection monitor were both "networkWatcher12"):
    # the later one gets a value of its own.
    seen: dict[str, str] = {}
    for key in list(out):
        value = out[key]
        if not (isinstance(value, str) and len(value) >= 3 and (is_id_key(key) or humanize(key).lower().endswith(" name"))):
            continue
        if value in seen:
            mend(key, f"the same value as {seen[value]}, which names another thing", value)
        else:
            seen[value] = key
    return out, notes


# What the rules reject a finished trajectory for.  The other reasons of :func:`implausible`
# are heuristics that a value forced by its schema (a pattern's digits, a long code) may
# trip: polishing replaces such values where it can, and keeps them where nothing else fits.
RULE_REASONS = frozenset({
    "a description of the parameter, not a value", "a number where a name belongs", "the same words over and over",
    "a template placeholder", "a type name or placeholder word", "a parameter name, not a value",
    "the tool's own name", "words of the repair request, not a value",
})


def implausible_arguments(call: dict[str, Any], tool: dict[str, Any] | None, *, tool_names: tuple[str, ...] = ()) -> list[str]:
    """Each argument of ``call`` whose value (at any depth) a person would not have typed,
    for one of :data:`RULE_REASONS`, as ``name.key = value is why``: the rules' last word
    on values that polishing kept.

    >>> t = {"name": "delete_group", "inputSchema": {"type": "object", "properties": {
    ...     "group": {"type": "string", "description": "The name of the resource group."}}}}
    >>> implausible_arguments({"name": "delete_group", "arguments": {"group": "The name of the group"}}, t)
    ["delete_group.group = 'The name of the group' is a description of the parameter, not a value"]
    >>> implausible_arguments({"name": "delete_group", "arguments": {"group": "rg-payments-eu"}}, t)
    []
    """
    schema = (tool or {}).get("inputSchema") or {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    out = []
    for key, value in (call.get("arguments") or {}).items():
        sub = resolve(props.get(key) or {}, schema)
        why = _deep_problem(value, key, sub if isinstance(sub, dict) else {}, tool_names)
        if why and why.rsplit(": ", 1)[-1] in RULE_REASONS:
            out.append(f"{call.get('name')}.{key} = {shown(value)} is {why}")
    return out


def _deep_problem(value: Any, key: str, schema: dict[str, Any], tool_names: tuple[str, ...]) -> str | None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for k, v in value.items():
            p = _deep_problem(v, k, props.get(k) if isinstance(props.get(k), dict) else {}, tool_names)
            if p:
                return f"{k}: {p}"
        return None
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        for v in value:
            p = _deep_problem(v, key, items, tool_names)
            if p:
                return p
        return None
    return implausible(value, key, schema, tool_names=tool_names)


_STOP = {
    "the", "and", "for", "with", "you", "your", "can", "could", "would", "please", "need", "like",
    "want", "get", "me", "my", "this", "that", "from", "into", "about", "also", "again", "same",
    "hi", "hello", "there", "i'd", "i'm", "let", "know", "all", "any", "some", "are", "was", "has",
    "have", "will", "just", "then", "than", "them", "they", "what", "which", "who", "how", "its",
}  # fmt: skip
_ASSISTANT_VOICE = re.compile(
    r"\b(i'?m|i am|i'?ll be|i will be) (here|happy|glad) to help|\bglad (that )?i (could|was able to|can) help|"
    r"how (can|may) i (help|assist)|what (is it|can i do for) you|"
    r"thank you for (asking|reaching)|as an ai\b|i can help you|is there anything else|let me know if you|"
    r"^you (can|could|may|should|need to)\b|if you have access|"
    r"\b(i'?m|i am) (the|an|your) (ai )?(assistant|agent|chatbot|user simulator)\b|"
    r"\b(this|the|my) task is (not )?(yet )?(complete|completed|done|finished)\b|\bthe desired action\b|"
    # a user does not talk about "your request" (a rewrite appended "Your request includes a list
    # of products, you need to know exactly what all in your request is here.")
    r"\byour (request|query|question)\b|"
    # the answer to a thanks, which the user then seems to give ("You're welcome, thanks for
    # your patience!" closed a multi-turn conversation)
    r"^\W*(you'?re|you are) (very |most )?welcome\b|^\W*(my pleasure|happy to help|glad to help)\b|"
    r"\bthanks? (you )?for your patience\b",
    re.I,
)


def repeats_itself(text: str) -> bool:
    """Whether ``text`` says the same thing over and over, as a small model stuck in a loop
    writes: a 4-word phrase three times, a 7-word phrase twice, or a sentence of four words
    or more twice.

    >>> repeats_itself("I'm sorry. I'm sorry. I'm sorry. I'm sorry."), repeats_itself("It is 12 degrees in Oslo.")
    (True, False)
    """
    words = re.findall(r"[a-z0-9']+", text.lower())
    grams = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
    if grams and max(grams.count(g) for g in set(grams)) >= 3:
        return True
    long_grams = [" ".join(words[i : i + 7]) for i in range(len(words) - 6)]
    if len(long_grams) != len(set(long_grams)):
        return True
    sentences = [x for x in (" ".join(re.findall(r"[a-z0-9']+", y.lower())) for y in re.split(r"(?<=[.!?])\s+", text)) if x]
    long_ones = [x for x in sentences if len(x.split()) >= 4]
    if len(long_ones) != len(set(long_ones)):
        return True
    # a short sentence said over and over ("I'm sorry. I'm sorry. ...")
    return len(sentences) >= 4 and max(sentences.count(x) for x in set(sentences)) * 2 > len(sentences)


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z']{2,}", text.lower()) if w not in _STOP}


def overlap(text: str, reference: str) -> float:
    """Share of ``reference``'s content words that ``text`` uses (1.0 when it has none).

    >>> overlap("Could you fetch the weather in Oslo?", "Can you get the current weather, with city Oslo?")
    0.5
    """
    ref = content_words(reference)
    if not ref:
        return 1.0
    return round(len(ref & content_words(text)) / len(ref), 6)


def query_problems(query: str, tool_names: tuple[str, ...] = ()) -> list[str]:
    """What makes a user's request unusable as training data (empty when none).

    >>> query_problems("GET /api/users/42 for me")
    ['reads like an HTTP request, not a person']
    >>> query_problems("What's the weather in Lisbon on 2025-06-14?")
    []
    >>> query_problems("I am the assistant, and I have a goal to get the homepage experience.")
    ['speaks as the assistant, not the user']
    >>> query_problems("This task is not complete. Please provide the desired action.")
    ['speaks as the assistant, not the user']
    >>> query_problems("Nice job, I'm glad I could help!")
    ['speaks as the assistant, not the user']
    >>> query_problems("You're welcome, thanks for your patience!")
    ['speaks as the assistant, not the user']
    >>> query_problems("Can you update GraceKimNYCPER? I'll be happy to help you, but I need access.")
    ['speaks as the assistant, not the user']
    >>> query_problems("Need to get Build ZB25 for service serv_4224eb78. Your request includes a list of products.")
    ['speaks as the assistant, not the user']
    >>> query_problems("Create a place named Priya's corner. Her blog is [user's blog name].")
    ['contains a template placeholder']
    >>> query_problems("Create a status saying: a product with lots of product data, requiring some data cleaning"
    ...                " and some data loss, so it needs some data removed.")
    ['repeats itself']
    >>> query_problems("Create channel chan_8ac6818f for service ISF4e46, please, please, please!")
    ['repeats itself']
    >>> query_problems("Can you check your records for order ord_4f2a91c0?"), query_problems("Use YOUR_API_KEY for {city}")
    ([], ['contains a template placeholder'])
    """
    q = query.strip()
    out = []
    words = q.split()
    if len(words) < 3:
        out.append("fewer than three words")
    if re.match(r"^(GET|POST|PUT|PATCH|DELETE|HEAD)\b", q) or re.search(r"\s/[a-z0-9_{}-]+/", q, re.I):
        out.append("reads like an HTTP request, not a person")
    if re.match(r"^\s*(select|insert|update|delete)\b.*\b(from|into|set|where)\b", q, re.I):
        out.append("reads like SQL, not a person")
    if _QUERY_PLACEHOLDER_RX.search(q):
        out.append("contains a template placeholder")
    named = [t for t in tool_names if len(t) > 4 and ("_" in t or re.search(r"[a-z][A-Z]", t)) and t.lower() in q.lower()]
    if named:
        out.append(f"names the tool {named[0]}")
    if len(q) > 600:
        out.append("longer than 600 characters")
    counts = Counter(w for w in re.findall(r"[a-z]{4,}", q.lower()) if w not in _STOP)
    if (_REPEAT_RX.search(q.replace(" ", "")) or (words and len(set(words)) < len(words) / 3)
            or re.search(r"(?i)\b([a-z]{3,})\b(?:[\s,;.!]+\1\b){2,}", q)
            or (counts and counts.most_common(1)[0][1] >= 4)):
        out.append("repeats itself")
    letters = sum(ch.isalpha() for ch in q)
    if q and letters / len(q) < 0.5:
        out.append("mostly symbols and digits")
    if any(q.count(a) != q.count(b) for a, b in ("{}", "[]", "()")) or "}}" in q or "{{" in q:
        out.append("has unbalanced brackets (template or code debris)")
    if re.match(r"^\s*(\d+[.)]|[-*•])\s", q):
        out.append("starts like a list item")
    if _ASSISTANT_VOICE.search(q):
        out.append("speaks as the assistant, not the user")
    if re.match(r"^[A-Z][\w .'-]{0,20}:\s", q) and not re.match(r"^(hi|hello|hey|note|ps|re)\b", q, re.I):
        out.append("starts with a speaker label, like a script")
    return out


_REQUEST_RX = re.compile(
    r"\?|\b(please|pls|can you|could you|would you|will you|i need|i'?d like|i want|i would like|need to|want to|if you could|"
    r"i'?m (looking|trying|hoping)|help me|let'?s|tell me|show me|give me)\b|"
    # an imperative: a sentence that starts with a verb (after an optional greeting)
    r"(^|[.!;:]\s+)((hi|hello|hey)[,!]?\s+)?(find|get|check|look up|send|create|cancel|book|update|delete|"
    r"remove|add|list|make|set|fetch|search|order|refund|change|submit|place|pull up|retrieve|open|close|"
    r"start|stop|run|schedule|move|rename|upload|download|share|post|register|sign|verify|convert|translate)\b",
    re.I,
)


def is_request(text: str) -> bool:
    """Whether ``text`` asks for something (a question, a request or an imperative), as a
    user's opening turn must.

    >>> is_request("Could you cancel order ord_4f2a91c0?"), is_request("Cancel order ord_4f2a91c0.")
    (True, True)
    >>> is_request("Enjoyed the new collection, what a lovely summer it was.")
    False
    """
    if _REQUEST_RX.search(text):
        return True
    first = re.match(r"^\s*(?:(?:hi|hello|hey)[,!.]?\s+)?([A-Za-z]+)", text, re.I)
    return bool(first and first.group(1).lower() in VERBS)


def cap_strings(tool: dict[str, Any], *, short: int = 80, text: int = 300) -> dict[str, Any]:
    """A copy of ``tool`` whose ``inputSchema`` strings without a bound get ``maxLength``
    (``text`` for free-text names like ``body``, else ``short``).

    Given to a grammar-constrained decoder, it stops a small model from running a string
    to the token limit (an unterminated, unparseable call); validation still uses the
    original schema.

    >>> cap_strings({"name": "f", "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}})["inputSchema"]
    {'type': 'object', 'properties': {'city': {'type': 'string', 'maxLength': 80}}}
    """

    def walk(node: Any, key: str, depth: int) -> Any:
        if depth > 12 or not isinstance(node, dict):
            return node
        out = {}
        for k, v in node.items():
            if k == "properties" and isinstance(v, dict):
                out[k] = {name: walk(sub, name, depth + 1) for name, sub in v.items()}
            elif k in ("items", "additionalProperties") and isinstance(v, dict):
                out[k] = walk(v, key, depth + 1)
            elif k in ("anyOf", "oneOf", "allOf") and isinstance(v, list):
                out[k] = [walk(sub, key, depth + 1) for sub in v]
            elif k in ("$defs", "definitions") and isinstance(v, dict):
                out[k] = {name: walk(sub, name, depth + 1) for name, sub in v.items()}
            else:
                out[k] = v
        types = node.get("type")
        is_string = types == "string" or (isinstance(types, list) and "string" in types)
        if is_string and not any(x in node for x in ("maxLength", "enum", "const", "pattern", "format")):
            out["maxLength"] = text if any(t in key.lower() for t in _TEXT_KEYS) else short
        return out

    schema = tool.get("inputSchema")
    if not isinstance(schema, dict):
        return tool
    return {**tool, "inputSchema": walk(schema, "", 0)}
