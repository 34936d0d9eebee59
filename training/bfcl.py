"""BFCL V3 evaluation with the data and checkers of the ``bfcl-eval==2025.7.9`` package.

The model is any :class:`synthesis.llm.base.LLMBackend`; it runs in function-calling (FC)
mode: BFCL's function docs become tools, the backend returns structured calls, and those
are scored exactly as BFCL scores an FC model:

- single-turn AST categories (simple, multiple, parallel, parallel_multiple, java,
  javascript, live_simple, live_multiple, live_parallel, live_parallel_multiple) with
  ``ast_checker`` (``eval_runner.ast_file_runner``);
- irrelevance, live_irrelevance (correct iff no call) and live_relevance (correct iff at
  least one call), as ``eval_runner.relevance_file_runner``;
- multi_turn_base / miss_func / miss_param / long_context: the FC inference loop of
  ``BaseHandler.inference_multi_turn_FC`` (calls executed against BFCL's simulated API
  classes with ``execute_multi_turn_func_call``, results fed back, at most
  ``MAXIMUM_STEP_LIMIT`` steps a turn, held-out functions added at their turn), then
  ``multi_turn_checker`` as in ``eval_runner.multi_turn_runner``.

Function names with dots are offered with underscores (BFCL's ``convert_to_tool`` for
models that cannot take dots) and the checker maps them back through
``underscore_to_dot``, as for BFCL's own FC handlers.

The slim install (``--no-deps``) cannot import ``bfcl_eval.constants.model_config`` (it
imports every vendor SDK through the model handlers), and the AST checker imports it only
to read ``MODEL_CONFIG_MAPPING[model_name].underscore_to_dot``; a stand-in module is put
in ``sys.modules`` before the checker is imported.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import sys
import types
import uuid
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from synthesis.llm.base import ChatRequest, ChatResult, LLMBackend, LLMError
from synthesis.llm.toolcalls import parse_completion
from training import bfcl_subsets
from training.utils import ProgressCallback, repo_root, report

logger = logging.getLogger(__name__)

BFCL_VERSION = "2025.7.9"
NON_LIVE = (
    "simple",
    "multiple",
    "parallel",
    "parallel_multiple",
    "java",
    "javascript",
    "irrelevance",
)
LIVE = (
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_irrelevance",
    "live_relevance",
)
MULTI_TURN = (
    "multi_turn_base",
    "multi_turn_miss_func",
    "multi_turn_miss_param",
    "multi_turn_long_context",
)
CATEGORIES = NON_LIVE + LIVE + MULTI_TURN
RELEVANCE_CATEGORIES = ("irrelevance", "live_irrelevance", "live_relevance")
# Requests an iteration's evaluation hands the backend at once: the embedded scheduler keeps
# its batch full from them, and a single-turn item is one request.
EVAL_BATCH = 64


# ---------------------------------------------------------------- the package


@dataclass(frozen=True)
class _CheckerModelConfig:
    underscore_to_dot: bool = True


class _AnyModel(dict):
    """Every model name maps to an FC model that takes underscores for dots."""

    def __missing__(self, key: str) -> _CheckerModelConfig:
        return _CheckerModelConfig()


def _install_model_config_stub() -> None:
    name = "bfcl_eval.constants.model_config"
    if name in sys.modules:
        return
    stub = types.ModuleType(name)
    stub.__doc__ = "Stand-in: the checker reads only MODEL_CONFIG_MAPPING[name].underscore_to_dot."
    stub.MODEL_CONFIG_MAPPING = _AnyModel()  # type: ignore[attr-defined]
    sys.modules[name] = stub


@cache
def _bfcl() -> types.SimpleNamespace:
    # eval_config creates result/ and score/ folders under BFCL_PROJECT_ROOT at import time;
    # keep them in var/ rather than inside site-packages.
    root = repo_root() / "var" / "bfcl"
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(root))
    _install_model_config_stub()
    from bfcl_eval import utils as bfcl_utils
    from bfcl_eval.constants import category_mapping, default_prompts, eval_config, type_mappings
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker
    from bfcl_eval.model_handler import utils as handler_utils
    from bfcl_eval.model_handler.model_style import ModelStyle

    return types.SimpleNamespace(
        TEST_FILE_MAPPING=category_mapping.TEST_FILE_MAPPING,
        MULTI_TURN_FUNC_DOC_FILE_MAPPING=category_mapping.MULTI_TURN_FUNC_DOC_FILE_MAPPING,
        DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC=default_prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC,
        MAXIMUM_STEP_LIMIT=default_prompts.MAXIMUM_STEP_LIMIT,
        PROMPT_PATH=eval_config.PROMPT_PATH,
        POSSIBLE_ANSWER_PATH=eval_config.POSSIBLE_ANSWER_PATH,
        MULTI_TURN_FUNC_DOC_PATH=eval_config.MULTI_TURN_FUNC_DOC_PATH,
        GORILLA_TO_OPENAPI=type_mappings.GORILLA_TO_OPENAPI,
        ast_checker=ast_checker,
        multi_turn_utils=multi_turn_utils,
        multi_turn_checker=multi_turn_checker,
        ModelStyle=ModelStyle,
        convert_to_function_call=handler_utils.convert_to_function_call,
        convert_to_tool=handler_utils.convert_to_tool,
        func_doc_language_specific_pre_processing=handler_utils.func_doc_language_specific_pre_processing,
        is_empty_output=bfcl_utils.is_empty_output,
        is_function_calling_format_output=bfcl_utils.is_function_calling_format_output,
        load_file=bfcl_utils.load_file,
    )


def load_entries(category: str) -> list[dict[str, Any]]:
    """A category's test entries, multi-turn ones with their function docs attached."""
    _check_category(category)
    b = _bfcl()
    entries = b.load_file(b.PROMPT_PATH / b.TEST_FILE_MAPPING[category])
    if category in MULTI_TURN:
        entries = [_attach_multi_turn_docs(e) for e in entries]
    return entries


