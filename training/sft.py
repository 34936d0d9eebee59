"""Full-parameter supervised fine-tuning with TRL's SFTTrainer.

    python -m training.sft --profile cpu --data var/exports/trajectories.jsonl
    accelerate launch --config_file training/configs/accelerate_zero3.yaml \\
        -m training.sft --profile gpu --model Qwen/Qwen2.5-7B-Instruct --data ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from synthesis.llm.chat_template import install_tool_template
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
    training_chat_template,
    weights_dtype,
    write_json,
)
from training.config import SFTRunConfig, get_profile, save_config
from training.dataset import build_sft_rows, to_hf_dataset
from training.utils import ProgressCallback, offline_hub, report, resolve_model_path, world_size

logger = logging.getLogger(__name__)


def run_sft(
    config: SFTRunConfig,
    rows: list[dict[str, Any]],
    *,
    progress: ProgressCallback | None = None,
) -> TrainingResult:
    """Train on SFT rows (``{"messages": [...]}``, from :func:`training.dataset.build_sft_rows`)
    and save the checkpoint (safetensors + tokenizer) under ``config.output_dir/final``."""
    offline_hub()
    set_threads(config.torch_num_threads)
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model_path(config.model_name_or_path)
    grad_accum = config.resolve_gradient_accumulation(world_size())
    warnings: list[str] = []

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    # A checkpoint converted before templates rendered tools gets ours (same ChatML text for
    # the plain rows trained on here), so the saved checkpoint renders tools.
    install_tool_template(tokenizer)
    original_template = tokenizer.chat_template
    assistant_only = config.assistant_only_loss
    if assistant_only:
        template = training_chat_template(tokenizer)
        if template is None:
            assistant_only = False
            warnings.append(
                "chat template has no generation markers; the loss covers whole sequences"
            )
        else:
            tokenizer.chat_template = template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    rows, too_long = rows_that_fit(tokenizer, rows, config.max_length)
    if too_long:
        warnings.append(
            f"{too_long} row(s) longer than max_length={config.max_length} tokens left out: truncated, "
            "they would lose the assistant turns the loss is computed on"
        )
        logger.warning(warnings[-1])
    if not rows:
        raise ValueError(f"no SFT row fits in max_length={config.max_length} tokens")
    dataset = to_hf_dataset([{"messages": r["messages"]} for r in rows])
    args = SFTConfig(
        **common_trainer_args(config, output_dir, grad_accum),
        max_length=config.max_length,
        assistant_only_loss=assistant_only,
        packing=config.packing,
        report_to="none",
        model_init_kwargs={"dtype": weights_dtype(config)},
        dataset_num_proc=None,
    )
    save_config(
        config,
        output_dir / "run_config.json",
        model_path=model_path,
        gradient_accumulation_steps=grad_accum,
        world_size=world_size(),
        assistant_only_loss=assistant_only,
        num_train_rows=len(rows),
        cpu_bf16_autocast=cpu_autocast(config),
    )
    report(progress, stage="sft", event="loading", model=model_path, rows=len(rows))
    trainer = SFTTrainer(
        model=model_path,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[make_progress_callback(progress, "sft")],
        peft_config=lora_config(config),
    )
    resume_from = resume_checkpoint(output_dir, run_key(config, rows))
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    if config.lora_r:
        # The adapter folded into the weights: the checkpoint loads like a full one (the
        # embedded backend, GRPO and BFCL read plain transformers checkpoints).
        trainer.model = trainer.model.merge_and_unload()
    final = save_final(trainer, tokenizer, output_dir, original_template)
    history = list(trainer.state.log_history)
    metrics = final_metrics(train_output, history)
    write_json(output_dir / "metrics.json", {"metrics": metrics, "log_history": history})
    return TrainingResult(
        output_dir=str(output_dir),
        checkpoint_dir=str(final),
        metrics=metrics,
        log_history=history,
        config=json.loads((output_dir / "run_config.json").read_text()),
        num_train_rows=len(rows),
        warnings=warnings,
        resumed_from=resume_from,
    )


def rows_that_fit(tokenizer, rows: list[dict[str, Any]], max_length: int) -> tuple[list[dict[str, Any]], int]:
    """The rows whose rendered conversation fits in ``max_length`` tokens, and how many did
    not.  The trainer cuts a longer row at the end, where the assistant's reply is, so the
    row would teach the prompt's tool list and not the call."""
    kept = []
    for row in rows:
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= max_length:
            kept.append(row)
    return kept, len(rows) - len(kept)


