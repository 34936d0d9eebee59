"""Write trajectories as JSONL, filtered like the REST API's exports.

    manage.py export_dataset --format openai --out data.jsonl
    manage.py export_dataset --format sharegpt --iteration 2 --difficulty hard
    manage.py export_dataset --format bfcl --verdict all > bfcl.jsonl
    manage.py export_dataset --iteration 2 --output exports/it2   # data.jsonl + README.md (data card)
    manage.py export_dataset --format hf --out exports/hf [--push-to-hub me/inftool-data]

With ``--output DIR`` the folder gets the data file and, beside it, the data card of the
exported iterations as a Hugging Face dataset card (``README.md`` with YAML metadata), so
``datasets.load_dataset("DIR")`` loads it.

``--format hf`` writes a Hugging Face dataset folder (``--out DIR`` or ``--output DIR``):
parquet shards in train and validation splits by trajectory (``--seed``,
``--validation-fraction``) and a card with the data cards, the license and the source
corpus; ``--push-to-hub REPO`` then uploads it as a dataset repo.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inftool_web.core.filters import FilterError
from inftool_web.loop.exports import (
    CARD_FILE,
    DATA_FILE,
    export_folder,
    export_hf_folder,
    export_lines,
)
from inftool_web.loop.hf_export import HubPushError, push_folder_to_hub
from inftool_web.loop.models import Iteration
from inftool_web.synth.selectors import TrajectoryFilters, trajectory_list


class Command(BaseCommand):
    help = "Export trajectories (accepted ones by default; audits override verdicts) as JSONL."

    def add_arguments(self, parser):
        parser.add_argument("--format", default="openai", choices=["openai", "sharegpt", "bfcl", "hf"])
        parser.add_argument("--out", default="-", help="File path, or - for standard output (hf: a folder)")
        parser.add_argument("--output", default=None, metavar="DIR",
                            help="A folder to write data.jsonl and README.md (the data card) into")
        for name in ("iteration", "mode", "domain", "difficulty", "audited"):
            parser.add_argument(f"--{name}", default=None)
        parser.add_argument("--verdict", default="accepted", help="accepted (default), rejected, or all")
        hf = parser.add_argument_group("--format hf")
        hf.add_argument("--seed", type=int, default=0, help="Seed of the train/validation split (default 0)")
        hf.add_argument("--validation-fraction", type=float, default=0.1,
                        help="Share of trajectories in the validation split, in [0, 1) (default 0.1)")
        hf.add_argument("--license", default="other", help="The card's license (default: other)")
        hf.add_argument("--push-to-hub", default=None, metavar="REPO",
                        help="Upload the folder as this Hugging Face dataset repo (needs network and HF_TOKEN)")
        hf.add_argument("--private", action="store_true", help="Create the Hub repo private")

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
        described = {**params, **({"verdict": verdict} if verdict == "all" else {})}
        if format == "hf":
            return self._hf(qs, out, output, described, options)
        if options["push_to_hub"]:
            raise CommandError("--push-to-hub needs --format hf")
        if output is not None:
            if out != "-":
                raise CommandError("give --out FILE or --output DIR, not both")
            n = export_folder(qs, format, output, filters=described)
            self.stderr.write(f"exported {n} trajectories as {format} to {output}/{DATA_FILE}, "
                              f"with the data card in {output}/{CARD_FILE}")
            return
        if out != "-":
            Path(out).parent.mkdir(parents=True, exist_ok=True)
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

    def _hf(self, qs, out, output, described, options):

        if out != "-" and output is not None:
            raise CommandError("give --out DIR or --output DIR, not both")
        folder = output if output is not None else (None if out == "-" else out)
        if folder is None:
            raise CommandError("--format hf writes a folder: give --out DIR")
        try:
            result = export_hf_folder(qs, folder, filters=described, seed=options["seed"],
                                      validation_fraction=options["validation_fraction"], license=options["license"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        sizes = ", ".join(f"{split} {n}" for split, n in result.rows.items())
        self.stderr.write(f"exported {result.total} trajectories ({sizes}) as a Hugging Face dataset to {folder}")
        if options["push_to_hub"]:
            try:
                url = push_folder_to_hub(folder, options["push_to_hub"], private=options["private"])
            except HubPushError as exc:
                raise CommandError(str(exc)) from None
            self.stderr.write(f"pushed to {url}")
