"""The iteration state machine: the one owner of an iteration's stages.

    queued ──> synthesizing ──> training ──> evaluating ──> succeeded
                    │  └──────────────── (profile "none") ──> succeeded
    any active state ──> failed | cancelled

Only this module changes an iteration's status, detail, progress and timing, sends its
events (after commit) and takes its advisory locks (``locks.py``).  Every stage can run
here, in this process (``Run.HERE``: the ``iterate`` and ``synthesize`` commands), or on
the Celery workers (``Run.QUEUE``: the UI, the API, ``--queue``); both go through the
same functions, and a stage hands over to the next the same way it was run.

Celery tasks (``tasks.py``) only call these functions.  ``synth`` runs trajectories and
this module reports each result back to the iteration (:func:`trajectory_finished`).
Every hand-over locks the iteration row and checks its status, so a re-delivered task
never runs a stage twice and a cancelled iteration stops where it is.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from inftool_web.celery_app import app as celery_app
from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_on_commit
from inftool_web.synth.models import TERMINAL, Trajectory
from inftool_web.synth.services import (
    SynthesisStopped,
    TrajectoryPlan,
    trajectories_plan,
    trajectories_synthesize,
    trajectory_mark_failed,
)
from synthesis.llm.registry import clear_backend_cache

from . import stages
from .backends import backends_for_iteration
from .datacard import data_card_after_synthesis
from .iteration_config import MAX_SEED, IterationConfig
from .locks import iteration_stage_lock, trajectory_locks
from .models import Iteration, ModelCheckpoint

log = logging.getLogger(__name__)

Status = Iteration.Status


class Run(enum.Enum):
    """Where a stage runs: in this process, or queued on the Celery workers."""

    HERE = "here"
    QUEUE = "queue"


class IllegalTransition(RuntimeError):
    """A status change the state machine does not allow (a bug, not bad input)."""


class DeadlinePassed(RuntimeError):
    """A stage ran past its deadline (Celery's threads and solo pools do not enforce one)."""


# The allowed moves; an active iteration may always fail or be cancelled.
TRANSITIONS: dict[str, set[str]] = {
    Status.QUEUED: {Status.SYNTHESIZING},
    Status.SYNTHESIZING: {Status.SYNTHESIZING, Status.TRAINING, Status.SUCCEEDED},
    Status.TRAINING: {Status.EVALUATING},
    Status.EVALUATING: {Status.SUCCEEDED},
}
FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

# A training or evaluation progress update is stored at most this often (seconds).
PROGRESS_EVERY = 2.0

# The Celery tasks (``tasks.py``) that run each stage on the workers, queued by name so that
# this module never imports them (they import it).
TASK_PLAN = "inftool_web.loop.tasks.run_iteration"
TASK_TRAJECTORY = "inftool_web.loop.tasks.synthesize_trajectory"  # one; still served for queued messages
TASK_TRAJECTORIES = "inftool_web.loop.tasks.synthesize_trajectories"  # a chunk, batched together
TASK_TRAIN = "inftool_web.loop.tasks.train_iteration"
TASK_EVALUATE = "inftool_web.loop.tasks.evaluate_iteration"


def enqueue(task_name: str, *args: Any) -> None:
    """Queue a stage's task now (the caller defers it to after commit)."""
    celery_app.send_task(task_name, args=args)


# ----------------------------------------------------------------------------- writes


def _broadcast(iteration_id: int, event: dict[str, Any]) -> None:
    event = {"kind": "iteration", "id": iteration_id, **event}
    send_on_commit(iteration_group(iteration_id), event)
    send_on_commit(DASHBOARD_GROUP, event)


def _transition(it: Iteration, to: str, detail: str = "", error: str = "") -> None:
    """Move a row locked by the caller to ``to``; stores timing and sends the event after
    commit.  Raises :class:`IllegalTransition` for a move the machine does not allow."""
    allowed = TRANSITIONS.get(it.status, set())
    if it.status in Iteration.ACTIVE:
        allowed = allowed | {Status.FAILED, Status.CANCELLED}
    if to not in allowed:
        raise IllegalTransition(f"iteration {it.pk}: {it.status} -> {to}")
    it.status = to
    it.stage_detail = detail[:500]
    fields = ["status", "stage_detail"]
    if error:
        it.error = error[:8000]
        fields.append("error")
    if to == Status.SYNTHESIZING and it.started_at is None:
        it.started_at = timezone.now()
        fields.append("started_at")
    if to in FINAL:
        it.finished_at = timezone.now()
        fields.append("finished_at")
    it.save(update_fields=fields)
    _broadcast(it.pk, {"status": to, "detail": it.stage_detail})


def _locked(iteration_id: int) -> Iteration:
    return Iteration.objects.select_for_update().get(pk=iteration_id)


def _status(iteration_id: int) -> str | None:
    return Iteration.objects.filter(pk=iteration_id).values_list("status", flat=True).first()


def iteration_fail(*, iteration_id: int, error: str) -> None:
    """Record why an active iteration stopped (a finished one is left as it is)."""
    with transaction.atomic():
        it = _locked(iteration_id)
        if it.is_active:
            _transition(it, Status.FAILED, "failed", error=error or "failed")


def iteration_cancel(*, iteration: Iteration) -> Iteration:
    """Cancel an active iteration; its running stages see it and stop at their next step."""
    with transaction.atomic():
        it = _locked(iteration.pk)
        if it.is_active:
            _transition(it, Status.CANCELLED, "cancelled")
    return it


def iteration_record_progress(*, iteration_id: int, progress: Mapping[str, Any],
                              replace: bool = True) -> None:
    """Store the iteration's progress and broadcast it (``replace=False`` merges)."""
    with transaction.atomic():
        if replace:
            stored = dict(progress)
        else:
            current = Iteration.objects.filter(pk=iteration_id).values_list("progress", flat=True).first() or {}
            stored = {**current, **progress}
        Iteration.objects.filter(pk=iteration_id).update(progress=stored)
        _broadcast(iteration_id, {"progress": stored})


def iteration_record_detail(*, iteration_id: int, detail: str) -> None:
    Iteration.objects.filter(pk=iteration_id).update(stage_detail=detail[:500])
    _broadcast(iteration_id, {"detail": detail[:500]})


def _stage_reporter(iteration_id: int, *, stage_name: str, deadline_s: float) -> Callable[..., None]:
    """The ``report`` callback a stage (``stages.py``) tells its news through; progress
    events are stored at most every PROGRESS_EVERY seconds, the last one always.  News
    after ``deadline_s`` raises :class:`DeadlinePassed`, which fails the stage."""
    last = [0.0]
    deadline = time.monotonic() + deadline_s

    def report(*, detail: str | None = None, progress: Mapping[str, Any] | None = None,
               stage: str = "", progress_extra: Mapping[str, Any] | None = None) -> None:
        if time.monotonic() > deadline:
            raise DeadlinePassed(f"the {stage_name} stage passed its deadline of {deadline_s:g} s "
                                 "(INFTOOL_STAGE_DEADLINE_SECONDS)")
        if detail is not None:
            iteration_record_detail(iteration_id=iteration_id, detail=detail)
        if progress_extra:
            iteration_record_progress(iteration_id=iteration_id, progress=progress_extra, replace=False)
        if progress is not None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_EVERY and progress.get("event") not in ("end", "done"):
                return
            last[0] = now
            values = {k: v for k, v in progress.items() if isinstance(v, (int, float, str))}
            iteration_record_progress(iteration_id=iteration_id, progress={"stage": stage, **values})

    return report


def _then(run: Run, task_name: str, stage: Callable[..., Any], iteration_id: int) -> Callable[[], None]:
    """What runs the next stage once this transaction commits: the task, queued on the
    workers, or the stage itself, here, after the commit."""
    if run is Run.QUEUE:
        return lambda: enqueue(task_name, iteration_id)
    return lambda: stage(iteration_id=iteration_id, run=Run.HERE)


# ----------------------------------------------------------------------------- create, start


def _next_iteration_number() -> int:
    return (Iteration.objects.aggregate(m=Max("number"))["m"] or 0) + 1


def iteration_create(*, config: dict, created_by=None, name: str = "", queue: bool = False,
                     input_checkpoint: ModelCheckpoint | None = None) -> Iteration:
    """Validate ``config`` (raises ``ConfigError``) and store a new iteration, queued if
    asked.  Its Tool Agent is ``input_checkpoint``, else the latest succeeded iteration's
    output, else the newest checkpoint."""
    cfg = IterationConfig.from_dict(config)
    for _ in range(5):  # two launches at once may race for the same number
        try:
            with transaction.atomic():
                base = ModelCheckpoint.objects.order_by("-created_at").filter(kind__in=["base", "sft", "grpo"]).first()
                latest_output = (
                    Iteration.objects.filter(status="succeeded", output_checkpoint__isnull=False)
                    .order_by("-number").values_list("output_checkpoint", flat=True).first()
                )
                iteration = Iteration.objects.create(
                    number=_next_iteration_number(),
                    name=name[:200],
                    config=cfg.to_dict(),
                    created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
                    input_checkpoint_id=(input_checkpoint.pk if input_checkpoint else None)
                    or latest_output or (base.pk if base else None),
                )
                if queue:
                    iteration_start(iteration_id=iteration.pk, run=Run.QUEUE)
                _broadcast(iteration.pk, {"status": iteration.status})
                return iteration
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate an iteration number")


def _run_next(it: Iteration, run: Run) -> Callable[[], None] | None:
    """When ``it`` (locked, just succeeded) has iterations left in its chain, create the
    next one, its Tool Agent this one's output, and say how to start it after commit."""
    cfg = IterationConfig.from_dict(it.config)
    if cfg.iterations <= 1:
        return None
    config = cfg.to_dict() | {"iterations": cfg.iterations - 1, "seed": (cfg.seed + 1) % (MAX_SEED + 1)}
    nxt = iteration_create(config=config, created_by=it.created_by, name=it.name,
                           input_checkpoint=it.output_checkpoint or it.input_checkpoint)
    log.info("iteration %s hands over to iteration %s (%s left)", it.number, nxt.number, cfg.iterations - 1)
    if run is Run.QUEUE:
        transaction.on_commit(_then(Run.QUEUE, TASK_PLAN, iteration_synthesize, nxt.pk))
        return None
    return lambda: iteration_start(iteration_id=nxt.pk, run=Run.HERE)



def iteration_start(*, iteration_id: int, run: Run) -> None:
    """Start a queued iteration: queue its first stage after commit, or run every stage
    here, one after the other."""
    if run is Run.QUEUE:
        transaction.on_commit(_then(Run.QUEUE, TASK_PLAN, iteration_synthesize, iteration_id))
    else:
        iteration_synthesize(iteration_id=iteration_id, run=Run.HERE)


# ----------------------------------------------------------------------------- synthesis


def iteration_plan(*, iteration_id: int) -> list[int]:
    """Mark the iteration synthesizing, plan its trajectories (idempotent) and return the
    ids of those not finished yet.  When there is nothing to plan from, the iteration fails
    and the ValueError saying why is raised."""
    with transaction.atomic():
        it = _locked(iteration_id)
        if it.status not in (Status.QUEUED, Status.SYNTHESIZING):
            return []
        _transition(it, Status.SYNTHESIZING, "planning trajectories")
    cfg = IterationConfig.from_dict(it.config)
    try:
        trajectories_plan(iteration_id=iteration_id, plan=TrajectoryPlan(
            mode_counts=cfg.mode_counts(), seed=cfg.seed, domains=list(cfg.domains),
            min_usability=cfg.min_usability))
    except ValueError as exc:
        iteration_fail(iteration_id=iteration_id, error=str(exc))
        raise
    pending = list(
        Trajectory.objects.filter(iteration_id=iteration_id).exclude(status__in=TERMINAL)
        .order_by("seq").values_list("pk", flat=True)
    )
    with transaction.atomic():
        it = _locked(iteration_id)
        if it.status == Status.SYNTHESIZING:
            _transition(it, Status.SYNTHESIZING, f"synthesizing {len(pending)} trajectories")
    return pending


def trajectories_enqueue(trajectory_ids: list[int]) -> int:
    """Queue trajectories in chunks of ``INFTOOL_SYNTH_CHUNK``, one task a chunk (its worker
    decodes them together). Returns how many tasks were sent."""
    size = max(1, settings.INFTOOL_SYNTH_CHUNK)
    chunks = [trajectory_ids[i:i + size] for i in range(0, len(trajectory_ids), size)]
    for chunk in chunks:
        enqueue(TASK_TRAJECTORIES, chunk)
    return len(chunks)


def iteration_synthesize(*, iteration_id: int, run: Run) -> int:
    """The synthesis stage: plan, then run every unfinished trajectory here or queue them in
    chunks of ``INFTOOL_SYNTH_CHUNK`` (one task each, batched on its worker).  Returns how many
    were run or queued."""
    try:
        pending = iteration_plan(iteration_id=iteration_id)
    except ValueError:
        return 0  # the iteration failed, saying why
    if _status(iteration_id) != Status.SYNTHESIZING:
        return 0
    if run is Run.QUEUE:
        with transaction.atomic():
            transaction.on_commit(lambda: trajectories_enqueue(pending))
        if not pending:
            synthesis_finished(iteration_id=iteration_id, run=run)
        return len(pending)
    trajectories_run(trajectory_ids=pending)
    synthesis_finished(iteration_id=iteration_id, run=run)
    return len(pending)


def trajectories_run(*, trajectory_ids: list[int], backends: Mapping[str, Any] | None = None,
                     deadline_s: float | None = None) -> dict[str, int]:
    """Run (or resume) these trajectories in this process, each iteration's together so the
    model batches them; trajectories another worker holds are skipped.  Stops quietly when
    the iteration is cancelled.  A run still going after ``deadline_s`` seconds stops, and
    its unfinished trajectories fail saying so; a trajectory whose earlier runs were cut
    short INFTOOL_MAX_DELIVERIES times fails as a poison task.  Returns counts by final
    status."""
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    rows = list(
        Trajectory.objects.select_related("iteration", "iteration__input_checkpoint", "persona")
        .filter(pk__in=trajectory_ids).exclude(status__in=TERMINAL).order_by("seq")
    )
    by_iteration: dict[int, list[Trajectory]] = {}
    for t in rows:
        by_iteration.setdefault(t.iteration_id, []).append(t)
    counts: dict[str, int] = {}
    with trajectory_locks([t.pk for t in rows]) as held:
        for iteration_id, group in by_iteration.items():
            group = [t for t in group if t.pk in held]
            iteration = group[0].iteration if group else None
            if iteration is None or iteration.status == Status.CANCELLED:
                continue
            group = _trajectory_runs_begin(group)
            if not group:
                continue
            cfg = IterationConfig.from_dict(iteration.config)

            def should_stop(pk=iteration_id) -> bool:
                return _status(pk) == Status.CANCELLED or (deadline is not None and time.monotonic() > deadline)

            try:
                done = trajectories_synthesize(
                    trajectories=group, backends=backends or backends_for_iteration(iteration),
                    config=cfg.roleplay_config(), should_stop=should_stop,
                )
            except SynthesisStopped:
                if deadline is not None and time.monotonic() > deadline:
                    for t in group:
                        trajectory_mark_failed(trajectory_id=t.pk, error=(
                            f"passed its deadline of {deadline_s:g} s (INFTOOL_TRAJECTORY_DEADLINE_SECONDS); "
                            "the steps stored so far are kept"))
                continue
            finally:
                Trajectory.objects.filter(pk__in=[t.pk for t in group]).update(open_runs=0)
            for status, n in done.items():
                counts[status] = counts.get(status, 0) + n
    return counts


def trajectory_finished(*, trajectory_id: int, run: Run = Run.QUEUE) -> bool:
    """A trajectory's run ended (however): publish progress, and hand the iteration over
    once its last trajectory has finished.  The one way ``synth``'s results come back."""
    iteration_id = Trajectory.objects.filter(pk=trajectory_id).values_list("iteration_id", flat=True).first()
    if iteration_id is None:
        return False
    return synthesis_finished(iteration_id=iteration_id, run=run)


def trajectories_finished(*, trajectory_ids: list[int], run: Run = Run.QUEUE) -> dict[str, int]:
    """A chunk's run ended: :func:`trajectory_finished` once per iteration it touched.
    Returns the chunk's trajectories counted by status."""
    rows = list(Trajectory.objects.filter(pk__in=trajectory_ids).values_list("iteration_id", "status"))
    for iteration_id in dict.fromkeys(i for i, _ in rows):
        synthesis_finished(iteration_id=iteration_id, run=run)
    counts: dict[str, int] = {}
    for _, status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def synthesis_progress(iteration_id: int) -> dict[str, Any]:
    rows = Trajectory.objects.filter(iteration_id=iteration_id).values("status").annotate(n=Count("id"))
    counts = {r["status"]: r["n"] for r in rows}
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in TERMINAL)
    return {"stage": "synthesis", "trajectories": total, "finished": finished, "done": finished, "total": total,
            **{f"status_{k}": v for k, v in counts.items()}}


