"""The examples in the training modules' docstrings hold."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    ["training.chat_format", "training.config", "training.dataset", "training.rewards", "training.contamination",
     "training.launch", "training.bfcl_subsets", "training.bfcl_compare", "training.sweep"],
)
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_training_imports_without_django():
    import subprocess
    import sys

    code = (
        "import sys, training.bfcl, training.config, training.contamination, training.dataset, "
        "training.grpo, training.rewards, training.sft; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
