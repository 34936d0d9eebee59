import re

from synthesis.roleplay import prompts
from synthesis.roleplay.personas import SEED_PERSONAS
from synthesis.schema_utils import validation_errors

from .fakes import GET_WEATHER, SEND_EMAIL


def test_query_schema_forces_the_reference_values():
    calls = [
        {"name": "get_weather", "arguments": {"city": "St. Louis (MO)", "unit": "celsius"}},
        {"name": "x", "arguments": {"n": 3.0}},
    ]
    values = prompts.query_values(calls)
    assert values == ["St. Louis (MO)", "celsius", "3"]
    schema = prompts.query_schema(values)
    assert (
        validation_errors({"query": "Weather in St. Louis (MO) in celsius, 3 times?"}, schema) == []
    )
    assert (
        validation_errors({"query": "Weather in St Louis please, in celsius, 3 times"}, schema)
        != []
    )
    assert re.compile(schema["properties"]["query"]["pattern"])
    assert prompts.query_schema([]) is prompts.QUERY_SCHEMA


def test_query_prompt_describes_calls_in_words():
    calls = [
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
        {"name": "send_email", "arguments": {"to": "a@b.co", "subject": "Hi"}},
    ]
    text = prompts.query_messages(SEED_PERSONAS[0], calls, [GET_WEATHER, SEND_EMAIL])[-1]["content"]
    assert "get_weather" not in text and "{" not in text
    assert "Current weather for a city (city: Oslo)" in text and "a@b.co, Hi" in text


def test_output_schemas_are_valid_json_schema():
    from jsonschema import Draft202012Validator

    for schema in (
        prompts.PERSONA_SCHEMA,
        prompts.QUERY_SCHEMA,
        prompts.GOAL_SCHEMA,
        prompts.USER_TURN_SCHEMA,
        prompts.VOTE_SCHEMA,
        prompts.plan_schema(["a", "b"], max_calls=3),
        prompts.query_schema(["x"]),
    ):
        Draft202012Validator.check_schema(schema)