def synthesis_finished(*, iteration_id: int, run: Run) -> bool:
    """Publish synthesis progress; when every trajectory has finished, hand over to
    training (or finish, with profile "none") once.  True when it handed over."""
    progress = synthesis_progress(iteration_id)
    iteration_record_progress(iteration_id=iteration_id, progress=progress)
    if progress["finished"] < progress["total"]:
        return False
    then: Callable[[], None] | None = None  # what runs here, after commit
    with transaction.atomic():
        it = _locked(iteration_id)
        if it.status != Status.SYNTHESIZING:
            return False
        transaction.on_commit(lambda: data_card_after_synthesis(iteration_id=iteration_id), robust=True)
        if IterationConfig.from_dict(it.config).profile == "none":
            it.output_checkpoint = it.input_checkpoint
            it.save(update_fields=["output_checkpoint"])
            _transition(it, Status.SUCCEEDED, "synthesis finished (no training)")
            then = _run_next(it, run)
        else:
            _transition(it, Status.TRAINING, "queued for training" if run is Run.QUEUE else "training")
            next_stage = _then(run, TASK_TRAIN, iteration_train, iteration_id)
            if run is Run.QUEUE:
                transaction.on_commit(next_stage)
            else:
                then = next_stage
    if then is not None:
        then()
    return True


