"""Pieces shared by the SFT and GRPO runners."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesis.llm.chat_template import install_tool_template, set_stop_tokens
from training.utils import ProgressCallback, report

logger = logging.getLogger(__name__)

# ChatML with {% generation %} markers around assistant replies.  Rendered text is identical
# to SmolLM2's own template (checked at run time before use), so masking the loss to the
# assistant turns does not change what the model sees.
CHATML_TRAINING_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

_PROBES = [
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "<tool_response>\nc\n</tool_response>"},
        {"role": "assistant", "content": "d"},
    ],
]


def training_chat_template(tokenizer) -> str | None:
    """A template with generation markers that renders exactly like the tokenizer's own,
    or None when there is none (then the loss covers the whole sequence)."""
    from trl.chat_template_utils import has_generation_markers

    own = tokenizer.chat_template
    if own and has_generation_markers(own):
        return own
    # TRL ships marked-up copies of the common templates (Qwen2.5, Llama 3, ...).
    try:
        from trl.chat_template_utils import get_training_chat_template

        patched = get_training_chat_template(tokenizer)
    except Exception:  # noqa: BLE001 - unsupported templates raise
        patched = None
    if patched:
        return patched
    for probe in _PROBES:
        for gen in (False, True):
            try:
                a = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=gen)
                b = tokenizer.apply_chat_template(
                    probe,
                    tokenize=False,
                    add_generation_prompt=gen,
                    chat_template=CHATML_TRAINING_TEMPLATE,
                )
            except Exception:  # noqa: BLE001 - any template error means "not ChatML"
                return None
            if a != b:
                return None
    return CHATML_TRAINING_TEMPLATE


@dataclass
class TrainingResult:
    """What a training run produced; plain data for storage."""

    output_dir: str
    checkpoint_dir: str
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]]
    config: dict[str, Any]
    num_train_rows: int
    reward_terms: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resumed_from: str | None = None  # the checkpoint a killed run went on from

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def make_progress_callback(progress: ProgressCallback | None, stage: str):
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def __init__(self) -> None:
            self.started = time.monotonic()

        def on_train_begin(self, args, state, control, **kwargs):
            # a resumed run begins at its checkpoint's step
            report(progress, stage=stage, event="begin", step=state.global_step, max_steps=state.max_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):
            report(
                progress,
                stage=stage,
                event="log",
                step=state.global_step,
                max_steps=state.max_steps,
                epoch=state.epoch,
                elapsed_s=round(time.monotonic() - self.started, 2),
                metrics={k: v for k, v in (logs or {}).items() if isinstance(v, (int, float, str))},
            )

        def on_train_end(self, args, state, control, **kwargs):
            report(
                progress,
                stage=stage,
                event="end",
                step=state.global_step,
                max_steps=state.max_steps,
            )

    return _Progress()


def set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def save_final(trainer, tokenizer, output_dir: Path, original_template: str | None) -> Path:
    """Save the trained model and its tokenizer under ``output_dir/final``, with the
    tool-use chat template (see :mod:`synthesis.llm.chat_template`) and its stop tokens, so
    that plain HF tooling renders tools and tool calls for the checkpoint and generation
    stops at the end of the turn."""
    final = output_dir / "final"
    if original_template is not None:
        tokenizer.chat_template = original_template
    install_tool_template(tokenizer)
    set_stop_tokens(trainer.model, tokenizer)
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
    return final


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


def final_metrics(train_output, log_history: list[dict[str, Any]]) -> dict[str, Any]:
    metrics = dict(getattr(train_output, "metrics", {}) or {})
    losses = [h["loss"] for h in log_history if "loss" in h]
    if losses:
        metrics["first_loss"] = losses[0]
        metrics["last_loss"] = losses[-1]
    return metrics


def cpu_autocast(config: Any) -> bool:
    """Whether a CPU run computes in bf16 under autocast (float32 weights and optimizer
    state): ``config.cpu_bf16``, or where it is None, whether the CPU has native bf16
    instructions.  Never on a GPU run (``bf16`` decides there)."""
    if not config.use_cpu:
        return False
    if config.cpu_bf16 is not None:
        return config.cpu_bf16
    from synthesis.llm.embedded.checkpoint import cpu_supports_bf16

    return cpu_supports_bf16()


def weights_dtype(config: Any) -> Any:
    """The dtype the model is loaded in: bfloat16 only for a GPU run with ``bf16``; a CPU
    run under autocast keeps float32 weights (the optimizer updates them in full precision)."""
    import torch

    return torch.bfloat16 if config.bf16 and not config.use_cpu else torch.float32


def common_trainer_args(config: Any, output_dir: Path, grad_accum: int) -> dict[str, Any]:
    """The transformers TrainingArguments that SFT and GRPO set the same way.  ``bf16`` on
    a CPU run is the Trainer's autocast (:func:`cpu_autocast`)."""
    return {
        "output_dir": str(output_dir),
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.num_train_epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "gradient_accumulation_steps": grad_accum,
        "lr_scheduler_type": config.lr_scheduler_type,
        "warmup_steps": config.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        "weight_decay": config.weight_decay,
        "bf16": config.bf16 or cpu_autocast(config),
        "use_cpu": config.use_cpu,
        "gradient_checkpointing": config.gradient_checkpointing,
        "deepspeed": config.deepspeed,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
        # Full checkpoints (optimizer and RNG too) so that a killed run resumes exactly.
        "save_strategy": "steps" if config.save_steps else "no",
        "save_steps": config.save_steps or 500,
        "save_total_limit": config.save_total_limit,
    }


def run_key(config: Any, rows: list[dict[str, Any]]) -> str:
    """What a checkpoint under ``output_dir`` must have been trained for to be resumed:
    the same settings and the same rows."""
    settings = {k: v for k, v in config.to_dict().items() if k not in ("output_dir", "torch_num_threads")}
    settings["cpu_bf16"] = cpu_autocast(config)  # what "auto" chose here: a resumed run keeps its precision
    blob = json.dumps({"config": settings, "rows": rows}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def resume_checkpoint(output_dir: Path, key: str) -> str | None:
    """The last complete ``checkpoint-N`` under ``output_dir`` of the run ``key`` names, to
    resume from; None to start afresh.  A checkpoint is complete once ``trainer_state.json``
    is there (the Trainer writes it last); incomplete ones (a kill during a save) and those
    of another run are removed by the main process."""
    main = os.environ.get("RANK", "0") == "0"
    key_file = output_dir / "resume_key"
    same_run = key_file.is_file() and key_file.read_text().strip() == key
    complete = []
    for path in output_dir.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if not (path.is_dir() and step.isdigit()):
            continue
        if same_run and (path / "trainer_state.json").is_file():
            complete.append((int(step), path))
        elif main:
            logger.info("removing %s: %s", path, "another run's" if not same_run else "incomplete")
            shutil.rmtree(path, ignore_errors=True)
    if main and not same_run:
        key_file.write_text(key)
    if not complete:
        return None
    last = str(max(complete)[1])
    logger.info("resuming from %s", last)
    return last
