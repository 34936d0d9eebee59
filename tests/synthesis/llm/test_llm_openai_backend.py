import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from synthesis.llm.base import BackendUnavailable, ChatRequest, InvalidModelOutput, LLMError
from synthesis.llm.openai_backend import OpenAIBackend, parse_chat_completion
from synthesis.llm.scripted import ScriptedBackend

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather",
        "inputSchema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def req(text="hi", **kw):
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_down_server_names_the_url():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    b = OpenAIBackend(base_url=url, model="m", max_retries=2, backoff=0.01)
    with pytest.raises(BackendUnavailable) as info:
        b.complete(req())
    assert url in str(info.value) and "3 attempts" in str(info.value)


def test_round_trip_through_serving_handlers(serve):
    def answer(r):  # requests arrive concurrently, so answer by content, not by order
        if r.tools:
            return '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
        return "Hello!" if r.messages[-1]["content"] == "hi" else "Bye!"

    scripted = ScriptedBackend(default=answer, model_id="tiny")
    b = OpenAIBackend(base_url=serve(scripted), concurrency=2)
    assert b.list_models() == ["tiny"]
    out = b.complete_batch(
        [req("weather?", tools=TOOLS, tool_choice="required"), req("hi"), req("bye")]
    )
    assert out[0][0].tool_calls[0].name == "get_weather" and out[0][0].tool_calls[0].arguments == {
        "city": "Oslo"
    }
    assert out[0][0].finish_reason == "tool_calls"
    assert [out[1][0].text, out[2][0].text] == ["Hello!", "Bye!"]
    assert b.model_id == "tiny"
    # What the server received maps back to the same request.
    sent = next(r for r in scripted.requests if r.tools)
    assert (
        sent.tool_choice == "required" and sent.tools[0]["inputSchema"] == TOOLS[0]["inputSchema"]
    )


def test_tool_history_passes_through(serve):
    scripted = ScriptedBackend(default="ok")
    b = OpenAIBackend(base_url=serve(scripted), model="tiny")
    from synthesis.llm.base import ToolCall

    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [ToolCall("get_weather", {"city": "Oslo"}, "c1")],
        },
        {"role": "tool", "tool_call_id": "c1", "content": {"temp": 3}},
    ]
    assert b.complete(ChatRequest(messages=messages, tools=TOOLS)).text == "ok"
    got = scripted.requests[0].messages
    assert got[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }
    assert got[2]["content"] == '{"temp": 3}'


class _Flaky(BaseHTTPRequestHandler):
    failures = 2
    calls = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls <= type(self).failures:
            status, payload = 503, {"error": {"message": "busy"}}
        else:
            payload = {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "fine"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            }
            status = 200
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_retries_5xx_then_succeeds_and_gives_up_clearly():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        b = OpenAIBackend(base_url=url, model="m", max_retries=3, backoff=0.01)
        r = b.complete(req())
        assert r.text == "fine" and r.prompt_tokens == 3 and _Flaky.calls == 3
        _Flaky.calls, _Flaky.failures = 0, 99
        with pytest.raises(BackendUnavailable, match="503"):
            OpenAIBackend(base_url=url, model="m", max_retries=1, backoff=0.01).complete(req())
    finally:
        server.shutdown()
        server.server_close()


def test_4xx_is_an_error_with_its_status_and_not_the_servers_text(serve):
    b = OpenAIBackend(base_url=serve(ScriptedBackend()), model="m", max_retries=0)
    with pytest.raises(LLMError, match="400 Bad Request") as info:
        b.complete(req(tools=TOOLS, tool_choice={"name": "missing"}))
    assert "tool_choice" not in str(info.value)


def test_bad_arguments_json_in_response_is_invalid_model_output():
    data = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "x",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{nope"},
                        }
                    ],
                },
            }
        ]
    }
    (r,) = parse_chat_completion(data, req(tools=TOOLS))
    assert isinstance(r.error, InvalidModelOutput) and r.error.raw == "{nope"


def test_request_body_passes_schema_and_tool_choice():
    b = OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m")
    schema = {"type": "object"}
    body = b.request_body(
        req(
            tools=TOOLS, tool_choice={"name": "get_weather"}, json_schema=schema, stop=["x"], seed=1
        )
    )
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["tools"][0]["function"]["parameters"] == TOOLS[0]["inputSchema"]
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["stop"] == ["x"] and body["seed"] == 1


