"""Run configurations for SFT, GRPO and the reward, with named profiles.

``gpu`` follows the paper (full-parameter SFT at lr 1e-5 for 3 epochs in bf16 with a global
batch of 512; GRPO at temperature 0.7 with groups of 8 and a KL penalty, no value network,
vLLM generation when installed).  ``cpu`` finishes in minutes on the embedded 135M model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.dataset import DatasetConfig
from training.utils import is_vllm_available


@dataclass
class RewardConfig:
    """Weights of the gated composite reward R = w_f·format + w_e·execution + gate·w_r·reasoning."""

    format_weight: float = field(default=0.2, metadata={"help": "w_f, weight of the format term."})
    execution_weight: float = field(
        default=0.6, metadata={"help": "w_e, weight of the execution-fidelity term."}
    )
    reasoning_weight: float = field(
        default=0.2,
        metadata={
            "help": "w_r, weight of the reasoning-quality term (counted only through the gate)."
        },
    )
    gate_threshold: float = field(
        default=1.0,
        metadata={
            "help": "The reasoning term counts only when execution fidelity is at least this "
            "(1.0: only fully correct calls)."
        },
    )
    reasoning_max_words: int = field(
        default=60,
        metadata={"help": "A rationale longer than this many words is scored as rambling."},
    )

    def __post_init__(self) -> None:
        for name in ("format_weight", "execution_weight", "reasoning_weight"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be >= 0, got {getattr(self, name)}; use 0 to switch the term off"
                )
        if self.format_weight + self.execution_weight + self.reasoning_weight <= 0:
            raise ValueError("at least one reward weight must be > 0")
        if not 0 < self.gate_threshold <= 1:
            raise ValueError(
                f"gate_threshold must be in (0, 1], got {self.gate_threshold}; 1.0 gates on fully correct execution"
            )
        if self.reasoning_max_words < 1:
            raise ValueError(f"reasoning_max_words must be >= 1, got {self.reasoning_max_words}")


@dataclass
class _TrainerCommon:
    model_name_or_path: str = field(
        default="",
        metadata={
            "help": "Checkpoint folder or hub id (offline). Empty: the embedded SmolLM2-135M-Instruct checkpoint."
        },
    )
    output_dir: str = field(
        default="var/training/run",
        metadata={"help": "Where the checkpoint, config and metrics are written."},
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Passes over the dataset."})
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimizer steps (-1: use epochs)."}
    )
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "Rows per device per micro-step."}
    )
    gradient_accumulation_steps: int | None = field(
        default=None,
        metadata={
            "help": "Micro-steps per optimizer step. None: derived from global_batch_size at launch "
            "(global / (per_device × processes))."
        },
    )
    global_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Rows per optimizer step over all devices; needs gradient_accumulation_steps=None."
        },
    )
    lr_scheduler_type: str = field(
        default="cosine", metadata={"help": "transformers scheduler name."}
    )
    warmup_ratio: float = field(
        default=0.03, metadata={"help": "Fraction of steps spent warming up."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    bf16: bool = field(default=False, metadata={"help": "Train in bfloat16 mixed precision (GPU)."})
    use_cpu: bool = field(default=False, metadata={"help": "Force CPU even when a GPU is visible."})
    cpu_bf16: bool | None = field(
        default=None,
        metadata={
            "help": "With use_cpu: compute in bfloat16 under autocast, the weights and optimizer state "
            "staying float32. None: where the CPU has native bf16 instructions (AVX-512 BF16 or AMX) that beat float32, "
            "where a step of the 135M model takes 2.5x less time; off elsewhere, where bf16 is emulated."
        },
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory on long sequences."}
    )
    deepspeed: str | None = field(
        default=None,
        metadata={
            "help": "DeepSpeed JSON config path (e.g. training/configs/ds_zero3.json); needs deepspeed."
        },
    )
    logging_steps: int = field(default=1, metadata={"help": "Log metrics every this many steps."})
    save_steps: int = field(
        default=50,
        metadata={
            "help": "Save a checkpoint (weights, optimizer, scheduler, RNG) every this many optimizer "
            "steps; a stage run again on the same output_dir (a re-delivered task) resumes from the "
            "last one. 0: never save (a killed run starts over)."
        },
    )
    save_total_limit: int = field(
        default=2, metadata={"help": "Checkpoints kept under output_dir; older ones are deleted."}
    )
    seed: int = field(default=42, metadata={"help": "Seed for data order and sampling."})
    torch_num_threads: int | None = field(
        default=None, metadata={"help": "torch.set_num_threads on CPU (None: leave as is)."}
    )

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (use epochs) or >= 1, got {self.max_steps}")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise ValueError("num_train_epochs must be > 0 when max_steps is -1")
        if self.per_device_train_batch_size < 1:
            raise ValueError(
                f"per_device_train_batch_size must be >= 1, got {self.per_device_train_batch_size}"
            )
        if self.gradient_accumulation_steps is not None and self.global_batch_size is not None:
            raise ValueError(
                "set either gradient_accumulation_steps or global_batch_size, not both "
                "(global_batch_size derives the accumulation at launch)"
            )
        if self.gradient_accumulation_steps is not None and self.gradient_accumulation_steps < 1:
            raise ValueError(
                f"gradient_accumulation_steps must be >= 1, got {self.gradient_accumulation_steps}"
            )
        if (
            self.global_batch_size is not None
            and self.global_batch_size % self.per_device_train_batch_size
        ):
            raise ValueError(
                f"global_batch_size {self.global_batch_size} must be a multiple of "
                f"per_device_train_batch_size {self.per_device_train_batch_size}"
            )
        if self.bf16 and self.use_cpu:
            raise ValueError(
                "bf16 (bfloat16 weights) is for GPUs; on CPU set bf16=False, and cpu_bf16 for bf16 compute "
                "over float32 weights"
            )
        if self.cpu_bf16 not in (None, True, False):
            raise ValueError(f"cpu_bf16 must be true, false or null (by the CPU), got {self.cpu_bf16!r}")
        if self.save_steps < 0:
            raise ValueError(f"save_steps must be >= 0 (0: no checkpoints), got {self.save_steps}")
        if self.save_total_limit < 1:
            raise ValueError(f"save_total_limit must be >= 1, got {self.save_total_limit}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.deepspeed is not None and not Path(self.deepspeed).is_file():
            raise ValueError(
                f"deepspeed config {self.deepspeed!r} does not exist; see training/configs/"
            )

    def resolve_gradient_accumulation(self, world_size: int) -> int:
        """Accumulation steps for ``world_size`` processes (keeps the global batch fixed)."""
        if self.gradient_accumulation_steps is not None:
            return self.gradient_accumulation_steps
        if self.global_batch_size is None:
            return 1
        per_step = self.per_device_train_batch_size * max(world_size, 1)
        if self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not divisible by "
                f"per_device_train_batch_size × processes = {per_step}; change one of them"
            )
        return self.global_batch_size // per_step

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SFTRunConfig(_TrainerCommon):
    """Supervised fine-tuning on all accepted trajectories."""

    max_length: int = field(
        default=4096, metadata={"help": "Truncate rendered rows to this many tokens."}
    )
    assistant_only_loss: bool = field(
        default=True,
        metadata={
            "help": "Compute the loss on assistant turns only (tool results and prompts are masked)."
        },
    )
    packing: bool = field(default=False, metadata={"help": "Pack rows into max_length sequences."})
    lora_r: int = field(
        default=0,
        metadata={"help": "LoRA rank (peft); 0 trains every parameter. The adapter is merged into the saved "
                          "checkpoint, so it loads like any other."},
    )
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling (alpha / r multiplies the update)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "Modules that get adapters: 'all-linear' or a comma-separated list."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.lora_r, int) or isinstance(self.lora_r, bool) or self.lora_r < 0:
            raise ValueError(f"lora_r must be an integer >= 0 (0: no LoRA), got {self.lora_r!r}")
        if self.lora_r and self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be > 0, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.max_length < 16:
            raise ValueError(f"max_length must be >= 16 tokens, got {self.max_length}")


@dataclass
class GRPORunConfig(_TrainerCommon):
    """Group Relative Policy Optimization on hard samples (no value network)."""

    num_generations: int = field(
        default=8,
        metadata={
            "help": "Completions sampled per prompt; advantages are relative within the group."
        },
    )
    temperature: float = field(
        default=0.7, metadata={"help": "Sampling temperature for the group."}
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling for the group."})
    beta: float = field(
        default=0.04, metadata={"help": "KL penalty towards the reference model (> 0)."}
    )
    max_completion_length: int = field(
        default=512, metadata={"help": "Tokens generated per completion."}
    )
    max_prompt_length: int | None = field(
        default=None,
        metadata={
            "help": "Drop prompts longer than this many tokens before training (None: keep all)."
        },
    )
    use_vllm: bool | None = field(
        default=None,
        metadata={"help": "Generate with vLLM. None: when vllm is installed and a GPU is visible."},
    )
    vllm_mode: str = field(
        default="colocate", metadata={"help": "'colocate' or 'server' (trl vllm-serve)."}
    )
    vllm_gpu_memory_utilization: float = field(
        default=0.3, metadata={"help": "GPU memory share for colocated vLLM."}
    )
    loss_type: str = field(
        default="grpo", metadata={"help": "TRL GRPO loss: grpo, dapo, dr_grpo, bnpo."}
    )
    log_completions: bool = field(
        default=False, metadata={"help": "Print sampled completions while training."}
    )
    reward: RewardConfig = field(
        default_factory=RewardConfig, metadata={"help": "Composite reward weights."}
    )
    screen_solved: bool = field(
        default=False,
        metadata={
            "help": "Before training, the starting model answers prompts greedily (shuffled with the "
            "seed, until enough are found); a prompt it already answers with the reference calls is "
            "left out while others remain: its sampled group scores alike and teaches nothing."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.reward, dict):
            self.reward = RewardConfig(**self.reward)
        if self.num_generations < 2:
            raise ValueError(
                f"num_generations must be >= 2, got {self.num_generations}: GRPO needs a group to compare within"
            )
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0 (the KL penalty of the objective), got {self.beta}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 for group sampling, got {self.temperature}")
        if self.max_completion_length < 1:
            raise ValueError(
                f"max_completion_length must be >= 1, got {self.max_completion_length}"
            )
        if self.vllm_mode not in ("colocate", "server"):
            raise ValueError(f"vllm_mode must be 'colocate' or 'server', got {self.vllm_mode!r}")
        valid_losses = ("grpo", "dapo", "dr_grpo", "bnpo")
        if self.loss_type not in valid_losses:
            raise ValueError(
                f"unknown loss_type {self.loss_type!r}; valid: {', '.join(valid_losses)}"
            )
        if self.use_vllm and self.use_cpu:
            raise ValueError("use_vllm needs a GPU; set use_vllm=False (or None) with use_cpu=True")
        if self.use_vllm and not is_vllm_available():
            raise ValueError(
                "use_vllm=True but vllm is not installed: pip install '.[gpu]' or set use_vllm=None"
            )

    def resolve_use_vllm(self) -> bool:
        if self.use_vllm is not None:
            return self.use_vllm
        if self.use_cpu or not is_vllm_available():
            return False
        import torch

        return torch.cuda.is_available()

    def resolve_gradient_accumulation(self, world_size: int) -> int:
        steps = super().resolve_gradient_accumulation(world_size)
        total = self.per_device_train_batch_size * steps * max(world_size, 1)
        if total % self.num_generations:
            raise ValueError(
                f"the batch per optimizer step ({total} completions) must be divisible by "
                f"num_generations={self.num_generations}; change per_device_train_batch_size or the global batch"
            )
        return steps


@dataclass
class Profile:
    name: str
    sft: SFTRunConfig
    grpo: GRPORunConfig
    description: str = ""
    # What the rows are made of (weights, swap negatives); the loop sets its seed.
    data: DatasetConfig = field(default_factory=DatasetConfig)


def _gpu_profile() -> Profile:
    return Profile(
        name="gpu",
        description="The paper's settings: full-parameter SFT (lr 1e-5, 3 epochs, bf16, global batch 512), "
        "then GRPO (temperature 0.7, 8 generations, KL beta 0.04, vLLM when installed).",
        sft=SFTRunConfig(
            output_dir="var/training/sft",
            learning_rate=1e-5,
            num_train_epochs=3,
            per_device_train_batch_size=4,
            global_batch_size=512,
            bf16=True,
            gradient_checkpointing=True,
            max_length=8192,
        ),
        grpo=GRPORunConfig(
            output_dir="var/training/grpo",
            learning_rate=1e-6,
            num_train_epochs=1,
            per_device_train_batch_size=8,
            global_batch_size=1024,
            bf16=True,
            gradient_checkpointing=True,
            num_generations=8,
            temperature=0.7,
            beta=0.04,
            max_completion_length=1024,
            use_vllm=None,
        ),
    )


def _cpu_profile() -> Profile:
    return Profile(
        name="cpu",
        description="A few tiny steps on the embedded 135M model on CPU, to check the whole path in minutes.",
        sft=SFTRunConfig(
            output_dir="var/training/sft-cpu",
            learning_rate=5e-5,
            num_train_epochs=1,
            max_steps=4,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=1,
            warmup_ratio=0.0,
            lr_scheduler_type="constant",
            use_cpu=True,
            bf16=False,
            # Synthesized rows carry their tool list in the system prompt: "multiple" rows
            # run 600-1000 tokens, multi-turn ones past 1000.  A row cut at 512 loses the reply.
            max_length=2048,
            torch_num_threads=2,
        ),
        grpo=GRPORunConfig(
            output_dir="var/training/grpo-cpu",
            learning_rate=5e-6,
            num_train_epochs=1,
            max_steps=4,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=1,
            warmup_ratio=0.0,
            lr_scheduler_type="constant",
            use_cpu=True,
            bf16=False,
            num_generations=4,
            temperature=0.7,
            beta=0.04,
            max_completion_length=160,
            max_prompt_length=2048,
            use_vllm=False,
            torch_num_threads=2,
        ),
    )


def _cpu_loop_profile() -> Profile:
    """The loop's recipe for the embedded 135M model on 2 cores: SFT by epochs over every
    accepted row (the ``cpu`` profile stops after 4 steps), then a few GRPO steps on the
    hard samples.  Its SFT settings are to be chosen by ``bench/bench_train_sweep.py`` on a
    validation split of our own synthesized data, never on BFCL; until a sweep at volume
    has run, they are a starting point, not a choice."""
    base = _cpu_profile()
    return Profile(
        name="cpu-loop",
        description="The CPU loop's recipe for the embedded model: SFT by epochs over every accepted row "
                    "(learning rate, epochs and batch chosen by bench/bench_train_sweep.py on a validation "
                    "split of our own data: training/RESULTS-sweep.md), then GRPO on hard samples.",
        sft=dataclasses.replace(base.sft, output_dir="var/training/sft-cpu-loop", max_steps=-1,
                                num_train_epochs=2, learning_rate=1e-4, per_device_train_batch_size=2),
        grpo=dataclasses.replace(base.grpo, output_dir="var/training/grpo-cpu-loop", max_steps=8),
        # Refusals in six wordings: the sweep's choice on 27 held-out trajectories of a
        # 128-trajectory run (balanced 47.2% against 42.5% with one wording).
        data=dataclasses.replace(base.data, refusal_wordings=6),
    )


def with_overrides(base: Any, overrides: dict[str, Any] | None = None, **fixed: Any) -> Any:
    """``base`` (trainer settings) with ``overrides`` and ``fixed`` applied, checked by the
    dataclass; a name it does not have raises ``ValueError``.  Accumulation steps set here
    replace a global batch (the two are one choice, made one way or the other).

    >>> with_overrides(SFTRunConfig(global_batch_size=8), {"gradient_accumulation_steps": 2}).global_batch_size
    >>> with_overrides(SFTRunConfig(), {"lr": 1})
    Traceback (most recent call last):
    ...
    ValueError: unknown setting(s) lr for SFTRunConfig
    """
    changes = {**(overrides or {}), **fixed}
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(base)})
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)} for {type(base).__name__}")
    if changes.get("gradient_accumulation_steps") is not None:
        changes["global_batch_size"] = None
    return dataclasses.replace(base, **changes) if changes else base


_PROFILES = {"gpu": _gpu_profile, "cpu": _cpu_profile, "cpu-loop": _cpu_loop_profile}
PROFILE_NAMES = tuple(_PROFILES)


def get_profile(name: str) -> Profile:
    """Return a fresh copy of a named profile.

    >>> get_profile("cpu").sft.use_cpu
    True
    >>> get_profile("tpu")
    Traceback (most recent call last):
    ...
    ValueError: unknown profile 'tpu'; valid profiles: gpu, cpu, cpu-loop
    """
    try:
        factory = _PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}"
        ) from None
    return factory()


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path, **resolved: Any) -> Path:
    """Write ``config`` (a dataclass) and the values resolved at launch as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"config_class": type(config).__name__, **config_to_dict(config), "resolved": resolved}
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    return path


def load_config(path: str | Path) -> SFTRunConfig | GRPORunConfig:
    """Read back a config written by :func:`save_config`."""
    data = json.loads(Path(path).read_text())
    cls_name = data.pop("config_class")
    data.pop("resolved", None)
    classes = {"SFTRunConfig": SFTRunConfig, "GRPORunConfig": GRPORunConfig}
    if cls_name not in classes:
        raise ValueError(f"unknown config class {cls_name!r}; valid: {', '.join(classes)}")
    return classes[cls_name](**data)
