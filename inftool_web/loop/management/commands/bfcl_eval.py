"""Evaluate a checkpoint on BFCL V3 with the official checker and store the results.

    manage.py bfcl_eval --subset mini-v1                # BFCL mini: the loop's 240 committed items
    manage.py bfcl_eval                                 # the base model, every V3 category
    manage.py bfcl_eval --limit 5                       # a fixed, seeded 5 items per category
    manage.py bfcl_eval --checkpoint iteration-1-grpo --categories simple multiple irrelevance
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inftool_web.loop.models import ModelCheckpoint
from inftool_web.loop.services import checkpoint_register_base
from inftool_web.loop.stages import evaluation_run
from training.bfcl import CATEGORIES
from training.bfcl_subsets import SUBSETS


class Command(BaseCommand):
    help = "Run BFCL V3 on a checkpoint and print the per-category table."

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", default=None, help="Checkpoint name (default: the base model)")
        parser.add_argument("--limit", type=int, default=None, help="Items per category (seeded subset)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--categories", nargs="+", default=None)
        parser.add_argument("--subset", choices=sorted(SUBSETS), default=None,
                            help="A committed subset (mini-v1: BFCL mini, 240 items) instead of all of V3")

    def handle(self, *args, checkpoint, limit, seed, categories, subset=None, **options):
        if categories:
            bad = sorted(set(categories) - set(CATEGORIES))
            if bad:
                raise CommandError(f"unknown categories {bad}; valid: {', '.join(CATEGORIES)}")
        if checkpoint:
            ckpt = ModelCheckpoint.objects.filter(name=checkpoint).first()
            if ckpt is None:
                names = ", ".join(ModelCheckpoint.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"no checkpoint {checkpoint!r}; known: {names}")
        else:
            ckpt = checkpoint_register_base()

        def progress(event):
            if event.get("event") == "item" and event.get("done") == event.get("total"):
                self.stderr.write(f"  {event.get('category')}: {event.get('total')} items")

        ev = evaluation_run(checkpoint=ckpt, limit=limit, seed=seed, categories=categories, subset=subset or "",
                            progress=progress)
        took = (ev.finished_at - ev.started_at).total_seconds()
        what = f"BFCL {subset}" if subset else "BFCL V3"
        per = f", first {limit} per category" if subset and limit else (
            f", {limit} per category (seed {seed})" if limit else "")
        self.stdout.write(f"\n{what}, {ckpt.name}{per}: {took:.0f} s")
        self.stdout.write(f"{'category':<28}{'correct':>8}{'total':>7}{'accuracy':>10}")
        for r in ev.results.order_by("category"):
            self.stdout.write(f"{r.category:<28}{r.correct:>8}{r.total:>7}{r.accuracy:>10.1%}")
        mini = ev.summary.get("subset") or {}
        for key in ("non_live_ast", "irrelevance", "mean"):
            if isinstance(mini.get(key), (int, float)):
                self.stdout.write(f"{subset + ' ' + key:<43}{mini[key]:>10.1%}")
        for key, value in ev.summary.items():
            if isinstance(value, dict) and isinstance(value.get("accuracy"), (int, float)):
                note = "" if value.get("complete", True) else "  (incomplete: categories not run count as 0)"
                self.stdout.write(f"{key:<43}{value['accuracy']:>10.1%}{note}")