class _Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next (status, headers, body) of ``replies``."""

    replies: list = []
    seen: list = []

    def log_message(self, *a):
        pass

    def _answer(self):
        type(self).seen.append(dict(self.headers))
        status, headers, body = type(self).replies.pop(0)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    do_GET = _answer


@pytest.fixture
def scripted_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Scripted.replies, _Scripted.seen = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


OK = (200, {"Content-Type": "application/json"}, json.dumps(
    {"choices": [{"index": 0, "message": {"content": "fine"}, "finish_reason": "stop"}]}).encode())
SECRET_PAGE = b"<html>internal admin page: db password hunter2</html>"


@pytest.mark.parametrize("status", [200, 404, 503])
def test_no_error_carries_the_servers_body(scripted_server, status):
    """A server's answer reaches trajectories' errors, which every viewer reads."""
    _Scripted.replies = [(status, {"Content-Type": "text/html"}, SECRET_PAGE)] * 2
    b = OpenAIBackend(base_url=scripted_server, model="m", max_retries=1, backoff=0)
    with pytest.raises(LLMError) as info:
        b.complete(req())
    assert "hunter2" not in str(info.value) and "html" not in str(info.value)
    assert str(status) in str(info.value)


def test_a_reply_with_no_choices_is_not_echoed(scripted_server):
    _Scripted.replies = [(200, {}, json.dumps({"secret": "hunter2"}).encode())]
    with pytest.raises(LLMError) as info:
        OpenAIBackend(base_url=scripted_server, model="m", max_retries=0).complete(req())
    assert "hunter2" not in str(info.value)


def test_retry_after_is_honoured_but_capped(scripted_server, monkeypatch):
    import synthesis.llm.openai_backend as mod

    slept = []
    monkeypatch.setattr(mod.time, "sleep", slept.append)
    _Scripted.replies = [(429, {"Retry-After": "86400"}, b"{}"), (503, {"Retry-After": "2"}, b"{}"), OK]
    b = OpenAIBackend(base_url=scripted_server, model="m", max_retries=3, backoff=0, max_retry_after=5)
    assert b.complete(req()).text == "fine"
    assert slept == [5, 2]


def test_backoff_is_exponential_with_jitter(scripted_server, monkeypatch):
    import synthesis.llm.openai_backend as mod

    slept = []
    monkeypatch.setattr(mod.time, "sleep", slept.append)
    _Scripted.replies = [(503, {}, b"{}")] * 5
    b = OpenAIBackend(base_url=scripted_server, model="m", max_retries=4, backoff=1, backoff_max=100)
    with pytest.raises(BackendUnavailable, match="503 Service Unavailable after 5 attempts"):
        b.complete(req())
    assert len(slept) == 4
    # full jitter: each wait is drawn from [0, backoff * 2**n]
    assert all(0 <= s <= 2 ** (n + 1) for n, s in enumerate(slept)), slept
    assert len(set(slept)) > 1


def test_openai_api_key_goes_to_openai_only(scripted_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-openai-key")
    b = OpenAIBackend(base_url=scripted_server, model="m")
    assert "Authorization" not in b._client.headers
    assert OpenAIBackend(base_url="https://api.openai.com/v1", model="m")._client.headers[
        "Authorization"] == "Bearer sk-the-openai-key"
    # an explicit empty key sends none even to OpenAI
    assert "Authorization" not in OpenAIBackend(
        base_url="https://api.openai.com/v1", model="m", api_key="")._client.headers


def test_a_server_is_sent_the_decode_tools(serve):
    """A remote server renders and constrains by one list: the bounded one."""
    scripted = ScriptedBackend(default='<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>')
    b = OpenAIBackend(base_url=serve(scripted))
    bound = [{**TOOLS[0], "inputSchema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}}}}]
    b.complete(req("weather?", tools=TOOLS, decode_tools=bound, tool_choice={"name": "get_weather"}))
    (sent,) = scripted.requests
    assert sent.tools[0]["inputSchema"] == bound[0]["inputSchema"]
