"""SFT and GRPO run end to end on the embedded model on CPU and change its weights."""

from __future__ import annotations

import dataclasses
import json

import pytest

from training.config import get_profile
from training.dataset import DatasetConfig, build_grpo_rows, build_sft_rows


def _changed(before_dir, after_dir) -> float:
    from safetensors.torch import load_file

    before = load_file(str(before_dir / "model.safetensors"))
    after = load_file(str(after_dir / "model.safetensors"))
    return max(
        (after[k].float() - before[k].float()).abs().max().item() for k in before if k in after
    )


def _assert_renders_tools_and_stops(final) -> None:
    """A saved checkpoint carries the tool-use template and stops at the end of a turn."""
    from transformers import AutoTokenizer, GenerationConfig

    from synthesis.llm.chat_template import renders_tools

    tok = AutoTokenizer.from_pretrained(final)
    assert renders_tools(tok)
    eos = GenerationConfig.from_pretrained(final).eos_token_id
    assert tok.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])


@pytest.mark.slow
def test_training_template_renders_like_the_models_own(checkpoint_dir):
    from transformers import AutoTokenizer

    from synthesis.llm.chat_template import SMOLLM2_CHATML_TEMPLATE, TEMPLATE_MARK
    from training._trainer_common import CHATML_TRAINING_TEMPLATE, training_chat_template

    tok = AutoTokenizer.from_pretrained(checkpoint_dir)
    # The checkpoint's own (tool-use) template carries generation markers: used as it is.
    assert TEMPLATE_MARK in tok.chat_template and training_chat_template(tok) == tok.chat_template
    # A plain ChatML template (SmolLM2's own, as checkpoints converted before had) gets the
    # marked-up copy that renders the same text.
    tok.chat_template = SMOLLM2_CHATML_TEMPLATE
    assert training_chat_template(tok) == CHATML_TRAINING_TEMPLATE
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "<tool_call>\n{}\n</tool_call>"},
        {"role": "user", "content": "<tool_response>\nx\n</tool_response>"},
        {"role": "assistant", "content": "done"},
    ]
    out = tok.apply_chat_template(
        messages,
        chat_template=CHATML_TRAINING_TEMPLATE,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    masked = tok.decode(
        [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    )
    assert masked == "<tool_call>\n{}\n</tool_call><|im_end|>done<|im_end|>"


@pytest.mark.slow
def test_sft_two_steps_change_the_weights(checkpoint_dir, trajectories, tmp_path):
    from training.sft import run_sft

    rows, _ = build_sft_rows(trajectories, DatasetConfig(hard_weight=1))
    config = dataclasses.replace(
        get_profile("cpu").sft,
        model_name_or_path=str(checkpoint_dir),
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        max_length=1024,
        per_device_train_batch_size=2,
        assistant_only_loss=False,
    )
    events = []
    result = run_sft(config, rows, progress=events.append)

    final = tmp_path / "sft" / "final"
    assert result.checkpoint_dir == str(final)
    assert (final / "model.safetensors").exists() and (final / "tokenizer.json").exists()
    assert _changed(checkpoint_dir, final) > 0
    _assert_renders_tools_and_stops(final)
    assert result.metrics["train_loss"] > 0
    saved = json.loads((tmp_path / "sft" / "run_config.json").read_text())
    assert saved["max_length"] == 1024 and saved["resolved"]["gradient_accumulation_steps"] == 1
    assert [e["event"] for e in events if e.get("event") in ("begin", "end")] == ["begin", "end"]


@pytest.mark.slow
def test_cpu_bf16_computes_in_bf16_and_keeps_float32_weights(checkpoint_dir, trajectories, tmp_path):
    """The same first step with and without CPU autocast: the losses differ by bf16's
    rounding only (the same rows, order and weights), and both checkpoints are float32."""
    import torch
    from safetensors.torch import load_file

    from training.sft import run_sft

    rows, _ = build_sft_rows(trajectories, DatasetConfig(hard_weight=1))
    first_loss = {}
    for amp in (False, True):
        out = tmp_path / f"sft-{amp}"
        config = dataclasses.replace(
            get_profile("cpu").sft, model_name_or_path=str(checkpoint_dir), output_dir=str(out),
            max_steps=1, max_length=1024, per_device_train_batch_size=2, cpu_bf16=amp, save_steps=0,
        )
        result = run_sft(config, rows)
        first_loss[amp] = result.metrics["first_loss"]
        assert {t.dtype for t in load_file(str(out / "final" / "model.safetensors")).values()} == {torch.float32}
        assert json.loads((out / "run_config.json").read_text())["resolved"]["cpu_bf16_autocast"] is amp
    assert first_loss[True] != first_loss[False]
    assert abs(first_loss[True] - first_loss[False]) < 0.05 * first_loss[False], first_loss


@pytest.mark.slow
def test_lora_sft_saves_a_merged_checkpoint_that_loads_like_a_full_one(checkpoint_dir, trajectories, tmp_path):
    from safetensors.torch import load_file

    from training.sft import run_sft

    rows, _ = build_sft_rows(trajectories, DatasetConfig(hard_weight=1))
    config = dataclasses.replace(
        get_profile("cpu").sft, model_name_or_path=str(checkpoint_dir), output_dir=str(tmp_path / "sft"),
        max_steps=2, max_length=1024, per_device_train_batch_size=2, assistant_only_loss=False,
        learning_rate=1e-3, lora_r=4, lora_target_modules="q_proj,v_proj",
    )
    result = run_sft(config, rows)

    final = tmp_path / "sft" / "final"
    assert not (final / "adapter_config.json").exists()  # merged, not an adapter
    before, after = load_file(str(checkpoint_dir / "model.safetensors")), load_file(str(final / "model.safetensors"))
    assert set(after) == set(before)  # the base model's own tensor names, no lora_A/lora_B
    moved = {k for k in before if (after[k].float() - before[k].float()).abs().max().item() > 0}
    # Only the adapted projections changed; embeddings, MLPs and norms are the base model's.
    assert moved and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in moved), sorted(moved)[:5]
    _assert_renders_tools_and_stops(final)
    assert json.loads((tmp_path / "sft" / "run_config.json").read_text())["lora_r"] == 4
    assert result.metrics["train_loss"] > 0


def test_lora_settings_are_checked():
    base = get_profile("cpu").sft
    with pytest.raises(ValueError, match="lora_r"):
        dataclasses.replace(base, lora_r=-1)
    with pytest.raises(ValueError, match="lora_dropout"):
        dataclasses.replace(base, lora_r=8, lora_dropout=1.5)
    from training.sft import lora_config

    assert lora_config(base) is None
    cfg = lora_config(dataclasses.replace(base, lora_r=8, lora_target_modules="q_proj, v_proj"))
    assert cfg.r == 8 and set(cfg.target_modules) == {"q_proj", "v_proj"}


@pytest.mark.slow
def test_grpo_two_steps_change_the_weights(checkpoint_dir, trajectories, tmp_path):
    from training.grpo import run_grpo

    rows, _ = build_grpo_rows(trajectories)
    config = dataclasses.replace(
        get_profile("cpu").grpo,
        model_name_or_path=str(checkpoint_dir),
        output_dir=str(tmp_path / "grpo"),
        max_steps=2,
        # four samples a prompt at temperature 1: a group whose samples all score alike has
        # no advantage and moves nothing (two samples of 64 tokens did, once, in CI)
        per_device_train_batch_size=8,
        num_generations=4,
        temperature=1.0,
        max_completion_length=64,
        max_prompt_length=None,
    )
    result = run_grpo(config, rows)

    assert _changed(checkpoint_dir, tmp_path / "grpo" / "final") > 0
    _assert_renders_tools_and_stops(tmp_path / "grpo" / "final")
    assert len(result.reward_terms) == 2 * 8
    assert set(result.reward_terms[0]) >= {
        "step",
        "id",
        "format",
        "execution",
        "reasoning",
        "gate",
        "total",
    }
    lines = (tmp_path / "grpo" / "reward_terms.jsonl").read_text().splitlines()
    assert len(lines) == len(result.reward_terms)
    assert "reward_total_mean" in result.metrics


def test_rows_longer_than_max_length_are_left_out_not_cut(checkpoint_dir, trajectories, tmp_path):
    """A row cut at max_length loses its reply (the end), so it is left out and said so."""
    from transformers import AutoTokenizer

    from training.sft import rows_that_fit, run_sft

    tok = AutoTokenizer.from_pretrained(checkpoint_dir)
    rows, _ = build_sft_rows(trajectories, DatasetConfig(hard_weight=1))
    lengths = [len(tok(tok.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)["input_ids"])
               for r in rows]
    cut = max(lengths) - 1
    kept, dropped = rows_that_fit(tok, rows, cut)
    assert dropped == sum(n > cut for n in lengths) > 0
    assert len(kept) == sum(n <= cut for n in lengths) > 0
    assert rows_that_fit(tok, rows, max(lengths)) == (rows, 0)
    config = dataclasses.replace(get_profile("cpu").sft, model_name_or_path=str(checkpoint_dir),
                                 output_dir=str(tmp_path / "sft"), max_length=min(lengths) - 1)
    with pytest.raises(ValueError, match="no SFT row fits"):
        run_sft(config, rows)


def test_grpo_leaves_out_prompts_whose_reference_cannot_fit_the_completion(checkpoint_dir, tmp_path):
    """With the CPU profile's 64 completion tokens every Azure call (about 90 tokens) and
    every three-call parallel answer was cut before it closed: all of its group scored 0 and
    taught nothing.  Such prompts are left out and said so; a refusal's always fits."""
    from transformers import AutoTokenizer

    from training.dataset import NoTrainableRows
    from training.grpo import _drop_unreachable_references, run_grpo

    tok = AutoTokenizer.from_pretrained(checkpoint_dir)
    call = {"name": "ConnectionMonitors_UpdateTags", "arguments": {
        "resourceGroupName": "rg-billing-prod", "networkWatcherName": "billing-watcher-prod",
        "connectionMonitorName": "billing-monitor-prod", "tags": {"env": "prod"}}}
    short = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    rows = [{"prompt": [{"role": "user", "content": "Weather in Oslo?"}], "reference_calls": json.dumps(ref), "mode": mode, "id": str(i)}
            for i, (ref, mode) in enumerate([([short], "single"), ([call], "single"), ([short] * 3, "parallel"),
                                             ([], "irrelevance")])]
    kept, dropped = _drop_unreachable_references(rows, tok, 64)
    assert [r["id"] for r in kept] == ["0", "3"] and dropped == 2
    kept, dropped = _drop_unreachable_references(rows, tok, 160)
    assert dropped == 0
    # nothing left: a clear error before any model loads (the loop marks the stage skipped)
    config = dataclasses.replace(get_profile("cpu").grpo, model_name_or_path=str(checkpoint_dir),
                                 output_dir=str(tmp_path / "grpo"), max_completion_length=8)
    with pytest.raises(NoTrainableRows, match="max_completion_length"):
        run_grpo(config, rows[:3])


@pytest.mark.slow
def test_grpo_screening_leaves_out_prompts_the_starting_model_already_answers(checkpoint_dir):
    """In the twenty-first session's loop, 5 of 8 GRPO steps drew prompts the SFT model already
    answered: their four samples scored alike and moved nothing.  Screening answers each prompt
    greedily first and keeps the ones it gets wrong, topped up with the others if too few."""
    from synthesis.llm.toolcalls import parse_completion
    from training.grpo import screen_solved
    from training.sweep import embedded_generate

    greedy = embedded_generate(48, 2)
    asked: list[int] = []

    def generate(prompts):
        asked.append(len(prompts))
        return greedy(str(checkpoint_dir), prompts)

    prompts = [[{"role": "system", "content": "Call get_weather(city) when asked about the weather."},
                {"role": "user", "content": f"What is the weather in {city}?"}] for city in ("Oslo", "Lima")]
    # what the model itself answers, greedily: that answer "solves" its prompt
    answers = [[{"name": c.name, "arguments": c.arguments} for c in parse_completion(text, mode="lenient").calls]
               for text in generate(prompts)]
    wrong = [{"name": "get_time", "arguments": {"city": "Zzyzx"}}]
    rows = [
        {"prompt": prompts[0], "reference_calls": json.dumps(answers[0]), "mode": "single", "id": "solved-0"},
        {"prompt": prompts[1], "reference_calls": json.dumps(wrong), "mode": "single", "id": "unsolved"},
        {"prompt": prompts[1], "reference_calls": json.dumps(answers[1]), "mode": "single", "id": "solved-1"},
    ]
    kept, seen = screen_solved(rows, generate, need=1, chunk=8)
    assert [r["id"] for r in kept] == ["unsolved"]
    assert seen == {"screened": 3, "solved": 2, "unsolved": 1}
    # too few unsolved: topped up with solved ones
    kept, _ = screen_solved(rows, generate, need=2, chunk=8)
    assert kept[0]["id"] == "unsolved" and kept[1]["id"].startswith("solved") and len(kept) == 2
    # enough found early: later chunks are not generated
    asked.clear()
    _, seen = screen_solved(rows, generate, need=1, chunk=1, seed=3)
    assert seen["unsolved"] == 1 and len(asked) == seen["screened"] <= 3
