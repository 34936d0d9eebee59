"""InfTool's own OpenAI-compatible endpoint: over real HTTP on loopback with the real model
(slow), and through the ASGI application in-process with stand-in backends (the logic)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading

import httpx
import pytest
from asgiref.sync import async_to_sync
from rest_framework.authtoken.models import Token

from inftool_web.core import model_views
from inftool_web.core.roles import set_role
from synthesis.llm.base import BackendUnavailable, ChatRequest, ChatResult, Generation, LLMBackend
from synthesis.llm.registry import get_backend
from synthesis.llm.toolcalls import apply_tool_call_parsing
from tests.factories import UserFactory


def token_for(role: str | None) -> str:
    user = UserFactory()
    if role:
        set_role(user, role)
    return Token.objects.create(user=user).key


@pytest.fixture
def token(transactional_db):
    return token_for("viewer")


def test_requires_a_token(asgi_server, transactional_db):
    resp = httpx.post(asgi_server.url + "/v1/chat/completions", json={"messages": []})
    assert resp.status_code == 401
    assert "Bearer" in resp.json()["error"]["message"]
    assert httpx.get(asgi_server.url + "/v1/models").status_code == 401


def test_bad_requests_get_clear_errors(asgi_server, token):
    headers = {"Authorization": f"Bearer {token}"}
    resp = httpx.post(asgi_server.url + "/v1/chat/completions", content=b"{not json", headers=headers)
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]
    resp = httpx.post(asgi_server.url + "/v1/chat/completions", json={"model": "gpt-9", "messages": []},
                      headers=headers)
    assert resp.status_code == 404 and "smollm2" in resp.json()["error"]["message"]
    models = httpx.get(asgi_server.url + "/v1/models", headers=headers).json()
    assert models["data"][0]["id"] == "smollm2-135m-instruct"


@pytest.mark.slow
def test_openai_backend_against_our_endpoint_with_the_real_model(asgi_server, token):
    backend = get_backend("openai", base_url=asgi_server.url + "/v1", api_key=token, timeout=300, max_retries=0)
    tool = {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    plain, call = backend.complete_batch([
        ChatRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=12),
        ChatRequest(messages=[{"role": "user", "content": "What is the weather in Paris?"}], tools=[tool],
                    tool_choice={"name": "get_weather"}, max_tokens=40),
    ])
    assert plain[0].text.strip() and plain[0].completion_tokens > 0
    assert call[0].tool_calls and call[0].tool_calls[0].name == "get_weather"
    assert isinstance(call[0].tool_calls[0].arguments.get("city"), str)


@pytest.mark.slow
def test_streaming_with_the_openai_sdk_and_raw_httpx_on_the_real_model(asgi_server, token):
    import openai

    client = openai.OpenAI(base_url=asgi_server.url + "/v1", api_key=token, max_retries=0, timeout=300)
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    # tool_choice=required with parallel calls allowed: SmolLM2 repeats its call until
    # max_tokens unless the repeat ends the reply. Greedy: at the API's default temperature
    # of 1 the model may as well sample a second call with other arguments.
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=question, tools=[WEATHER_TOOL], tool_choice="required",
        max_tokens=200, temperature=0, stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                call["name"] += tc.function.name or ""
                call["arguments"] += tc.function.arguments or ""
    assert [c["name"] for c in calls.values()] == ["get_weather"]
    assert isinstance(json.loads(calls[0]["arguments"])["city"], str)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and 0 < usage.completion_tokens < 200, usage

    # Raw: text/event-stream, content in several events, then [DONE].
    headers = {"Authorization": f"Bearer {token}"}
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0,
            "stream": True}
    with httpx.stream("POST", asgi_server.url + "/v1/chat/completions", json=body, headers=headers,
                      timeout=300) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    contents = [json.loads(line[6:])["choices"][0]["delta"].get("content") for line in lines[:-1]]
    assert len([c for c in contents if c]) >= 2 and "".join(c or "" for c in contents).strip()

    # A client that goes away mid-stream: the server carries on serving.
    body = {**body, "max_tokens": 400, "messages": [{"role": "user", "content": "Write a long story."}]}
    with httpx.stream("POST", asgi_server.url + "/v1/chat/completions", json=body, headers=headers,
                      timeout=300) as resp:
        for n, _ in enumerate(resp.iter_lines()):
            if n >= 4:
                break
    again = client.chat.completions.create(model="smollm2-135m-instruct", messages=question, max_tokens=4,
                                           temperature=0)
    assert again.choices[0].finish_reason == "length" and again.usage.completion_tokens == 4


def test_openai_backend_names_the_url_when_the_server_is_down():
    backend = get_backend("openai", base_url="http://127.0.0.1:1/v1", api_key="x", max_retries=1, backoff=0.01)
    with pytest.raises(BackendUnavailable, match="127.0.0.1:1"):
        backend.complete(ChatRequest(messages=[{"role": "user", "content": "hi"}]))


# ---------------------------------------------------------------------------- in-process, stand-in backends

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL_TEXT = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


class Typing(LLMBackend):
    """Streams each reply a few characters at a time, as the embedded backend does, then
    answers with it (tool calls parsed) and ``completion_tokens`` = its words."""

    name = "typing"

    def __init__(self, *replies: str, context: int | None = None, prompt_tokens: int = 10):
        self.replies = list(replies)
        self.requests: list[ChatRequest] = []
        if context:
            self.max_positions = context
            self.count_prompt_tokens = lambda request: prompt_tokens

    def complete_batch(self, requests):
        raise NotImplementedError

    def submit(self, request, *, on_text=None):
        self.requests.append(request)
        texts = [self.replies[i % len(self.replies)] for i in range(request.n)]
        done: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            for i, text in enumerate(texts):
                for k in range(0, len(text), 3):
                    if on_text:
                        on_text(i, text[k : k + 3])
            done.set_result(None)

        def results():
            out = []
            for text in texts:
                for stop in request.stop or []:  # cut as the embedded backend cuts
                    text = text.split(stop)[0]
                r = ChatResult(text=text, prompt_tokens=7, completion_tokens=len(text.split()))
                if request.tools:
                    apply_tool_call_parsing(r)
                out.append(r)
            return out

        threading.Thread(target=run, daemon=True).start()
        return Generation(done, results)


class Hanging(LLMBackend):
    """Never finishes; records being cancelled."""

    name = "hanging"

    def __init__(self):
        self.cancelled = threading.Event()
        self.started = threading.Event()

    def complete_batch(self, requests):
        raise NotImplementedError

    def submit(self, request, *, on_text=None):
        self.started.set()
        if on_text:
            on_text(0, "Once")
        return Generation(concurrent.futures.Future(), list, self.cancelled.set)


async def _asgi(body: dict, *, key: str | None, disconnect_after: int | None = None,
                disconnect_when: threading.Event | None = None):
    """POST /v1/chat/completions through the ASGI application; returns (status, headers, body).
    With ``disconnect_after``, the client goes away after that many body messages; with
    ``disconnect_when``, once that event is set."""
    from inftool_web.asgi import application

    sent: list[dict] = []
    gone = asyncio.Event()
    payload = json.dumps(body).encode()
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": payload, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        bodies = [m for m in sent if m["type"] == "http.response.body" and m.get("body")]
        if disconnect_after is not None and len(bodies) >= disconnect_after:
            gone.set()

    async def go_when(event: threading.Event):
        while not event.is_set():
            await asyncio.sleep(0.01)
        gone.set()

    if disconnect_when is not None:
        asyncio.ensure_future(go_when(disconnect_when))

    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    await asyncio.wait_for(application(scope, receive, send), 30)
    if not sent:
        return None, {}, b""
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, content


def post(body: dict, *, key: str | None, **kw):
    return async_to_sync(_asgi)(body, key=key, **kw)


def events(content: bytes) -> list:
    out = []
    for block in content.decode().split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            data = block[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def ask(**kw) -> dict:
    return {"messages": [{"role": "user", "content": "What is the weather in Paris?"}], **kw}


@pytest.fixture
def backend(monkeypatch):
    holder: dict[str, LLMBackend] = {}

    def use(b: LLMBackend) -> LLMBackend:
        holder["b"] = b
        monkeypatch.setattr(model_views, "serving_backend", lambda: holder["b"])
        return b

    return use


def test_a_stream_sends_text_then_tool_calls_then_usage_then_done(transactional_db, backend):
    backend(Typing("Let me look. " + CALL_TEXT))
    status, headers, content = post(
        ask(tools=[WEATHER_TOOL], stream=True, stream_options={"include_usage": True}), key=token_for("viewer"))
    assert status == 200 and headers[b"content-type"].startswith(b"text/event-stream")
    got = events(content)
    assert got[-1] == "[DONE]"
    chunks = got[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == "Let me look." and "<tool" not in text, "the call's markup is never sent as text"
    assert len([d for d in deltas if d.get("content")]) > 2, "text arrives in pieces as it is generated"
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"city": "Paris"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 7, "completion_tokens": 10, "total_tokens": 17}
    assert all(c["usage"] is None for c in chunks[:-1])


def test_a_stream_without_include_usage_has_no_usage_and_holds_back_stop_sequences(transactional_db, backend):
    backend(Typing("one two END three"))
    status, _, content = post(ask(stream=True, stop=["END"], n=2), key=token_for("viewer"))
    chunks = events(content)[:-1]
    assert status == 200 and all("usage" not in c for c in chunks)
    for i in (0, 1):
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"][0]["index"] == i)
        assert "END" not in text and text.startswith("one two")


def test_a_client_that_disconnects_cancels_its_stream(transactional_db, backend):
    hanging = backend(Hanging())
    status, _, content = post(ask(stream=True), key=token_for("viewer"), disconnect_after=2)
    assert status == 200 and b"Once" in content
    assert hanging.cancelled.wait(5), "the generation was not cancelled when the client went away"


def test_a_client_that_disconnects_while_waiting_cancels_its_request(transactional_db, backend):
    hanging = backend(Hanging())
    status, _, _ = post(ask(), key=token_for("viewer"), disconnect_when=hanging.started)
    assert status is None, "no answer goes to a client that left"
    assert hanging.cancelled.wait(5), "the generation was not cancelled when the client went away"


def test_a_request_past_the_deadline_is_a_504_and_is_cancelled(transactional_db, backend, settings):
    settings.INFTOOL_SERVE_TIMEOUT_S = 0.3
    hanging = backend(Hanging())
    status, _, content = post(ask(), key=token_for("viewer"))
    assert status == 504 and json.loads(content)["error"]["code"] == "timeout"
    assert hanging.cancelled.is_set()
    hanging = backend(Hanging())
    status, _, content = post(ask(stream=True), key=token_for("viewer"))
    assert events(content)[-2]["error"]["code"] == "timeout" and events(content)[-1] == "[DONE]"
    assert hanging.cancelled.is_set()


def test_the_model_needs_a_role(transactional_db, backend):
    backend(Typing("hi"))
    status, _, content = post(ask(), key=token_for(None))
    assert status == 403 and "viewer" in json.loads(content)["error"]["message"]
    status, _, content = post(ask(), key=token_for("viewer"))
    assert status == 200 and json.loads(content)["choices"][0]["message"]["content"] == "hi"


def test_requests_are_rate_limited_per_token(transactional_db, backend, settings):
    settings.INFTOOL_SERVE_RATE = "2/min"
    backend(Typing("hi"))
    key, other = token_for("viewer"), token_for("viewer")
    assert [post(ask(), key=key)[0] for _ in range(3)] == [200, 200, 429]
    status, headers, _ = post(ask(), key=key)
    assert status == 429 and int(headers[b"retry-after"]) >= 1
    assert post(ask(), key=other)[0] == 200


def test_n_max_tokens_schemas_and_the_context_are_capped(transactional_db, backend, settings):
    settings.INFTOOL_SERVE_MAX_N = 2
    settings.INFTOOL_SERVE_MAX_TOKENS = 100
    settings.INFTOOL_SERVE_MAX_SCHEMA_BYTES = 2000
    typing = backend(Typing("hi", context=50, prompt_tokens=40))
    key = token_for("viewer")

    def error(**kw):
        status, _, content = post(ask(**kw), key=key)
        assert status == 400, content
        return json.loads(content)["error"]

    assert error(n=3)["param"] == "n"
    assert error(max_tokens=101)["param"] == "max_tokens"
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(100)}}
    tool = {"type": "function", "function": {"name": "f", "parameters": big}}
    assert error(tools=[tool])["code"] == "schema_too_large"
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": big}}
    assert error(response_format=fmt)["param"] == "response_format"
    assert error(max_tokens=11)["code"] == "context_length_exceeded"  # 40 + 11 > 50
    assert post(ask(max_tokens=10), key=key)[0] == 200
    assert post(ask(), key=key)[0] == 200 and typing.requests[-1].max_tokens == 10  # the default shrinks
    typing.count_prompt_tokens = lambda request: 50
    assert error()["param"] == "messages"
