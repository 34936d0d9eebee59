"""Rebuild an iteration's data card, store it, and print it.

    manage.py data_card --iteration 3                 # the card as Markdown (a HF dataset card)
    manage.py data_card --iteration 3 --format json   # the stored JSON
    manage.py data_card --iteration 3 --no-embeddings # skip the MiniLM checks (seconds faster)
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from inftool_web.loop.datacard import data_card_markdown, iteration_build_data_card
from inftool_web.loop.models import Iteration


class Command(BaseCommand):
    help = "Rebuild, store and print the data card of an iteration."

    def add_arguments(self, parser):
        parser.add_argument("--iteration", type=int, required=True, help="Iteration number, as the UI shows it")
        parser.add_argument("--format", default="md", choices=["md", "json"])
        parser.add_argument("--no-embeddings", action="store_true",
                            help="Skip near-duplicates and the paraphrase part of the contamination check")

    def handle(self, *args, iteration, format, no_embeddings, **options):
        it = Iteration.objects.select_related("input_checkpoint").filter(number=iteration).first()
        if it is None:
            raise CommandError(f"no iteration number {iteration}")
        card = iteration_build_data_card(iteration=it, embeddings=False if no_embeddings else None)
        if format == "json":
            self.stdout.write(json.dumps(card, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(data_card_markdown(card))
