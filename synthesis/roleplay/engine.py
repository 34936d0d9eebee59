"""Run many role-play conversations together, batching their model requests.

Each conversation is a generator (see :mod:`synthesis.roleplay.runtime`).  Its requests
go to the backend that plays each role: to one that decodes token by token (the embedded
model's scheduler) as soon as the conversation asks, so that a conversation never waits for
another's reply and the model's batch stays full; to any other backend grouped, one
``complete_batch`` for the requests waiting at that moment.  Steps reach the sink as the
conversations produce them.

Roles: ``scenario`` (queries, goals, reference arguments), ``user``, ``agent``, ``server``,
``verifier`` (or ``verifier:<i>`` for a distinct backend per verifier).  A role without a
backend falls back: ``scenario`` to ``user``, ``verifier`` to ``judge``, then any role to
``default``; so the mapping from :func:`synthesis.llm.roles.backends_for_roles` works as is.

Failures: a conversation that raises ends with a ``failed`` finish step and the others go
on.  A backend that reports :class:`~synthesis.llm.base.BackendUnavailable`, or a sink that
raises, stops the run (:class:`SinkError`): what was stored lets the next run resume.
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthesis.llm.base import BackendUnavailable, ChatRequest, ChatResult, Generation, LLMBackend

from .config import RoleplayConfig
from .multi_turn import multi_turn_conversation
from .runtime import Answers, Ask, Gen, error_result
from .single_turn import single_turn_conversation, stats_of
from .steps import (
    MODES,
    FinishStep,
    Persona,
    ResumeMismatch,
    Step,
    StepLog,
    StepSink,
    TrajectoryResult,
    TrajectorySpec,
)

logger = logging.getLogger(__name__)

ROLES = ("scenario", "user", "agent", "server", "verifier")
_FALLBACK = {"scenario": ("user",), "verifier": ("judge",)}

__all__ = [
    "RoleplayConfig",
    "SinkError",
    "run_trajectories",
    "plan_specs",
    "conversation_for",
    "ROLES",
]


class SinkError(RuntimeError):
    """The sink failed to store a step; the run stops so that nothing goes unrecorded."""


class _GuardedSink:
    def __init__(self, sink: StepSink):
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._sink, name)

        def call(step: Step) -> None:
            try:
                method(step)
            except Exception as e:
                raise SinkError(
                    f"storing step {step.index} of trajectory {step.trajectory_id!r} failed: {e}"
                ) from e

        return call


def conversation_for(spec: TrajectorySpec, config: RoleplayConfig, log: StepLog) -> Gen[FinishStep]:
    if spec.mode == "multi_turn":
        return multi_turn_conversation(spec, config, log)
    return single_turn_conversation(spec, config, log)


class _Backends:
    def __init__(self, backends_by_role: Mapping[str, LLMBackend | Sequence[LLMBackend]]):
        self._by_role = dict(backends_by_role)
        if not self._by_role:
            raise ValueError(
                f"no backends given; map roles ({', '.join(ROLES)}) or 'default' to backends"
            )
        unknown = [r for r in self._by_role if r.split(":")[0] not in (*ROLES, "judge", "default")]
        if unknown:
            raise ValueError(
                f"unknown role(s) {unknown}; valid: {', '.join(ROLES)}, verifier:<i>, judge, default"
            )

    def for_role(self, role: str) -> LLMBackend:
        base, _, idx = role.partition(":")
        for key in (role, base, *_FALLBACK.get(base, ()), "default"):
            be = self._by_role.get(key)
            if be is None:
                continue
            if isinstance(be, list | tuple):
                if not be:
                    continue
                return be[int(idx or 0) % len(be)]
            return be
        raise ValueError(f"no backend for role {role!r}; give one for {base!r} or 'default'")


@dataclass
class _Active:
    spec: TrajectorySpec
    log: StepLog
    gen: Gen[FinishStep]
    ask: Ask = field(default_factory=list)
    result: TrajectoryResult | None = None
    answers: list[list[ChatResult] | None] = field(default_factory=list)
    dispatched: bool = False

    def waiting(self) -> bool:
        return any(a is None for a in self.answers)


def _complete(backend: LLMBackend, requests: list[ChatRequest]) -> Answers:
    try:
        answers = backend.complete_batch(requests)
        if len(answers) != len(requests):
            raise RuntimeError(
                f"backend returned {len(answers)} answers for {len(requests)} requests"
            )
    except BackendUnavailable:
        raise
    except Exception as e:
        if len(requests) == 1:
            return [_failed(backend, e)]
        # One bad request must not sink the batch: retry them one by one.
        return [a for r in requests for a in _complete(backend, [r])]
    return [_choices(a) for a in answers]


def _failed(backend: LLMBackend, e: Exception) -> list[ChatResult]:
    """The answer of a request the backend failed on: one error result, and a warning."""
    logger.warning("backend %s failed on a request: %s", type(backend).__name__, e)
    return [error_result(f"backend error: {e}")]


def _choices(answer: Sequence[ChatResult]) -> list[ChatResult]:
    return list(answer) or [error_result("the backend returned no choice")]


def _streams(backend: LLMBackend) -> bool:
    """Whether ``backend`` decodes requests one by one as they arrive (its own ``submit``,
    like the embedded scheduler), so that a conversation's next request can join the batch
    in flight instead of waiting for every other conversation's reply."""
    own = getattr(type(backend), "submit", None)
    return own is not None and own is not LLMBackend.submit


