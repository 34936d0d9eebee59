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


def _count_param(request, name: str, *, minimum: int) -> int | None:
    """A whole-number query parameter, or None when absent; anything else is a 400 (DRF
    would quietly fall back to its default, hiding a client's mistake)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        raise ValidationError({name: f"{raw[:40]!r} is not a whole number of at least {minimum}"})
    return int(raw)


def _with_minimum(parameters: list[dict], minimums: dict[str, int]) -> list[dict]:
    for p in parameters:
        if p["name"] in minimums:
            p["schema"] = {**p["schema"], "minimum": minimums[p["name"]]}
    return parameters


class LimitOffsetPages(LimitOffsetPagination):
    """``?limit=`` (default 50, at most 500) and ``?offset=``; the response has ``count``."""

    max_limit = MAX_PAGE_SIZE
    limit_query_description = f"Number of results per page (default 50; more than {MAX_PAGE_SIZE} counts as {MAX_PAGE_SIZE})."

    def get_limit(self, request) -> int:
        limit = _count_param(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request) -> int:
        return _count_param(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view) -> list[dict]:
        params = super().get_schema_operation_parameters(view)
        return _with_minimum(params, {self.limit_query_param: 1, self.offset_query_param: 0})


class IdCursorPages(CursorPagination):
    """Keyset pages in ``id`` order: ``?limit=`` rows (default 50, at most 500), and the
    ``next`` / ``previous`` links carry an opaque ``cursor``. A page costs the same however
    deep it is, and rows added meanwhile neither shift nor repeat rows across pages. There
    is no total count."""

    ordering = "id"
    page_size_query_param = "limit"
    page_size_query_description = f"Number of results per page (default 50; more than {MAX_PAGE_SIZE} counts as {MAX_PAGE_SIZE})."
    cursor_query_description = "The cursor of a page: take it from the `next` or `previous` link."
    max_page_size = MAX_PAGE_SIZE
    template = None

    def get_page_size(self, request) -> int:
        size = _count_param(request, self.page_size_query_param, minimum=1)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return _with_minimum(super().get_schema_operation_parameters(view), {self.page_size_query_param: 1})

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
