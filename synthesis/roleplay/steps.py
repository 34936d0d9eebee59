"""What a trajectory is made of, how its steps reach storage, and how a run resumes.

A trajectory is an ordered list of steps, each with a stable ``index`` (0, 1, 2, ...)
within its trajectory.  The engine hands every step to a :class:`StepSink` the moment it
exists, so a caller can store it at once.  Steps are plain dataclasses; ``to_dict`` gives
JSON-ready dicts and :func:`step_from_dict` reads them back.

Resuming: the engine replays a conversation from its stored steps (a
:class:`ResumeState`).  A conversation's code runs from the top again; wherever it would
produce a step that is already stored, it takes the stored one instead, without asking a
model and without calling the sink.  Every later decision reads only stored step contents,
so the replayed conversation arrives where the killed one stopped and continues from
``ResumeState.next_index``.  Work that had not yet produced a step is simply done again.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from synthesis import records
from synthesis.records import Mode

MODES = records.values(Mode)
SINGLE_TURN_MODES = tuple(m.value for m in records.SINGLE_TURN_MODES)


class ResumeMismatch(RuntimeError):
    """The stored steps do not fit the conversation being replayed (different code or spec)."""


# ---------------------------------------------------------------------------------------
# Personas and specs


@dataclass
class Persona:
    name: str
    role: str
    background: str
    style: str
    goals: list[str] = field(default_factory=list)
    domain: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Persona:
        return cls(
            name=str(d.get("name", "")),
            role=str(d.get("role", "")),
            background=str(d.get("background", "")),
            style=str(d.get("style", "")),
            goals=[str(g) for g in d.get("goals") or []],
            domain=str(d.get("domain", "")),
        )

    def describe(self) -> str:
        goals = "; ".join(self.goals)
        return f"{self.name}, {self.role}. {self.background} Communication style: {self.style}." + (
            f" Typical goals: {goals}." if goals else ""
        )


@dataclass
class TrajectorySpec:
    """One trajectory to synthesize.

    ``tools`` are the MCP tool definitions offered to the Tool Agent (what ``tools/list``
    returns).  ``target_tools`` optionally names which of them the reference calls use;
    otherwise they are drawn from ``tools`` with ``seed``.  ``absent_tool`` (irrelevance
    only) is a tool that is *not* offered: the user asks for what it does, so the right
    answer is no call.
    """

    id: str
    mode: Mode
    tools: list[dict[str, Any]]
    persona: Persona | None = None
    seed: int = 0
    target_tools: list[str] | None = None
    # The group the offered tools were drawn from together: a tree category, or without a
    # tree an API source (its key as the planner gave it).
    tool_group: str = ""
    resume_from: ResumeState | None = None
    absent_tool: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if not self.tools:
            raise ValueError(f"trajectory {self.id!r} offers no tools")
        names = [t.get("name") for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"trajectory {self.id!r} offers duplicate tool names: {names}")
        if self.mode == "multiple" and len(self.tools) < 2:
            raise ValueError(
                f"mode 'multiple' needs at least 2 offered tools, got {len(self.tools)}"
            )
        for name in self.target_tools or []:
            if name not in names:
                raise ValueError(f"target tool {name!r} is not among the offered tools {names}")


# ---------------------------------------------------------------------------------------
# Steps


@dataclass(kw_only=True)
class Step:
    kind: ClassVar[str] = ""
    trajectory_id: str = ""
    index: int = -1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kind"] = self.kind
        return d


@dataclass(kw_only=True)
class ScenarioStep(Step):
    """The task: persona, offered tools (as ``tools/list`` returns them), the user's goal
    or query, and the reference (ground-truth) calls.  ``reference_calls`` is empty for
    ``irrelevance`` (the right answer is no call).  For multi-turn, ``user_facts`` are the
    details the User Simulator knows and reveals over the turns."""

    kind: ClassVar[str] = "scenario"
    mode: str = ""
    persona: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)
    query: str = ""
    goal: str = ""
    reference_calls: list[dict[str, Any]] = field(default_factory=list)
    user_facts: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class MessageStep(Step):
    """One chat message, OpenAI style, with its MCP JSON-RPC form where it has one.

    * assistant with calls: ``tool_calls`` (OpenAI form) and ``mcp`` = the list of
      ``tools/call`` requests;
    * tool: ``mcp`` = the JSON-RPC response (``result`` with ``content``,
      ``structuredContent``, ``isError``; or ``error`` with ``code`` and ``message``).
    ``meta`` holds engine annotations (turn number, self-consistency samples, goal_met).
    """

    kind: ClassVar[str] = "message"
    role: str = ""
    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    mcp: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_openai(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        if self.role == "tool":
            msg["tool_call_id"] = self.tool_call_id
            if self.name:
                msg["name"] = self.name
        return msg

    def calls(self) -> list[dict[str, Any]]:
        """The message's calls as ``{"name", "arguments"}`` dicts."""
        out = []
        for tc in self.tool_calls:
            fn = tc.get("function", tc)
            args = fn.get("arguments", {})
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except json.JSONDecodeError:
                    args = {}
            out.append({"name": fn.get("name", ""), "arguments": args})
        return out

    def is_error(self) -> bool:
        """For a tool message: did the server answer with an error?"""
        if not isinstance(self.mcp, dict):
            return False
        return "error" in self.mcp or bool((self.mcp.get("result") or {}).get("isError"))


