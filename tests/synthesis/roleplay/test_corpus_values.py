"""Synthesized values validate for what the corpus's tools actually carry: the 200 most
frequent ``pattern``s and every ``format`` of the whole APIs.guru corpus, as converted.

The fixture ``data/corpus_patterns.json`` is written by
``python -m synthesis.mcp_tree.corpus_stats`` (it converts every spec; a few minutes).
"""

import json
import random
import re
from pathlib import Path

import pytest

from synthesis.roleplay.values import implausible
from synthesis.schema_utils import (
    _FORMATS,
    _format_checker,
    synthesize_instance,
    validation_errors,
)

DATA = json.loads((Path(__file__).parent / "data" / "corpus_patterns.json").read_text())
NAMES = ["value", "id", "name", "date", "email", "code", "region"]


def test_the_fixture_holds_the_top_200_patterns_and_every_format():
    assert len(DATA["patterns"]) == 200 and DATA["tools"] > 100_000
    assert len(DATA["formats"]) >= 150


@pytest.mark.parametrize("entry", DATA["patterns"], ids=lambda e: str(e["count"]))
def test_values_match_each_frequent_pattern(entry):
    pattern = entry["pattern"]
    for seed in range(3):
        for name in NAMES:
            schema = {"type": "object", "properties": {name: {"type": "string", "pattern": pattern}}, "required": [name]}
            value = synthesize_instance(schema, rng=random.Random(seed))[name]
            assert re.search(pattern, value), (pattern, value)
            assert validation_errors({name: value}, schema) == []
            assert len(value) <= 120, value  # short enough to read and to type


def test_pattern_values_are_readable():
    # the issue's examples of noise must not be what the generator writes
    for entry in DATA["patterns"]:
        v = synthesize_instance({"type": "string", "pattern": entry["pattern"]}, rng=random.Random(1), name="code")
        assert "[0-9" not in v and "token-token" not in v, v


def known_formats():
    return set(_format_checker().checkers)


@pytest.mark.parametrize("entry", DATA["formats"], ids=lambda e: e["format"])
def test_values_validate_for_each_format(entry):
    fmt = entry["format"]
    schema = {"type": "string", "format": fmt}
    for seed in range(3):
        value = synthesize_instance(schema, rng=random.Random(seed), name="value")
        assert isinstance(value, str) and value.strip()
        assert validation_errors(value, schema) == [], (fmt, value)
        if fmt in known_formats():
            # a checked format gets a value made for it, not free text that the check lets by
            assert fmt in _FORMATS, f"no value maker for the checked format {fmt!r}"


def test_how_many_corpus_format_uses_have_a_check():
    known = known_formats()
    checked = sum(f["count"] for f in DATA["formats"] if f["format"] in known)
    total = sum(f["count"] for f in DATA["formats"])
    # free-text formats ("A score between 0 and 10 as a float", "<user-id>@ndhm") have no
    # check to pass; the rest cover nearly every use
    assert checked / total > 0.94, checked / total  # measured: 0.949


def test_bad_values_of_checked_formats_fail():
    for fmt, bad in [("int32", "12a"), ("date-time", "2025-13-45"), ("uuid", "not-a-uuid"), ("google-datetime", "yesterday"),
                     ("double", "1,5"), ("email", "nobody"), ("date", "14/06/2025")]:
        assert validation_errors(bad, {"type": "string", "format": fmt}), fmt


def test_noise_values_from_the_issue_are_implausible():
    for value in ["ast-10801.f133.fieI0E.i1Ei1.i1Ei1.i1Ei1", "ZE[0-9a-f8-a12-9bA-F17b-0FCA-00E-A-A-A-",
                  "token-token-token-token-12", "v15.0.21-8888-s3.npm.npm-cache.v8.0.2.0-",
                  # seen in a later run of the embedded model
                  "123_98_123_11_12_13_2013_21_22_23_24_25_26", "a_b_c_d_e_f_g_h_i_j", "WFJB*BamBAM",
                  "2023-11-28T08:35:53.58.43.16,,", "Post_Api_V1_Account_ID_unmute_id_unmute_id_1"]:
        assert implausible(value, "value"), value


def test_realistic_values_stay_plausible():
    for value, key in [("Lisbon", "city"), ("ord_4f2a91c0", "order_id"), ("1.2.3", "version"), ("api.example.com", "host"),
                       ("2025-06-14T09:30:00Z", "since"), ("paper clips", "item"), ("alex.morgan@example.com", "email")]:
        assert implausible(value, key) is None, value


def test_a_tools_name_inside_out_and_a_date_as_an_id_are_implausible():
    assert implausible("schoolsForSchoolAdmin", "id", tool_names=("getSchoolsForSchoolAdmin",)) == "the tool's own name"
    assert implausible("2018-10-28 10:47", "Sid") == "a date where an id belongs"
    assert implausible("ord_4f2a91c0", "order_id", tool_names=("get_order",)) is None
