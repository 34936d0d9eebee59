"""Fixtures for the training tests: the embedded model checkpoint and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest


def embedded_checkpoint_dir() -> Path:
    """The embedded SmolLM2 checkpoint, converted once from the installed GGUF."""
    from synthesis.llm.embedded import ensure_embedded_checkpoint

    return Path(ensure_embedded_checkpoint())


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
    "inputSchema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _call(name: str, args: dict, call_id: str = "c1") -> dict:
    import json

    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


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
                "verdict": "accepted",
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
            "verdict": "accepted",
            "messages": [
                {"role": "user", "content": "Book me a flight to Rome."},
                {
                    "role": "assistant",
                    "content": "None of the tools can book flights, so I cannot do that.",
                },
            ],
        }
    )
    out.append(
        {
            "id": "par0",
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "mode": "parallel",
            "difficulty": "hard",
            "verdict": "rejected",
            "audit": "accept",
            "messages": [
                {"role": "user", "content": "Weather and time in Oslo?"},
                {
                    "role": "assistant",
                    "content": "Two lookups are needed.",
                    "tool_calls": [
                        _call("get_weather", {"city": "Oslo"}),
                        _call("get_time", {"city": "Oslo"}, "c2"),
                    ],
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
            "verdict": "accepted",
            "audit": "reject",
            "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
        }
    )
    return out


@pytest.fixture
def trajectories() -> list[dict]:
    return make_trajectories()
