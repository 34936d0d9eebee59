"""The gated composite reward used by GRPO.

    R = w_f · format + w_e · execution_fidelity + gate · w_r · reasoning_quality
    gate = 1 if execution_fidelity >= gate_threshold (default 1.0: fully correct) else 0

The reasoning term only pays when the calls are right, so the policy cannot earn reward
by writing plausible rationales around wrong calls.

Terms, each in [0, 1]:

- **format**: a completion that calls tools must write every call as a closed
  ``<tool_call>`` block holding a JSON object ``{"name": str, "arguments": object}``
  (the strict mode of ``synthesis.llm.toolcalls``); a completion that does not call tools
  must be non-empty text with no stray tags.  Score: share of well-formed blocks, minus
  0.5 for an unclosed block (never below 0).  Calls written as bare JSON, which the
  other terms accept, score 0 here.
- **execution fidelity**: the model's calls against the reference calls, as multisets
  (order ignored; best one-to-one matching, Hungarian).  A pair scores 0 when the names
  differ, else (1 + matching arguments) / (1 + arguments in either call); arguments the
  reference marks optional (``defaults``) may be omitted or given their default value.
  Values compare type-aware: numbers by value (1 == 1.0, but bool is not a number),
  strings after BFCL-style normalisation (case, spaces and ``,./-_*^`` ignored), lists in
  order, dicts by key.  The sum over matched pairs is divided by the larger of the two
  call counts, so a missing or extra call costs its share.  When the reference has no
  calls (irrelevance), fidelity is 1 for no call and 0 for any call.  The calls are read
  by the lenient parser, as synthesis and BFCL scoring read them, so a call synthesis
  accepts scores here as it does in BFCL.
- **reasoning quality** (a cheap heuristic, no model): the text before the first call
  (or the whole reply when there is none) is the rationale.  Checks, averaged:
  *present* (at least 3 words), *concise* (at most ``reasoning_max_words``; longer decays
  as max/words), *not repetitive* (distinct-word share ≥ 0.5, else share/0.5), and
  *consistent* (a reply that calls tools does not also claim it cannot help, a reply
  that does not call tools does not announce a call, and nothing long trails the calls).
  When the prompt is known (TRL passes ``prompts``), a fifth check, *grounded*: the
  rationale shares at least two content words with the user's last request or the
  called tools' names (half credit for one).

Reward functions take TRL's shape ``(completions, **kwargs) -> list[float]``: each
completion is a string or a list of message dicts (the assistant reply), and the dataset
columns ``reference_calls`` (JSON string or list) and ``mode`` arrive as lists.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from synthesis.llm.toolcalls import ParsedCompletion, parse_completion
from training.config import RewardConfig

_NORMALIZE_RE = re.compile(r"[ ,./\-_*^]")
_REFUSAL_RE = re.compile(
    r"\b(cannot|can't|can not|unable|not able|no (suitable |relevant )?(tool|function)s?|none of the (tools|functions))\b",
    re.IGNORECASE,
)
_ANNOUNCE_RE = re.compile(
    r"\b(i will|i'll|let me|calling|i am going to|i'm going to) (call|use|invoke)\b", re.I
)


@dataclass
class RewardTerms:
    format: float
    execution: float
    reasoning: float
    gate: float
    total: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# ---------------------------------------------------------------- completions and references


def completion_text(completion: Any) -> str:
    """The assistant text of a TRL completion (string, or list of message dicts).

    >>> completion_text([{"role": "assistant", "content": "hi"}])
    'hi'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    parts = []
    for message in completion or []:
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(content)
        for call in message.get("tool_calls") or []:
            fn = call.get("function", call)
            args = fn.get("arguments", {})
            if not isinstance(args, str):
                args = json.dumps(args)
            parts.append(
                f'<tool_call>\n{{"name": {json.dumps(fn["name"])}, "arguments": {args}}}\n</tool_call>'
            )
    return "\n".join(p for p in parts if p)


