import pytest

from synthesis.llm.scripted import ScriptedBackend
from synthesis.llm.serving import (
    BadRequest,
    chat_completions,
    list_models,
    parse_chat_completions_body,
)

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def body(**kw):
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **kw}


def test_maps_body_to_request():
    r = parse_chat_completions_body(
        body(
            tools=[TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            n=2,
            temperature=0.5,
            top_p=0.9,
            max_completion_tokens=33,
            stop="END",
            seed=7,
            parallel_tool_calls=False,
            user="ignored",
        )
    )
    assert r.tools[0]["name"] == "get_weather" and r.tools[0]["inputSchema"]["properties"]
    assert r.tool_choice == {"name": "get_weather"}
    assert (r.n, r.temperature, r.top_p, r.max_tokens, r.stop, r.seed) == (
        2,
        0.5,
        0.9,
        33,
        ["END"],
        7,
    )
    assert r.parallel_tool_calls is False


def test_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    r = parse_chat_completions_body(
        body(
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
        )
    )
    assert r.json_schema == schema
    assert parse_chat_completions_body(
        body(response_format={"type": "json_object"})
    ).json_schema == {"type": "object"}


@pytest.mark.parametrize(
    "bad,param",
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        (body(n=0), "n"),
        (body(temperature=-1), "temperature"),
        (body(stream=True), "stream"),
        (body(tool_choice="required"), "tool_choice"),
        (
            body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "nope"}}),
            "tool_choice",
        ),
        (body(response_format={"type": "yaml"}), "response_format"),
        (body(tools=[{"type": "function", "function": {}}]), "tools.0.function.name"),
    ],
)
def test_bad_requests_are_clear(bad, param):
    with pytest.raises(BadRequest) as info:
        parse_chat_completions_body(bad)
    assert isinstance(info.value, ValueError)
    assert info.value.param == param
    err = info.value.to_dict()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]


def test_not_a_json_object():
    with pytest.raises(BadRequest):
        chat_completions(["x"], ScriptedBackend())


def test_response_shape_with_tool_calls_and_usage():
    b = ScriptedBackend(
        replies=[
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>',
            "plain",
        ]
    )
    resp = chat_completions(body(tools=[TOOL], n=2), b)
    assert resp["object"] == "chat.completion" and resp["model"] == "m"
    first, second = resp["choices"]
    assert first["finish_reason"] == "tool_calls" and first["message"]["content"] is None
    call = first["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Rome"}',
    }
    assert second["message"] == {"role": "assistant", "content": "plain"}
    assert set(resp["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_backend_resolver_and_models():
    b = ScriptedBackend(default="x", model_id="tiny")
    seen = []
    resp = chat_completions(
        {"messages": [{"role": "user", "content": "q"}]}, lambda name: seen.append(name) or b
    )
    assert seen == [None] and resp["model"] == "tiny"
    models = list_models([b, "other", b])
    assert [m["id"] for m in models["data"]] == ["tiny", "other"] and models["object"] == "list"
