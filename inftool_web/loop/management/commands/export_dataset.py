"""Write trajectories as JSONL, filtered like the REST API's exports.

    manage.py export_dataset --format openai --out data.jsonl
    manage.py export_dataset --format sharegpt --iteration 2 --difficulty hard
    manage.py export_dataset --format bfcl --verdict all > bfcl.jsonl
    manage.py export_dataset --iteration 2 --output exports/it2   # data.jsonl + README.md (data card)

With ``--output DIR`` the folder gets the data file and, beside it, the data card of the
exported iterations as a Hugging Face dataset card (``README.md`` with YAML metadata), so
``datasets.load_dataset("DIR")`` loads it.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError

from inftool_web.core.filters import FilterError
from inftool_web.loop.exports import CARD_FILE, DATA_FILE, export_folder, export_lines
from inftool_web.loop.models import Iteration
from inftool_web.synth.selectors import TrajectoryFilters, trajectory_list


class Command(BaseCommand):
    help = "Export trajectories (accepted ones by default; audits override verdicts) as JSONL."

    def add_arguments(self, parser):
        parser.add_argument("--format", default="openai", choices=["openai", "sharegpt", "bfcl"])
        parser.add_argument("--out", default="-", help="File path, or - for standard output")
        parser.add_argument("--output", default=None, metavar="DIR",
                            help="A folder to write data.jsonl and README.md (the data card) into")
        for name in ("iteration", "mode", "domain", "difficulty", "audited"):
            parser.add_argument(f"--{name}", default=None)
        parser.add_argument("--verdict", default="accepted", help="accepted (default), rejected, or all")

    def handle(self, *args, format, out, output, verdict, **options):
        params = {k: options.get(k) for k in TrajectoryFilters.PARAMS if options.get(k) is not None}
        if verdict != "all":
            params["verdict"] = verdict
        try:
            filters = TrajectoryFilters.from_params(params)
        except FilterError as exc:
            raise CommandError(str(exc)) from None
        if filters.iteration is not None:
            # The command speaks iteration numbers, as the UI shows them.
            pk = Iteration.objects.filter(number=filters.iteration).values_list("pk", flat=True).first()
            if pk is None:
                raise CommandError(f"no iteration number {filters.iteration}")
            filters = replace(filters, iteration=pk)
        qs = trajectory_list(filters=filters)
        if output is not None:
            if out != "-":
                raise CommandError("give --out FILE or --output DIR, not both")
            described = {**params, **({"verdict": verdict} if verdict == "all" else {})}
            n = export_folder(qs, format, output, filters=described)
            self.stderr.write(f"exported {n} trajectories as {format} to {output}/{DATA_FILE}, "
                              f"with the data card in {output}/{CARD_FILE}")
            return
        stream = sys.stdout.buffer if out == "-" else open(out, "wb")
        n = 0
        try:
            for chunk in export_lines(qs, format):
                stream.write(chunk)
                n += chunk.count(b"\n")
        finally:
            if out != "-":
                stream.close()
        self.stderr.write(f"exported {n} trajectories as {format}" + ("" if out == "-" else f" to {out}"))
