"""InfTool's exports work with plain Hugging Face tooling on InfTool's checkpoints: the
checkpoint's chat template renders an exported conversation (tools, calls with
``content: null``, tool results) and the calls parse back identically, and TRL's
SFTTrainer trains on the export as ``datasets`` loads it, with no code of ours."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from synthesis.llm.toolcalls import parse_completion
from tests.factories import IterationFactory, tool_use_trajectories

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def checkpoint():
    from synthesis.llm.embedded import ensure_embedded_checkpoint

    return str(ensure_embedded_checkpoint())


@pytest.fixture
def openai_export(tmp_path):
    it = IterationFactory(status="succeeded")
    tool_use_trajectories(it)
    out = tmp_path / "export.jsonl"
    call_command("export_dataset", "--format", "openai", "--iteration", str(it.number), "--out", str(out))
    return it, out


def _assistant_turns(text: str) -> list[str]:
    return [t.split("<|im_end|>")[0] for t in text.split("<|im_start|>assistant\n")[1:]]


def _calls(message: dict) -> list[tuple[str, dict]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls") or []]


def test_an_exported_conversation_renders_and_its_calls_parse_back(checkpoint, openai_export):
    import datasets
    from transformers import AutoTokenizer

    _, path = openai_export
    tok = AutoTokenizer.from_pretrained(checkpoint)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert len(lines) == loaded.num_rows == 14
    assert any(m["role"] == "assistant" and m["content"] is None and m.get("tool_calls")
               for row in lines for m in row["messages"])
    for row, as_loaded in zip(lines, loaded, strict=True):
        # as written, and as `datasets` hands it to TRL (absent keys become nulls)
        for sample in (row, as_loaded):
            text = tok.apply_chat_template(sample["messages"], tools=sample["tools"], tokenize=False)
            assert "<tools>" in text and f'"name": "{sample["tools"][0]["function"]["name"]}"' in text
            expected = [_calls(m) for m in sample["messages"] if m["role"] == "assistant"]
            parsed = [parse_completion(t, mode="strict") for t in _assistant_turns(text)]
            assert [[(c.name, c.arguments) for c in p.calls] for p in parsed] == expected
            assert all(p.well_formed for p in parsed)
            assert text.count("<tool_response>") == sum(m["role"] == "tool" for m in sample["messages"])


def _sft_config(tmp_path, **kw):
    from trl import SFTConfig

    return SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2, max_length=512,
                     use_cpu=True, bf16=False, report_to="none", save_strategy="no", logging_steps=1,
                     dataset_num_proc=None, **kw)


@pytest.mark.slow
def test_plain_sft_trainer_trains_on_the_openai_export(checkpoint, openai_export, tmp_path):
    import datasets
    import torch
    from trl import SFTTrainer

    torch.set_num_threads(2)
    _, path = openai_export
    dataset = datasets.load_dataset("json", data_files=str(path), split="train")
    trainer = SFTTrainer(model=checkpoint, args=_sft_config(tmp_path), train_dataset=dataset)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0


@pytest.mark.slow
def test_plain_sft_trainer_trains_on_the_hf_folder_with_assistant_only_loss(checkpoint, openai_export, tmp_path):
    import datasets
    import torch
    from trl import SFTTrainer

    torch.set_num_threads(2)
    it, _ = openai_export
    folder = tmp_path / "hf"
    call_command("export_dataset", "--format", "hf", "--iteration", str(it.number), "--out", str(folder))
    dataset = datasets.load_dataset(str(folder), split="train")
    assert isinstance(dataset[0]["tools"], str)  # TRL decodes the JSON string column
    trainer = SFTTrainer(model=checkpoint, args=_sft_config(tmp_path, assistant_only_loss=True),
                         train_dataset=dataset)
    labels = trainer.train_dataset[0]["labels"]
    # the template's generation markers: the loss covers the assistant turns only
    assert -100 in labels and any(label != -100 for label in labels)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0
