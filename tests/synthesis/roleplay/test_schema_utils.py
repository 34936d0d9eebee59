import random
import re

import pytest

from synthesis.schema_utils import (
    is_id_key,
    synthesize_instance,
    unknown_argument_names,
    validation_errors,
)

from .fakes import ALL_TOOLS

SCHEMAS = (
    [
        {
            "type": "object",
            "properties": {"a": {"type": "string", "minLength": 5, "maxLength": 6}},
            "required": ["a"],
        },
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "exclusiveMinimum": 0, "multipleOf": 5, "maximum": 50}
            },
            "required": ["n"],
        },
        {
            "type": "object",
            "properties": {"x": {"type": ["null", "number"], "minimum": -3, "maximum": -1}},
            "required": ["x"],
        },
        {
            "type": "object",
            "properties": {
                "tags": {
                    "type": "array",
                    "items": {"enum": ["a", "b", "c"]},
                    "minItems": 2,
                    "uniqueItems": True,
                }
            },
            "required": ["tags"],
        },
        {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "mail": {"type": "string", "format": "email"},
            },
            "required": ["when", "mail"],
        },
        {
            "$defs": {
                "pet": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "kind": {"const": "cat"}},
                    "required": ["name", "kind"],
                }
            },
            "type": "object",
            "properties": {"pet": {"$ref": "#/$defs/pet"}},
            "required": ["pet"],
        },
        {
            "type": "object",
            "properties": {"v": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}},
            "required": ["v"],
        },
        {
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": "^[0-9]{4}$"}},
            "required": ["code"],
        },
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]},
            ]
        },
        {
            "type": "object",
            "properties": {
                "meta": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "minProperties": 2,
                }
            },
            "required": ["meta"],
        },
    ]
    + [t["inputSchema"] for t in ALL_TOOLS]
    + [t["outputSchema"] for t in ALL_TOOLS if "outputSchema" in t]
)


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthesized_instances_validate(schema, seed):
    value = synthesize_instance(schema, rng=random.Random(seed))
    assert validation_errors(value, schema) == []


def test_synthesis_is_deterministic_and_uses_hints():
    schema = SCHEMAS[-1]
    assert synthesize_instance(schema, rng=random.Random(7)) == synthesize_instance(
        schema, rng=random.Random(7)
    )
    out = synthesize_instance(
        ALL_TOOLS[0]["outputSchema"],
        rng=random.Random(0),
        hints={"item": "oat milk", "quantity": 3},
    )
    assert out["item"] == "oat milk" and out["quantity"] == 3
    # A hint that does not fit the property's schema is ignored.
    out = synthesize_instance(
        ALL_TOOLS[0]["outputSchema"], rng=random.Random(0), hints={"quantity": "many"}
    )
    assert isinstance(out["quantity"], int)


def test_unknown_names_and_messages():
    schema = ALL_TOOLS[3]["inputSchema"]
    assert unknown_argument_names({"city": "Oslo", "colour": "red"}, schema) == ["colour"]
    assert unknown_argument_names({"anything": 1}, {"type": "object"}) == []
    errs = validation_errors({"city": 3}, schema)
    assert errs and errs[0].startswith("$.city:")
    # A schema Python cannot compile is reported, not raised.
    assert (
        "unusable"
        in validation_errors({"a": "x"}, {"properties": {"a": {"pattern": "\\p{L}+"}}})[0]
    )


def test_id_keys():
    assert all(is_id_key(k) for k in ("id", "order_id", "userId", "uuid", "pid", "uid"))
    assert not any(is_id_key(k) for k in ("idea", "paid", "valid", "key", "lid", "android"))


def _value(key: str, **node) -> str:
    schema = {"type": "object", "properties": {key: {"type": "string", **node}}, "required": [key]}
    return synthesize_instance(schema, rng=random.Random(0))[key]


PERSON = re.compile(r"[A-Z][a-z]+ [A-Z][a-z]+")  # Faker's or the fallback list's