@dataclass(kw_only=True)
class ReflectionStep(Step):
    """The self-check of one agent step, emitted right before the message it governs.

    ``target_index`` is the index that message gets (``index + 1``); ``action`` is
    ``ok`` (passed first time), ``repaired`` (passed after re-asking) or ``rejected``
    (never passed: no message follows and the trajectory ends).  ``problems`` holds one
    list per failed attempt.  ``message`` is the accepted message (to_dict form) so a
    resumed run can store it if the kill fell between the two steps.
    """

    kind: ClassVar[str] = "reflection"
    subject: str = "agent"
    target_index: int = -1
    action: Literal["ok", "repaired", "rejected"] = "ok"
    attempts: int = 1
    problems: list[list[dict[str, Any]]] = field(default_factory=list)
    raw_attempts: list[str] = field(default_factory=list)
    message: dict[str, Any] | None = None

    @property
    def problem(self) -> str:
        """A one-line summary of what was wrong (empty when nothing was)."""
        flat = [p.get("message", "") for ps in self.problems for p in ps]
        return "; ".join(flat)


@dataclass(kw_only=True)
class VoteStep(Step):
    """One verifier's vote in one round (round 0 = first opinions; 1.. = negotiation).
    ``verifier == "rules"`` is the deterministic pre-check."""

    kind: ClassVar[str] = "vote"
    verifier: str = ""
    perspective: str = ""
    round: int = 0
    decision: Literal["accept", "reject"] = "reject"
    rationale: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class FinishStep(Step):
    """The last step.  ``status``: accepted / rejected (by reflection or verification) /
    failed (an error; ``reason`` says which).  ``score`` is the execution-consistency
    score (see :mod:`synthesis.roleplay.scoring`), ``split`` easy or hard."""

    kind: ClassVar[str] = "finish"
    status: Literal["accepted", "rejected", "failed"] = "failed"
    reason: str = ""
    verdict: Literal["accept", "reject"] | None = None
    score: float | None = None
    score_components: dict[str, float | None] = field(default_factory=dict)
    split: Literal["easy", "hard"] | None = None
    stats: dict[str, Any] = field(default_factory=dict)


STEP_TYPES: dict[str, type[Step]] = {
    c.kind: c for c in (ScenarioStep, MessageStep, ReflectionStep, VoteStep, FinishStep)
}


