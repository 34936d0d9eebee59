"""bf16 is chosen where the CPU has bf16 instructions and they beat float32 on it, measured:
a Xeon that exposes AVX-512 BF16 without AMX runs bf16 products 1.5-1.9 times slower."""

import pytest

from synthesis.llm.embedded import checkpoint


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv("INFTOOL_CPU_BF16", raising=False)
    checkpoint.cpu_supports_bf16.cache_clear()
    yield
    checkpoint.cpu_supports_bf16.cache_clear()


@pytest.mark.parametrize(("instructions", "speedup", "chosen"), [
    (True, 2.4, True),    # AMX, or AVX-512 BF16 on a CPU that runs it fast
    (True, 0.6, False),   # AVX-512 BF16 slower than float32
    (True, 1.1, False),   # no clear gain
    (False, 9.0, False),  # no bf16 instructions: bf16 would be emulated
])
def test_bf16_only_where_the_cpu_has_it_and_it_is_faster(monkeypatch, instructions, speedup, chosen):
    monkeypatch.setattr(checkpoint, "_cpu_has_amx", lambda: False)
    monkeypatch.setattr(checkpoint, "_cpu_has_bf16_instructions", lambda: instructions)
    monkeypatch.setattr(checkpoint, "bf16_matmul_speedup", lambda: speedup)
    assert checkpoint.cpu_supports_bf16() is chosen
    import torch

    assert checkpoint.resolve_dtype("auto") == (torch.bfloat16 if chosen else torch.float32)


def test_amx_takes_bf16_without_a_measurement_that_load_can_sway(monkeypatch):
    """Under load a busy AMX Xeon measured below 1.2 once, chose float32, and so discarded a
    resumable SFT checkpoint trained in bf16."""
    monkeypatch.setattr(checkpoint, "_cpu_has_amx", lambda: True)
    monkeypatch.setattr(checkpoint, "bf16_matmul_speedup", lambda: 0.9)
    assert checkpoint.cpu_supports_bf16() is True
    monkeypatch.setenv("INFTOOL_CPU_BF16", "0")
    checkpoint.cpu_supports_bf16.cache_clear()
    assert checkpoint.cpu_supports_bf16() is False


@pytest.mark.parametrize(("value", "chosen"), [("1", True), ("0", False), ("false", False), ("yes", True)])
def test_the_environment_overrides_the_measurement(monkeypatch, value, chosen):
    monkeypatch.setenv("INFTOOL_CPU_BF16", value)
    monkeypatch.setattr(checkpoint, "_cpu_has_bf16_instructions", lambda: not chosen)
    monkeypatch.setattr(checkpoint, "bf16_matmul_speedup", lambda: 0.5 if chosen else 3.0)
    assert checkpoint.cpu_supports_bf16() is chosen


def test_the_measured_speedup_is_a_positive_ratio_of_real_products():
    checkpoint.bf16_matmul_speedup.cache_clear()
    ratio = checkpoint.bf16_matmul_speedup(rows=64, inner=64, cols=128, reps=2)
    assert 0.01 < ratio < 100
