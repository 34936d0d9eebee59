"""The examples in the engine's docstrings hold (they document the rules they test)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import synthesis


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(synthesis.__path__, "synthesis."):
        # the optional GPU backends import what a CPU install does not have
        if info.name.endswith(("vllm_backend", "serving")):
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_doctests(name):
    module = importlib.import_module(name)
    assert doctest.testmod(module).failed == 0
