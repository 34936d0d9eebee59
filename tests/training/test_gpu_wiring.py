"""The GPU paths, checked on CPU: GRPO's vLLM generation settings and the accelerate +
DeepSpeed launch commands (rendered and parsed, not run)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from tests.synthesis.llm import fake_vllm
from training.config import GRPORunConfig, get_profile
from training.launch import accelerate_config, deepspeed_config, launch_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gpu_with_vllm(monkeypatch):
    import torch

    from training import config as config_mod
    from training import utils

    fake_vllm.install(monkeypatch)
    utils.is_vllm_available.cache_clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    yield
    utils.is_vllm_available.cache_clear()
    assert config_mod.is_vllm_available is utils.is_vllm_available


def test_grpo_generates_with_vllm_when_installed_on_a_gpu(gpu_with_vllm, tmp_path):
    from trl import GRPOConfig

    from training.grpo import grpo_trainer_args

    cfg = GRPORunConfig(use_vllm=None, vllm_mode="colocate", vllm_gpu_memory_utilization=0.25,
                        num_generations=4, per_device_train_batch_size=4)
    assert cfg.resolve_use_vllm() is True
    args = grpo_trainer_args(cfg, tmp_path, 1, use_vllm=True)
    assert (args["use_vllm"], args["vllm_mode"], args["vllm_gpu_memory_utilization"]) == (True, "colocate", 0.25)
    trl_args = GRPOConfig(**{**args, "use_cpu": True})  # TRL accepts them (no GPU needed to parse)
    assert trl_args.use_vllm and trl_args.vllm_mode == "colocate"
    assert GRPORunConfig(use_vllm=True, vllm_mode="server").resolve_use_vllm() is True
    assert "use_vllm" not in grpo_trainer_args(cfg, tmp_path, 1, use_vllm=False)


def test_grpo_without_vllm_or_on_cpu_does_not_ask_for_it(monkeypatch):
    from training import utils

    utils.is_vllm_available.cache_clear()
    try:
        assert GRPORunConfig(use_cpu=True).resolve_use_vllm() is False
        with pytest.raises(ValueError, match="needs a GPU"):
            GRPORunConfig(use_vllm=True, use_cpu=True)
        if not utils.is_vllm_available():
            with pytest.raises(ValueError, match="pip install"):
                GRPORunConfig(use_vllm=True)
    finally:
        utils.is_vllm_available.cache_clear()


@pytest.mark.parametrize("stage,zero", [("sft", 3), ("grpo", 2)])
def test_launch_command_parses_with_accelerate_and_the_training_cli(stage, zero):
    from accelerate.commands.launch import launch_command_parser

    from training.sft import _common_overrides, build_arg_parser

    cmd = launch_command(stage, data="var/exports/t.jsonl", num_processes=8, model="/models/base",
                         output_dir="var/training/x", overrides={"max_steps": 7, "vllm_mode": "server"} if stage == "grpo" else {"max_steps": 7})
    assert cmd[:2] == ["accelerate", "launch"]
    acc = launch_command_parser().parse_args(cmd[2:])
    assert acc.config_file == accelerate_config(stage) and acc.num_processes == 8
    assert acc.module and acc.training_script == f"training.{stage}"
    acc_yaml = yaml.safe_load((ROOT / acc.config_file).read_text())
    assert acc_yaml["distributed_type"] == "DEEPSPEED"
    assert acc_yaml["deepspeed_config"]["deepspeed_config_file"] == deepspeed_config(stage)

    ours = build_arg_parser(f"training.{stage}").parse_args(acc.training_script_args)
    config = _common_overrides(getattr(get_profile(ours.profile), stage), ours)
    assert config.deepspeed == deepspeed_config(stage) and config.max_steps == 7
    assert config.model_name_or_path == "/models/base" and config.output_dir == "var/training/x"
    assert json.loads((ROOT / config.deepspeed).read_text())["zero_optimization"]["stage"] == zero
    assert config.bf16 and not config.use_cpu  # the gpu profile
    if stage == "grpo":
        assert config.vllm_mode == "server"


@pytest.mark.parametrize("doc", ["training/README.md", "deploy/README.md"])
def test_documented_launch_commands_parse(doc):
    """The commands the READMEs tell people to run hold together."""
    from accelerate.commands.launch import launch_command_parser

    from training.sft import build_arg_parser

    text = (ROOT / doc).read_text().replace("\\\n", " ")
    commands = [line[line.index("accelerate launch"):] for line in text.splitlines() if "accelerate launch --config_file" in line]
    assert commands
    for line in commands:
        argv = shlex.split(line)[2:]
        acc = launch_command_parser().parse_args(argv)
        assert (ROOT / acc.config_file).is_file(), acc.config_file
        ours = build_arg_parser(acc.training_script).parse_args(acc.training_script_args)
        assert ours.profile == "gpu"
        zero = yaml.safe_load((ROOT / acc.config_file).read_text())["deepspeed_config"]["deepspeed_config_file"]
        if ours.deepspeed:
            assert ours.deepspeed == zero
