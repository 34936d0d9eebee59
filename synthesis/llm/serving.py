"""Framework-free handlers of an OpenAI-compatible model endpoint.

``chat_completions(body, backend)`` answers ``POST /v1/chat/completions`` and
``list_models(backends)`` answers ``GET /v1/models``; a web framework only decodes the
JSON body, calls them, and encodes the dict they return.  A bad request raises
:class:`BadRequest` (a ``ValueError``) whose ``to_dict()`` is OpenAI's error body and
whose ``status`` is the HTTP status to answer with.

Streaming is not supported (``stream: true`` is a bad request).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .base import ChatRequest, ChatResult, LLMBackend, normalize_tool


class BadRequest(ValueError):
    status = 400

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class _Function(BaseModel):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] | None = None


class _Tool(BaseModel):
    type: Literal["function"] = "function"
    function: _Function


class ChatCompletionBody(BaseModel):
    """The request body; fields OpenAI defines that do not matter here are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[_Message] = Field(min_length=1)
    tools: list[_Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None
    n: int = Field(1, ge=1, le=64)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        return [v] if isinstance(v, str) else v


DEFAULT_MAX_TOKENS = 512

BackendLike = LLMBackend | Callable[[str | None], LLMBackend]


def parse_chat_completions_body(body: Any) -> ChatRequest:
    """Validate an OpenAI chat completions body and turn it into a ChatRequest."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    try:
        b = ChatCompletionBody.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"{loc}: {first['msg']}", param=loc or None) from None
    if b.stream:
        raise BadRequest("stream=true is not supported by this server", param="stream")

    tools = [normalize_tool(t.model_dump()) for t in b.tools] if b.tools else None
    tool_choice: str | dict[str, Any] = b.tool_choice or "auto"
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        if not name:
            raise BadRequest(
                "tool_choice must name a function: {'type': 'function', 'function': {'name': ...}}",
                param="tool_choice",
            )
        if not tools or name not in {t["name"] for t in tools}:
            raise BadRequest(
                f"tool_choice names {name!r}, which is not among the tools", param="tool_choice"
            )
        tool_choice = {"name": name}
    elif tool_choice == "required" and not tools:
        raise BadRequest("tool_choice='required' needs tools", param="tool_choice")

    json_schema = None
    if b.response_format:
        kind = b.response_format.get("type")
        if kind == "json_schema":
            spec = b.response_format.get("json_schema") or {}
            json_schema = spec.get("schema")
            if not isinstance(json_schema, dict):
                raise BadRequest(
                    "response_format.json_schema.schema must be a JSON Schema object",
                    param="response_format",
                )
        elif kind == "json_object":
            json_schema = {"type": "object"}
        elif kind != "text":
            raise BadRequest(
                f"response_format.type {kind!r} is not one of text, json_object, json_schema",
                param="response_format",
            )

    messages = [m.model_dump(exclude_none=True) for m in b.messages]
    for i, m in enumerate(messages):
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") if isinstance(tc, dict) else None
            if not isinstance(fn, dict) or not fn.get("name"):
                raise BadRequest(
                    "each tool call needs function.name", param=f"messages.{i}.tool_calls"
                )
    try:
        return ChatRequest(
            messages=messages,
            tools=tools,
            json_schema=json_schema,
            tool_choice=tool_choice,
            n=b.n,
            temperature=b.temperature,
            top_p=b.top_p,
            max_tokens=b.max_completion_tokens or b.max_tokens or DEFAULT_MAX_TOKENS,
            stop=b.stop,
            seed=b.seed,
            parallel_tool_calls=b.parallel_tool_calls,
        )
    except ValueError as e:
        raise BadRequest(str(e)) from None


def chat_completion_response(results: list[ChatResult], *, model: str) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` object for the choices of one request."""
    choices = []
    for i, r in enumerate(results):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": r.text if (r.text or not r.tool_calls) else None,
        }
        if r.tool_calls:
            message["tool_calls"] = [tc.to_openai() for tc in r.tool_calls]
        finish = r.finish_reason if r.finish_reason in ("stop", "length", "tool_calls") else "stop"
        choices.append({"index": i, "message": message, "finish_reason": finish, "logprobs": None})
    prompt_tokens = results[0].prompt_tokens if results else 0
    completion_tokens = sum(r.completion_tokens for r in results)
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chat_completions(body: Any, backend: BackendLike) -> dict[str, Any]:
    """Answer a chat completions request with ``backend``.

    ``backend`` is a backend, or a function of the requested model name returning one
    (it may raise :class:`BadRequest` for an unknown model).
    """
    request = parse_chat_completions_body(body)
    model_name = body.get("model")
    llm = backend if isinstance(backend, LLMBackend) else backend(model_name)
    results = llm.complete_batch([request])[0]
    return chat_completion_response(results, model=model_name or llm.model_id or llm.name)


def list_models(backends: Iterable[LLMBackend | str]) -> dict[str, Any]:
    """OpenAI's model list for the given backends or model ids."""
    now = int(time.time())
    seen: list[str] = []
    for b in backends:
        mid = b if isinstance(b, str) else (b.model_id or b.name)
        if mid not in seen:
            seen.append(mid)
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": now, "owned_by": "inftool"} for m in seen],
    }