def _collect(generation: Generation, backend: LLMBackend) -> list[ChatResult]:
    try:
        choices = generation.results()
    except BackendUnavailable:
        raise
    except Exception as e:
        return _failed(backend, e)
    return _choices(choices)


def run_trajectories(
    specs: Iterable[TrajectorySpec],
    backends_by_role: Mapping[str, LLMBackend | Sequence[LLMBackend]],
    sink: StepSink,
    config: RoleplayConfig | None = None,
) -> list[TrajectoryResult]:
    """Synthesize every spec's trajectory; returns the results in spec order.

    Up to ``config.max_concurrent`` conversations are in flight.  A request for a backend
    that decodes token by token (the embedded one) is handed over as soon as its
    conversation asks, and the conversation moves on as soon as its own replies are in, so
    the backend's batch stays full; requests for other backends are sent together, one
    ``complete_batch`` per backend, from the conversations waiting at that moment.

    A spec with ``resume_from`` continues from its stored steps (a finished one is
    returned as stored, nothing is emitted).
    """
    config = config or RoleplayConfig()
    backends = _Backends(backends_by_role)
    guarded = _GuardedSink(sink)
    queue = deque(specs)
    order = [s.id for s in queue]
    if len(set(order)) != len(order):
        raise ValueError("trajectory ids must be unique within a run")
    results: dict[str, TrajectoryResult] = {}
    active: list[_Active] = []
    in_flight: dict[concurrent.futures.Future, tuple[_Active, int, Generation, LLMBackend]] = {}

    def settle(act: _Active, answers: Answers | None) -> None:
        """Advance ``act`` with its answers; keep it with its next requests, or record it."""
        _advance(act, answers)
        if act.result is None:
            act.answers = [None] * len(act.ask)
            act.dispatched = False
        else:
            results[act.spec.id] = act.result
            active.remove(act)

    try:
        while queue or active:
            while queue and len(active) < config.max_concurrent:
                spec = queue.popleft()
                if spec.resume_from is not None and spec.resume_from.finish is not None:
                    results[spec.id] = TrajectoryResult(
                        spec.id, spec.mode, list(spec.resume_from.steps), spec.resume_from.finish
                    )
                    continue
                log = StepLog(spec.id, guarded, spec.resume_from)  # type: ignore[arg-type]
                act = _Active(spec, log, conversation_for(spec, config, log))
                active.append(act)
                settle(act, None)
            if not active:
                continue

            # Hand over every request not yet sent: token-by-token backends one by one,
            # the others grouped per backend.
            groups: dict[int, tuple[LLMBackend, list[tuple[_Active, int]]]] = {}
            for act in active:
                if act.dispatched:
                    continue
                act.dispatched = True
                for pos, call in enumerate(act.ask):
                    be = backends.for_role(call.role)
                    if _streams(be):
                        try:
                            generation = be.submit(call.request)
                        except BackendUnavailable:
                            raise
                        except Exception as e:  # a request the backend refuses fails alone
                            act.answers[pos] = _failed(be, e)
                            continue
                        in_flight[generation.done] = (act, pos, generation, be)
                    else:
                        groups.setdefault(id(be), (be, []))[1].append((act, pos))
            for be, items in groups.values():
                got = _complete(be, [a.ask[pos].request for a, pos in items])
                for (a, pos), choices in zip(items, got, strict=True):
                    a.answers[pos] = choices

            if in_flight and all(act.waiting() for act in active):
                done, _ = concurrent.futures.wait(
                    list(in_flight), return_when=concurrent.futures.FIRST_COMPLETED
                )
                for fut in done:
                    act, pos, generation, be = in_flight.pop(fut)
                    act.answers[pos] = _collect(generation, be)

            for act in [a for a in active if not a.waiting()]:
                settle(act, [a for a in act.answers if a is not None])
    finally:
        for _, _, generation, _ in in_flight.values():  # a stopped run frees the model's slots
            generation.cancel()

    return [results[i] for i in order]


