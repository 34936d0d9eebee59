"""The README's TRL and `datasets` snippets run as written: the blocks marked
``<!-- readme-snippet: NAME -->`` are extracted and run, the shell lines against the test
database (an iteration 1 of tool-use trajectories), each in a scratch folder that stands
for the repository root (``.venv`` and ``manage.py`` linked in, ``var/`` its own)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT, worker_env

SNIPPET_RE = re.compile(r"<!-- readme-snippet: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)


def readme_snippets() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {m["name"]: (m["lang"], m["code"]) for m in SNIPPET_RE.finditer(text)}


def test_the_readme_has_the_snippets():
    snippets = readme_snippets()
    assert {name: lang for name, (lang, _) in snippets.items()} == {
        "export": "bash", "trl": "python", "datasets": "python"}
    assert "SFTTrainer(model=checkpoint" in snippets["trl"][1]
    assert 'load_dataset("json", data_files=' in snippets["trl"][1]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_readme_snippets_run(tmp_path):
    from tests.factories import IterationFactory, tool_use_trajectories

    tool_use_trajectories(IterationFactory(number=1, status="succeeded"))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "manage.py").symlink_to(ROOT / "manage.py")
    env = worker_env(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                     HF_HOME=str(tmp_path / "hf-home"), OMP_NUM_THREADS="2")
    snippets = readme_snippets()

    def run(args, name):
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README snippet {name!r} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    for line in snippets["export"][1].strip().splitlines():
        args = shlex.split(line)
        assert args[0] == ".venv/bin/python"
        run([sys.executable, *args[1:]], "export")  # the venv's python, as the line names it
    assert (tmp_path / "var/exports/iteration-1.jsonl").is_file()
    assert (tmp_path / "var/exports/iteration-1-hf/README.md").is_file()

    for name in ("trl", "datasets"):
        (tmp_path / f"snippet_{name}.py").write_text(snippets[name][1])
    run([sys.executable, "snippet_trl.py"], "trl")  # not trl.py: it would shadow the package
    out = run([sys.executable, "snippet_datasets.py"], "datasets")
    assert "train" in out and "validation" in out
    assert "[('get_weather', {'city': " in out or "[('get_quote'" in out or "[]" in out
    assert os.path.isdir(tmp_path / "var/trl-sft")
