"""List the tools of a live MCP server with the official ``mcp`` SDK (stdio or streamable HTTP)."""

from __future__ import annotations

import shlex
from typing import Any

import anyio


class MCPConnectionError(RuntimeError):
    """The MCP server could not be started, reached, or did not answer ``tools/list``."""

    code = "mcp_unreachable"


class MCPInvalidAnswer(MCPConnectionError):
    """The server answered ``tools/list`` with definitions that break the MCP schema."""

    code = "mcp_invalid_tools"


def _tool_dict(tool: Any) -> dict[str, Any]:
    data = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
    out: dict[str, Any] = {
        "name": data["name"],
        "description": data.get("description") or data.get("title") or "",
        "inputSchema": data.get("inputSchema") or {"type": "object", "properties": {}},
    }
    if data.get("outputSchema"):
        out["outputSchema"] = data["outputSchema"]
    if data.get("annotations"):
        out["annotations"] = data["annotations"]
    return out


async def _list_all(session: Any) -> list[dict[str, Any]]:
    from mcp import types

    await session.initialize()
    tools: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):  # a server that never stops paginating must not hang us
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        result = await session.list_tools(params=params)
        tools.extend(_tool_dict(t) for t in result.tools)
        cursor = getattr(result, "next_cursor", None) or getattr(result, "nextCursor", None)
        if not cursor:
            break
    return tools


async def _stdio(command: str, env: dict[str, str] | None) -> list[dict[str, Any]]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    argv = shlex.split(command)
    if not argv:
        raise MCPConnectionError("empty MCP server command")
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        return await _list_all(session)


async def _http(url: str) -> list[dict[str, Any]]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as session:
        return await _list_all(session)


def list_tools_stdio(command: str, *, env: dict[str, str] | None = None, timeout: float = 60) -> list[dict[str, Any]]:
    """Start ``command`` as an MCP server over stdio and return its tools as MCP dicts."""
    return _run(lambda: _stdio(command, env), f"stdio server {command!r}", timeout)


def list_tools_http(url: str, *, timeout: float = 60) -> list[dict[str, Any]]:
    """Connect to a streamable-HTTP MCP server at ``url`` and return its tools as MCP dicts."""
    return _run(lambda: _http(url), f"streamable HTTP server {url}", timeout)


def _run(fn, what: str, timeout: float) -> list[dict[str, Any]]:
    async def main():
        with anyio.fail_after(timeout):
            return await fn()

    try:
        return anyio.run(main)
    except TimeoutError:
        raise MCPConnectionError(f"{what} did not answer tools/list within {timeout:.0f} s") from None
    except MCPConnectionError:
        raise
    except BaseException as exc:  # noqa: BLE001 - anyio wraps failures in exception groups
        if isinstance(exc, KeyboardInterrupt):
            raise
        inner = exc
        while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            inner = inner.exceptions[0]
        if type(inner).__name__ == "ValidationError" and hasattr(inner, "errors"):
            # The SDK refuses the whole listing when one definition breaks the MCP schema.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in inner.errors()[:10]
            )
            raise MCPInvalidAnswer(
                f"the {what} answered tools/list with tool definitions that break the MCP schema "
                f"(the whole list is refused): {problems}"
            ) from exc
        raise MCPConnectionError(f"could not list the tools of the {what}: {type(inner).__name__}: {inner}") from exc
