"""Reads for the loop: trajectories in the plain shape ``training/`` takes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from inftool_web.synth.models import Message, Trajectory

from .models import EvaluationRun, Iteration


def message_openai(m: Message) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        msg["tool_calls"] = m.tool_calls
    if m.role == "tool":
        msg["tool_call_id"] = m.tool_call_id
        if m.name:
            msg["name"] = m.name
    return msg


def training_trajectories(*, iteration_id: int, chunk: int = 500) -> Iterator[dict[str, Any]]:
    """Finished trajectories of an iteration as dicts (id, messages, tools, mode, difficulty,
    verdict, audit); the audit decision travels along and overrides the verdict downstream."""
    qs = (
        Trajectory.objects.filter(iteration_id=iteration_id, status__in=["done", "rejected"])
        .order_by("seq").prefetch_related("messages")
    )
    for t in qs.iterator(chunk_size=chunk):
        yield {
            "id": str(t.pk),
            "messages": [message_openai(m) for m in t.messages.all()],
            "tools": t.offered_tools,
            "mode": t.kind,
            "difficulty": t.difficulty or "easy",
            "verdict": t.verdict or "rejected",
            "audit": {"flag": "reject"}.get(t.audit_decision, t.audit_decision) or None,
            **({"reference_calls": t.reference_calls or []} if t.kind != "multi_turn" else {}),
        }


def iteration_list() -> QuerySet[Iteration]:
    return Iteration.objects.order_by("-number")


def evaluation_list(*, iteration: int | None = None) -> QuerySet[EvaluationRun]:
    qs = EvaluationRun.objects.select_related("checkpoint", "iteration").prefetch_related("results")
    if iteration is not None:
        qs = qs.filter(iteration_id=iteration)
    return qs.order_by("created_at", "id")
