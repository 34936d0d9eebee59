"""The shape of the code: dependencies run one way, and what crosses an app's boundary is public.

The import contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them
against the real import graph.  The planted-violation test proves they can fail.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("inftool_web", "synthesis", "training")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def _modules(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        yield path, name, ast.parse(path.read_text(), filename=str(path))


def _owner(module: str) -> str:
    """The app a module belongs to: inftool_web.<app>, or synthesis.<sub>, or training."""
    parts = module.split(".")
    if parts[0] == "training":
        return "training"
    return ".".join(parts[:2])


def test_the_import_contracts_hold():
    """No upward import between the apps (core at the bottom), no cycle, no Django in the engine."""
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("inftool_web/core/planted.py", "from inftool_web.loop.models import Iteration\n",
         "The apps depend one way"),
        ("inftool_web/synth/planted.py", "from inftool_web.loop import iterations\n",
         "The apps depend one way"),
        ("synthesis/planted.py", "import django.db\n", "Nothing of Django"),
        ("training/planted.py", "from inftool_web.core import events\n", "The web app sits on training"),
    ],
)
def test_a_planted_upward_import_breaks_a_contract(tmp_path, module, line, broken):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / module).write_text(line)
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout


def test_no_private_name_crosses_an_app_boundary():
    """``from inftool_web.synth.services import _lock_key`` in loop is how a circle hides."""
    crossings = []
    for package in PACKAGES:
        for path, name, tree in _modules(package):
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    if node.module.split(".")[0] not in PACKAGES or _owner(node.module) == _owner(name):
                        continue
                    for alias in node.names:
                        if alias.name.startswith("_"):
                            crossings.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}")
    assert not crossings, crossings


def test_imports_inside_functions_say_why():
    """In inftool_web an import belongs at the top of the module, unless it is there for
    start-up cost (an optional or heavy library) and its line says so."""
    unexplained = []
    for path, _name, tree in _modules("inftool_web"):
        lines = path.read_text().splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        comment = " ".join(line.partition("#")[2] for line in lines[sub.lineno - 1:sub.end_lineno])
                        reason = comment.split(" - ", 1)[-1] if comment.strip().startswith("noqa") else comment
                        if len(reason.strip()) < 12:
                            unexplained.append(f"{path.relative_to(ROOT)}:{sub.lineno}")
    assert not unexplained, unexplained
