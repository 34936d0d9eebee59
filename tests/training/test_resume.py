"""A training stage killed mid-run resumes from its last checkpoint when run again (a
re-delivered task), instead of starting over.  A tiny random-init model keeps it fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.training.conftest import embedded_checkpoint_dir, make_trajectories

# Runs one SFT stage; with --die-at N it SIGKILLs itself when step N is logged (after the
# checkpoint of step N-1 is saved: the Trainer logs before it saves), as a lost worker would.
DRIVER = r"""
import dataclasses, json, os, signal, sys
from training.config import get_profile
from training.dataset import DatasetConfig, build_sft_rows
from training.sft import run_sft

model, out, rows_file, die_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = json.loads(open(rows_file).read())
config = dataclasses.replace(
    get_profile("cpu").sft, model_name_or_path=model, output_dir=out, max_steps=6, save_steps=2,
    max_length=1024, per_device_train_batch_size=1, assistant_only_loss=False, learning_rate=1e-3,
    warmup_ratio=0.0, torch_num_threads=1,
)
events = []

def progress(ev):
    events.append(ev)
    if ev.get("event") == "log" and die_at and ev.get("step") == die_at:
        os.kill(os.getpid(), signal.SIGKILL)

result = run_sft(config, rows, progress=progress)
print("RESULT " + json.dumps({"resumed_from": result.resumed_from,
                              "begin": [e["step"] for e in events if e.get("event") == "begin"],
                              "logged": [e["step"] for e in events if e.get("event") == "log" and "loss" in e.get("metrics", {})]}))
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A one-layer Llama with random weights and SmolLM2's tokenizer (seconds to train)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-model")
    tok = AutoTokenizer.from_pretrained(embedded_checkpoint_dir())
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _run(tiny_model: Path, out: Path, rows_file: Path, die_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-c", DRIVER, str(tiny_model), str(out), str(rows_file), str(die_at)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _result(run: subprocess.CompletedProcess) -> dict:
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    line = next(li for li in run.stdout.splitlines() if li.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
def test_a_killed_sft_stage_resumes_from_its_last_checkpoint(tiny_model, tmp_path):
    from training.dataset import DatasetConfig, build_sft_rows

    rows, _ = build_sft_rows(make_trajectories(), DatasetConfig(hard_weight=1))
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(rows))
    out = tmp_path / "sft"

    killed = _run(tiny_model, out, rows_file, die_at=5)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (out / "checkpoint-4" / "trainer_state.json").is_file()
    assert not (out / "final").exists()

    again = _result(_run(tiny_model, out, rows_file, die_at=0))
    assert again["resumed_from"] == str(out / "checkpoint-4")
    assert again["begin"] == [4]  # not 0: the four steps done are not done again
    assert again["logged"] == [5, 6]
    assert (out / "final" / "model.safetensors").is_file()
    # at most save_total_limit checkpoints are kept
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]


def test_checkpoints_of_another_run_or_an_interrupted_save_are_not_resumed(tmp_path):
    from training._trainer_common import resume_checkpoint

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    assert resume_checkpoint(tmp_path, "run-a") is None  # no key: not this run's
    assert not (tmp_path / "checkpoint-2").exists()
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")  # 4: killed while saving
    assert resume_checkpoint(tmp_path, "run-a") == str(tmp_path / "checkpoint-2")
    assert not (tmp_path / "checkpoint-4").exists()
    assert resume_checkpoint(tmp_path, "run-b") is None  # other settings or rows
    assert not list(tmp_path.glob("checkpoint-*"))
