"""Regular expressions from specs, run against model output without the risk of a hang.

A spec's ``pattern`` (or ``patternProperties``) is untrusted input, and it runs against
text a model wrote.  Python's ``re`` backtracks: ``^(a|a)*$`` against a few thousand
characters takes longer than the universe's age, and a worker matching it never returns.
So spec patterns run on RE2 (``google-re2``), which matches in time linear in the text.
RE2 has no backreferences or lookarounds; the few patterns that use them run on the
``regex`` module with a time limit, and a match that runs out of time counts as no match
(the value is rejected, the run goes on).

>>> compile_pattern(r"^\\d{5}$").search("12345")
True
>>> compile_pattern(r"^(a|a)*$").search("a" * 50_000 + "!")  # linear, not exponential
False
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
import warnings
from typing import Any

import regex

logger = logging.getLogger(__name__)

# Seconds one match of a pattern RE2 cannot run may take before it counts as no match.
MATCH_TIMEOUT = 0.2


def is_re2_available() -> bool:
    return importlib.util.find_spec("re2") is not None


class PatternError(ValueError):
    """Not a regular expression (Python's ``re`` does not accept it)."""


class SafePattern:
    """``search`` and ``fullmatch`` returning bool, in bounded time."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.engine, self._rx = _compile(pattern)

    def _run(self, method: str, text: str) -> bool:
        if self.engine == "re2":
            return getattr(self._rx, method)(text) is not None
        try:
            return getattr(self._rx, method)(text, timeout=MATCH_TIMEOUT) is not None
        except TimeoutError:
            logger.warning("pattern %.80r ran out of time on %d characters: no match", self.pattern, len(text))
            return False

    def search(self, text: str) -> bool:
        return self._run("search", text)

    def fullmatch(self, text: str) -> bool:
        return self._run("fullmatch", text)


def _compile(pattern: str) -> tuple[str, Any]:
    # What counts as a pattern stays what it was: one Python's ``re`` accepts (the corpus
    # checks, openapi.pattern_ok and tool_check say so).  Compiling does not backtrack.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarnings about ECMA-style classes
            re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise PatternError(f"pattern {pattern[:80]!r} is not a regular expression Python accepts ({exc})") from None
    if is_re2_available():
        import re2  # optional at import time only for environments without the wheel

        options = re2.Options()
        options.log_errors = False  # a lookaround is expected here, not worth a log line
        try:
            return "re2", re2.compile(pattern, options=options)
        except re2.error:
            pass
    try:
        return "regex", regex.compile(pattern, regex.VERSION0)
    except (regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise PatternError(f"pattern {pattern[:80]!r} is not a regular expression ({exc})") from None


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> SafePattern:
    """The pattern compiled for bounded-time matching (cached); :class:`PatternError` when
    it is not a regular expression."""
    return SafePattern(pattern)


def safe_search(pattern: str, text: str) -> bool:
    """``re.search(pattern, text) is not None``, in bounded time."""
    return compile_pattern(pattern).search(text)
