"""List the tools of a live MCP server and store them.

    manage.py ingest_mcp --command "python my_server.py"
    manage.py ingest_mcp --url http://127.0.0.1:8080/mcp
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inftool_web.catalog.models import ApiSource
from inftool_web.catalog.services import source_ingest_mcp, source_record_failure
from synthesis.mcp_client import MCPConnectionError, list_tools_http, list_tools_stdio
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD


class Command(BaseCommand):
    help = "Connect to a live MCP server (stdio command or streamable HTTP URL) and store its tools."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--command", dest="server_command", help="Command line that starts a stdio MCP server")
        group.add_argument("--url", help="URL of a streamable-HTTP MCP server")
        parser.add_argument("--name", default=None, help="Source name (default: the command or URL)")
        parser.add_argument("--timeout", type=float, default=60.0)

    def handle(self, *args, server_command, url, name, timeout, **options):
        if server_command:
            kind, location = ApiSource.Kind.MCP_STDIO, server_command
        else:
            kind, location = ApiSource.Kind.MCP_HTTP, url
        name = name or f"mcp:{location}"
        try:
            tools = list_tools_stdio(location, timeout=timeout) if server_command else list_tools_http(location, timeout=timeout)
        except MCPConnectionError as exc:
            source_record_failure(name=name, kind=kind, location=location, error_code=exc.code, error=str(exc))
            raise CommandError(str(exc)) from None
        outcome = source_ingest_mcp(name=name, kind=kind, location=location, tools=tools)
        usable = ApiSource.objects.get(name=name).tools.filter(usability_score__gte=DEFAULT_THRESHOLD).count()
        self.stdout.write(f"{name}: {outcome.tools} tools ({outcome.added} new), "
                          f"{usable} usable for role-play (score >= {DEFAULT_THRESHOLD:g})")
        if outcome.warnings:
            self.stdout.write(f"{outcome.warnings} tool(s) left out:")
            for w in ApiSource.objects.get(name=name).warnings:
                self.stdout.write(f"  {w['operation']}: {w['message']}")