def lora_config(config: SFTRunConfig) -> Any:
    """The peft ``LoraConfig`` for ``config.lora_r`` > 0, else None (full fine-tuning)."""
    if not config.lora_r:
        return None
    from peft import LoraConfig  # loaded only when LoRA is asked for

    targets = config.lora_target_modules
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()],
        task_type="CAUSAL_LM",
    )


def read_trajectories(path: str | Path) -> list[dict[str, Any]]:
    """Trajectories from a JSON list or JSON-lines file."""
    text = Path(path).read_text()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _apply_overrides(config: Any, pairs: list[str]) -> Any:
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(config)}
    changes = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown setting {key!r}; valid: {', '.join(sorted(fields))}")
        try:
            changes[key] = json.loads(raw)
        except json.JSONDecodeError:
            changes[key] = raw
    return dataclasses.replace(config, **changes)


def build_arg_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--profile", default="cpu", help="gpu or cpu")
    parser.add_argument("--data", required=True, help="trajectories as JSON or JSON lines")
    parser.add_argument(
        "--model", default=None, help="checkpoint folder (default: embedded SmolLM2)"
    )
    parser.add_argument("--output-dir", default=None)
    parser.add_argument(
        "--deepspeed", default=None, help="DeepSpeed JSON (training/configs/ds_zero*.json)"
    )
    parser.add_argument(
        "--exclude-ids", default=None, help="file of trajectory ids to leave out, one a line"
    )
    parser.add_argument("--hard-weight", type=float, default=None)
    parser.add_argument(
        "--swap-negatives", type=float, default=None,
        help="irrelevance rows per accepted request with calls: the request with another "
        "trajectory's unrelated tools, answered with the refusal (default: the profile's)",
    )
    parser.add_argument(
        "--refusal-wordings", type=int, default=None,
        help="refusals in this many wordings (1-6), chosen per request (default: the profile's)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    return parser


def _common_overrides(config: Any, args: argparse.Namespace) -> Any:
    import dataclasses

    changes: dict[str, Any] = {}
    if args.model:
        changes["model_name_or_path"] = args.model
    if args.output_dir:
        changes["output_dir"] = args.output_dir
    if args.deepspeed:
        changes["deepspeed"] = args.deepspeed
    config = dataclasses.replace(config, **changes)
    return _apply_overrides(config, args.set)


def _read_ids(path: str | None) -> set[str]:
    if not path:
        return set()
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO)
    args = build_arg_parser("python -m training.sft").parse_args(argv)
    config = _common_overrides(get_profile(args.profile).sft, args)
    changes = {k: v for k, v in (("hard_weight", args.hard_weight), ("swap_negatives", args.swap_negatives),
                                 ("refusal_wordings", args.refusal_wordings)) if v is not None}
    data_config = dataclasses.replace(get_profile(args.profile).data, **changes)
    rows, stats = build_sft_rows(
        read_trajectories(args.data), data_config, exclude_ids=_read_ids(args.exclude_ids)
    )
    logger.info("dataset: %s", stats)
    result = run_sft(config, rows, progress=lambda e: logger.info("%s", e))
    print(
        json.dumps({"checkpoint_dir": result.checkpoint_dir, "metrics": result.metrics}, indent=2)
    )


if __name__ == "__main__":
    main()