def reference_text(reference: Any) -> str:
    r"""The reference calls as the model writes them, in ``<tool_call>`` blocks ("" for none).

    >>> reference_text('[{"name": "get_weather", "arguments": {"city": "Oslo"}}]')
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    """
    calls = [{"function": {"name": c["name"], "arguments": c["arguments"]}} for c in normalize_reference(reference)]
    return completion_text([{"role": "assistant", "content": "", "tool_calls": calls}]) if calls else ""


def normalize_reference(reference: Any) -> list[dict[str, Any]]:
    """Reference calls as ``[{"name", "arguments", "defaults"}]`` from JSON or OpenAI shapes."""
    if reference is None:
        return []
    if isinstance(reference, str):
        reference = json.loads(reference) if reference.strip() else []
    out = []
    for call in reference:
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            args = json.loads(args) if args.strip() else {}
        out.append({"name": fn["name"], "arguments": args, "defaults": call.get("defaults") or {}})
    return out


# ---------------------------------------------------------------- value matching


def normalize_string(value: str) -> str:
    """BFCL's string standardisation: no spaces or ``,./-_*^``, lower case, single→double quotes.

    >>> normalize_string("New York, NY") == normalize_string("new york ny")
    True
    """
    return _NORMALIZE_RE.sub("", value).lower().replace("'", '"')


def values_match(predicted: Any, expected: Any) -> bool:
    """Type-aware equality of argument values.

    >>> values_match(3, 3.0), values_match(True, 1), values_match("5", 5)
    (True, False, False)
    >>> values_match({"a": ["X y"]}, {"a": ["x-y"]})
    True
    """
    if isinstance(expected, bool) or isinstance(predicted, bool):
        return isinstance(expected, bool) and isinstance(predicted, bool) and predicted == expected
    if isinstance(expected, (int, float)) and isinstance(predicted, (int, float)):
        return math.isclose(float(predicted), float(expected), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, str) and isinstance(predicted, str):
        return normalize_string(predicted) == normalize_string(expected)
    if isinstance(expected, (list, tuple)) and isinstance(predicted, (list, tuple)):
        return len(expected) == len(predicted) and all(
            values_match(p, e) for p, e in zip(predicted, expected, strict=True)
        )
    if isinstance(expected, dict) and isinstance(predicted, dict):
        return set(expected) == set(predicted) and all(
            values_match(predicted[k], expected[k]) for k in expected
        )
    if expected is None or predicted is None:
        return expected is None and predicted is None
    return False


def call_match_score(
    predicted_name: str, predicted_args: dict[str, Any], reference: dict[str, Any]
) -> float:
    """Score one predicted call against one reference call in [0, 1] (1 iff it matches)."""
    if predicted_name != reference["name"]:
        return 0.0
    expected = reference["arguments"]
    defaults = reference.get("defaults") or {}
    keys = set(expected) | set(predicted_args)
    matched = 0
    total = 0
    for key in keys:
        in_pred, in_ref = key in predicted_args, key in expected
        if in_pred and in_ref:
            total += 1
            matched += values_match(predicted_args[key], expected[key])
        elif in_ref:  # omitted: fine only when the reference says it is optional
            if key in defaults:
                continue
            total += 1
        else:  # extra: fine only when it restates a default
            if key in defaults and values_match(predicted_args[key], defaults[key]):
                continue
            total += 1
    return (1 + matched) / (1 + total)


def _best_matching(scores: list[list[float]]) -> float:
    if not scores or not scores[0]:
        return 0.0
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    matrix = np.asarray(scores)
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return float(matrix[rows, cols].sum())


def execution_fidelity(parsed: ParsedCompletion, reference: list[dict[str, Any]]) -> float:
    if not reference:
        return 1.0 if not parsed.calls and parsed.blocks == 0 else 0.0
    if not parsed.calls:
        return 0.0
    scores = [[call_match_score(c.name, c.arguments, r) for r in reference] for c in parsed.calls]
    return _best_matching(scores) / max(len(parsed.calls), len(reference))