def load_answers(category: str) -> dict[str, Any]:
    """``{id: ground_truth}`` from ``data/possible_answer`` (empty for relevance categories)."""
    _check_category(category)
    b = _bfcl()
    path = b.POSSIBLE_ANSWER_PATH / b.TEST_FILE_MAPPING[category]
    if not path.exists():
        return {}
    return {e["id"]: e["ground_truth"] for e in b.load_file(path)}


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise ValueError(f"unknown BFCL V3 category {category!r}; valid: {', '.join(CATEGORIES)}")


def _attach_multi_turn_docs(entry: dict[str, Any]) -> dict[str, Any]:
    # As _llm_response_generation.process_multi_turn_test_case: docs of the involved
    # classes, minus the held-out ones, which move to ``missed_function`` by turn.
    b = _bfcl()
    entry = copy.deepcopy(entry)
    entry["function"] = []
    for cls in entry["involved_classes"]:
        entry["function"].extend(
            b.load_file(b.MULTI_TURN_FUNC_DOC_PATH / b.MULTI_TURN_FUNC_DOC_FILE_MAPPING[cls])
        )
    if "missed_function" in entry:
        for turn, names in entry["missed_function"].items():
            entry["missed_function"][turn] = []
            for name in names:
                for i, doc in enumerate(entry["function"]):
                    if doc["name"] == name:
                        entry["missed_function"][turn].append(doc)
                        entry["function"].pop(i)
                        break
    return entry


