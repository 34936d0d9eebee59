"""Score every stored tool's usability and report what a threshold keeps.

    manage.py curate_tools                  # rescore all tools; report at the default 0.6
    manage.py curate_tools --threshold 0.7
    manage.py curate_tools --only-missing   # only tools never scored (e.g. stored before curation)

Role-play draws tasks only from tools at or above an iteration's ``min_usability``
(``synthesize --min-usability``); the scores and their reasons are stored with each tool.
"""

from __future__ import annotations

import argparse
import time

from django.core.management.base import BaseCommand, CommandError

from inftool_web.catalog.services import tools_curate
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD, REASONS, CurationReport


def _threshold(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, not {value}")
    return x


def report_lines(report: CurationReport) -> list[str]:
    """The report as printed: counts, then each reason code of the dropped tools."""
    rows = [("tools scored", report.scored), (f"kept (>= {report.threshold:g})", report.kept),
            ("dropped", report.dropped)]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v:>8}" for k, v in rows]
    if report.dropped_by_reason:
        lines += ["", "dropped tools by reason (a tool can have several; 'main' counts each once):",
                  f"  {'code':<26}{'tools':>8}{'main':>8}  meaning"]
        for code, n in report.dropped_by_reason.most_common():
            meaning = REASONS[code][2] if code in REASONS else ""
            lines.append(f"  {code:<26}{n:>8}{report.dropped_by_main_reason.get(code, 0):>8}  {meaning}")
    return lines


class Command(BaseCommand):
    help = "(Re)score the usability of stored tools and print how many a threshold keeps, and why it drops the rest."

    def add_arguments(self, parser):
        parser.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                            help=f"Report tools at or above this score as kept (0-1, default {DEFAULT_THRESHOLD})")
        parser.add_argument("--only-missing", action="store_true", help="Only score tools that have no score yet")

    def handle(self, *args, threshold, only_missing, **options):
        t0 = time.perf_counter()
        try:
            report = tools_curate(threshold=threshold, only_missing=only_missing)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not report.scored:
            if only_missing:
                self.stdout.write("every tool is scored already")
                return
            raise CommandError("no tools stored: run ingest_openapi or ingest_mcp first")
        self.stdout.write("\n".join(report_lines(report)))
        self.stdout.write(f"\nseconds {time.perf_counter() - t0:.1f}")
