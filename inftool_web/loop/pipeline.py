"""The stages of an iteration, each a Celery task that hands over to the next:

    run_iteration (default queue)      plan trajectories, queue one task per trajectory
    synthesize_trajectory (roleplay)   ... the last one to finish moves the iteration on
    train_iteration (gpu)              SFT on accepted trajectories, GRPO on hard ones
    evaluate_iteration (gpu)           BFCL V3 before/after, register the new checkpoint

Every hand-over locks the iteration row and checks its status, so a re-delivered task
never runs a stage twice and a cancelled iteration stops where it is.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_on_commit

from .models import Iteration

log = logging.getLogger(__name__)


def _set_status(it: Iteration, status: str, detail: str = "", error: str = "") -> None:
    it.status = status
    it.stage_detail = detail[:500]
    if error:
        it.error = error[:8000]
    fields = ["status", "stage_detail", "error"]
    if status in ("succeeded", "failed", "cancelled"):
        it.finished_at = timezone.now()
        fields.append("finished_at")
    it.save(update_fields=fields)
    event = {"kind": "iteration", "id": it.pk, "status": status, "detail": it.stage_detail}
    send_on_commit(iteration_group(it.pk), event)
    send_on_commit(DASHBOARD_GROUP, event)


def iteration_fail(*, iteration_id: int, error: str) -> None:
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.is_active:
            _set_status(it, Iteration.Status.FAILED, "failed", error=error or "failed")


def iteration_run(*, iteration_id: int) -> int:
    """Start (or restart after a lost worker) the synthesis stage; returns tasks queued."""
    from inftool_web.synth.models import Trajectory
    from inftool_web.synth.services import TERMINAL, iteration_plan_trajectories
    from inftool_web.synth.tasks import synthesize_trajectory

    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.status not in (Iteration.Status.QUEUED, Iteration.Status.SYNTHESIZING):
            return 0
        if it.started_at is None:
            it.started_at = timezone.now()
            it.save(update_fields=["started_at"])
        _set_status(it, Iteration.Status.SYNTHESIZING, "planning trajectories")
    try:
        iteration_plan_trajectories(iteration=it)
    except ValueError as exc:
        iteration_fail(iteration_id=iteration_id, error=str(exc))
        return 0
    pending = list(
        Trajectory.objects.filter(iteration_id=iteration_id).exclude(status__in=TERMINAL)
        .order_by("seq").values_list("pk", flat=True)
    )
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        _set_status(it, Iteration.Status.SYNTHESIZING, f"synthesizing {len(pending)} trajectories")
        for pk in pending:
            transaction.on_commit(lambda pk=pk: synthesize_trajectory.delay(pk))
    if not pending:
        iteration_after_synthesis(iteration_id=iteration_id)
    return len(pending)


def iteration_after_synthesis(*, iteration_id: int) -> bool:
    """Publish progress; when every trajectory has finished, hand over to training once."""
    from inftool_web.synth.services import iteration_publish_progress, iteration_synthesis_finished

    iteration_publish_progress(iteration_id)
    if not iteration_synthesis_finished(iteration_id):
        return False
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.status != Iteration.Status.SYNTHESIZING:
            return False
        from .datacard import data_card_after_synthesis

        transaction.on_commit(lambda: data_card_after_synthesis(iteration_id=iteration_id), robust=True)
        profile = it.config.get("profile", "cpu")
        if profile == "none":
            it.output_checkpoint = it.input_checkpoint
            it.save(update_fields=["output_checkpoint"])
            _set_status(it, Iteration.Status.SUCCEEDED, "synthesis finished (no training)")
            return True
        _set_status(it, Iteration.Status.TRAINING, "queued for training")
        from .tasks import train_iteration

        transaction.on_commit(lambda: train_iteration.delay(iteration_id))
    return True


# ----------------------------------------------------------------------------- training


def _progress_recorder(iteration_id: int, stage: str):
    """A progress callback that stores and broadcasts at most one update every 2 s."""
    import time

    last = [0.0]

    def record(event: dict) -> None:
        now = time.monotonic()
        if now - last[0] < 2.0 and event.get("event") not in ("end", "done"):
            return
        last[0] = now
        progress = {"stage": stage, **{k: v for k, v in event.items() if isinstance(v, (int, float, str))}}
        with transaction.atomic():
            Iteration.objects.filter(pk=iteration_id).update(progress=progress)
            msg = {"kind": "iteration", "id": iteration_id, "progress": progress}
            send_on_commit(iteration_group(iteration_id), msg)
            send_on_commit(DASHBOARD_GROUP, msg)

    return record


def iteration_train(*, iteration_id: int) -> None:
    """SFT on every accepted trajectory, then GRPO on the hard ones; then queue evaluation."""
    from .recovery import iteration_stage_lock

    with iteration_stage_lock(iteration_id) as mine:
        if mine:
            _iteration_train(iteration_id)


def _iteration_train(iteration_id: int) -> None:
    from django.conf import settings

    from training.config import get_profile

    from .models import ModelCheckpoint
    from .selectors import training_trajectories

    it = Iteration.objects.select_related("input_checkpoint").get(pk=iteration_id)
    if it.status != Iteration.Status.TRAINING:
        return
    try:
        profile = get_profile(it.config.get("profile", "cpu"))
        trajectories = list(training_trajectories(iteration_id=iteration_id))
        excluded = _contamination(it, trajectories)
        base_path = it.input_checkpoint.path if it.input_checkpoint else ""
        out_root = settings.INFTOOL_VAR_DIR / "training" / f"iteration-{it.number}"
        current = it.input_checkpoint

        sft_ckpt = _train_stage(it, "sft", profile, trajectories, excluded, base_path, out_root)
        if sft_ckpt is not None:
            current = sft_ckpt
        it.refresh_from_db()
        if it.status != Iteration.Status.TRAINING:
            return
        grpo_ckpt = _train_stage(it, "grpo", profile, trajectories, excluded,
                                 current.path if current else base_path, out_root, base=current)
        if grpo_ckpt is not None:
            current = grpo_ckpt
    except Exception as exc:  # noqa: BLE001 - the iteration records why it stopped
        log.exception("training iteration %s failed", iteration_id)
        iteration_fail(iteration_id=iteration_id, error=f"training failed: {type(exc).__name__}: {exc}")
        return
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.status != Iteration.Status.TRAINING:
            return
        it.output_checkpoint = current if isinstance(current, ModelCheckpoint) else it.input_checkpoint
        it.save(update_fields=["output_checkpoint"])
        _set_status(it, Iteration.Status.EVALUATING, "queued for BFCL evaluation")
        from .tasks import evaluate_iteration

        transaction.on_commit(lambda: evaluate_iteration.delay(iteration_id))


def _contamination(it: Iteration, trajectories: list[dict]) -> set[str]:
    """Trajectories too close to a BFCL test item: flagged, stored, and left out of training."""
    from training.contamination import check_contamination

    flags = check_contamination(trajectories)
    progress = dict(it.progress or {})
    progress["contaminated"] = [f.to_dict() for f in flags][:200]
    Iteration.objects.filter(pk=it.pk).update(progress=progress)
    return {f.item_id for f in flags}


def _train_stage(it, stage, profile, trajectories, excluded, model_path, out_root, base=None):
    import dataclasses

    from training.dataset import DatasetConfig, build_grpo_rows, build_sft_rows

    from .models import ModelCheckpoint, TrainingRun

    run, _ = TrainingRun.objects.get_or_create(iteration=it, stage=stage, defaults={"profile": profile.name})
    if run.status == TrainingRun.Status.SUCCEEDED and run.output_checkpoint_id:
        return run.output_checkpoint  # a re-delivered task: this stage is already done
    ds_cfg = DatasetConfig(seed=int(it.config.get("seed", 0)))
    builder = build_sft_rows if stage == "sft" else build_grpo_rows
    rows, stats = builder(trajectories, ds_cfg, exclude_ids=excluded)
    stage_cfg = dataclasses.replace(getattr(profile, stage), model_name_or_path=model_path,
                                    output_dir=str(out_root / stage))
    run.config = {"dataset": dataclasses.asdict(ds_cfg), "trainer": stage_cfg.to_dict(),
                  "dataset_stats": {k: v for k, v in dataclasses.asdict(stats).items() if k != "errors"}}
    run.num_samples = len(rows)
    run.profile = profile.name
    run.input_checkpoint = base or it.input_checkpoint
    run.started_at = timezone.now()
    if not rows:
        run.status = TrainingRun.Status.SKIPPED
        run.error = f"no {stage} rows: " + ("no accepted trajectories" if stage == "sft" else "no accepted hard trajectories")
        run.finished_at = timezone.now()
        run.save()
        return None
    run.status = TrainingRun.Status.RUNNING
    run.save()
    Iteration.objects.filter(pk=it.pk).update(stage_detail=f"{stage.upper()} on {len(rows)} rows")
    if stage == "sft":
        from training.sft import run_sft as runner
    else:
        from training.grpo import run_grpo as runner
    try:
        result = runner(stage_cfg, rows, progress=_progress_recorder(it.pk, stage))
    except Exception as exc:
        run.status = TrainingRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:8000]
        run.finished_at = timezone.now()
        run.save()
        raise
    with transaction.atomic():
        ckpt, _ = ModelCheckpoint.objects.update_or_create(
            name=f"iteration-{it.number}-{stage}",
            defaults={"kind": stage, "path": result.checkpoint_dir, "base": base or it.input_checkpoint, "iteration": it},
        )
        run.output_checkpoint = ckpt
        run.metrics = result.metrics | {"warnings": result.warnings, "log_history": result.log_history[-200:]}
        run.reward_terms = result.reward_terms
        run.config = run.config | {"trainer": result.config}
        run.status = TrainingRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.save()
    return ckpt


# ----------------------------------------------------------------------------- evaluation


def evaluation_run(*, checkpoint, iteration=None, limit: int | None, seed: int = 0,
                   categories: list[str] | None = None, progress=None):
    """Evaluate a checkpoint on BFCL V3 with the official checker and store the results."""
    from synthesis.llm.registry import get_backend
    from training.bfcl import CATEGORIES, run_bfcl_eval

    from .models import CategoryResult, EvaluationRun

    ev = EvaluationRun.objects.create(
        checkpoint=checkpoint, iteration=iteration, limit=limit, seed=seed,
        categories=list(categories or CATEGORIES), status=EvaluationRun.Status.RUNNING, started_at=timezone.now(),
    )
    try:
        path = None if checkpoint.kind == "base" else checkpoint.path
        # The tool-call grammar costs more per token than it gives a model being measured:
        # BFCL scores what the model writes, so it decodes unconstrained.
        backend = get_backend("embedded", model_path=path, constrain_tool_calls=False)
        result = run_bfcl_eval(backend, categories=categories, limit=limit, seed=seed, progress=progress)
    except Exception as exc:
        ev.status = EvaluationRun.Status.FAILED
        ev.error = f"{type(exc).__name__}: {exc}"[:8000]
        ev.finished_at = timezone.now()
        ev.save()
        raise
    by_cat: dict[str, list] = {}
    for item in result.items:
        by_cat.setdefault(item.category, []).append(
            {"id": item.id, "valid": item.valid, "error_type": item.error_type,
             "model_output": item.model_output, "error": item.error if isinstance(item.error, (str, list, dict)) else str(item.error)}
        )
    with transaction.atomic():
        CategoryResult.objects.bulk_create([
            CategoryResult(evaluation=ev, category=name, correct=s.correct, total=s.total,
                           accuracy=s.accuracy, items=by_cat.get(name, []))
            for name, s in result.categories.items()
        ])
        overall = (result.overall.get("overall") or {}).get("accuracy")
        ev.overall = None if overall is None else max(0.0, min(1.0, float(overall)))
        ev.summary = {k: v for k, v in result.overall.items()} | {"settings": result.settings}
        ev.status = EvaluationRun.Status.SUCCEEDED
        ev.finished_at = timezone.now()
        ev.save()
    return ev


def iteration_evaluate(*, iteration_id: int) -> None:
    """BFCL V3 on the iteration's input (if not yet measured on the same subset) and output
    checkpoints; the output then becomes the Tool Agent of the next iteration."""
    from .recovery import iteration_stage_lock

    with iteration_stage_lock(iteration_id) as mine:
        if mine:
            _iteration_evaluate(iteration_id)


def _iteration_evaluate(iteration_id: int) -> None:
    from .models import EvaluationRun

    it = Iteration.objects.select_related("input_checkpoint", "output_checkpoint").get(pk=iteration_id)
    if it.status != Iteration.Status.EVALUATING:
        return
    limit = it.config.get("eval_limit", 5)
    seed = int(it.config.get("seed", 0))
    categories = it.config.get("eval_categories") or None
    try:
        for ckpt in dict.fromkeys(c for c in (it.input_checkpoint, it.output_checkpoint) if c is not None):
            done = EvaluationRun.objects.filter(checkpoint=ckpt, limit=limit, seed=seed, status="succeeded").exists()
            if not done:
                Iteration.objects.filter(pk=it.pk).update(stage_detail=f"BFCL V3 on {ckpt.name}")
                evaluation_run(checkpoint=ckpt, iteration=it, limit=limit, seed=seed, categories=categories,
                               progress=_progress_recorder(it.pk, f"bfcl:{ckpt.name}"))
    except Exception as exc:  # noqa: BLE001
        log.exception("evaluating iteration %s failed", iteration_id)
        iteration_fail(iteration_id=iteration_id, error=f"evaluation failed: {type(exc).__name__}: {exc}")
        return
    with transaction.atomic():
        it = Iteration.objects.select_for_update().get(pk=iteration_id)
        if it.status == Iteration.Status.EVALUATING:
            _set_status(it, Iteration.Status.SUCCEEDED, "done")