def bfcl_functions_to_tools(functions: list[dict[str, Any]], category: str) -> list[dict[str, Any]]:
    """BFCL function docs as MCP tools, the way BFCL compiles tools for an FC model:
    language hints, Gorilla types to JSON Schema (``dict`` -> ``object``, ``float`` ->
    ``number``...), dots in names -> underscores."""
    b = _bfcl()
    docs = b.func_doc_language_specific_pre_processing(copy.deepcopy(functions), category)
    compiled = b.convert_to_tool(docs, b.GORILLA_TO_OPENAPI, b.ModelStyle.OSSMODEL)
    return [
        {"name": t["name"], "description": t.get("description", ""), "inputSchema": t["parameters"]}
        for t in compiled
    ]


# ---------------------------------------------------------------- results


@dataclass
class BFCLItemResult:
    id: str
    category: str
    valid: bool
    error_type: str | None = None
    error: Any = None
    # Single-turn: [{name: arguments}, ...]; multi-turn: per turn, per step, those lists.
    model_output: Any = None
    raw_text: Any = None


@dataclass
class BFCLCategoryScore:
    correct: int
    total: int
    accuracy: float


@dataclass
class BFCLResult:
    categories: dict[str, BFCLCategoryScore]
    overall: dict[str, Any]
    items: list[BFCLItemResult]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """A Markdown table of per-category accuracy."""
        lines = ["| category | correct | total | accuracy |", "|---|---:|---:|---:|"]
        for name, s in self.categories.items():
            lines.append(f"| {name} | {s.correct} | {s.total} | {s.accuracy:.1%} |")
        return "\n".join(lines)


# ---------------------------------------------------------------- inference episodes

Episode = Generator[ChatRequest, ChatResult, Any]


def _calls_of(result: ChatResult) -> list[dict[str, Any]]:
    """The reply's calls: the backend's, else those its text spells, read as synthesis
    reads them (the lenient parser), so a call synthesis accepts is scored here."""
    calls = list(result.tool_calls)
    if not calls and result.text:
        calls = parse_completion(result.text, mode="lenient").calls
    return [{c.name: c.arguments} for c in calls]


def _single_turn_episode(entry: dict[str, Any], category: str, max_tokens: int) -> Episode:
    tools = bfcl_functions_to_tools(entry["function"], category)
    result = yield ChatRequest(
        messages=list(entry["question"][0]), tools=tools, max_tokens=max_tokens
    )
    return result


def _multi_turn_episode(
    entry: dict[str, Any], category: str, max_tokens: int, tag: str, max_steps: int
) -> Episode:
    """BaseHandler.inference_multi_turn_FC, with the backend as the model."""
    b = _bfcl()
    entry = copy.deepcopy(entry)
    holdout: dict[str, list] = entry.get("missed_function", {})
    long_context = "long_context" in category or "composite" in category
    tools = bfcl_functions_to_tools(entry["function"], category)
    messages: list[dict[str, Any]] = []
    all_turns: list[list[dict[str, Any]]] = []
    for turn_idx, turn_messages in enumerate(entry["question"]):
        if str(turn_idx) in holdout:
            entry["function"].extend(holdout[str(turn_idx)])
            tools = bfcl_functions_to_tools(entry["function"], category)
            turn_messages = [
                {"role": "user", "content": b.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC}
            ]
        messages.extend(turn_messages)
        steps: list[dict[str, Any]] = []
        force_quit = False
        count = 0
        while True:
            result = yield ChatRequest(messages=list(messages), tools=tools, max_tokens=max_tokens)
            calls = _calls_of(result)
            steps.append(
                {
                    "text": result.text,
                    "calls": calls,
                    "error": str(result.error) if result.error else None,
                }
            )
            if not calls:
                # An empty or undecodable response ends the turn.
                messages.append({"role": "assistant", "content": result.text or ""})
                break
            call_ids = [f"call_{turn_idx}_{count}_{i}" for i in range(len(calls))]
            messages.append(
                {
                    "role": "assistant",
                    "content": result.text or "",
                    "tool_calls": [
                        {
                            "id": cid,
                            "type": "function",
                            "function": {
                                "name": next(iter(c)),
                                "arguments": json.dumps(next(iter(c.values()))),
                            },
                        }
                        for cid, c in zip(call_ids, calls, strict=True)
                    ],
                }
            )
            execution_results, _ = b.multi_turn_utils.execute_multi_turn_func_call(
                b.convert_to_function_call(calls),
                entry["initial_config"],
                entry["involved_classes"],
                tag,
                entry["id"],
                long_context=long_context,
                is_evaL_run=False,
            )
            for cid, out in zip(call_ids, execution_results, strict=False):
                messages.append({"role": "tool", "tool_call_id": cid, "content": out})
            count += 1
            if count > max_steps:
                force_quit = True
                break
        all_turns.append(steps)
        if force_quit:
            break
    return all_turns