def step_from_dict(d: dict[str, Any]) -> Step:
    """Rebuild a step from ``Step.to_dict()`` output (e.g. a stored JSON row)."""
    kind = d.get("kind")
    cls = STEP_TYPES.get(kind or "")
    if cls is None:
        raise ValueError(f"unknown step kind {kind!r}; valid: {', '.join(STEP_TYPES)}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------------------------------
# Sinks


@runtime_checkable
class StepSink(Protocol):
    """Receives every step the moment it exists.  Store it before returning: once a method
    returns, the engine treats the step as persisted.  An exception stops the run (the
    steps stored so far let a later run resume)."""

    def on_scenario(self, step: ScenarioStep) -> None: ...

    def on_message(self, step: MessageStep) -> None: ...

    def on_reflection(self, step: ReflectionStep) -> None: ...

    def on_vote(self, step: VoteStep) -> None: ...

    def on_finish(self, step: FinishStep) -> None: ...


def dispatch(sink: StepSink, step: Step) -> None:
    getattr(sink, f"on_{step.kind}")(step)


class MemorySink:
    """Keeps every step in memory, per trajectory (for tests, scripts and exports)."""

    def __init__(self) -> None:
        self.steps: dict[str, list[Step]] = {}

    def _add(self, step: Step) -> None:
        self.steps.setdefault(step.trajectory_id, []).append(step)

    on_scenario = on_message = on_reflection = on_vote = on_finish = _add

    def all(self) -> list[Step]:
        return [s for steps in self.steps.values() for s in steps]


# ---------------------------------------------------------------------------------------
# Resume


@dataclass
class ResumeState:
    """The stored steps of one trajectory, in index order, from 0 without gaps."""

    steps: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, s in enumerate(self.steps):
            if s.index != i:
                raise ValueError(
                    f"stored steps must be numbered 0..n-1 without gaps; position {i} holds index {s.index}"
                )

    @classmethod
    def from_steps(cls, steps: list[Step | dict[str, Any]]) -> ResumeState:
        """Order, de-duplicate (same index stored twice) and check stored steps.

        Steps past a gap are dropped: they cannot be trusted to follow on from what is
        missing, and the replay regenerates them.
        """
        parsed = [s if isinstance(s, Step) else step_from_dict(s) for s in steps]
        by_index: dict[int, Step] = {}
        for s in sorted(parsed, key=lambda s: s.index):
            by_index.setdefault(s.index, s)
        ordered = []
        for i in range(len(by_index)):
            if i not in by_index:
                break
            ordered.append(by_index[i])
        return cls(steps=ordered)

    @property
    def next_index(self) -> int:
        return len(self.steps)

    @property
    def finish(self) -> FinishStep | None:
        last = self.steps[-1] if self.steps else None
        return last if isinstance(last, FinishStep) else None


@dataclass
class TrajectoryResult:
    """What the engine returns per spec: all steps (replayed and new) and the finish."""

    id: str
    mode: str
    steps: list[Step]
    finish: FinishStep

    @property
    def status(self) -> str:
        return self.finish.status

    def scenario(self) -> ScenarioStep | None:
        return next((s for s in self.steps if isinstance(s, ScenarioStep)), None)

    def messages(self) -> list[MessageStep]:
        return [s for s in self.steps if isinstance(s, MessageStep)]

    def openai_messages(self) -> list[dict[str, Any]]:
        return [m.to_openai() for m in self.messages()]


class StepLog:
    """A conversation's step writer: numbers steps, replays stored ones, feeds the sink."""

    def __init__(self, trajectory_id: str, sink: StepSink, resume: ResumeState | None = None):
        self.trajectory_id = trajectory_id
        self.sink = sink
        self._stored = list(resume.steps) if resume else []
        self._cursor = 0
        self.steps: list[Step] = []

    @property
    def replaying(self) -> bool:
        return self._cursor < len(self._stored)

    @property
    def next_index(self) -> int:
        return len(self.steps)

    def take(self, cls: type[Step], **expect: Any) -> Any:
        """The next stored step if there is one (it must be a ``cls`` whose fields equal
        ``expect``), else None: then the caller produces the step and emits it."""
        if not self.replaying:
            return None
        step = self._stored[self._cursor]
        if not isinstance(step, cls) or any(getattr(step, k) != v for k, v in expect.items()):
            got = {k: getattr(step, k, None) for k in expect}
            raise ResumeMismatch(
                f"trajectory {self.trajectory_id!r}: stored step {step.index} is "
                f"{step.kind} {got}, expected {cls.kind} {expect}"
            )
        self._cursor += 1
        self.steps.append(step)
        return step

    def emit(self, step: Step) -> Any:
        if self.replaying:
            raise ResumeMismatch(
                f"trajectory {self.trajectory_id!r}: a new step was made while stored step "
                f"{self._cursor} was not yet replayed"
            )
        step.trajectory_id = self.trajectory_id
        step.index = len(self.steps)
        dispatch(self.sink, step)
        self.steps.append(step)
        return step
