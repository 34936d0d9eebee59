"""The ``accelerate launch`` command of a multi-GPU SFT or GRPO run (DeepSpeed ZeRO).

SFT shards parameters too (ZeRO-3), GRPO keeps them whole for vLLM's weight sync (ZeRO-2);
the accelerate config names the DeepSpeed JSON of the same stage, and ``--deepspeed`` passes
that JSON to the Trainer as well, so both sides agree.

>>> " ".join(launch_command("sft", data="t.jsonl", num_processes=8))  # doctest: +NORMALIZE_WHITESPACE
'accelerate launch --config_file training/configs/accelerate_zero3.yaml --num_processes 8
 -m training.sft --profile gpu --data t.jsonl --deepspeed training/configs/ds_zero3.json'
"""

from __future__ import annotations

import json

ZERO_STAGE = {"sft": 3, "grpo": 2}


def accelerate_config(stage: str) -> str:
    return f"training/configs/accelerate_zero{ZERO_STAGE[stage]}.yaml"


def deepspeed_config(stage: str) -> str:
    return f"training/configs/ds_zero{ZERO_STAGE[stage]}.json"


def launch_command(
    stage: str,
    *,
    data: str,
    num_processes: int = 8,
    model: str | None = None,
    output_dir: str | None = None,
    profile: str = "gpu",
    overrides: dict[str, object] | None = None,
) -> list[str]:
    """argv of ``accelerate launch`` running ``python -m training.<stage>`` on
    ``num_processes`` GPUs; ``overrides`` become ``--set key=<json>``."""
    if stage not in ZERO_STAGE:
        raise ValueError(f"unknown stage {stage!r}; valid: {', '.join(ZERO_STAGE)}")
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    cmd = ["accelerate", "launch", "--config_file", accelerate_config(stage),
           "--num_processes", str(num_processes), "-m", f"training.{stage}",
           "--profile", profile, "--data", data]
    if model:
        cmd += ["--model", model]
    if output_dir:
        cmd += ["--output-dir", output_dir]
    cmd += ["--deepspeed", deepspeed_config(stage)]
    for key, value in (overrides or {}).items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    return cmd
