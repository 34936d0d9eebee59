"""The OpenAI-compatible model endpoint under /v1/, served from a local checkpoint.

Requests run in their own threads so that concurrent callers reach the embedded backend
together and share its batches; several Celery workers can point their ``openai`` backend
here and share one loaded model.  Clients authenticate with ``Authorization: Bearer
<API token>`` (the same tokens as the REST API); GET also accepts a logged-in session.
The token's user needs the ``viewer`` role or above.

The model is shared, so a request is bounded: per token by ``INFTOOL_SERVE_RATE``, in what
it may ask (``n``, ``max_tokens``, the size of its JSON Schemas, prompt and completion
within the model's context) and in time: past ``INFTOOL_SERVE_TIMEOUT_S`` it is cancelled
and answered 504 (a stream gets an error event).  A client that disconnects cancels its
request; either way the model's slots go to the next request at once.

``stream: true`` answers with server-sent events in OpenAI's ``chat.completion.chunk``
format, ending with ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authtoken.models import Token

from synthesis.llm.base import LLMError
from synthesis.llm.registry import get_backend
from synthesis.llm.serving import (
    SSE_DONE,
    BadRequest,
    ChunkStream,
    ServingLimits,
    chat_completion_response,
    fit_to_context,
    list_models,
    parse_chat_completions,
    sse,
)

from . import ratelimit
from .roles import has_role

logger = logging.getLogger(__name__)

# Who may use the model: reading anything in InfTool needs this role too.
MODEL_ROLE = "viewer"


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse(_error_body(message, code), status=status)


def _error_body(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


def _bearer(request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[len("Bearer ") :].strip() if header.startswith("Bearer ") else None


@sync_to_async
def _token_user(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else None


async def _authenticate(request, *, allow_session: bool):
    key = _bearer(request)
    if key is not None:
        return await _token_user(key)
    if allow_session:
        user = await request.auser()
        return user if user.is_authenticated else None
    return None


async def _refusal(request, *, allow_session: bool) -> JsonResponse | None:
    """401 without a valid token (or session), 403 without the role; None when allowed."""
    user = await _authenticate(request, allow_session=allow_session)
    if user is None:
        how = "log in or send" if allow_session else "send"
        return _error(401, f"{how} an API token as 'Authorization: Bearer <token>'", "invalid_api_key")
    if not await sync_to_async(has_role)(user, MODEL_ROLE):
        return _error(
            403,
            f"this account may not use the model: it needs the {MODEL_ROLE} role or above; ask an operator",
            "permission_denied",
        )
    return None


def serving_backend():
    path = settings.INFTOOL_SERVE_MODEL_PATH or None
    return get_backend("embedded", model_path=path)


def served_model_name() -> str:
    return settings.INFTOOL_SERVE_MODEL_PATH.rstrip("/").rsplit("/", 1)[-1] if settings.INFTOOL_SERVE_MODEL_PATH else "smollm2-135m-instruct"


def serving_limits():
    return ServingLimits(
        max_n=settings.INFTOOL_SERVE_MAX_N,
        max_tokens=settings.INFTOOL_SERVE_MAX_TOKENS,
        max_schema_bytes=settings.INFTOOL_SERVE_MAX_SCHEMA_BYTES,
        max_tools=settings.INFTOOL_SERVE_MAX_TOOLS,
    )


async def _submit(backend, chat_request, on_text=None):
    """``backend.submit`` on a worker thread (it tokenizes and compiles grammars); a request
    whose caller goes away meanwhile is cancelled as soon as it exists."""
    pending = asyncio.ensure_future(asyncio.to_thread(backend.submit, chat_request, on_text=on_text))
    try:
        return await asyncio.shield(pending)
    except asyncio.CancelledError:
        pending.add_done_callback(lambda f: f.cancelled() or f.exception() or f.result().cancel())
        raise


async def _wait(generation, timeout: float) -> None:
    """Wait for a generation to end; past ``timeout`` (or when the caller goes away) it is
    cancelled, which frees its slots."""
    # shield: a cancelled wait must not cancel the backend's future, which it resolves later.
    done = asyncio.shield(asyncio.wrap_future(generation.done))
    try:
        await asyncio.wait_for(done, timeout)
    except BaseException:
        generation.cancel()
        raise


@csrf_exempt  # bearer tokens only for POST: there is no cookie for a forged form to ride on
async def chat_completions(request):

    if request.method != "POST":
        return _error(405, "use POST", "method_not_allowed")
    refusal = await _refusal(request, allow_session=False)
    if refusal is not None:
        return refusal
    decision = await asyncio.to_thread(ratelimit.hit, "v1", f"token:{_bearer(request)}", settings.INFTOOL_SERVE_RATE)
    if not decision.allowed:
        response = _error(
            429, f"too many requests for this token: at most {decision.limit} per window; "
            f"retry in {decision.retry_after} s", "rate_limit_exceeded")
        response["Retry-After"] = str(decision.retry_after)
        return response
    try:
        body = json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"the body is not valid JSON: {exc}", "invalid_json")
    except RecursionError:
        return _error(400, "the body is not valid JSON: it is nested too deeply", "invalid_json")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object", "invalid_request_error")
    requested = body.get("model")
    if requested not in (None, "", served_model_name()):
        return _error(404, f"model {requested!r} is not served here; available: {served_model_name()}", "model_not_found")
    model = served_model_name()
    try:
        parsed = parse_chat_completions(body, limits=serving_limits())
        backend = await asyncio.to_thread(serving_backend)
        context = getattr(backend, "max_positions", None)
        if context and hasattr(backend, "count_prompt_tokens"):
            prompt_tokens = await asyncio.to_thread(backend.count_prompt_tokens, parsed.request)
            fit_to_context(parsed, prompt_tokens=prompt_tokens, context=context)
        if parsed.stream:
            response = StreamingHttpResponse(
                _events(backend, parsed, model=model, timeout=settings.INFTOOL_SERVE_TIMEOUT_S),
                content_type="text/event-stream",
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the events back
            return response
        generation = await _submit(backend, parsed.request)
        try:
            await _wait(generation, settings.INFTOOL_SERVE_TIMEOUT_S)
        except TimeoutError:
            return _error(504, _timeout_message(), "timeout")
        results = await asyncio.to_thread(generation.results)
    except BadRequest as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    except LLMError as exc:
        return _error(503, f"the model backend failed: {exc}", "backend_error")
    return JsonResponse(chat_completion_response(results, model=model))


def _timeout_message() -> str:
    return (
        f"the model did not finish within {settings.INFTOOL_SERVE_TIMEOUT_S:g} s; the request was "
        "cancelled. Ask for fewer max_tokens or retry later"
    )


async def _events(backend, parsed, *, model: str, timeout: float) -> AsyncIterator[bytes]:
    """The server-sent events of one streamed request.  The generation starts with the first
    event and is cancelled when this generator is closed early (the client went away)."""
    loop = asyncio.get_running_loop()
    request = parsed.request
    # Text from the scheduler thread, then None once every choice has ended.
    texts: asyncio.Queue = asyncio.Queue()
    chunks = ChunkStream(
        model=model,
        n=request.n,
        include_usage=parsed.include_usage,
        parse_calls=bool(request.tools) and request.tool_choice != "none" and request.json_schema is None,
        stop=request.stop,
    )

    def put(item) -> None:
        try:
            loop.call_soon_threadsafe(texts.put_nowait, item)
        except RuntimeError:  # the loop is gone: so is the client
            pass

    generation = None
    try:
        deadline = loop.time() + timeout
        generation = await _submit(backend, request, lambda i, t: put((i, t)))
        generation.done.add_done_callback(lambda _: put(None))
        for chunk in chunks.start():
            yield sse(chunk)
        while (item := await asyncio.wait_for(texts.get(), max(0.0, deadline - loop.time()))) is not None:
            for chunk in chunks.text(*item):
                yield sse(chunk)
        results = await asyncio.to_thread(generation.results)
        for chunk in chunks.finish(results):
            yield sse(chunk)
    except TimeoutError:
        yield sse(_error_body(_timeout_message(), "timeout"))
    except LLMError as exc:
        yield sse(_error_body(f"the model backend failed: {exc}", "backend_error"))
    finally:
        if generation is not None:
            generation.cancel()  # nothing left to cancel when it finished; frees the slots when not
    yield SSE_DONE


async def models(request):
    refusal = await _refusal(request, allow_session=True)
    if refusal is not None:
        return refusal
    return JsonResponse(list_models([served_model_name()]))
