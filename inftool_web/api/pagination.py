"""Pages for the list endpoints.

Small tables (tools, personas, iterations, evaluations) page by ``limit`` and ``offset``
with a total ``count``. Trajectories run to hundreds of thousands of rows, where the
``COUNT(*)`` alone cost more than the page: they page by a cursor over ``id`` instead.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination, LimitOffsetPagination

MAX_PAGE_SIZE = 500
_BIGINT_MAX = 2**63 - 1
INVALID_CURSOR = "invalid cursor; use the next or previous link of a page"


class LimitOffsetPages(LimitOffsetPagination):
    """``?limit=`` (default 50, at most 500) and ``?offset=``; the response has ``count``."""

    max_limit = MAX_PAGE_SIZE


class IdCursorPages(CursorPagination):
    """Keyset pages in ``id`` order: ``?limit=`` rows (default 50, at most 500), and the
    ``next`` / ``previous`` links carry an opaque ``cursor``. A page costs the same however
    deep it is, and rows added meanwhile neither shift nor repeat rows across pages. There
    is no total count."""

    ordering = "id"
    page_size_query_param = "limit"
    page_size_query_description = f"Number of results per page (default 50, at most {MAX_PAGE_SIZE})."
    cursor_query_description = "The cursor of a page: take it from the `next` or `previous` link."
    max_page_size = MAX_PAGE_SIZE
    template = None

    def decode_cursor(self, request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF answers 404 for a bad cursor; it is a bad parameter
            raise ValidationError({"cursor": INVALID_CURSOR}) from None
        if cursor is None or cursor.position is None:
            return cursor
        # The position reaches SQL as a bigint: a cursor edited by hand must not make it fail.
        position = str(cursor.position)
        if not position.isascii() or not position.isdigit() or int(position) > _BIGINT_MAX:
            raise ValidationError({"cursor": INVALID_CURSOR})
        return Cursor(offset=cursor.offset, reverse=cursor.reverse, position=position)
