"""How a conversation talks to models: as a generator.

A conversation is a generator that yields an :data:`Ask` (a list of :class:`LLMCall`, the
requests it needs answered now) and receives, for each call, the list of choices the
backend returned.  The engine hands the asks of many conversations to their backends
(one by one to a backend that batches as requests arrive, grouped to any other), so a
conversation never blocks on a model by itself.

``gather`` runs several sub-generators side by side inside one conversation (k verifiers,
k self-consistency samples, parallel tool executions), merging their asks per round.
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from synthesis.llm.base import ChatRequest, ChatResult, InvalidModelOutput

T = TypeVar("T")


@dataclass
class LLMCall:
    """One request for the backend playing ``role`` (``agent``, ``user``, ``server``,
    ``scenario``, ``verifier:<i>``)."""

    role: str
    request: ChatRequest


Ask = list[LLMCall]
Answers = list[list[ChatResult]]
Gen = Generator[Ask, Answers, T]


def ask(role: str, request: ChatRequest) -> Gen[list[ChatResult]]:
    """Ask one request; returns its choices (at least one: an error result if none came)."""
    answers = yield [LLMCall(role, request)]
    return answers[0] or [error_result("the backend returned no choice")]


def ask_first(role: str, request: ChatRequest) -> Gen[ChatResult]:
    choices = yield from ask(role, request)
    return choices[0]


def gather(gens: list[Gen[Any]]) -> Gen[list[Any]]:
    """Run sub-generators together; returns their return values in order."""
    results: list[Any] = [None] * len(gens)
    active: dict[int, Ask] = {}
    for i, g in enumerate(gens):
        try:
            active[i] = next(g)
        except StopIteration as stop:
            results[i] = stop.value
    while active:
        flat: Ask = []
        spans: dict[int, tuple[int, int]] = {}
        for i, a in active.items():
            spans[i] = (len(flat), len(flat) + len(a))
            flat.extend(a)
        answers = yield flat
        nxt: dict[int, Ask] = {}
        for i in active:
            lo, hi = spans[i]
            try:
                nxt[i] = gens[i].send(answers[lo:hi])
            except StopIteration as stop:
                results[i] = stop.value
        active = nxt
    return results


def error_result(message: str) -> ChatResult:
    return ChatResult(text="", finish_reason="error", error=InvalidModelOutput(message, raw=""))


def parse_json_reply(result: ChatResult) -> Any:
    """The JSON value of a schema-constrained reply; raises InvalidModelOutput otherwise."""
    if result.error is not None:
        raise result.error
    text = result.text.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[4:] if text.startswith("json") else text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        # Models outside constraints sometimes wrap the JSON in prose.
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                pass
        raise InvalidModelOutput(f"reply is not JSON ({e})", raw=result.text) from e


def rng_for(seed: int, *parts: Any) -> random.Random:
    """A generator seeded by the trajectory seed and a label, independent of call order
    (so a resumed run draws the same values where it draws at all)."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def seed_for(seed: int, *parts: Any) -> int:
    return rng_for(seed, *parts).randrange(2**31)
