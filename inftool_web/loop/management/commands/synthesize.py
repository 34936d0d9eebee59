"""Synthesize trajectories and print a summary by mode.

    manage.py synthesize --count 20
    manage.py synthesize --count 50 --modes single parallel multi_turn
    manage.py synthesize --iteration 3            # finish (or resume) iteration 3's synthesis
    manage.py synthesize --count 200 --celery     # queue on the role-play workers and watch

By default the conversations run in this process, all advancing together so that the
model gets full batches; ``--celery`` hands them to the workers instead.
"""

from __future__ import annotations

import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count, Q

from inftool_web.core.progress import Progress
from inftool_web.loop.datacard import data_card_get
from inftool_web.loop.iteration_config import (
    MODES,
    ConfigError,
    IterationConfig,
    config_from_options,
)
from inftool_web.loop.iterations import (
    Run,
    iteration_create,
    iteration_plan,
    synthesis_finished,
    trajectories_enqueue,
    trajectories_run,
)
from inftool_web.loop.models import Iteration
from inftool_web.synth.models import TERMINAL, Trajectory
from inftool_web.synth.selectors import iteration_accepted_below_usability, iteration_value_checks


class Command(BaseCommand):
    help = "Synthesize tool-use trajectories (all modes by default) and print a summary."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=10)
        parser.add_argument("--modes", nargs="+", choices=MODES, default=None)
        parser.add_argument("--iteration", type=int, default=None, help="Continue this iteration (its number)")
        parser.add_argument("--max-turns", type=int, default=None)
        parser.add_argument("--verifiers", type=int, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--domains", nargs="+", default=None)
        parser.add_argument("--celery", action="store_true", help="Queue on the workers instead of running here")
        parser.add_argument("--min-usability", type=float, default=None,
                            help="Draw tasks only from tools scoring at least this (0-1; default 0.6, see curate_tools)")

    def handle(self, *args, count, modes, iteration, max_turns, verifiers, seed, domains, celery, min_usability,
               **options):
        if iteration is not None:
            it = Iteration.objects.filter(number=iteration).first()
            if it is None:
                raise CommandError(f"no iteration number {iteration}")
        else:
            config = config_from_options(count=count, profile="none", seed=seed, modes=modes, max_turns=max_turns,
                                         verifiers=verifiers, domains=domains, min_usability=min_usability)
            try:
                it = iteration_create(config=config, name="synthesize")
            except ConfigError as exc:
                raise CommandError(str(exc)) from None
        try:
            todo = iteration_plan(iteration_id=it.pk)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"iteration {it.number}: {len(todo)} trajectories to synthesize")
        if celery:
            trajectories_enqueue(todo)
            self._watch(it, done=None)
        else:
            error: list[BaseException] = []
            done = threading.Event()

            def work():
                try:
                    trajectories_run(trajectory_ids=todo)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    error.append(exc)
                finally:
                    connection.close()  # this thread's own connection
                    done.set()

            threading.Thread(target=work, daemon=True).start()
            self._watch(it, done=done)
            if error:
                raise CommandError(f"synthesis stopped: {error[0]} (stored steps are kept; re-run with --iteration {it.number} to resume)")
        synthesis_finished(iteration_id=it.pk, run=Run.QUEUE if celery else Run.HERE)
        self._summary(it)

    def _watch(self, it: Iteration, done: threading.Event | None, *, poll_s: float = 1.0) -> None:
        """Follow the iteration's finished trajectories: a bar on a terminal, a plain line
        every tenth or 30 s elsewhere (a log file would get a bar redraw every second)."""
        total = it.trajectories.count()
        progress = Progress(total, desc="trajectories", unit="traj", stream=self.stderr._out)
        while True:
            ended = done is not None and done.is_set()  # read before counting: the count is final
            finished = it.trajectories.filter(status__in=TERMINAL).count()
            progress.update_to(finished)
            if finished >= total or ended:
                break
            time.sleep(poll_s)
        progress.close()

    def _summary(self, it: Iteration) -> None:
        rows = list(
            Trajectory.objects.filter(iteration=it).values("mode").annotate(
                produced=Count("id", filter=Q(status__in=["done", "rejected"])),
                repaired=Count("id", filter=Q(repaired=True)),
                rejected=Count("id", filter=Q(verdict="rejected")),
                accepted=Count("id", filter=Q(verdict="accepted")),
                failed=Count("id", filter=Q(status="failed")),
                easy=Count("id", filter=Q(difficulty="easy")),
                hard=Count("id", filter=Q(difficulty="hard")),
            ).order_by("mode")
        )
        cols = ["produced", "repaired", "rejected", "accepted", "failed", "easy", "hard"]
        header = f"{'mode':<12}" + "".join(f"{c:>10}" for c in cols) + f"{'accepted%':>11}"
        self.stdout.write("\n" + header + "\n" + "-" * len(header))
        totals = dict.fromkeys(cols, 0)

        def share(r) -> str:
            n = r["produced"] + r["failed"]
            return f"{100 * r['accepted'] / n:>10.0f}%" if n else f"{'-':>11}"

        for r in rows:
            self.stdout.write(f"{r['mode']:<12}" + "".join(f"{r[c]:>10}" for c in cols) + share(r))
            for c in cols:
                totals[c] += r[c]
        self.stdout.write("-" * len(header) + "\n" + f"{'total':<12}" + "".join(f"{totals[c]:>10}" for c in cols)
                          + share(totals))
        checks = iteration_value_checks(iteration_id=it.pk)
        pct = f" ({100 * checks.share:.1f}%)" if checks.share is not None else ""
        self.stdout.write(
            f"argument values in accepted trajectories valid against their schemas (type, enum, bounds, "
            f"pattern, format): {checks.passed} of {checks.total}{pct}"
        )
        for failure in checks.failures[:5]:
            self.stdout.write(f"  invalid: {failure}")
        threshold = IterationConfig.from_dict(it.config).min_usability
        below = iteration_accepted_below_usability(iteration_id=it.pk, threshold=threshold)
        self.stdout.write(f"accepted trajectories offering a tool below the usability threshold {threshold:g}: {below}")
        self._card(it)

    def _card(self, it: Iteration) -> None:
        """The data card's figures on where texts came from and how diverse requests are."""
        it.refresh_from_db()
        card = data_card_get(iteration=it) if it.data_card else None
        if not card or "texts" not in card:
            self.stdout.write(f"data card: not built ({(card or {}).get('error', 'no card')}); "
                              f"manage.py data_card --iteration {it.number}")
            return
        self.stdout.write(f"\ndata card (manage.py data_card --iteration {it.number} prints all of it):")
        self.stdout.write("  texts of kept trajectories written by the model (the rest built by a fallback; votes: abstained):")
        for kind, t in (card["texts"].get("kept") or {}).items():
            if t["total"]:
                self.stdout.write(f"    {kind:<20} {t['model']:>4} of {t['total']:<4} {dict(t['sources'])}")
        d = card.get("diversity") or {}
        near = d.get("near_duplicates") or {}
        near_text = (f"{100 * near['share']:.0f}% near-duplicates (MiniLM cosine >= {near.get('threshold')})"
                     if near.get("status") == "run" and near.get("share") is not None else f"near-duplicates {near.get('status')}")
        self.stdout.write(f"  requests of kept trajectories: {d.get('requests')}, distinct-2 {d.get('distinct_2')}, "
                          f"{d.get('exact_duplicates')} exact duplicates, {near_text}")
        c = card.get("contamination") or {}
        self.stdout.write(f"  contamination check against BFCL V3: {c.get('status')}"
                          + (f", {c.get('flagged')} flagged" if c.get("status") == "run" else ""))
