"""The one vocabulary of InfTool, and the record a trajectory travels in to training.

Modes, verdicts, audit decisions, difficulties and model roles are defined here, once, in
plain Python: the engine, the Django choices, the REST API, the exports, training and the
UI all use these names.

A :class:`TrajectoryRecord` is what the database (or a JSONL file) hands to ``training/``;
:func:`ground_truth` is the one rule for what a model should learn from a trajectory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    SINGLE = "single"
    PARALLEL = "parallel"
    MULTIPLE = "multiple"
    IRRELEVANCE = "irrelevance"
    MULTI_TURN = "multi_turn"

    @property
    def label(self) -> str:
        """How pages and charts write it: multi-turn, single ..."""
        return self.value.replace("_", "-")


SINGLE_TURN_MODES = (Mode.SINGLE, Mode.PARALLEL, Mode.MULTIPLE, Mode.IRRELEVANCE)


class Verdict(StrEnum):
    """The verifiers' vote on a whole trajectory (and the effective one, audits included)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Audit(StrEnum):
    """A reviewer's decision; it overrides the verifiers (a flag counts as a rejection)."""

    ACCEPT = "accept"
    REJECT = "reject"
    FLAG = "flag"


class Difficulty(StrEnum):
    EASY = "easy"
    HARD = "hard"


