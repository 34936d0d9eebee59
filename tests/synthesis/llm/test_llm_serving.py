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


def test_streaming_bodies_and_limits():
    from synthesis.llm.serving import ServingLimits, fit_to_context, parse_chat_completions

    parsed = parse_chat_completions(body(stream=True, stream_options={"include_usage": True}))
    assert parsed.stream and parsed.include_usage and not parsed.max_tokens_given
    with pytest.raises(BadRequest, match="only allowed with stream"):
        parse_chat_completions(body(stream_options={"include_usage": True}))
    limits = ServingLimits(max_n=2, max_tokens=50, max_schema_bytes=100, max_tools=1)
    for bad, param in [
        (body(n=3), "n"),
        (body(max_completion_tokens=51), "max_completion_tokens"),
        (body(tools=[TOOL, TOOL]), "tools"),
        (body(response_format={"type": "json_schema", "json_schema": {"schema": {"enum": ["x" * 100]}}}),
         "response_format"),
    ]:
        with pytest.raises(BadRequest) as info:
            parse_chat_completions(bad, limits=limits)
        assert info.value.param == param
    parsed = parse_chat_completions(body(), limits=limits)
    assert parsed.request.max_tokens == 50  # the default within the cap
    fit_to_context(parsed, prompt_tokens=90, context=100)
    assert parsed.request.max_tokens == 10


def test_chunk_stream_holds_back_what_may_be_a_call_and_sends_it_as_tool_calls():
    from synthesis.llm.base import ChatResult, ToolCall
    from synthesis.llm.serving import ChunkStream

    s = ChunkStream(model="m", n=1, parse_calls=True)
    assert s.text(0, '{"name": "f", ') == []  # a bare JSON call may be coming
    result = ChatResult(text="", tool_calls=[ToolCall("f", {"x": 1}, id="call_1")], finish_reason="tool_calls")
    chunks = s.finish([result])
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["tool_calls"][0] == {
        "index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    assert deltas[1]["tool_calls"][0]["function"]["arguments"] == '{"x": 1}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" and "usage" not in chunks[-1]
    plain = ChunkStream(model="m", n=1)
    assert [c["choices"][0]["delta"]["content"] for c in plain.text(0, "{not a call")] == ["{not a call"]