def test_a_name_names_what_its_key_or_description_says():
    """Read off an accepted trajectory: an emoji reaction named "Amy Hernandez", a delete
    call with pid = "Hiring plan"."""
    emoji = _value("name", description="Reaction (emoji) name.")
    assert re.fullmatch(r"[a-z_]+", emoji), emoji
    repo = _value("repo_name")
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", repo), repo
    project = _value("projectName")
    assert " " in project or project.istitle()
    for key in ("name", "repo_name", "projectName", "channelName"):
        for seed in range(5):
            schema = {"type": "object", "required": [key],
                      "properties": {key: {"type": "string", "description": "The name of the repository."}}}
            value = synthesize_instance(schema, rng=random.Random(seed))[key]
            assert not PERSON.fullmatch(value), (key, value)
    # People keep a person's name.
    for key, node in (("customer_name", {}), ("display_name", {}), ("name", {"description": "The user's full name"}),
                      ("name", {})):
        assert PERSON.fullmatch(_value(key, **node)), key
    # An id-like key, or a description that says identifier, gets an identifier.
    assert re.fullmatch(r"[a-z]+_[0-9a-f]{8}", _value("pid"))
    assert re.fullmatch(r"[a-z]+_[0-9a-f]{8}", _value("page", description="The page ID."))


def test_a_hosted_resource_gets_a_slug():
    """Read off accepted trajectories: a resource group "Gary Romero", a network watcher
    "Sharon Wilson", a connection monitor "jyl" (a pattern refused the spaced hint)."""
    for key in ("resourceGroupName", "networkWatcherName", "connectionMonitorName", "vaultName"):
        for pattern in (None, r"^[-\w\._\(\)]+$"):
            node = {"description": f"The name of the {key[:-4]}."} | ({"pattern": pattern} if pattern else {})
            for seed in range(4):
                schema = {"type": "object", "required": [key], "properties": {key: node}}
                value = synthesize_instance(schema, rng=random.Random(seed))[key]
                assert not PERSON.fullmatch(value), (key, value)
                assert re.fullmatch(r"[a-z]+(-[a-z]+)+", value), (key, pattern, value)
                # named as operators name what they run: the workload, the kind, the environment
                # (a network watcher "tax-return" fitted nothing)
                kind = "rg" if key == "resourceGroupName" else key[:-4].lower().replace("network", "").replace(
                    "connection", "")
                parts = value.split("-")
                assert parts[-1] in ("prod", "dev", "staging", "test"), (key, value)
                assert (parts[0] if kind == "rg" else parts[1]) == kind, (key, value)


def test_a_declared_dollar_schema_is_a_schema_address():
    """Read off an accepted trajectory: a response schema that declares "$schema" got
    "$schema": "Inventory count"."""
    schema = {"type": "object", "required": ["$schema", "data"],
              "properties": {"$schema": {"type": "string"}, "data": {"type": "string"}}}
    for seed in range(5):
        value = synthesize_instance(schema, rng=random.Random(seed))["$schema"]
        assert re.fullmatch(r"https://example\.com/schemas/[a-z]+\.json", value), value


def test_when_and_number_fields_get_dates_and_digits():
    """Read off accepted trajectories' tool results: "created_at": "Customer onboarding" and
    "school_number": "Supplier contract"."""
    for key, rx in (("created_at", r"20\d\d-\d\d-\d\dT\d\d:\d\d:00Z"), ("updatedAt", r"20\d\d-\d\d-\d\dT.*"),
                    ("school_number", r"\d{4,5}"), ("phone_number", r"\+1-555-\d{3}-\d{4}"),
                    ("starting_after", r"[A-Z2-9]{12}"), ("TeamBKey", r"[A-Z]{3}"), ("isDead", r"true|false"),
                    ("has_access", r"true|false"), ("island", r"(?!true$|false$).+"),
                    ("month", r"[A-Z][a-z]+(uary|ch|il|y|e|ust|ber)"), ("dayOfWeek", r"[A-Z][a-z]+day"),
                    ("variable_ids", r"vari_[0-9a-f]{8},vari_[0-9a-f]{8}"), ("userIds", r"user_[0-9a-f]{8},user_[0-9a-f]{8}"), ("promo_code", r"[A-Z]{3}"), ("api_key", r"(?![A-Z]{3}$).+")):
        schema = {"type": "object", "required": [key], "properties": {key: {"type": "string"}}}
        for seed in range(4):
            value = synthesize_instance(schema, rng=random.Random(seed))[key]
            assert re.fullmatch(rx, value), (key, value)
