"""How varied a set of user requests is: distinct-n and the share of near-duplicates.

- :func:`distinct_n` is corpus-level distinct-n (Li et al., 2016): distinct word n-grams
  over all n-grams of all texts.  Requests written from one template score low (their
  bigrams repeat), varied phrasings score high.
- :func:`near_duplicate_indices` takes unit-norm sentence embeddings and returns the texts
  whose cosine similarity to some *other* text reaches a threshold; the share of such
  texts is the near-duplicate rate.  :func:`embed_requests` gives those embeddings with the
  installed all-MiniLM-L6-v2 (offline, the same model the MCP Tree deduplicates with).

Plain functions, no Django; numpy only where vectors are involved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

_WORD_RE = re.compile(r"[\w']+")
NEAR_DUPLICATE_THRESHOLD = 0.9


def words(text: str) -> list[str]:
    """Lower-cased word tokens.

    >>> words("Could you book a table for 2, please?")
    ['could', 'you', 'book', 'a', 'table', 'for', '2', 'please']
    """
    return _WORD_RE.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """
    >>> ngrams(["a", "b", "c"], 2)
    [('a', 'b'), ('b', 'c')]
    """
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int = 2) -> float | None:
    """Distinct n-grams / all n-grams over every text (``None`` when there are none).

    Two requests from one template share most bigrams:

    >>> distinct_n(["Get the weather in Paris", "Get the weather in Rome"])
    0.625
    >>> distinct_n(["Book a table for two", "What's the weather in Rome?"])
    1.0
    >>> distinct_n(["hi"]) is None
    True
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    total = 0
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        grams = ngrams(words(text), n)
        total += len(grams)
        seen.update(grams)
    return None if total == 0 else round(len(seen) / total, 6)


def near_duplicate_indices(
    vectors: Any, threshold: float = NEAR_DUPLICATE_THRESHOLD, *, chunk: int = 512
) -> list[int]:
    """Indices of the rows (unit-norm vectors) with cosine ≥ ``threshold`` to another row.

    >>> import numpy as np
    >>> v = np.array([[1.0, 0.0], [0.995, 0.0998], [0.0, 1.0]])
    >>> near_duplicate_indices(v, 0.9)
    [0, 1]
    >>> near_duplicate_indices(v, 0.999)
    []
    """
    import numpy as np

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    m = np.asarray(vectors, dtype=np.float32)
    if m.ndim != 2 or len(m) < 2:
        return []
    out: list[int] = []
    for start in range(0, len(m), chunk):
        sims = m[start : start + chunk] @ m.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -1.0  # a text is not its own duplicate
        # float32 rounding: an identical pair may come out a hair under 1.0
        out.extend(int(i) + start for i in np.nonzero(sims.max(axis=1) >= threshold - 1e-6)[0])
    return out


def near_duplicate_share(
    texts: Sequence[str],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    *,
    embed: Callable[[list[str]], Any] | None = None,
) -> dict[str, Any]:
    """``{"texts", "near_duplicates", "share", "threshold", "examples"}`` for ``texts``,
    embedded with ``embed`` (default: :func:`embed_requests`); ``examples`` holds up to
    five near-duplicate texts.

    >>> import numpy as np
    >>> fake = lambda ts: np.array([[1.0, 0.0] if "tea" in t else [0.0, 1.0] for t in ts])
    >>> r = near_duplicate_share(["Order tea", "Order tea now", "Book a flight"], embed=fake)
    >>> r["near_duplicates"], r["share"]
    (2, 0.666667)
    """
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        return {"texts": 0, "near_duplicates": 0, "share": None, "threshold": threshold, "examples": []}
    vectors = (embed or embed_requests)(list(texts))
    dup = near_duplicate_indices(vectors, threshold)
    return {
        "texts": len(texts),
        "near_duplicates": len(dup),
        "share": round(len(dup) / len(texts), 6),
        "threshold": threshold,
        "examples": [texts[i] for i in dup[:5]],
    }


def embed_requests(texts: list[str]) -> Any:
    """Unit-norm all-MiniLM-L6-v2 embeddings (float32, one row per text), offline."""
    # sentence-transformers and torch load in seconds: imported only when measuring
    from synthesis.mcp_tree.dedup import embed_texts

    return embed_texts(texts)
