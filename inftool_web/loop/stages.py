"""The work of the training and evaluation stages, and their own records (training runs,
evaluation runs, checkpoints).

Nothing here changes an iteration's status, progress or detail: the state machine in
``iterations.py`` calls these functions and passes a ``report`` callback through which
they tell it what they are doing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from synthesis.llm.registry import get_backend
from training.bfcl import CATEGORIES, EVAL_BATCH, run_bfcl_eval
from training.bfcl_compare import compare, outcomes
from training.bfcl_subsets import subset_ids
from training.config import get_profile
from training.contamination import check_contamination
from training.dataset import NoTrainableRows, build_grpo_rows, build_sft_rows

from .iteration_config import IterationConfig, stage_settings
from .models import CategoryResult, EvaluationRun, Iteration, ModelCheckpoint, TrainingRun
from .selectors import training_trajectories

log = logging.getLogger(__name__)

# report(detail=..., progress=...): the stage's news for the state machine to store.
Report = Callable[..., None]


def _runner(stage: str):
    if stage == "sft":
        from training.sft import (
            run_sft,  # lazy: torch, transformers and TRL load only where training runs
        )

        return run_sft
    from training.grpo import (
        run_grpo,  # lazy: torch, transformers and TRL load only where training runs
    )

    return run_grpo


def _finish_failed(run: TrainingRun | EvaluationRun, exc: BaseException) -> None:
    """Record why a training or evaluation run stopped (the stage then fails its iteration)."""
    run.status = "failed"
    run.error = f"{type(exc).__name__}: {exc}"[:8000]
    run.finished_at = timezone.now()
    run.save()


def contamination_flags(trajectories: list, report: Report) -> set[str]:
    """Trajectories too close to a BFCL test item: flagged, stored, left out of training."""
    flags = check_contamination(trajectories)
    report(progress_extra={"contaminated": [f.to_dict() for f in flags][:200]})
    return {f.item_id for f in flags}


def train(*, iteration: Iteration, out_root: Path, report: Report,
          still_running: Callable[[], bool]) -> ModelCheckpoint | None:
    """SFT on every accepted trajectory, then GRPO on the hard ones.  Returns the last
    checkpoint trained (None when neither stage had rows)."""
    cfg = IterationConfig.from_dict(iteration.config)
    profile = dataclasses.replace(get_profile(cfg.profile), sft=stage_settings(cfg.profile, "sft", cfg.training),
                                  grpo=stage_settings(cfg.profile, "grpo", cfg.training),
                                  data=stage_settings(cfg.profile, "data", cfg.training))
    trajectories = list(training_trajectories(iteration_id=iteration.pk))
    excluded = contamination_flags(trajectories, report)
    base = iteration.input_checkpoint
    current = base
    for stage in ("sft", "grpo"):
        if not still_running():
            return None
        ckpt = train_stage(
            iteration=iteration, stage=stage, profile=profile, trajectories=trajectories, excluded=excluded,
            model_path=current.path if current else "", out_root=out_root, base=current, seed=cfg.seed,
            report=report,
        )
        if ckpt is not None:
            current = ckpt
    return current if current is not base else None


def _skip(run: TrainingRun, why: str) -> None:
    run.status = TrainingRun.Status.SKIPPED
    run.error = why
    run.finished_at = timezone.now()
    run.save()


def train_stage(*, iteration: Iteration, stage: str, profile, trajectories: list, excluded: set[str],
                model_path: str, out_root: Path, base: ModelCheckpoint | None, seed: int,
                report: Report) -> ModelCheckpoint | None:
    run, _ = TrainingRun.objects.get_or_create(iteration=iteration, stage=stage, defaults={"profile": profile.name})
    if run.status == TrainingRun.Status.SUCCEEDED and run.output_checkpoint_id:
        return run.output_checkpoint  # a re-delivered task: this stage is already done
    ds_cfg = dataclasses.replace(profile.data, seed=seed)
    builder = build_sft_rows if stage == "sft" else build_grpo_rows
    rows, stats = builder(trajectories, ds_cfg, exclude_ids=excluded)
    stage_cfg = dataclasses.replace(getattr(profile, stage), model_name_or_path=model_path,
                                    output_dir=str(out_root / stage))
    run.config = {"dataset": dataclasses.asdict(ds_cfg), "trainer": stage_cfg.to_dict(),
                  "dataset_stats": {k: v for k, v in dataclasses.asdict(stats).items() if k != "errors"}}
    run.num_samples = len(rows)
    run.profile = profile.name
    run.input_checkpoint = base
    run.started_at = timezone.now()
    if not rows:
        return _skip(run, f"no {stage} rows: " + ("no accepted trajectories" if stage == "sft"
                                                   else "no accepted hard trajectories"))
    run.status = TrainingRun.Status.RUNNING
    run.save()
    report(detail=f"{stage.upper()} on {len(rows)} rows")
    try:
        result = _runner(stage)(stage_cfg, rows, progress=lambda event: report(progress=event, stage=stage))
    except NoTrainableRows as exc:
        return _skip(run, f"no {stage} rows: {exc}")
    except Exception as exc:
        _finish_failed(run, exc)
        raise
    with transaction.atomic():
        ckpt, _ = ModelCheckpoint.objects.update_or_create(
            name=f"iteration-{iteration.number}-{stage}",
            defaults={"kind": stage, "path": result.checkpoint_dir, "base": base, "iteration": iteration},
        )
        run.output_checkpoint = ckpt
        run.metrics = result.metrics | {"warnings": result.warnings, "log_history": result.log_history[-200:]}
        run.reward_terms = result.reward_terms
        run.config = run.config | {"trainer": result.config}
        run.status = TrainingRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.save()
    return ckpt


def evaluated_categories(subset: str, categories: list[str] | None) -> list[str]:
    """What an evaluation covers: the subset's categories (or all of BFCL V3), narrowed."""
    every = list(subset_ids(subset)) if subset else list(CATEGORIES)
    return [c for c in every if not categories or c in categories]


