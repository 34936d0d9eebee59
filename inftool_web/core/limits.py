"""Limits on what a request may carry, checked before any view reads it.

- A body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` gets 413.  Django checks that limit only
  where ``request.body`` or ``request.POST`` is read; DRF's parsers and the ``/v1`` endpoint
  read the stream themselves, and under ASGI Django first spools the whole body to a
  temporary file.  So the ASGI app counts the bytes as they arrive (``BodySizeLimit``, which
  also covers bodies sent without a Content-Length) and the middleware checks the declared
  length for every other way in (WSGI, the test client).
- A NUL character in a query parameter gets 400: PostgreSQL cannot compare text with one, so
  a search or a filter holding it would fail in the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


def _max_body() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _too_large_message(size: int | None, limit: int) -> str:
    got = f"{size} bytes" if size is not None else "more"
    return f"the request body is too large: {got}; at most {limit} bytes"


def _error_body(path: str, status: int, message: str) -> tuple[bytes, str]:
    """The error in the form the endpoint's clients read: OpenAI's, DRF's, or plain text."""
    if path.startswith("/v1/"):
        code = "request_too_large" if status == 413 else "invalid_request_error"
        body = {"error": {"message": message, "type": code, "param": None, "code": code}}
        return json.dumps(body).encode(), "application/json"
    if path.startswith("/api/"):
        return json.dumps({"detail": message}).encode(), "application/json"
    return message.encode(), "text/plain; charset=utf-8"


def _response(request: HttpRequest, status: int, message: str) -> HttpResponse:
    body, content_type = _error_body(request.path, status, message)
    if content_type == "application/json":
        return JsonResponse(json.loads(body), status=status)
    return HttpResponse(body, status=status, content_type=content_type)


class RequestLimitsMiddleware:
    """413 for a declared body over the limit, 400 for a NUL in a query parameter."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = _max_body()
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                size = int(declared)
            except ValueError:
                return _response(request, 400, f"Content-Length {declared[:40]!r} is not a number")
            if limit is not None and size > limit:
                return _response(request, 413, _too_large_message(size, limit))
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                name = key.replace("\x00", "\\0")[:40]
                return _response(request, 400, f"query parameter {name!r} contains a NUL character")
        return self.get_response(request)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: answer 413 once an HTTP request body passes the limit, declared or not,
    without reading the rest (and without Django spooling it to disk first)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        limit = _max_body() if scope["type"] == "http" else None
        if limit is None:
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = None
            if size is not None and size > limit:
                return await self._refuse(scope, send, _too_large_message(size, limit))
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, send, _too_large_message(None, limit))

    @staticmethod
    async def _refuse(scope, send, message: str) -> None:
        body, content_type = _error_body(scope.get("path", ""), 413, message)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
