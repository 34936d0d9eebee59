"""Spec patterns run against model output in bounded time (synthesis/safe_regex.py)."""

import random
import time

import pytest

from synthesis.safe_regex import PatternError, compile_pattern, is_re2_available
from synthesis.schema_utils import NoValidValue, pattern_value, validation_errors

# Classic catastrophic-backtracking patterns; with Python's re each of these takes
# exponential time on a few dozen characters that almost match.
REDOS = [r"^(a+)+$", r"^(a|a)*$", r"^(a|aa)+$", r"^(\w+\s?)*$", r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$"]
EVIL = "a" * 50_000 + "!"


def test_re2_is_installed():
    assert is_re2_available(), "google-re2 is a dependency: pip install -e ."


@pytest.mark.parametrize("pattern", REDOS)
def test_redos_patterns_run_in_linear_time_in_schema_validation(pattern):
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}},
              "patternProperties": {pattern: {"type": "string"}}}
    t0 = time.perf_counter()
    errors = validation_errors({"v": EVIL, EVIL: "x"}, schema)
    assert time.perf_counter() - t0 < 2
    assert errors and errors[0].startswith("$")
    assert validation_errors({"v": "aaaa"}, {"properties": {"v": {"pattern": r"^(a+)+$"}}}) == []


def test_a_pattern_re2_cannot_run_is_time_bounded_and_counts_as_no_match():
    # a lookahead (not in RE2) around a backtracking body
    rx = compile_pattern(r"^(?=a)(a|aa)+$")
    assert rx.engine == "regex" and rx.search("aaaa")
    t0 = time.perf_counter()
    assert not rx.search("a" * 5_000 + "!")
    assert time.perf_counter() - t0 < 3
    errors = validation_errors({"v": "a" * 5_000 + "!"}, {"properties": {"v": {"pattern": r"^(?=a)(a|aa)+$"}}})
    assert errors and errors[0].startswith("$")


def test_a_hostile_hint_does_not_hang_value_synthesis():
    t0 = time.perf_counter()
    v = pattern_value(r"^(a+)+$", random.Random(0), hint=EVIL)
    assert v != EVIL and set(v) == {"a"}
    assert time.perf_counter() - t0 < 2


def test_what_counts_as_a_pattern_is_unchanged():
    with pytest.raises(PatternError):
        compile_pattern(r"\p{L}+")  # Python's re rejects it, so the schema is reported unusable
    assert "unusable" in validation_errors({"a": "x"}, {"properties": {"a": {"pattern": r"\p{L}+"}}})[0]
    with pytest.raises(NoValidValue):
        pattern_value("(", random.Random(0))
