"""An iteration's evaluation stage: both checkpoints on BFCL mini, paired before/after, shown."""

from __future__ import annotations

import pytest

from inftool_web.core.roles import set_role
from inftool_web.loop import stages
from inftool_web.loop.models import EvaluationRun
from synthesis.llm.base import ChatRequest, ChatResult, ToolCall
from synthesis.llm.scripted import ScriptedBackend
from tests.factories import CheckpointFactory, IterationFactory, UserFactory
from training import bfcl
from training.bfcl_subsets import subset_ids

pytestmark = pytest.mark.django_db


def _simple_answers() -> dict[str, ToolCall]:
    """The question of each simple item of BFCL mini -> a call the checker accepts."""
    answers = bfcl.load_answers("simple")
    out = {}
    for entry in bfcl.entries_by_id("simple", subset_ids("mini-v1")["simple"]):
        ((name, params),) = answers[entry["id"]][0].items()
        args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
        out[entry["question"][0][-1]["content"]] = ToolCall(name=name.replace(".", "_"), arguments=args)
    return out


@pytest.fixture
def models(monkeypatch):
    """Two stand-in models by checkpoint path: the base answers in words, the trained one
    calls the right tool for every simple item (and still words for irrelevance)."""
    right = _simple_answers()
    built: list[str | None] = []

    def backend(name, model_path=None, **options):
        built.append(model_path)

        def reply(req: ChatRequest) -> ChatResult:
            call = right.get(req.messages[-1]["content"]) if model_path else None
            if call is None:
                return ChatResult(text="I can't do that with these tools.")
            return ChatResult(text="", tool_calls=[call], finish_reason="tool_calls")

        return ScriptedBackend(default=reply)

    monkeypatch.setattr(stages, "get_backend", backend)
    return built


def test_the_evaluation_stage_pairs_the_input_and_trained_model_on_the_same_items(models, client):
    base = CheckpointFactory(kind="base", name="base")
    trained = CheckpointFactory(kind="sft", name="it1-sft", path="var/it1-sft")
    it = IterationFactory(input_checkpoint=base, output_checkpoint=trained, status="evaluating",
                          config={"eval_limit": 4, "eval_categories": ["simple", "irrelevance"], "seed": 0})
    stages.evaluate(iteration=it, report=lambda **kw: None)

    runs = EvaluationRun.objects.filter(iteration=it)
    assert {(r.checkpoint.name, r.subset) for r in runs} == {("base", "mini-v1"), ("it1-sft", "mini-v1")}
    for run in runs:
        assert run.categories == ["simple", "irrelevance"]
        assert [i["id"] for i in run.results.get(category="simple").items] == subset_ids()["simple"][:4]
    it.refresh_from_db()
    simple = it.comparison["categories"]["simple"]
    assert (simple["n"], simple["before"], simple["after"]) == (4, 0.0, 1.0)
    assert it.comparison["categories"]["irrelevance"]["diff"] == 0
    assert it.comparison["groups"]["non_live_ast"]["diff"] == 1.0
    assert models == [None, "var/it1-sft"]

    # The next iteration starts from the trained model under the next seed: a committed
    # subset does not depend on the seed, so that model is not measured again.
    again = CheckpointFactory(kind="sft", name="it2-sft", path="var/it2-sft")
    nxt = IterationFactory(input_checkpoint=trained, output_checkpoint=again, status="evaluating",
                           config={"eval_limit": 4, "eval_categories": ["simple", "irrelevance"], "seed": 1})
    stages.evaluate(iteration=nxt, report=lambda **kw: None)
    assert models == [None, "var/it1-sft", "var/it2-sft"]
    nxt.refresh_from_db()
    assert nxt.comparison["before_checkpoint"] == "it1-sft" and nxt.comparison["groups"]["non_live_ast"]["diff"] == 0

    user = UserFactory()
    set_role(user, "viewer")
    client.force_login(user)
    page = client.get("/evaluations/").content.decode()
    assert 'id="loop-gain"' in page
    assert "0.0% → 100.0% (<b>+100.0 pts</b>)" in page
    assert "BFCL before and after each iteration" in page


def test_an_evaluation_over_other_categories_is_not_taken_for_the_same_one(models):
    base = CheckpointFactory(kind="base", name="base")
    trained = CheckpointFactory(kind="sft", name="t", path="var/t")
    first = IterationFactory(input_checkpoint=base, output_checkpoint=trained,
                             config={"eval_limit": 2, "eval_categories": ["irrelevance"]})
    stages.evaluate(iteration=first, report=lambda **kw: None)
    second = IterationFactory(input_checkpoint=base, output_checkpoint=trained,
                              config={"eval_limit": 2, "eval_categories": ["simple"]})
    stages.evaluate(iteration=second, report=lambda **kw: None)
    assert models == [None, "var/t", None, "var/t"]
    second.refresh_from_db()
    assert list(second.comparison["categories"]) == ["simple"]


def test_an_iterations_training_overrides_reach_its_trainers(monkeypatch, tmp_path):
    from inftool_web.loop.iteration_config import IterationConfig

    seen = {}

    def train_stage(*, stage, profile, **kwargs):
        seen[stage] = getattr(profile, stage)
        seen["data"] = profile.data
        return None

    monkeypatch.setattr(stages, "train_stage", train_stage)
    monkeypatch.setattr(stages, "contamination_flags", lambda trajectories, report: set())
    it = IterationFactory(config=IterationConfig.from_dict({
        "training": {"sft": {"max_steps": 40, "learning_rate": 1e-4, "lora_r": 16}, "grpo": {"max_steps": 3},
                     "data": {"swap_negatives": 0.5}},
    }).to_dict())
    stages.train(iteration=it, out_root=tmp_path, report=lambda **kw: None,
                 still_running=lambda: True)
    assert (seen["sft"].max_steps, seen["sft"].learning_rate, seen["sft"].lora_r) == (40, 1e-4, 16)
    assert seen["sft"].use_cpu is True  # the rest is the profile's
    assert seen["grpo"].max_steps == 3
    assert seen["data"].swap_negatives == 0.5 and seen["data"].hard_weight == 2.0  # the rest is the profile's
