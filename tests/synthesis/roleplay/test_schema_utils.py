import random

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
    assert all(is_id_key(k) for k in ("id", "order_id", "userId", "uuid"))
    assert not any(is_id_key(k) for k in ("idea", "paid", "valid", "key"))