# ----------------------------------------------------------------------------- poison runs


def _poison_reason(what: str, runs: int) -> str:
    return (f"{what} was cut short {runs} times (its worker died each time: out of memory, or a crash) "
            f"and is not tried again (INFTOOL_MAX_DELIVERIES={settings.INFTOOL_MAX_DELIVERIES})")


def _trajectory_runs_begin(group: list[Trajectory]) -> list[Trajectory]:
    """Count a start of each trajectory's run (the caller holds their locks); those whose
    earlier runs were all cut short are failed with the reason and left out."""
    poisoned = [t for t in group if t.open_runs >= settings.INFTOOL_MAX_DELIVERIES]
    for t in poisoned:
        log.error("trajectory %s: poison task, %s open runs", t.pk, t.open_runs)
        trajectory_mark_failed(trajectory_id=t.pk, error=_poison_reason("its run", t.open_runs))
    keep = [t for t in group if t not in poisoned]
    Trajectory.objects.filter(pk__in=[t.pk for t in keep]).update(open_runs=F("open_runs") + 1)
    return keep


def _stage_runs_begin(iteration_id: int, stage: str) -> bool:
    """Count a start of a stage (the caller holds the stage lock); False, with the
    iteration failed, when its earlier runs were all cut short."""
    with transaction.atomic():
        it = _locked(iteration_id)
        if it.stage_open_runs >= settings.INFTOOL_MAX_DELIVERIES:
            if it.is_active:
                _transition(it, Status.FAILED, "failed", error=_poison_reason(f"the {stage} stage", it.stage_open_runs))
            return False
        Iteration.objects.filter(pk=iteration_id).update(stage_open_runs=F("stage_open_runs") + 1)
    return True


