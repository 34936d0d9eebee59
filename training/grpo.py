"""GRPO on hard samples with the gated composite reward (TRL's GRPOTrainer).

GRPO compares each completion with the others sampled for the same prompt (group-relative
advantages), so no value network is trained; a KL term (``beta``) keeps the policy near
the reference model.

    python -m training.grpo --profile cpu --data var/exports/trajectories.jsonl
    accelerate launch --config_file training/configs/accelerate_zero2.yaml \\
        -m training.grpo --profile gpu --model var/training/sft/final --data ...
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training._trainer_common import (
    TrainingResult,
    common_trainer_args,
    cpu_autocast,
    final_metrics,
    make_progress_callback,
    resume_checkpoint,
    run_key,
    save_final,
    set_threads,
    weights_dtype,
    write_json,
)
from training.config import GRPORunConfig, get_profile, save_config
from training.dataset import NoTrainableRows, build_grpo_rows, to_hf_dataset
from training.rewards import make_composite_reward, reference_text
from training.utils import ProgressCallback, offline_hub, report, resolve_model_path, world_size

logger = logging.getLogger(__name__)


def _drop_long_prompts(
    rows: list[dict[str, Any]], tokenizer, limit: int | None
) -> tuple[list[dict[str, Any]], int]:
    if limit is None:
        return rows, 0
    kept = []
    for row in rows:
        ids = tokenizer.apply_chat_template(
            row["prompt"], tokenize=True, add_generation_prompt=True
        )
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        if len(ids) <= limit:
            kept.append(row)
    return kept, len(rows) - len(kept)


def _drop_unreachable_references(
    rows: list[dict[str, Any]], tokenizer, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Rows whose reference answer alone takes more than ``limit`` tokens (``max_completion_length``).

    Every completion sampled for such a prompt is cut before its calls close, so all of its
    group score 0: the group has no advantage to learn from and costs a step's generation.
    With the CPU profile's 64 tokens that was every Azure call (about 90 tokens) and every
    parallel answer of three calls (about 150)."""
    kept = []
    for row in rows:
        text = reference_text(row["reference_calls"])
        if not text or len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1 <= limit:
            kept.append(row)
    return kept, len(rows) - len(kept)


