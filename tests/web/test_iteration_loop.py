"""One turn of the loop through the database: synthesize → SFT → GRPO → BFCL → new checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from inftool_web.loop.iterations import (
    Run,
    iteration_create,
    iteration_evaluate,
    iteration_plan,
    iteration_train,
    synthesis_finished,
    training_dir,
    trajectories_run,
)
from inftool_web.loop.models import EvaluationRun, Iteration, ModelCheckpoint, TrainingRun
from inftool_web.loop.services import checkpoint_register_base
from tests.factories import ApiSourceFactory, ToolFactory
from tests.synthesis.roleplay.fakes import ALL_TOOLS, smart_backend


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(3600)
@pytest.mark.django_db
def test_an_iteration_trains_evaluates_and_hands_its_checkpoint_to_the_next(settings, tmp_path):
    settings.INFTOOL_VAR_DIR = tmp_path
    source = ApiSourceFactory(name="shop.example")
    for t in ALL_TOOLS:
        ToolFactory(source=source, name=t["name"], description=t["description"],
                    input_schema=t["inputSchema"], output_schema=t.get("outputSchema"))
    base = checkpoint_register_base()
    # The cpu profile cut to the fewest steps that still change the weights: the path is
    # under test here, the recipe in bench/bench_loop.py.
    training = {"sft": {"max_steps": 2},
                "grpo": {"max_steps": 1, "per_device_train_batch_size": 2, "num_generations": 2,
                         "max_completion_length": 64}}
    it = iteration_create(config={"count": 6, "profile": "cpu", "eval_limit": 1, "max_turns": 2, "verifiers": 1,
                                  "hard_threshold": 0.99, "eval_categories": ["simple", "irrelevance"],
                                  "training": training})
    it.status = Iteration.Status.SYNTHESIZING
    it.save()
    assert it.input_checkpoint == base
    iteration_plan(iteration_id=it.pk)
    # The model stand-in keeps synthesis fast; training and BFCL below use the real model.
    trajectories_run(trajectory_ids=list(it.trajectories.values_list("pk", flat=True)),
                     backends={"default": smart_backend()})
    assert it.trajectories.filter(verdict="accepted").exists()
    assert synthesis_finished(iteration_id=it.pk, run=Run.QUEUE)
    it.refresh_from_db()
    assert it.status == "training"

    iteration_train(iteration_id=it.pk)
    it.refresh_from_db()
    assert it.status == "evaluating", it.error
    sft = TrainingRun.objects.get(iteration=it, stage="sft")
    assert sft.status == "succeeded" and sft.num_samples > 0
    assert sft.config["trainer"]["model_name_or_path"] == base.path
    assert Path(sft.output_checkpoint.path, "config.json").exists()
    assert Path(sft.output_checkpoint.path).is_relative_to(training_dir(it))
    grpo = TrainingRun.objects.get(iteration=it, stage="grpo")
    assert grpo.status in ("succeeded", "skipped"), grpo.error
    if grpo.status == "succeeded":
        assert grpo.reward_terms and {"format", "execution", "reasoning", "gate"} <= set(grpo.reward_terms[0])
    assert it.output_checkpoint.kind in ("sft", "grpo") and it.output_checkpoint != base

    iteration_evaluate(iteration_id=it.pk)
    it.refresh_from_db()
    assert it.status == "succeeded", it.error
    evs = EvaluationRun.objects.filter(status="succeeded", limit=1)
    assert {e.checkpoint_id for e in evs} == {base.pk, it.output_checkpoint_id}
    for ev in evs:
        assert set(ev.results.values_list("category", flat=True)) == {"simple", "irrelevance"}
        assert all(r.total == 1 for r in ev.results.all())
        assert ev.subset == "mini-v1" and ev.results.get(category="simple").items[0]["id"] == "simple_1"
    # Before and after, paired over the same items (BFCL mini's first item of each category).
    assert {c: r["n"] for c, r in it.comparison["categories"].items()} == {"simple": 1, "irrelevance": 1}
    assert it.comparison["before_checkpoint"] == base.name

    # The loop is closed: the next iteration's Tool Agent is this one's output.
    nxt = iteration_create(config={"count": 1, "profile": "none"})
    assert nxt.input_checkpoint == it.output_checkpoint
    assert ModelCheckpoint.objects.filter(iteration=it).exists()


@pytest.mark.django_db
def test_two_databases_sharing_var_never_train_into_the_same_folder(settings, tmp_path):
    """The suite, a bench and the operator each have an iteration 1; their checkpoints
    must not overwrite each other's."""
    settings.INFTOOL_VAR_DIR = tmp_path
    checkpoint_register_base()
    it = iteration_create(config={"count": 1, "profile": "none"})
    here = training_dir(it)
    assert here.parent.name == connection.settings_dict["NAME"] and here.name == f"iteration-{it.number}"
    name = connection.settings_dict["NAME"]
    try:
        connection.settings_dict["NAME"] = "inftool_other"
        assert training_dir(it) != here
    finally:
        connection.settings_dict["NAME"] = name