def _drive(
    episodes: list[Episode],
    backend: LLMBackend,
    batch_size: int,
    on_done,
) -> list[Any]:
    """Run episodes concurrently, sending at most ``batch_size`` requests per batch call."""
    outputs: list[Any] = [None] * len(episodes)
    pending = list(range(len(episodes)))
    pending.reverse()
    active: dict[int, ChatRequest] = {}
    while pending or active:
        while pending and len(active) < batch_size:
            i = pending.pop()
            try:
                active[i] = next(episodes[i])
            except StopIteration as stop:
                outputs[i] = stop.value
                on_done(i, stop.value)
        if not active:
            continue
        order = list(active)
        try:
            replies = [choices[0] for choices in backend.complete_batch([active[i] for i in order])]
        except LLMError as exc:
            logger.warning("backend failed on a batch of %d: %s", len(order), exc)
            replies = [ChatResult(text="", finish_reason="error") for _ in order]
        for i, reply in zip(order, replies, strict=True):
            try:
                active[i] = episodes[i].send(reply)
            except StopIteration as stop:
                del active[i]
                outputs[i] = stop.value
                on_done(i, stop.value)
    return outputs


# ---------------------------------------------------------------- scoring


def _language(category: str) -> str:
    return {"java": "Java", "javascript": "JavaScript"}.get(category, "Python")


def score_single_turn(
    entry: dict[str, Any], category: str, result: ChatResult, answer: Any, model_name: str
) -> BFCLItemResult:
    """Score one single-turn reply as eval_runner.ast_file_runner / relevance_file_runner do."""
    b = _bfcl()
    decoded = _calls_of(result)
    item = BFCLItemResult(
        id=entry["id"], category=category, valid=False, model_output=decoded, raw_text=result.text
    )
    if category in RELEVANCE_CATEGORIES:
        contains_call = bool(decoded) and not b.is_empty_output(decoded)
        item.valid = not contains_call if "irrelevance" in category else contains_call
        if not item.valid:
            item.error_type = (
                "irrelevance_error:decoder_success"
                if "irrelevance" in category
                else "relevance_error:decoder_failed"
            )
            item.error = (
                ["Valid syntax. Successfully decode AST when it should not."]
                if contains_call
                else ["Invalid syntax. Failed to decode AST when it should have."]
            )
        return item
    if not decoded:
        item.error_type = "ast_decoder:decoder_failed"
        detail = f" {result.error}" if result.error else ""
        item.error = [
            f"Invalid syntax. Failed to decode AST. The model made no function call.{detail}"
        ]
        return item
    if not b.is_function_calling_format_output(decoded):
        item.error_type = "ast_decoder:decoder_wrong_output_format"
        item.error = ["Did not output in the specified format."]
        return item
    try:
        checked = b.ast_checker(
            entry["function"], decoded, answer, _language(category), category, model_name
        )
    except Exception as exc:  # noqa: BLE001 - the checker raises on odd outputs (e.g. Java parsing)
        checked = {
            "valid": False,
            "error": [f"checker error: {exc}"],
            "error_type": "ast_checker:exception",
        }
    item.valid = bool(checked["valid"])
    if not item.valid:
        item.error_type = checked.get("error_type")
        item.error = checked.get("error")
    return item


