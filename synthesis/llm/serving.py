"""Framework-free handlers of an OpenAI-compatible model endpoint.

``chat_completions(body, backend)`` answers ``POST /v1/chat/completions`` and
``list_models(backends)`` answers ``GET /v1/models``; a web framework only decodes the
JSON body, calls them, and encodes the dict they return.  A bad request raises
:class:`BadRequest` (a ``ValueError``) whose ``to_dict()`` is OpenAI's error body and
whose ``status`` is the HTTP status to answer with.

A server that streams (``stream: true``) parses with :func:`parse_chat_completions`, which
also applies :class:`ServingLimits`, and turns the text a backend hands to ``on_text`` into
OpenAI's ``chat.completion.chunk`` objects with :class:`ChunkStream` (server-sent events
via :func:`sse`).  :func:`chat_completions` and :func:`parse_chat_completions_body` answer
plain requests only (``stream: true`` is a bad request there).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .base import ChatRequest, ChatResult, LLMBackend, normalize_tool
from .toolcalls import TOOL_CALL_OPEN


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
    stream_options: dict[str, Any] | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        return [v] if isinstance(v, str) else v


DEFAULT_MAX_TOKENS = 512

BackendLike = LLMBackend | Callable[[str | None], LLMBackend]


@dataclass(frozen=True)
class ServingLimits:
    """What one request may ask of a shared model; None: no limit."""

    max_n: int | None = None
    # Completion tokens per choice.
    max_tokens: int | None = None
    # Every client-supplied JSON Schema of a request together (tool parameters and
    # response_format), as compact JSON: compiling a schema into a grammar takes time
    # and memory that grow with it.
    max_schema_bytes: int | None = None
    max_tools: int | None = None


@dataclass
class ParsedBody:
    request: ChatRequest
    stream: bool = False
    include_usage: bool = False
    # Whether the client set max_tokens (else it is a default, which may shrink to fit).
    max_tokens_given: bool = False


def parse_chat_completions_body(body: Any) -> ChatRequest:
    """Validate an OpenAI chat completions body and turn it into a ChatRequest."""
    parsed = parse_chat_completions(body)
    if parsed.stream:
        raise BadRequest("stream=true is not supported by this server", param="stream")
    return parsed.request


def _schema_bytes(schema: Any) -> int:
    return len(json.dumps(schema, separators=(",", ":"), default=str))


def _check_limits(b: ChatCompletionBody, limits: ServingLimits) -> None:
    if limits.max_n is not None and b.n > limits.max_n:
        raise BadRequest(f"n is {b.n}; this server allows at most {limits.max_n}", param="n")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(b, name)
        if value is not None and limits.max_tokens is not None and value > limits.max_tokens:
            raise BadRequest(
                f"{name} is {value}; this server allows at most {limits.max_tokens}", param=name
            )
    if limits.max_tools is not None and b.tools and len(b.tools) > limits.max_tools:
        raise BadRequest(
            f"{len(b.tools)} tools; this server allows at most {limits.max_tools}", param="tools"
        )
    if limits.max_schema_bytes is not None:
        sizes = {"tools": sum(_schema_bytes(t.function.parameters) for t in b.tools or [])}
        sizes["response_format"] = _schema_bytes(b.response_format) if b.response_format else 0
        if sum(sizes.values()) > limits.max_schema_bytes:
            param = max(sizes, key=lambda k: sizes[k])
            raise BadRequest(
                f"the request's JSON Schemas take {sum(sizes.values())} bytes as compact JSON "
                f"(tools: {sizes['tools']}, response_format: {sizes['response_format']}); "
                f"this server allows at most {limits.max_schema_bytes}",
                param=param,
                code="schema_too_large",
            )


def fit_to_context(parsed: ParsedBody, *, prompt_tokens: int, context: int) -> None:
    """Make the prompt and the completion fit the model's context: a prompt with no room
    left, or a max_tokens the client set that does not fit, is a bad request; a default
    max_tokens shrinks to the room left."""
    room = context - prompt_tokens
    request = parsed.request
    if room < 1:
        raise BadRequest(
            f"the messages take {prompt_tokens} tokens of the model's {context}-token context, "
            "leaving no room for a reply; shorten them",
            param="messages",
            code="context_length_exceeded",
        )
    if parsed.max_tokens_given and request.max_tokens > room:
        raise BadRequest(
            f"this model's context is {context} tokens; the messages take {prompt_tokens} and "
            f"max_tokens asks for {request.max_tokens} more; ask for at most {room}",
            param="max_tokens",
            code="context_length_exceeded",
        )
    request.max_tokens = min(request.max_tokens, room)


def parse_chat_completions(body: Any, *, limits: ServingLimits | None = None) -> ParsedBody:
    """Validate an OpenAI chat completions body, streaming or not, within ``limits``."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    try:
        b = ChatCompletionBody.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"{loc}: {first['msg']}", param=loc or None) from None
    limits = limits or ServingLimits()
    _check_limits(b, limits)
    if b.stream_options is not None and not b.stream:
        raise BadRequest("stream_options is only allowed with stream=true", param="stream_options")

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
    max_tokens = b.max_completion_tokens or b.max_tokens
    default_max = min(DEFAULT_MAX_TOKENS, limits.max_tokens or DEFAULT_MAX_TOKENS)
    try:
        request = ChatRequest(
            messages=messages,
            tools=tools,
            json_schema=json_schema,
            tool_choice=tool_choice,
            n=b.n,
            temperature=b.temperature,
            top_p=b.top_p,
            max_tokens=max_tokens or default_max,
            stop=b.stop,
            seed=b.seed,
            parallel_tool_calls=b.parallel_tool_calls,
        )
    except ValueError as e:
        raise BadRequest(str(e)) from None
    return ParsedBody(
        request,
        stream=b.stream,
        include_usage=bool((b.stream_options or {}).get("include_usage")),
        max_tokens_given=max_tokens is not None,
    )


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
        choices.append(
            {"index": i, "message": message, "finish_reason": _finish(r), "logprobs": None}
        )
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(results),
    }


