"""The ``openai`` backend: any OpenAI-compatible chat completions server.

Typically ``vllm serve`` on a GPU node, or this project's own ``/v1`` endpoint.  Tools and
``response_format={"type": "json_schema", ...}`` are passed through for the server to
enforce; tool calls come from the response's ``tool_calls`` or, for servers that leave them
in the text (no tool parser configured), from the content's ``<tool_call>`` blocks.

Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff;
a server that stays unreachable raises :class:`BackendUnavailable` naming its URL.  The
requests of a batch are sent concurrently, at most ``concurrency`` at a time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from .base import (
    BackendUnavailable,
    ChatRequest,
    ChatResult,
    InvalidModelOutput,
    LLMBackend,
    LLMError,
    ToolCall,
    to_openai_tool,
)
from .toolcalls import apply_tool_call_parsing, call_name_and_arguments, new_call_id

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        description="Server root including /v1, e.g. http://gpu-1:8000/v1.",
    )
    api_key: str | None = Field(None, description="Bearer token; default: $OPENAI_API_KEY if set.")
    model: str | None = Field(
        None, description="Model name; default: the first one the server lists."
    )
    timeout: float = Field(120.0, gt=0, description="Seconds per HTTP request.")
    max_retries: int = Field(4, ge=0, description="Retries on connection errors, 429 and 5xx.")
    backoff: float = Field(
        0.5, ge=0, description="First retry delay in seconds; doubles each retry."
    )
    concurrency: int = Field(8, ge=1, description="Requests of a batch in flight at once.")


class OpenAIBackend(LLMBackend):
    name = "openai"
    supports_tools = True
    supports_schema = True
    Options = OpenAIOptions

    def __init__(self, options: OpenAIOptions | None = None, **kwargs: Any):
        self.options = opts = options or OpenAIOptions(**kwargs)
        self.base_url = opts.base_url.rstrip("/")
        key = opts.api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=opts.timeout,
            limits=httpx.Limits(
                max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency
            ),
        )
        self._pool = ThreadPoolExecutor(
            max_workers=opts.concurrency, thread_name_prefix="openai-backend"
        )
        self._model_lock = threading.Lock()
        self.model_id = opts.model or ""

    # -- public ------------------------------------------------------------------------------

    def complete_batch(self, requests: list[ChatRequest]) -> list[list[ChatResult]]:
        if len(requests) == 1:
            return [self._complete_one(requests[0])]
        return list(self._pool.map(self._complete_one, requests))

    def list_models(self) -> list[str]:
        data = self._request("GET", "/models")
        return [m["id"] for m in data.get("data", [])]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- one request -------------------------------------------------------------------------

    def _model(self) -> str:
        with self._model_lock:
            if not self.model_id:
                models = self.list_models()
                if not models:
                    raise BackendUnavailable(f"the server at {self.base_url} lists no models")
                self.model_id = models[0]
            return self.model_id

    def request_body(self, req: ChatRequest) -> dict[str, Any]:
        """The JSON body sent for ``req``."""
        body: dict[str, Any] = {
            "model": self._model(),
            "messages": [_openai_message(m) for m in req.messages],
            "n": req.n,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
        }
        if req.stop:
            body["stop"] = req.stop
        if req.seed is not None:
            body["seed"] = req.seed
        if req.tools:
            body["tools"] = [to_openai_tool(t) for t in req.tools]
            choice = req.tool_choice
            if isinstance(choice, dict):
                name = choice.get("name") or (choice.get("function") or {}).get("name")
                body["tool_choice"] = {"type": "function", "function": {"name": name}}
            else:
                body["tool_choice"] = choice
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": req.json_schema, "strict": True},
            }
        return body

    def _complete_one(self, req: ChatRequest) -> list[ChatResult]:
        url = self.base_url + "/chat/completions"
        data = self._request("POST", "/chat/completions", json=self.request_body(req))
        try:
            return parse_chat_completion(data, req)
        except LLMError as e:
            # Name the server: with several model servers, "no choices" alone says nothing.
            raise LLMError(f"{url}: {e}") from e

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.base_url + path
        delay = self.options.backoff
        for attempt in range(self.options.max_retries + 1):
            last = attempt == self.options.max_retries
            try:
                resp = self._client.request(method, path, **kwargs)
            except (httpx.TransportError, httpx.TimeoutException) as e:
                if last:
                    raise BackendUnavailable(
                        f"cannot reach the OpenAI-compatible server at {url} "
                        f"after {attempt + 1} attempts: {type(e).__name__}: {e}"
                    ) from e
                logger.warning("%s %s failed (%s); retrying in %.1f s", method, url, e, delay)
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError as e:
                        raise LLMError(f"{url} answered non-JSON: {resp.text[:200]!r}") from e
                if resp.status_code not in _RETRY_STATUS:
                    raise LLMError(f"{url} answered {resp.status_code}: {_error_message(resp)}")
                if last:
                    raise BackendUnavailable(
                        f"{url} answered {resp.status_code} after {attempt + 1} attempts: {_error_message(resp)}"
                    )
                retry_after = resp.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = max(delay, float(retry_after))
                logger.warning(
                    "%s %s answered %s; retrying in %.1f s", method, url, resp.status_code, delay
                )
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


def _error_message(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error")
    except ValueError:
        return resp.text[:500]
    if isinstance(err, dict):
        return str(err.get("message", err))
    return str(err or resp.text[:500])


def _openai_message(m: dict[str, Any]) -> dict[str, Any]:
    out = dict(m)
    if out.get("tool_calls"):
        calls = []
        for tc in out["tool_calls"]:
            if isinstance(tc, ToolCall):
                calls.append(
                    tc.to_openai()
                    if tc.id
                    else ToolCall(tc.name, tc.arguments, new_call_id()).to_openai()
                )
            elif isinstance(tc, dict) and tc.get("type") == "function":
                calls.append(tc)
            else:
                name, args = call_name_and_arguments(tc)
                calls.append(ToolCall(name, args, tc.get("id") or new_call_id()).to_openai())
        out["tool_calls"] = calls
    content = out.get("content")
    if content is not None and not isinstance(content, str | list):
        out["content"] = json.dumps(content, ensure_ascii=False)
    return out


def parse_chat_completion(data: dict[str, Any], req: ChatRequest | None = None) -> list[ChatResult]:
    """ChatResults from an OpenAI ``chat.completion`` response (one per choice)."""
    choices = data.get("choices") or []
    usage = data.get("usage") or {}
    n = max(len(choices), 1)
    out = []
    for ch in sorted(choices, key=lambda c: c.get("index", 0)):
        msg = ch.get("message") or {}
        text = msg.get("content") or ""
        finish = ch.get("finish_reason") or "stop"
        result = ChatResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)) // n,
        )
        raw_calls = msg.get("tool_calls") or []
        for tc in raw_calls:
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            try:
                parsed = (
                    json.loads(args) if isinstance(args, str) and args.strip() else (args or {})
                )
            except json.JSONDecodeError as e:
                result.error = InvalidModelOutput(
                    f"arguments of {fn.get('name')!r} are not valid JSON ({e})", raw=args
                )
                result.finish_reason = "error"
                continue
            if not isinstance(parsed, dict):
                result.error = InvalidModelOutput(
                    f"arguments of {fn.get('name')!r} are not a JSON object", raw=str(args)
                )
                result.finish_reason = "error"
                continue
            result.tool_calls.append(
                ToolCall(
                    name=fn.get("name", ""), arguments=parsed, id=tc.get("id") or new_call_id()
                )
            )
        if (
            not raw_calls
            and req is not None
            and req.tools
            and req.tool_choice != "none"
            and req.json_schema is None
        ):
            apply_tool_call_parsing(result)
        out.append(result)
    if not out:
        raise LLMError(f"the server's response has no choices: {json.dumps(data)[:300]}")
    return out
