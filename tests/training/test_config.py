"""Run configs validate their fields and the profiles carry the intended settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from training.config import (
    GRPORunConfig,
    RewardConfig,
    SFTRunConfig,
    get_profile,
    load_config,
    save_config,
)


def test_profiles():
    gpu, cpu = get_profile("gpu"), get_profile("cpu")
    assert (
        gpu.sft.learning_rate,
        gpu.sft.num_train_epochs,
        gpu.sft.bf16,
        gpu.sft.global_batch_size,
    ) == (1e-5, 3, True, 512)
    assert (gpu.grpo.temperature, gpu.grpo.num_generations) == (0.7, 8) and gpu.grpo.beta > 0
    assert cpu.sft.use_cpu and not cpu.sft.bf16 and cpu.sft.max_steps > 0
    assert cpu.grpo.use_cpu and cpu.grpo.use_vllm is False
    # the loop's recipe takes the sweep's choice of rows; the path check keeps one wording
    assert get_profile("cpu-loop").data.refusal_wordings == 6 and cpu.data.refusal_wordings == 1
    assert gpu.sft.resolve_gradient_accumulation(world_size=8) == 512 // (4 * 8)


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError, match="valid profiles: gpu, cpu"):
        get_profile("tpu")


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (SFTRunConfig, {"learning_rate": 0}, "learning_rate must be > 0"),
        (SFTRunConfig, {"bf16": True, "use_cpu": True}, "set bf16=False, and cpu_bf16"),
        (SFTRunConfig, {"cpu_bf16": "yes"}, "cpu_bf16 must be true, false or null"),
        (SFTRunConfig, {"global_batch_size": 10, "per_device_train_batch_size": 4}, "multiple of"),
        (SFTRunConfig, {"global_batch_size": 8, "gradient_accumulation_steps": 2}, "not both"),
        (SFTRunConfig, {"max_length": 4}, "max_length"),
        (SFTRunConfig, {"deepspeed": "nope.json"}, "training/configs"),
        (GRPORunConfig, {"num_generations": 1}, "group"),
        (GRPORunConfig, {"beta": 0.0}, "KL penalty"),
        (GRPORunConfig, {"loss_type": "ppo"}, "valid: grpo"),
        (GRPORunConfig, {"use_vllm": True, "use_cpu": True}, "needs a GPU"),
        (RewardConfig, {"gate_threshold": 0}, "gate_threshold"),
        (RewardConfig, {"format_weight": -1}, "format_weight"),
    ],
)
def test_invalid_settings_say_how_to_fix(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_grpo_batch_must_hold_whole_groups():
    cfg = GRPORunConfig(
        per_device_train_batch_size=3, gradient_accumulation_steps=1, num_generations=2
    )
    with pytest.raises(ValueError, match="divisible by num_generations"):
        cfg.resolve_gradient_accumulation(world_size=1)


def test_every_field_documents_itself():
    for cls in (SFTRunConfig, GRPORunConfig, RewardConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"


def test_saved_config_round_trips(tmp_path):
    cfg = get_profile("cpu").grpo
    path = save_config(cfg, tmp_path / "run_config.json", world_size=1)
    data = json.loads(path.read_text())
    assert data["resolved"] == {"world_size": 1} and data["reward"]["gate_threshold"] == 1.0
    assert load_config(path) == cfg


def test_launch_configs_point_at_existing_deepspeed_files():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    for stage in (2, 3):
        acc = yaml.safe_load((root / f"training/configs/accelerate_zero{stage}.yaml").read_text())
        ds_path = root / acc["deepspeed_config"]["deepspeed_config_file"]
        ds = json.loads(ds_path.read_text())
        assert ds["zero_optimization"]["stage"] == stage
        assert SFTRunConfig(deepspeed=str(ds_path)).deepspeed == str(ds_path)


def test_cli_overrides_fields():
    from training.sft import _common_overrides, build_arg_parser

    args = build_arg_parser("sft").parse_args(
        [
            "--profile",
            "cpu",
            "--data",
            "x.jsonl",
            "--output-dir",
            "out",
            "--set",
            "max_steps=7",
            "--set",
            "lr_scheduler_type=linear",
        ]
    )
    cfg = _common_overrides(get_profile(args.profile).sft, args)
    assert (cfg.output_dir, cfg.max_steps, cfg.lr_scheduler_type) == ("out", 7, "linear")
    args.set = ["max_stpes=1"]
    with pytest.raises(SystemExit, match="unknown setting 'max_stpes'"):
        _common_overrides(get_profile("cpu").sft, args)


@pytest.mark.parametrize(
    ("use_cpu", "cpu_bf16", "native", "autocast"),
    [
        (True, None, True, True),  # by the CPU: native bf16 instructions
        (True, None, False, False),  # emulated bf16 would be slower than float32
        (True, False, True, False),
        (True, True, False, True),
        (False, True, True, False),  # a GPU run: ``bf16`` decides, never CPU autocast
    ],
)
def test_cpu_bf16_autocast_follows_the_setting_then_the_cpu(monkeypatch, use_cpu, cpu_bf16, native, autocast):
    import torch

    import synthesis.llm.embedded.checkpoint as checkpoint
    from training._trainer_common import common_trainer_args, cpu_autocast, run_key, weights_dtype

    monkeypatch.setattr(checkpoint, "cpu_supports_bf16", lambda: native)
    config = SFTRunConfig(use_cpu=use_cpu, cpu_bf16=cpu_bf16)
    assert cpu_autocast(config) is autocast
    assert common_trainer_args(config, Path("out"), 1)["bf16"] is autocast
    # Autocast computes in bf16 over float32 weights: the optimizer updates full-precision ones.
    assert weights_dtype(config) is torch.float32
    # What "by the CPU" chose is part of the run: on a CPU that chooses the other precision,
    # a checkpoint of this run is not resumed.
    first = run_key(config, [])
    monkeypatch.setattr(checkpoint, "cpu_supports_bf16", lambda: not native)
    assert (run_key(config, []) != first) is (use_cpu and cpu_bf16 is None)


def test_a_gpu_run_with_bf16_loads_bf16_weights():
    import torch

    from training._trainer_common import common_trainer_args, weights_dtype

    gpu = get_profile("gpu").sft
    assert weights_dtype(gpu) is torch.bfloat16 and common_trainer_args(gpu, Path("out"), 1)["bf16"] is True