def score_multi_turn(
    entry: dict[str, Any],
    category: str,
    turns: list[list[dict[str, Any]]],
    ground_truth: list[list[str]],
    tag: str,
) -> BFCLItemResult:
    """Score one multi-turn conversation as eval_runner.multi_turn_runner does."""
    b = _bfcl()
    item = BFCLItemResult(
        id=entry["id"],
        category=category,
        valid=False,
        model_output=[[s["calls"] for s in steps] for steps in turns],
        raw_text=[[s["text"] for s in steps] for steps in turns],
    )
    if len(turns) != len(ground_truth):
        item.error_type = "multi_turn:force_terminated"
        item.error = (
            f"Model was force-terminated during inference phase. The length of the model result turns "
            f"({len(turns)}) does not match the length of the ground truth turns ({len(ground_truth)})."
        )
        return item
    decoded_turns = []
    for steps in turns:
        decoded_steps = []
        for step in steps:
            if not step["calls"]:
                continue
            decoded = b.convert_to_function_call(step["calls"])
            if b.multi_turn_utils.is_empty_execute_response(decoded):
                continue
            decoded_steps.append(decoded)
        decoded_turns.append(decoded_steps)
    test_entry = {k: entry[k] for k in ("id", "initial_config", "involved_classes")}
    try:
        checked = b.multi_turn_checker(decoded_turns, ground_truth, test_entry, category, tag)
    except Exception as exc:  # noqa: BLE001 - execution of odd calls can break the checker's asserts
        checked = {
            "valid": False,
            "error_message": f"checker error: {exc}",
            "error_type": "multi_turn:checker_error",
        }
    item.valid = bool(checked.get("valid"))
    if not item.valid:
        item.error_type = checked.get("error_type")
        item.error = checked.get("error_message")
    return item


def _forget_instances(tag: str) -> None:
    # execute_multi_turn_func_call keeps each simulated API instance in its module globals
    # under a name built from the model name and entry id; drop ours so that a later run
    # (or a retry) starts from the initial state.
    g = vars(_bfcl().multi_turn_utils)
    for key in [k for k in g if k.startswith(tag)]:
        del g[key]


# ---------------------------------------------------------------- aggregation


def _weighted(scores: list[dict[str, Any]]) -> dict[str, Any]:
    total = sum(s["total_count"] for s in scores)
    acc = sum(s["accuracy"] * s["total_count"] for s in scores) / total if total else 0.0
    return {"accuracy": acc, "total_count": total, "missing": any(s["missing"] for s in scores)}


def _unweighted(scores: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "accuracy": sum(s["accuracy"] for s in scores) / len(scores),
        "total_count": sum(s["total_count"] for s in scores),
        "missing": any(s["missing"] for s in scores),
    }


@cache
def category_size(category: str) -> int:
    b = _bfcl()
    return len(b.load_file(b.PROMPT_PATH / b.TEST_FILE_MAPPING[category]))