def _finish(r: ChatResult) -> str:
    return r.finish_reason if r.finish_reason in ("stop", "length", "tool_calls") else "stop"


def usage(results: list[ChatResult]) -> dict[str, int]:
    """OpenAI's usage: the prompt once, the tokens generated for every choice."""
    prompt_tokens = results[0].prompt_tokens if results else 0
    completion_tokens = sum(r.completion_tokens for r in results)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(obj: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``obj`` as JSON."""
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def _held_back(text: str, marker: str) -> int:
    """Where ``text`` must stop being sent so that ``marker`` is never sent in part: at
    ``marker`` when it occurs, else before a tail that could be its beginning."""
    at = text.find(marker)
    if at >= 0:
        return at
    for k in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:k]):
            return len(text) - k
    return len(text)


class ChunkStream:
    """OpenAI's ``chat.completion.chunk`` objects for one streamed request.

    :meth:`start` opens every choice; :meth:`text` takes a choice's newly generated text
    and returns the chunks that may be sent now; :meth:`finish` takes the final results and
    returns the rest: content still held back, each tool call (id and name, then its
    arguments), the finish reasons and, with ``include_usage``, a last chunk with no
    choices and the usage.  Text is held back where it may turn out to be a tool call
    (from ``<tool_call>`` on, or a reply that opens as JSON) or a stop sequence, so that
    a client never sees the markup that :func:`~synthesis.llm.toolcalls.parse_reply`
    turns into ``tool_calls``.

    >>> s = ChunkStream(model="m", n=1, parse_calls=True)
    >>> [c["choices"][0]["delta"] for c in s.start()]
    [{'role': 'assistant', 'content': ''}]
    >>> [c["choices"][0]["delta"]["content"] for c in s.text(0, "Hi <tool")]
    ['Hi ']
    >>> s.text(0, '_call>{"name"')
    []
    """

    def __init__(
        self,
        *,
        model: str,
        n: int,
        include_usage: bool = False,
        parse_calls: bool = False,
        stop: list[str] | None = None,
    ):
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.parse_calls = parse_calls
        self.stop = [s for s in stop or [] if s]
        self.received = [""] * n
        self.sent = [""] * n

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        if self.include_usage:
            chunk.setdefault("usage", None)
        return chunk

    def _delta(self, i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return self._chunk(
            [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )

    def start(self) -> list[dict[str, Any]]:
        return [self._delta(i, {"role": "assistant", "content": ""}) for i in range(len(self.sent))]

    def _sendable(self, text: str) -> str:
        cut = len(text)
        if self.parse_calls:
            if text.lstrip()[:1] in ("{", "[", "`"):  # maybe a bare JSON call: wait for all
                return ""
            cut = min(cut, _held_back(text, TOOL_CALL_OPEN))
            # Content beside calls is stripped (parse_reply): hold trailing spaces back.
            cut = len(text[:cut].rstrip())
        for stop in self.stop:
            cut = min(cut, _held_back(text, stop))
        return text[:cut]

    def text(self, i: int, new: str) -> list[dict[str, Any]]:
        self.received[i] += new
        ready = self._sendable(self.received[i])
        if len(ready) <= len(self.sent[i]) or not ready.startswith(self.sent[i]):
            return []
        delta, self.sent[i] = ready[len(self.sent[i]) :], ready
        return [self._delta(i, {"content": delta})]

    def finish(self, results: list[ChatResult]) -> list[dict[str, Any]]:
        chunks = []
        for i, r in enumerate(results):
            if r.text.startswith(self.sent[i]) and len(r.text) > len(self.sent[i]):
                chunks.append(self._delta(i, {"content": r.text[len(self.sent[i]) :]}))
            for k, call in enumerate(r.tool_calls):
                head = {"index": k, "id": call.id, "type": "function"}
                head["function"] = {"name": call.name, "arguments": ""}
                chunks.append(self._delta(i, {"tool_calls": [head]}))
                args = call.to_openai()["function"]["arguments"]
                chunks.append(
                    self._delta(i, {"tool_calls": [{"index": k, "function": {"arguments": args}}]})
                )
            chunks.append(self._delta(i, {}, _finish(r)))
        if self.include_usage:
            chunks.append(self._chunk([], usage=usage(results)))
        return chunks


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
