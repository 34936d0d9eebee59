"""Optional-dependency checks, the default checkpoint and progress reporting."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Called with plain dicts such as {"stage": "train", "step": 3, "max_steps": 10, "loss": 1.2}.
ProgressCallback = Callable[[dict[str, Any]], None]


@cache
def is_vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def report(progress: ProgressCallback | None, **event: Any) -> None:
    """Send ``event`` to ``progress``; a failing callback must not kill a long run."""
    if progress is None:
        return
    try:
        progress(event)
    except Exception:  # noqa: BLE001
        logger.exception("progress callback failed for %s", event.get("stage"))


def default_model_path() -> str:
    """The embedded SmolLM2-135M-Instruct checkpoint (converted from the installed GGUF once)."""
    try:
        from synthesis.llm.embedded import ensure_embedded_checkpoint  # type: ignore[attr-defined]
    except ImportError as exc:
        raise RuntimeError(
            "no model given and the embedded checkpoint helper (synthesis.llm.embedded."
            "ensure_embedded_checkpoint) is unavailable; pass model_name_or_path"
        ) from exc
    return str(ensure_embedded_checkpoint())


def resolve_model_path(model_name_or_path: str) -> str:
    return model_name_or_path or default_model_path()


def offline_hub() -> None:
    """Weights come from installed packages or local folders; never reach the hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
