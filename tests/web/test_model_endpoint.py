"""InfTool's own OpenAI-compatible endpoint, over real HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest
from rest_framework.authtoken.models import Token

from synthesis.llm.base import BackendUnavailable, ChatRequest
from synthesis.llm.registry import get_backend
from tests.factories import UserFactory


@pytest.fixture
def token(transactional_db):
    user = UserFactory()
    return Token.objects.create(user=user).key


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


def test_openai_backend_names_the_url_when_the_server_is_down():
    backend = get_backend("openai", base_url="http://127.0.0.1:1/v1", api_key="x", max_retries=1, backoff=0.01)
    with pytest.raises(BackendUnavailable, match="127.0.0.1:1"):
        backend.complete(ChatRequest(messages=[{"role": "user", "content": "hi"}]))
