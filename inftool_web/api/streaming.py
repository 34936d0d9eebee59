"""A StreamingHttpResponse that stays streaming (and flat in memory) under ASGI too.

Under ASGI Django drains a *sync* iterator into a list before sending it; an async
iterator that pulls one chunk at a time from the sync generator avoids that. All pulls
run on the request's thread-sensitive executor, so the database cursor stays on one
connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse


async def _pull(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    take = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)
    try:
        while (chunk := await take()) is not None:
            yield chunk
    finally:
        await sync_to_async(getattr(chunks, "close", lambda: None), thread_sensitive=True)()


def streaming_response(request, chunks: Iterator[bytes], *, content_type: str, filename: str) -> StreamingHttpResponse:
    raw = getattr(request, "_request", request)
    content = _pull(chunks) if isinstance(raw, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Accel-Buffering"] = "no"
    return response