def screen_solved(
    rows: list[dict[str, Any]], generate: Callable[[list[Any]], list[str]], *, need: int,
    reward: Any = None, chunk: int | None = None, seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows GRPO can learn from first: the prompts (in an order shuffled with ``seed``) are
    answered greedily by ``generate`` (prompts -> replies, e.g. :func:`training.sweep.embedded_generate`
    bound to the starting checkpoint), ``chunk`` at a time (default ``2 * need``), until ``need``
    prompts it does not answer with the reference calls are found.  A prompt it does answer
    (execution fidelity 1) is left out: its group of samples scores alike, so its advantages
    are zero (in the twenty-first session's loop, 5 of 8 GRPO steps).  Returns the unsolved rows
    found, topped up with the least-solved others where fewer than ``need`` exist, and counts.
    """
    import random

    from training.rewards import score_completion

    order = list(rows)
    random.Random(seed).shuffle(order)
    size = max(1, chunk or 2 * need)
    unsolved: list[dict[str, Any]] = []
    solved: list[tuple[float, int, dict[str, Any]]] = []
    for start in range(0, len(order), size):
        if len(unsolved) >= need:
            break
        part = order[start : start + size]
        for row, reply in zip(part, generate([r["prompt"] for r in part]), strict=True):
            terms = score_completion(reply, row["reference_calls"], reward, row["prompt"])
            if terms.execution >= 1.0:
                solved.append((terms.total, len(solved) + len(unsolved), row))
            else:
                unsolved.append(row)
    kept = unsolved + [r for _, _, r in sorted(solved, key=lambda t: (t[0], t[1]))[: max(0, need - len(unsolved))]]
    return kept, {"screened": len(solved) + len(unsolved), "solved": len(solved), "unsolved": len(unsolved)}


def grpo_trainer_args(
    config: GRPORunConfig, output_dir: Path, grad_accum: int, use_vllm: bool
) -> dict[str, Any]:
    """The keyword arguments of TRL's ``GRPOConfig`` for this run (generation on vLLM when
    ``use_vllm``: colocated on the training GPUs, or a ``trl vllm-serve`` server)."""

    vllm_kwargs: dict[str, Any] = {}
    if use_vllm:
        vllm_kwargs = {
            "use_vllm": True,
            "vllm_mode": config.vllm_mode,
            "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization,
        }
    return {
        **common_trainer_args(config, output_dir, grad_accum),
        "num_generations": config.num_generations,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "beta": config.beta,
        "max_completion_length": config.max_completion_length,
        "loss_type": config.loss_type,
        "log_completions": config.log_completions,
        "report_to": "none",
        "model_init_kwargs": {"dtype": weights_dtype(config)},
        **vllm_kwargs,
    }


def run_grpo(
    config: GRPORunConfig,
    rows: list[dict[str, Any]],
    *,
    progress: ProgressCallback | None = None,
) -> TrainingResult:
    """Train on GRPO rows (from :func:`training.dataset.build_grpo_rows`); returns the
    checkpoint under ``config.output_dir/final`` and every sample's reward terms."""
    offline_hub()
    set_threads(config.torch_num_threads)
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model_path(config.model_name_or_path)
    grad_accum = config.resolve_gradient_accumulation(world_size())
    use_vllm = config.resolve_use_vllm()
    warnings: list[str] = []

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows, dropped = _drop_long_prompts(rows, tokenizer, config.max_prompt_length)
    if dropped:
        warnings.append(f"left out {dropped} prompts longer than {config.max_prompt_length} tokens")
    rows, unreachable = _drop_unreachable_references(rows, tokenizer, config.max_completion_length)
    if unreachable:
        warnings.append(
            f"left out {unreachable} prompts whose reference answer is longer than "
            f"max_completion_length ({config.max_completion_length} tokens): no sampled completion could match it"
        )
    if not rows:
        raise NoTrainableRows("every prompt is longer than max_prompt_length or its reference answer longer "
                              f"than max_completion_length ({config.max_completion_length} tokens)")
    screen: dict[str, Any] = {}
    if config.screen_solved:
        from training.sweep import embedded_generate

        prompts_per_step = max(1, config.per_device_train_batch_size * grad_accum * world_size()
                               // config.num_generations)
        need = prompts_per_step * config.max_steps if config.max_steps > 0 else len(rows)
        greedy = embedded_generate(config.max_completion_length, config.torch_num_threads)
        rows, screen = screen_solved(rows, lambda prompts: greedy(model_path, prompts), need=need,
                                     reward=config.reward, seed=config.seed)
        if screen["solved"]:
            warnings.append(f"screened {screen['screened']} prompts: the starting model already answers "
                            f"{screen['solved']} (left out where others remain), {screen['unsolved']} not")
        report(progress, stage="grpo", event="screened", **screen)
    dataset = to_hf_dataset(
        [
            {
                "prompt": r["prompt"],
                "reference_calls": r["reference_calls"],
                "mode": r["mode"],
                "id": r["id"],
            }
            for r in rows
        ]
    )

    args = GRPOConfig(**grpo_trainer_args(config, output_dir, grad_accum, use_vllm))
    save_config(
        config,
        output_dir / "run_config.json",
        model_path=model_path,
        gradient_accumulation_steps=grad_accum,
        world_size=world_size(),
        use_vllm=use_vllm,
        num_train_rows=len(rows),
        cpu_bf16_autocast=cpu_autocast(config),
        screened=screen or None,
    )
    reward_terms: list[dict[str, Any]] = []
    reward_fn = make_composite_reward(config.reward, sink=reward_terms)
    report(
        progress, stage="grpo", event="loading", model=model_path, rows=len(rows), use_vllm=use_vllm
    )
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=[reward_fn],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[make_progress_callback(progress, "grpo")],
    )
    resume_from = resume_checkpoint(output_dir, run_key(config, rows))
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    final = save_final(trainer, tokenizer, output_dir, None)
    history = list(trainer.state.log_history)
    metrics = final_metrics(train_output, history)
    if reward_terms:
        for key in ("format", "execution", "reasoning", "gate", "total"):
            metrics[f"reward_{key}_mean"] = sum(t[key] for t in reward_terms) / len(reward_terms)
    write_json(output_dir / "metrics.json", {"metrics": metrics, "log_history": history})
    # a resumed run adds the terms of the steps it ran to those its killed try wrote
    with (output_dir / "reward_terms.jsonl").open("a" if resume_from else "w") as fh:
        for t in reward_terms:
            fh.write(json.dumps(t, default=str) + "\n")
    return TrainingResult(
        output_dir=str(output_dir),
        checkpoint_dir=str(final),
        metrics=metrics,
        log_history=history,
        config=json.loads((output_dir / "run_config.json").read_text()),
        num_train_rows=len(rows),
        reward_terms=reward_terms,
        warnings=warnings,
        resumed_from=resume_from,
    )


def main(argv: list[str] | None = None) -> None:
    from training.sft import _common_overrides, _read_ids, build_arg_parser, read_trajectories

    logging.basicConfig(level=logging.INFO)
    args = build_arg_parser("python -m training.grpo").parse_args(argv)
    config = _common_overrides(get_profile(args.profile).grpo, args)
    rows, stats = build_grpo_rows(
        read_trajectories(args.data), get_profile(args.profile).data, exclude_ids=_read_ids(args.exclude_ids)
    )
    logger.info("dataset: %s", stats)
    result = run_grpo(config, rows, progress=lambda e: logger.info("%s", e))
    print(
        json.dumps({"checkpoint_dir": result.checkpoint_dir, "metrics": result.metrics}, indent=2)
    )


if __name__ == "__main__":
    main()