def evaluation_run(*, checkpoint: ModelCheckpoint, iteration: Iteration | None = None, limit: int | None,
                   seed: int = 0, categories: list[str] | None = None, subset: str = "",
                   progress: Callable[[dict[str, Any]], None] | None = None) -> EvaluationRun:
    """Evaluate a checkpoint on BFCL V3 (or a committed subset of it, such as BFCL mini) with
    the official checker and store the results."""
    ev = EvaluationRun.objects.create(
        checkpoint=checkpoint, iteration=iteration, limit=limit, seed=seed, subset=subset,
        categories=evaluated_categories(subset, categories), status=EvaluationRun.Status.RUNNING,
        started_at=timezone.now(),
    )
    try:
        path = None if checkpoint.kind == "base" else checkpoint.path
        # The tool-call grammar costs more per token than it gives a model being measured:
        # BFCL scores what the model writes, so it decodes unconstrained.
        backend = get_backend("embedded", model_path=path, constrain_tool_calls=False)
        result = run_bfcl_eval(backend, categories=categories, limit=limit, seed=seed, subset=subset or None,
                               batch_size=EVAL_BATCH, progress=progress)
    except Exception as exc:
        _finish_failed(ev, exc)
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
        # A subset's own mean: BFCL's overall counts every category it leaves out as 0.
        overall = (result.overall.get("subset") or {}).get("mean") if subset else None
        if overall is None:
            overall = (result.overall.get("overall") or {}).get("accuracy")
        ev.overall = None if overall is None else max(0.0, min(1.0, float(overall)))
        ev.summary = dict(result.overall) | {"settings": result.settings}
        ev.status = EvaluationRun.Status.SUCCEEDED
        ev.finished_at = timezone.now()
        ev.save()
    return ev


def evaluate(*, iteration: Iteration, report: Report) -> None:
    """BFCL V3 on the iteration's input checkpoint (unless already measured on the same
    subset) and on its output checkpoint."""
    cfg = IterationConfig.from_dict(iteration.config)
    categories = cfg.eval_categories or None
    covered = evaluated_categories(cfg.eval_subset, categories)
    runs: dict[int, EvaluationRun] = {}
    for ckpt in dict.fromkeys(c for c in (iteration.input_checkpoint, iteration.output_checkpoint) if c is not None):
        same = EvaluationRun.objects.filter(checkpoint=ckpt, subset=cfg.eval_subset, limit=cfg.eval_limit,
                                            categories=covered, status="succeeded")
        if not cfg.eval_subset:
            same = same.filter(seed=cfg.seed)  # a committed subset's items do not depend on the seed
        done = same.order_by("-finished_at").first()
        if done is not None:
            runs[ckpt.pk] = done
        else:
            report(detail=f"BFCL {cfg.eval_subset or 'V3'} on {ckpt.name}")
            runs[ckpt.pk] = evaluation_run(
                checkpoint=ckpt, iteration=iteration, limit=cfg.eval_limit, seed=cfg.seed,
                categories=categories, subset=cfg.eval_subset,
                progress=lambda event, name=ckpt.name: report(progress=event, stage=f"bfcl:{name}"))
    before, after = runs.get(iteration.input_checkpoint_id), runs.get(iteration.output_checkpoint_id)
    if before is not None and after is not None and before.pk != after.pk:
        iteration.comparison = evaluation_comparison(before, after, seed=cfg.seed)
        Iteration.objects.filter(pk=iteration.pk).update(comparison=iteration.comparison)


def evaluation_comparison(before: EvaluationRun, after: EvaluationRun, *, seed: int = 0) -> dict[str, Any]:
    """Paired before/after of two evaluations over the items both measured (bootstrap CI)."""
    def items(ev: EvaluationRun) -> list[dict[str, Any]]:
        return [{"category": r.category, **i} for r in ev.results.all() for i in (r.items or [])]

    out = compare(outcomes(items(before)), outcomes(items(after)), seed=seed)
    return out | {"before_run": before.pk, "after_run": after.pk, "subset": after.subset,
                  "before_checkpoint": before.checkpoint.name, "after_checkpoint": after.checkpoint.name}
