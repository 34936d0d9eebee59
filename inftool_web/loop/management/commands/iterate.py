"""Run iterations of the loop: synthesize → filter → SFT → GRPO → evaluate → new checkpoint.

    manage.py iterate --count 20 --profile cpu        # evaluated on BFCL mini (mini-v1)
    manage.py iterate --eval-subset "" --eval-limit 3  # a seeded sample of the whole of BFCL V3
    manage.py iterate --iterations 3     # three in a row, each on the previous one's model
    manage.py iterate --queue            # hand it to the Celery workers (as the UI does)

Run here, the stages execute in this process one after the other (synthesis batches all
conversations together), and nothing goes to the Celery workers. Each iteration's Tool
Agent is the previous one's output checkpoint, and its seed the previous seed plus one.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inftool_web.loop.iteration_config import (
    DEFAULT_SUBSET,
    MODES,
    PROFILES,
    SUBSETS,
    ConfigError,
    IterationConfig,
    config_from_options,
    parse_train_set,
)
from inftool_web.loop.iterations import Run, iteration_create, iteration_start
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import checkpoint_register_base
from training.bfcl_compare import table as comparison_table


class Command(BaseCommand):
    help = "Run one synthesize → train → evaluate iteration and print its summary."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=20)
        parser.add_argument("--profile", choices=PROFILES, default="cpu")
        parser.add_argument("--eval-subset", choices=["", *SUBSETS], default=DEFAULT_SUBSET,
                            help="committed BFCL subset to evaluate (BFCL mini); empty = the whole of BFCL V3")
        parser.add_argument("--eval-limit", type=int, default=None,
                            help="BFCL items per category (the subset's first ones, or a seeded sample)")
        parser.add_argument("--eval-categories", nargs="+", default=None)
        parser.add_argument("--modes", nargs="+", choices=MODES, default=None)
        parser.add_argument("--max-turns", type=int, default=None)
        parser.add_argument("--verifiers", type=int, default=None, help="Verifiers voting on each trajectory")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--iterations", type=int, default=1,
                            help="Run this many iterations in a row, each with the previous one's model as Tool Agent")
        parser.add_argument("--train-set", action="append", default=[], metavar="STAGE.KEY=VALUE",
                            help="Override a trainer setting of the profile, e.g. sft.max_steps=40 or "
                                 "sft.lora_r=16 (JSON values; repeatable)")
        parser.add_argument("--queue", action="store_true", help="Queue on the workers and return")

    def handle(self, *args, count, profile, eval_limit, eval_categories, modes, max_turns, seed, queue,
               verifiers=None, iterations=1, eval_subset=DEFAULT_SUBSET, train_set=(), **options):
        checkpoint_register_base()
        try:
            training = parse_train_set(train_set)
        except ValueError as exc:
            raise CommandError(f"--train-set {exc}") from None
        config = config_from_options(count=count, profile=profile, eval_limit=eval_limit, seed=seed,
                                     eval_subset=eval_subset, training=training or None,
                                     eval_categories=eval_categories, modes=modes, max_turns=max_turns,
                                     verifiers=verifiers, iterations=iterations)
        try:
            it = iteration_create(config=config, name="iterate", queue=queue)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        agent = it.input_checkpoint.name if it.input_checkpoint else "none"
        self.stdout.write(f"iteration {it.number}: tool agent = {agent}")
        if queue:
            self.stdout.write("queued; follow it on the dashboard or at /api/iterations/")
            return
        # Every stage runs here, one after the other, and hands over to the next here: nothing
        # of this iteration goes to the Celery workers.
        self.stdout.write("synthesizing, then training and evaluating, in this process")
        iteration_start(iteration_id=it.pk, run=Run.HERE)
        chain = list(Iteration.objects.filter(number__gte=it.number, name="iterate").order_by("number")[:iterations])
        for done in chain:
            self._report(done)
        last = chain[-1]
        if last.status != Iteration.Status.SUCCEEDED or len(chain) < iterations:
            raise CommandError(f"iteration {last.number} {last.status}: {last.error or last.stage_detail}")

    def _report(self, it) -> None:
        cfg = IterationConfig.from_dict(it.config)
        self.stdout.write(f"\niteration {it.number}: {it.status} {it.error}")
        for run in it.training_runs.order_by("stage"):
            loss = run.metrics.get("train_loss")
            self.stdout.write(f"  {run.stage}: {run.status} rows={run.num_samples} loss={loss} {run.error}")
        if it.comparison:
            self.stdout.write(f"\nBFCL {cfg.eval_subset or 'V3'}: {it.comparison['before_checkpoint']} → "
                              f"{it.comparison['after_checkpoint']}, paired over the same items")
            self.stdout.write(comparison_table(it.comparison))