def _advance(act: _Active, answers: Answers | None) -> None:
    try:
        act.ask = next(act.gen) if answers is None else act.gen.send(answers)
        if not act.ask:
            raise RuntimeError("a conversation yielded an empty request list")
        return
    except StopIteration as stop:
        finish = stop.value
    except (SinkError, BackendUnavailable):
        raise
    except ResumeMismatch as e:
        logger.error("cannot resume %s: %s", act.spec.id, e)
        # The stored steps stay as they are; nothing new can be appended consistently.
        finish = FinishStep(
            trajectory_id=act.spec.id, status="failed", reason=f"resume mismatch: {e}"
        )
    except Exception as e:
        logger.exception("trajectory %s failed", act.spec.id)
        finish = _fail(act.log, f"{type(e).__name__}: {e}")
    act.result = TrajectoryResult(act.spec.id, act.spec.mode, list(act.log.steps), finish)


def _fail(log: StepLog, reason: str) -> FinishStep:
    if log.replaying:
        return FinishStep(trajectory_id=log.trajectory_id, status="failed", reason=reason)
    return log.emit(FinishStep(status="failed", reason=reason[:2000], stats=stats_of(log)))


# ---------------------------------------------------------------------------------------
# Planning specs


def plan_specs(
    tools: Sequence[dict[str, Any]] | Mapping[str, Sequence[dict[str, Any]]],
    count: int,
    config: RoleplayConfig | None = None,
    *,
    personas: Sequence[Persona] | None = None,
    seed: int = 0,
    id_prefix: str = "t",
    max_offered: int = 4,
    domain_of: Mapping[str, str] | None = None,
) -> list[TrajectorySpec]:
    """Draw ``count`` specs with the config's mode mix.

    ``tools`` is a list, or a mapping from a group key (a tree category, or an API source
    where there is no tree) to the tools of that group.  Tools offered together come from
    one group, so the distractors of a ``multiple`` task share the target's category.
    ``domain_of`` maps each group to its domain (the tree's top level); the tool an
    ``irrelevance`` task asks about comes from another domain where there is one (without
    ``domain_of`` every group is a domain of its own).  A spec's ``domain`` is its group.
    """
    from .personas import SEED_PERSONAS

    config = config or RoleplayConfig()
    groups: dict[str, list[dict[str, Any]]] = (
        {k: list(v) for k, v in tools.items() if v}
        if isinstance(tools, Mapping)
        else {"": list(tools)}
    )
    if not groups or not any(groups.values()):
        raise ValueError("no tools to plan from")
    rng = random.Random(seed)
    modes = [m for m in MODES if config.modes.get(m, 0) > 0]
    weights = [config.modes[m] for m in modes]
    people = list(personas or SEED_PERSONAS)
    specs = []
    for i in range(count):
        mode = rng.choices(modes, weights)[0]
        group = rng.choice(sorted(groups))
        pool = groups[group]
        if mode == "multiple" and len(pool) < 2:
            mode = "single"
        if mode == "multiple":
            offered = rng.sample(pool, min(len(pool), rng.randint(2, max_offered)))
        elif mode == "parallel":
            offered = rng.sample(pool, min(len(pool), rng.randint(1, 2)))
        elif mode == "multi_turn":
            offered = rng.sample(pool, min(len(pool), rng.randint(2, max_offered)))
        else:
            offered = (
                rng.sample(pool, 1)
                if mode == "single"
                else rng.sample(pool, min(len(pool), rng.randint(1, 3)))
            )
        persona = rng.choice(people)
        absent = None
        if mode == "irrelevance":
            absent = _absent_tool(groups, group, offered, rng, domain_of=domain_of)
        specs.append(
            TrajectorySpec(
                id=f"{id_prefix}{i}",
                mode=mode,
                tools=offered,
                persona=persona,
                seed=rng.randrange(2**31),
                tool_group=group,
                absent_tool=absent,
            )
        )
    return specs


def _absent_tool(
    groups: Mapping[str, Sequence[dict[str, Any]]],
    group: str,
    offered: Sequence[dict[str, Any]],
    rng: random.Random,
    *,
    domain_of: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """A tool for an irrelevance task to ask about, with parameters: from another domain
    where there is one (a tool of the same domain could overlap with the offered ones),
    else from another group, else from the offered tools' own group."""
    names = {t["name"] for t in offered}

    def domain(g: str) -> str:
        return (domain_of or {}).get(g, g)

    others = [g for g in sorted(groups) if domain(g) != domain(group)]
    nearby = [g for g in sorted(groups) if g != group and domain(g) == domain(group)]
    for keys in (others, nearby, [group]):
        candidates = [
            t
            for g in keys
            for t in groups[g]
            if t["name"] not in names and (t.get("inputSchema") or {}).get("properties")
        ]
        if candidates:
            return rng.choice(candidates)
    return None