def _stage_runs_end(iteration_id: int) -> None:
    Iteration.objects.filter(pk=iteration_id).update(stage_open_runs=0)


# ----------------------------------------------------------------------------- training


def training_dir(it: Iteration):
    """Where an iteration's checkpoints go: under the database's name as well as the
    iteration's number, so that two databases sharing one var/ (the test suite's, a
    bench's and the operator's) never write over each other's iteration-1."""
    return settings.INFTOOL_VAR_DIR / "training" / connection.settings_dict["NAME"] / f"iteration-{it.number}"


def iteration_train(*, iteration_id: int, run: Run = Run.QUEUE) -> None:
    """SFT, then GRPO; then evaluation, handed over the way this stage was run."""
    with iteration_stage_lock(iteration_id) as mine:
        if not mine:
            return
        it = Iteration.objects.select_related("input_checkpoint").get(pk=iteration_id)
        if it.status != Status.TRAINING or not _stage_runs_begin(iteration_id, "training"):
            return
        if run is Run.HERE:
            # Synthesis ran in this process and its models stay cached (the embedded model,
            # its prefix store): free them before training loads another copy. Run in one
            # process, bench_loop's 128-trajectory iteration reached 18.5 GB in SFT and was
            # killed for memory; SFT alone takes 6.7 GB. A model loads again in under a second.
            clear_backend_cache()
        try:
            trained = stages.train(
                iteration=it, out_root=training_dir(it),
                report=_stage_reporter(iteration_id, stage_name="training",
                                       deadline_s=settings.INFTOOL_STAGE_DEADLINE_SECONDS),
                still_running=lambda: _status(iteration_id) == Status.TRAINING,
            )
        except Exception as exc:  # noqa: BLE001 - the iteration records why it stopped
            log.exception("training iteration %s failed", iteration_id)
            iteration_fail(iteration_id=iteration_id, error=f"training failed: {type(exc).__name__}: {exc}")
            return
        finally:
            _stage_runs_end(iteration_id)
        with transaction.atomic():
            it = _locked(iteration_id)
            if it.status != Status.TRAINING:
                return
            it.output_checkpoint = trained or it.input_checkpoint
            it.save(update_fields=["output_checkpoint"])
            _transition(it, Status.EVALUATING,
                        "queued for BFCL evaluation" if run is Run.QUEUE else "BFCL evaluation")
            next_stage = _then(run, TASK_EVALUATE, iteration_evaluate, iteration_id)
            if run is Run.QUEUE:
                transaction.on_commit(next_stage)
    if run is Run.HERE:
        next_stage()