def aggregate_scores(categories: dict[str, BFCLCategoryScore]) -> dict[str, Any]:
    """The BFCL V3 summary scores, as ``eval_runner_helper.generate_leaderboard_csv`` computes them.

    Non-live: simple = unweighted mean of (python simple, java, javascript); AST summary =
    unweighted mean of (simple, multiple, parallel, parallel_multiple); overall non-live adds
    irrelevance to that unweighted mean.  Live: count-weighted means (AST summary over the four
    AST categories; overall adds live_irrelevance and live_relevance).  Multi-turn: unweighted
    mean of the four.  Overall = unweighted mean of (live, non-live, multi-turn).
    Relevance = live_relevance; irrelevance = unweighted mean of (irrelevance, live_irrelevance).
    A category not evaluated counts as 0 with its full size (``get_category_score``) and the
    groups it enters are marked ``missing``.
    """

    def get(name: str) -> dict[str, Any]:
        if name in categories:
            s = categories[name]
            return {"accuracy": s.accuracy, "total_count": s.total, "missing": False}
        return {"accuracy": 0.0, "total_count": category_size(name), "missing": True}

    simple = _unweighted([get("simple"), get("java"), get("javascript")])
    ast_non_live = _unweighted([simple, get("multiple"), get("parallel"), get("parallel_multiple")])
    non_live = _unweighted(
        [simple, get("multiple"), get("parallel"), get("parallel_multiple"), get("irrelevance")]
    )
    live_ast = _weighted([get(c) for c in LIVE[:4]])
    live = _weighted([get(c) for c in LIVE])
    multi_turn = _unweighted([get(c) for c in MULTI_TURN])
    overall = _unweighted([live, non_live, multi_turn])
    irrelevance = _unweighted([get("irrelevance"), get("live_irrelevance")])
    relevance = get("live_relevance")
    groups = {
        "overall": overall,
        "non_live": non_live,
        "non_live_ast": ast_non_live,
        "non_live_simple": simple,
        "live": live,
        "live_ast": live_ast,
        "multi_turn": multi_turn,
        "relevance": relevance,
        "irrelevance": irrelevance,
    }
    return {
        name: {"accuracy": g["accuracy"], "complete": not g["missing"]}
        for name, g in groups.items()
    }


def subset_scores(subset: str, categories: dict[str, BFCLCategoryScore]) -> dict[str, Any]:
    """A committed subset's own summary: BFCL's full-size aggregation counts every category
    the subset leaves out as 0, so a subset is summed up over what it holds. ``non_live_ast``
    is the unweighted mean of simple, multiple, parallel and parallel_multiple (python only);
    ``mean`` the unweighted mean of every category the subset holds."""
    held = [c for c in bfcl_subsets.get_subset(subset).counts if c in categories]
    ast = [c for c in NON_LIVE[:4] if c in categories]

    def mean(names: list[str]) -> float | None:
        return sum(categories[c].accuracy for c in names) / len(names) if names else None

    return {
        "name": subset,
        "complete": set(held) == set(bfcl_subsets.get_subset(subset).counts),
        "non_live_ast": mean(ast),
        "irrelevance": categories["irrelevance"].accuracy if "irrelevance" in categories else None,
        "mean": mean(held),
    }


# ---------------------------------------------------------------- the evaluation


def select_entries(category: str, limit: int | None, seed: int) -> list[dict[str, Any]]:
    """All entries, or a fixed seeded sample of ``limit`` of them (in the file's order)."""
    entries = load_entries(category)
    if limit is None or limit >= len(entries):
        return entries
    rng = random.Random(f"{seed}:{category}")
    keep = set(rng.sample(range(len(entries)), limit))
    return [e for i, e in enumerate(entries) if i in keep]