# ---------------------------------------------------------------- format and reasoning


def format_score(parsed: ParsedCompletion, text: str) -> float:
    """``parsed`` is the strict parse of ``text``."""
    if parsed.blocks == 0:
        if parse_completion(text, mode="lenient").blocks:
            return 0.0  # a call, but not in the trained layout (bare JSON, a fence)
        stray = "</tool_call>" in text or "<tool_response>" in text
        return 1.0 if text.strip() and not stray else 0.0
    score = (parsed.blocks - len(parsed.malformed)) / parsed.blocks
    if parsed.unclosed:
        score -= 0.5
    return max(score, 0.0)


_STOPWORDS = frozenset(
    "this that with from have what which would could should there their about into your please "
    "also just then than them they when where will want need using call tool function".split()
)


def _content_words(text: str) -> set[str]:
    return {
        w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4 and w not in _STOPWORDS
    }


def request_text(prompt: Any) -> str:
    """The last real user request in a prompt (string or messages), skipping tool results."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(prompt):
        content = message.get("content") or ""
        if (
            message.get("role") == "user"
            and isinstance(content, str)
            and not content.startswith("<tool_response>")
        ):
            return content
    return ""


def reasoning_score(
    parsed: ParsedCompletion, max_words: int = 60, request: str | None = None
) -> float:
    rationale = parsed.text_before
    words = re.findall(r"\w+", rationale.lower())
    present = 1.0 if len(words) >= 3 else len(words) / 3
    concise = 1.0 if len(words) <= max_words else max_words / len(words)
    if words:
        distinct = len(set(words)) / len(words)
        varied = 1.0 if distinct >= 0.5 or len(words) < 8 else distinct / 0.5
    else:
        varied = 0.0
    if parsed.calls:
        consistent = (
            not _REFUSAL_RE.search(rationale) and len(parsed.text_after.split()) <= max_words // 2
        )
    else:
        consistent = not _ANNOUNCE_RE.search(rationale)
    checks = [present, concise, varied, float(consistent)]
    if request is not None:
        anchors = _content_words(request)
        for call in parsed.calls:
            anchors |= _content_words(call.name.replace("_", " ").replace(".", " "))
        overlap = len(_content_words(rationale) & anchors)
        checks.append(min(1.0, overlap / 2) if anchors else 1.0)
    return sum(checks) / len(checks)


# ---------------------------------------------------------------- the composite


def score_completion(
    completion: Any, reference: Any, config: RewardConfig | None = None, prompt: Any = None
) -> RewardTerms:
    """All reward terms for one completion against its reference calls (``prompt``, when
    given, lets the reasoning term check that the rationale is about the request)."""
    config = config or RewardConfig()
    text = completion_text(completion)
    parsed = parse_completion(text, mode="lenient")
    ref = normalize_reference(reference)
    fmt = format_score(parse_completion(text, mode="strict"), text)
    exe = execution_fidelity(parsed, ref)
    rsn = reasoning_score(
        parsed, config.reasoning_max_words, None if prompt is None else request_text(prompt)
    )
    gate = 1.0 if exe >= config.gate_threshold else 0.0
    total = (
        config.format_weight * fmt
        + config.execution_weight * exe
        + gate * config.reasoning_weight * rsn
    )
    return RewardTerms(format=fmt, execution=exe, reasoning=rsn, gate=gate, total=total)


def _references(kwargs: dict[str, Any], n: int) -> list[Any]:
    refs = kwargs.get("reference_calls")
    if refs is None:
        raise ValueError(
            "reward needs a 'reference_calls' dataset column (JSON list of calls per row)"
        )
    if len(refs) != n:
        raise ValueError(f"got {n} completions but {len(refs)} reference_calls")
    return list(refs)


def reward_breakdown(
    completions: list[Any],
    reference_calls: list[Any],
    config: RewardConfig | None = None,
    prompts: list[Any] | None = None,
) -> list[dict[str, float]]:
    """Per-sample ``{"format", "execution", "reasoning", "gate", "total"}`` for logging.

    >>> call = '<tool_call>\\n{"name": "f", "arguments": {"x": 1}}\\n</tool_call>'
    >>> reward_breakdown(["I need f for this.\\n" + call], ['[{"name": "f", "arguments": {"x": 1}}]'])[0]["gate"]
    1.0
    """
    prompts = prompts if prompts is not None else [None] * len(completions)
    return [
        score_completion(c, r, config, p).to_dict()
        for c, r, p in zip(completions, reference_calls, prompts, strict=True)
    ]


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """Well-formed ``<tool_call>`` JSON blocks, or plain text when no call is made.

    >>> format_reward(['<tool_call>\\n{"name": "f", "arguments": {}}\\n</tool_call>', '<tool_call>{"name": '])
    [1.0, 0.0]
    """
    out = []
    for c in completions:
        text = completion_text(c)
        out.append(format_score(parse_completion(text, mode="strict"), text))
    return out


def execution_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """Execution fidelity against the ``reference_calls`` column.

    >>> execution_reward(['<tool_call>\\n{"name": "f", "arguments": {"x": 2}}\\n</tool_call>'],
    ...                  reference_calls=['[{"name": "f", "arguments": {"x": 1}}]'])
    [0.5]
    """
    refs = _references(kwargs, len(completions))
    return [
        execution_fidelity(
            parse_completion(completion_text(c), mode="lenient"), normalize_reference(r)
        )
        for c, r in zip(completions, refs, strict=True)
    ]


def reasoning_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """The ungated reasoning heuristic (for analysis; training uses the gated composite).

    >>> reasoning_reward(["No tool here books flights, so I cannot do that.", "Let me call get_weather."])
    [1.0, 0.75]
    """
    prompts = kwargs.get("prompts") or [None] * len(completions)
    return [
        reasoning_score(
            parse_completion(completion_text(c), mode="lenient"),
            request=None if p is None else request_text(p),
        )
        for c, p in zip(completions, prompts, strict=True)
    ]


def make_composite_reward(
    config: RewardConfig | None = None, sink: list[dict[str, Any]] | None = None
):
    """Return the gated composite reward function; per-sample terms are appended to ``sink``."""
    config = config or RewardConfig()

    def gated_composite_reward(completions: list[Any], **kwargs: Any) -> list[float]:
        refs = _references(kwargs, len(completions))
        prompts = kwargs.get("prompts") or [None] * len(completions)
        terms = [
            score_completion(c, r, config, p)
            for c, r, p in zip(completions, refs, prompts, strict=True)
        ]
        if sink is not None:
            state = kwargs.get("trainer_state")
            step = getattr(state, "global_step", None)
            ids = kwargs.get("id") or [None] * len(completions)
            modes = kwargs.get("mode") or [None] * len(completions)
            for i, t in enumerate(terms):
                sink.append({"step": step, "id": ids[i], "mode": modes[i], **t.to_dict()})
        return [t.total for t in terms]

    return gated_composite_reward


def gated_composite_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """R = w_f·format + w_e·execution + gate·w_r·reasoning with the default weights.

    Reasoning is paid only when the call is fully correct:

    >>> ok = 'The user asks for x=1, so I call f.\\n<tool_call>\\n{"name": "f", "arguments": {"x": 1}}\\n</tool_call>'
    >>> bad = ok.replace('"x": 1}}', '"x": 2}}')
    >>> [round(r, 3) for r in gated_composite_reward([ok, bad], reference_calls=['[{"name": "f", "arguments": {"x": 1}}]'] * 2)]
    [1.0, 0.5]
    """
    return make_composite_reward()(completions, **kwargs)