# ----------------------------------------------------------------------------- evaluation


def iteration_evaluate(*, iteration_id: int, run: Run = Run.QUEUE) -> None:
    """BFCL V3 on the input (if not yet measured on the same subset) and output checkpoints;
    the output then becomes the Tool Agent of the next iteration."""
    with iteration_stage_lock(iteration_id) as mine:
        if not mine:
            return
        it = Iteration.objects.select_related("input_checkpoint", "output_checkpoint").get(pk=iteration_id)
        if it.status != Status.EVALUATING or not _stage_runs_begin(iteration_id, "evaluation"):
            return
        try:
            stages.evaluate(iteration=it, report=_stage_reporter(
                iteration_id, stage_name="evaluation", deadline_s=settings.INFTOOL_STAGE_DEADLINE_SECONDS))
        except Exception as exc:  # noqa: BLE001
            log.exception("evaluating iteration %s failed", iteration_id)
            iteration_fail(iteration_id=iteration_id, error=f"evaluation failed: {type(exc).__name__}: {exc}")
            return
        finally:
            _stage_runs_end(iteration_id)
        next_iteration = None
        with transaction.atomic():
            it = _locked(iteration_id)
            if it.status == Status.EVALUATING:
                _transition(it, Status.SUCCEEDED, "done")
                next_iteration = _run_next(it, run)
    if next_iteration is not None:
        next_iteration()


__all__ = [
    "IllegalTransition", "Run", "iteration_cancel", "iteration_evaluate", "iteration_fail", "iteration_plan",
    "iteration_record_progress", "iteration_start", "iteration_synthesize", "iteration_train",
    "synthesis_finished", "trajectories_run", "trajectory_finished", "trajectory_mark_failed",
]