def entries_by_id(category: str, ids: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    """The entries of ``category`` named by ``ids``, in that order; an unknown id is an error."""
    by_id = {e["id"]: e for e in load_entries(category)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise RuntimeError(f"BFCL data has no {category} items {missing[:3]} (bfcl-eval {BFCL_VERSION})")
    return [by_id[i] for i in ids]


def run_bfcl_eval(
    backend: LLMBackend,
    *,
    categories: list[str] | tuple[str, ...] | None = None,
    limit: int | dict[str, int] | None = None,
    subset: str | None = None,
    seed: int = 0,
    batch_size: int = 8,
    max_tokens: int = 256,
    max_steps_per_turn: int | None = None,
    progress: ProgressCallback | None = None,
) -> BFCLResult:
    """Evaluate ``backend`` on BFCL V3.

    ``limit``: evaluate a fixed seeded sample of that many entries per category (an int,
    or ``{category: n}``; categories not in the dict run in full).
    ``subset``: evaluate the items of a committed subset (``"mini-v1"``, BFCL mini, see
    :mod:`training.bfcl_subsets`); ``categories`` may narrow it, ``limit`` keeps the first
    that many of each category's committed ids, and ``seed`` does not apply.
    ``max_steps_per_turn``: multi-turn step cap (default BFCL's MAXIMUM_STEP_LIMIT, 20).
    ``progress`` gets ``{"stage": "bfcl", "event": "item", "category", "done", "total", "valid"}``.
    """
    b = _bfcl()
    fixed_ids = bfcl_subsets.subset_ids(subset) if subset is not None else None
    if fixed_ids is not None:
        cats = [c for c in fixed_ids if not categories or c in categories]
    else:
        cats = list(categories) if categories else list(CATEGORIES)
    for c in cats:
        _check_category(c)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    steps_cap = b.MAXIMUM_STEP_LIMIT if max_steps_per_turn is None else max_steps_per_turn
    tag = f"inftool_{uuid.uuid4().hex[:12]}"
    model_name = tag  # the stand-in model config answers for any name
    scores: dict[str, BFCLCategoryScore] = {}
    items: list[BFCLItemResult] = []
    for category in cats:
        n = limit.get(category) if isinstance(limit, dict) else limit
        if fixed_ids is not None:
            entries = entries_by_id(category, fixed_ids[category][:n])
        else:
            entries = select_entries(category, n, seed)
        answers = load_answers(category)
        missing = [
            e["id"]
            for e in entries
            if category not in RELEVANCE_CATEGORIES and e["id"] not in answers
        ]
        if missing:
            raise RuntimeError(f"BFCL data has no possible answer for {missing[:3]} in {category}")
        report(progress, stage="bfcl", event="category", category=category, total=len(entries))
        cat_items: list[BFCLItemResult | None] = [None] * len(entries)

        def on_done(
            i: int,
            output: Any,
            entries=entries,
            category=category,
            cat_items=cat_items,
            answers=answers,
        ) -> None:
            entry = entries[i]
            if category in MULTI_TURN:
                item = score_multi_turn(entry, category, output, answers[entry["id"]], tag)
                _forget_instances(tag)
            else:
                item = score_single_turn(
                    entry, category, output, answers.get(entry["id"]), model_name
                )
            cat_items[i] = item
            done = sum(x is not None for x in cat_items)
            report(
                progress,
                stage="bfcl",
                event="item",
                category=category,
                id=entry["id"],
                valid=item.valid,
                done=done,
                total=len(entries),
            )

        if category in MULTI_TURN:
            # Entries share BFCL's global instance table only through distinct ids, so they
            # can run side by side; instances are dropped after each is scored.
            episodes = [
                _multi_turn_episode(e, category, max_tokens, tag, steps_cap) for e in entries
            ]
        else:
            episodes = [_single_turn_episode(e, category, max_tokens) for e in entries]
        try:
            _drive(episodes, backend, batch_size, on_done)
        finally:
            _forget_instances(tag)
        done_items = [x for x in cat_items if x is not None]
        correct = sum(x.valid for x in done_items)
        scores[category] = BFCLCategoryScore(
            correct=correct,
            total=len(done_items),
            accuracy=correct / len(done_items) if done_items else 0.0,
        )
        items.extend(done_items)
    settings = {
        "bfcl_eval": BFCL_VERSION,
        "model_id": getattr(backend, "model_id", ""),
        "backend": getattr(backend, "name", type(backend).__name__),
        "categories": cats,
        "limit": limit,
        "subset": subset,
        "seed": seed,
        "max_tokens": max_tokens,
        "max_steps_per_turn": steps_cap,
        "mode": "FC",
        "backend_options": _backend_options(backend),
    }
    overall = aggregate_scores(scores)
    if subset is not None:
        overall["subset"] = subset_scores(subset, scores)
    return BFCLResult(categories=scores, overall=overall, items=items, settings=settings)


def _backend_options(backend: LLMBackend) -> dict[str, Any]:
    options = getattr(backend, "options", None)
    if options is None:
        return {}
    if hasattr(options, "model_dump"):
        return options.model_dump(mode="json")
    return dict(options) if isinstance(options, dict) else {}


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.bfcl")
    parser.add_argument("--backend", default="embedded", help="a synthesis.llm backend name")
    parser.add_argument(
        "--model-path", default=None, help="checkpoint folder for the embedded backend"
    )
    parser.add_argument("--categories", nargs="*", default=None)
    parser.add_argument(
        "--subset",
        default=None,
        choices=sorted(bfcl_subsets.SUBSETS),
        help="a committed subset (BFCL mini: mini-v1) instead of --limit sampling",
    )
    parser.add_argument("--write-subset", metavar="NAME", choices=sorted(bfcl_subsets.SUBSETS),
                        help="draw a subset with its seed, write its id file and stop")
    parser.add_argument("--check-subset", metavar="NAME", choices=sorted(bfcl_subsets.SUBSETS),
                        help="draw a subset again and compare it with its id file, then stop")
    parser.add_argument("--limit", type=int, default=None, help="seeded sample size per category")
    parser.add_argument(
        "--limit-multi-turn", type=int, default=None, help="sample size for multi-turn categories"
    )
    parser.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option (JSON value)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-steps-per-turn", type=int, default=None)
    parser.add_argument("--output", default=None, help="write the full result as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    def ids_of(category: str) -> list[str]:
        return [e["id"] for e in load_entries(category)]

    if args.write_subset:
        print(bfcl_subsets.write(args.write_subset, ids_of))
        return
    if args.check_subset:
        same = bfcl_subsets.draw(args.check_subset, ids_of) == bfcl_subsets.subset_ids(args.check_subset)
        print(f"{args.check_subset}: {'matches' if same else 'DIFFERS FROM'} its seeded draw")
        sys.exit(0 if same else 1)
    from synthesis.llm.registry import get_backend

    opts: dict[str, Any] = {"model_path": args.model_path} if args.model_path else {}
    for pair in args.backend_option:
        key, _, raw = pair.partition("=")
        try:
            opts[key] = json.loads(raw)
        except json.JSONDecodeError:
            opts[key] = raw
    backend = get_backend(args.backend, **opts)
    limit: int | dict[str, int] | None = args.limit
    if args.limit_multi_turn is not None:
        limit = {c: args.limit for c in CATEGORIES if args.limit is not None}
        limit.update({c: args.limit_multi_turn for c in MULTI_TURN})
    # One category at a time, writing the merged result after each, so that a long run
    # that is stopped keeps what it measured.
    merged: BFCLResult | None = None
    if args.subset:
        wanted = [c for c in bfcl_subsets.subset_ids(args.subset) if not args.categories or c in args.categories]
    else:
        wanted = args.categories or list(CATEGORIES)
    for category in wanted:
        part = run_bfcl_eval(
            backend,
            categories=[category],
            limit=limit,
            subset=args.subset,
            seed=args.seed,
            batch_size=args.batch_size,
            max_tokens=args.max_tokens,
            max_steps_per_turn=args.max_steps_per_turn,
            progress=lambda e: logger.info("%s", e),
        )
        if merged is None:
            merged = part
        else:
            merged.categories.update(part.categories)
            merged.items.extend(part.items)
            merged.settings["categories"] = list(merged.categories)
        merged.overall = aggregate_scores(merged.categories)
        if args.subset:
            merged.overall["subset"] = subset_scores(args.subset, merged.categories)
        if args.output:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(json.dumps(merged.to_dict(), indent=2, default=str))
    assert merged is not None
    print(merged.table())
    print(json.dumps(merged.overall, indent=2))


if __name__ == "__main__":
    main()