class Role(StrEnum):
    """The parts a model plays: the User Simulator, the Tool Agent, the MCP Server
    Simulator, the verifiers, and the judge (the tree's duplicate judge)."""

    USER = "user"
    AGENT = "agent"
    SERVER = "server"
    VERIFIER = "verifier"
    JUDGE = "judge"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The plain strings of an enum, in order: ``values(Mode)`` -> ('single', ...)."""
    return tuple(member.value for member in enum)


def effective_verdict(verdict: str | None, audit: str | None) -> Verdict | None:
    """The verdict exports and training use: an audit beats the verifiers.

    >>> effective_verdict("rejected", "accept"), effective_verdict("accepted", "flag"), effective_verdict("", "")
    (<Verdict.ACCEPTED: 'accepted'>, <Verdict.REJECTED: 'rejected'>, None)
    """
    if audit == Audit.ACCEPT:
        return Verdict.ACCEPTED
    if audit in (Audit.REJECT, Audit.FLAG):
        return Verdict.REJECTED
    return Verdict(verdict) if verdict else None


def _parse(enum: type[StrEnum], value: Any, name: str, *, optional: bool = False):
    if optional and value in (None, ""):
        return None
    try:
        return enum(value)
    except ValueError:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(values(enum))}") from None


# ----------------------------------------------------------------------------- calls


def _arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def normalize_call(call: Any) -> dict[str, Any]:
    """``{"name", "arguments": dict}`` from an OpenAI, MCP or plain call.

    >>> normalize_call({"type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}})
    {'name': 'f', 'arguments': {'x': 1}}
    """
    fn = call.get("function", call) if isinstance(call, dict) else {}
    return {"name": fn.get("name", ""), "arguments": _arguments(fn.get("arguments", fn.get("args", {})))}


def _call_key(call: Any) -> str:
    return json.dumps(normalize_call(call), sort_keys=True, ensure_ascii=False)


# ----------------------------------------------------------------------------- the record


REFUSAL = "None of the tools I have can do that, so I cannot help with this request."

# Other ways to say it.  Every one names a refusal as training's reward reads it ("cannot",
# "can't", "unable", "no tool", "none of the tools"); ``{tools}`` is the offered tools' names.
REFUSAL_WORDINGS = (
    REFUSAL,
    "I cannot help with that: the tools I have ({tools}) do not cover it.",
    "Sorry, none of the tools I have can do this. I only have {tools}.",
    "I'm unable to do that here: no tool I have fits this request.",
    "I can't help with this one. My tools ({tools}) are for something else.",
    "That is outside what I can do: {tools} cannot handle this request.",
)


def _name_list(names: Sequence[str]) -> str:
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        return "the tools offered"
    if len(names) > 3:
        return f"{', '.join(names[:2])} and {len(names) - 2} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def refusal(request: str, tool_names: Sequence[str], wordings: int = len(REFUSAL_WORDINGS)) -> str:
    """The refusal to ``request`` when none of ``tool_names`` serves it, in one of the first
    ``wordings`` of :data:`REFUSAL_WORDINGS`, chosen by the request's text (the same request
    is always refused the same way).  ``wordings=1`` is :data:`REFUSAL` alone.

    >>> refusal("book a flight", ["getAccount"], 1) == REFUSAL
    True
    >>> len({refusal(f"request {i}", ["getAccount", "listPlaces"]) for i in range(40)})
    6
    >>> refusal("book a flight", ["getAccount", "listPlaces", "addPlace", "getUser"], 2)
    'I cannot help with that: the tools I have (getAccount, listPlaces and 2 more) do not cover it.'
    """
    if not 1 <= wordings <= len(REFUSAL_WORDINGS):
        raise ValueError(f"wordings must be in 1..{len(REFUSAL_WORDINGS)}, got {wordings}")
    k = int.from_bytes(hashlib.sha256(request.encode()).digest()[:4], "big") % wordings
    return REFUSAL_WORDINGS[k].format(tools=_name_list(tool_names))


@dataclass(frozen=True)
class TrajectoryRecord:
    """One finished trajectory, as training receives it.

    ``messages`` are OpenAI chat messages (user / assistant with ``tool_calls`` / tool);
    ``tools`` the offered tools (MCP or OpenAI definitions); ``reference_calls`` the task's
    ground truth in single-turn modes (None when unknown).
    """

    id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    mode: Mode = Mode.SINGLE
    difficulty: Difficulty = Difficulty.EASY
    verdict: Verdict | None = None
    audit: Audit | None = None
    reference_calls: list[dict[str, Any]] | None = None

    @property
    def accepted(self) -> bool:
        return effective_verdict(self.verdict, self.audit) is Verdict.ACCEPTED

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrajectoryRecord:
        """Parse a plain dict (a JSONL line); a bad value says what the valid ones are."""
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list of chat messages")
        refs = data.get("reference_calls")
        return cls(
            id=str(data.get("id", "")),
            messages=messages,
            tools=list(data.get("tools") or []),
            mode=_parse(Mode, data.get("mode", "single"), "mode"),
            difficulty=_parse(Difficulty, data.get("difficulty") or "easy", "difficulty"),
            verdict=_parse(Verdict, data.get("verdict"), "verdict", optional=True),
            audit=_parse(Audit, data.get("audit"), "audit decision", optional=True),
            reference_calls=None if refs is None else list(refs),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "messages": self.messages, "tools": self.tools, "mode": str(self.mode),
                "difficulty": str(self.difficulty), "verdict": self.verdict and str(self.verdict),
                "audit": self.audit and str(self.audit), "reference_calls": self.reference_calls}


# ----------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Correction:
    """What replaces the Tool Agent's first answer: the reference calls, or a refusal."""

    calls: list[dict[str, Any]]  # normalized: {"name", "arguments": dict}
    content: str | None


def reference_correction(mode: str, reference_calls: Sequence[Any] | None,
                         first_answer_calls: Sequence[Any] | None) -> Correction | None:
    """The rule for what a model should learn from a single-turn trajectory.

    The verifiers judge the task (the request and its reference calls); the Tool Agent's own
    answer only sets the score.  So where the agent's first answer differs from the
    reference, the conversation ends with the reference calls (in irrelevance: a refusal)
    right after the request.  None when the first answer stands (it matches, the mode is
    multi-turn, or no reference is known).

    >>> reference_correction("single", [{"name": "f", "arguments": {"x": 1}}],
    ...                      [{"function": {"name": "f", "arguments": '{"x": 2}'}}]).calls
    [{'name': 'f', 'arguments': {'x': 1}}]
    >>> reference_correction("irrelevance", [], [{"name": "f"}]).content == REFUSAL
    True
    >>> reference_correction("single", [{"name": "f", "arguments": {}}], [{"name": "f", "arguments": "{}"}]) is None
    True
    """
    if mode not in SINGLE_TURN_MODES or reference_calls is None:
        return None
    if not reference_calls and mode != Mode.IRRELEVANCE:
        return None  # no reference stored: nothing to compare with
    if sorted(map(_call_key, first_answer_calls or [])) == sorted(map(_call_key, reference_calls)):
        return None
    calls = [normalize_call(c) for c in reference_calls]
    return Correction(calls=calls, content=None if calls else REFUSAL)


def ground_truth(record: TrajectoryRecord) -> tuple[list[dict[str, Any]], bool]:
    """The record's conversation to learn from (OpenAI messages), and whether it was
    corrected to the reference (:func:`reference_correction`)."""
    messages = record.messages
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), None)
    if first is None:
        return messages, False
    fix = reference_correction(record.mode, record.reference_calls, messages[first].get("tool_calls"))
    if fix is None:
        return messages, False
    answer: dict[str, Any] = {"role": "assistant", "content": fix.content}
    if fix.calls:
        answer["tool_calls"] = [
            {"id": f"call_ref_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
            for i, c in enumerate(fix.calls)
        ]
    return [*messages[:first], answer], True
