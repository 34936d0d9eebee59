"""The ``openai`` backend: any OpenAI-compatible chat completions server.

Typically ``vllm serve`` on a GPU node, or this project's own ``/v1`` endpoint.  Tools and
``response_format={"type": "json_schema", ...}`` are passed through for the server to
enforce; tool calls come from the response's ``tool_calls`` or, for servers that leave them
in the text (no tool parser configured), from the content's ``<tool_call>`` blocks.

Connection errors, timeouts, 429 and 5xx answers are retried (tenacity: exponential backoff
with full jitter, a server's ``Retry-After`` honoured up to ``max_retry_after`` seconds); a
server that stays unreachable raises :class:`BackendUnavailable` naming its URL.  The
requests of a batch are sent concurrently, at most ``concurrency`` at a time.

What a server answers besides a completion never goes into an error: errors end up in
trajectories and iterations that every viewer reads, so they carry the status and its
standard reason only; the body goes to the log.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

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
# $OPENAI_API_KEY is OpenAI's key: it goes to OpenAI's host and nowhere else.
OPENAI_KEY_HOST = "api.openai.com"


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        description="Server root including /v1, e.g. http://gpu-1:8000/v1.",
    )
    api_key: str | None = Field(
        None,
        description="Bearer token; default: $OPENAI_API_KEY, for api.openai.com only; '' sends none.",
    )
    model: str | None = Field(
        None, description="Model name; default: the first one the server lists."
    )
    timeout: float = Field(120.0, gt=0, description="Seconds per HTTP request.")
    max_retries: int = Field(4, ge=0, description="Retries on connection errors, 429 and 5xx.")
    backoff: float = Field(
        0.5, ge=0, description="Retry delay scale in seconds: a random wait up to backoff * 2**n."
    )
    backoff_max: float = Field(30.0, ge=0, description="Longest wait between two retries.")
    max_retry_after: float = Field(
        60.0, ge=0, description="Longest wait a server's Retry-After header can ask for."
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
        key = opts.api_key
        if key is None and httpx.URL(self.base_url).host == OPENAI_KEY_HOST:
            key = os.environ.get("OPENAI_API_KEY")
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
            body["tools"] = [to_openai_tool(t) for t in req.constraint_tools()]
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
        opts = self.options
        jitter = wait_random_exponential(multiplier=opts.backoff, max=opts.backoff_max)

        def wait(state: RetryCallState) -> float:
            delay = jitter(state)
            exc = state.outcome.exception() if state.outcome else None
            asked = getattr(exc, "retry_after", None)
            if asked is not None:
                delay = max(delay, min(asked, opts.max_retry_after))
            return delay

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait_s = state.next_action.sleep if state.next_action else 0.0
            logger.warning("%s %s failed (%s); retrying in %.1f s", method, url, exc, wait_s)

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(opts.max_retries + 1),
            wait=wait,
            before_sleep=log_retry,
            sleep=time.sleep,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return self._request_once(method, path, url, **kwargs)
        except _Transient as e:
            raise BackendUnavailable(f"{e.what} after {attempts} attempts") from e.__cause__
        raise AssertionError("unreachable")

    def _request_once(self, method: str, path: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self._client.request(method, path, **kwargs)
        except (httpx.TransportError, httpx.TimeoutException) as e:
            raise _Transient(
                f"cannot reach the OpenAI-compatible server at {url}: {type(e).__name__}"
            ) from e
        if resp.status_code < 400:
            try:
                return resp.json()
            except ValueError as e:
                _log_body(url, resp)
                raise LLMError(f"{url} answered {_status(resp)} with a body that is not JSON") from e
        _log_body(url, resp)
        if resp.status_code in _RETRY_STATUS:
            raise _Transient(f"{url} answered {_status(resp)}", _retry_after(resp))
        raise LLMError(f"{url} answered {_status(resp)}")


class _Transient(Exception):
    """A failure worth another try; ``retry_after`` is the server's wish in seconds, if any."""

    def __init__(self, what: str, retry_after: float | None = None):
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


def _status(resp: httpx.Response) -> str:
    """``503 Service Unavailable``: the code and its standard reason, never the server's text."""
    try:
        return f"{resp.status_code} {HTTPStatus(resp.status_code).phrase}"
    except ValueError:
        return str(resp.status_code)


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = (resp.headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _log_body(url: str, resp: httpx.Response) -> None:
    # The operator's log may see what the server said; viewers of the error may not.
    logger.warning("%s answered %s: %.300r", url, resp.status_code, resp.text)


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
        logger.warning("a chat completion with no choices: %.300s", json.dumps(data))
        raise LLMError("the server's response has no choices")
    return out
