"""Request diversity: distinct-n and near-duplicates (the data card's measures)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from synthesis.roleplay import diversity
from synthesis.roleplay.diversity import distinct_n, near_duplicate_indices, near_duplicate_share


def test_doctests():
    assert doctest.testmod(diversity).failed == 0


def test_templated_requests_score_lower_than_varied_ones():
    templated = [f"Could you get the weather for {city}, please?" for city in ("Paris", "Rome", "Oslo", "Lima")]
    varied = ["Could you get the weather for Paris, please?", "Is it going to rain in Rome tomorrow?",
              "Book a table for two in Oslo", "What's AAPL trading at?"]
    assert distinct_n(templated) < 0.5 < distinct_n(varied) == 1.0
    # 4 requests × 7 bigrams; the 5 template bigrams repeat, 2 per city do not: (5 + 4 × 2) / 28
    assert distinct_n(templated) == round(13 / 28, 6)
    with pytest.raises(ValueError):
        distinct_n(varied, 0)


def test_near_duplicates_need_another_close_text():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(600, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v[599] = v[3]  # one exact copy across a chunk boundary
    assert near_duplicate_indices(v, 0.99, chunk=256) == [3, 599]
    assert near_duplicate_indices(v[:1], 0.5) == []
    with pytest.raises(ValueError):
        near_duplicate_indices(v, 0)


def test_near_duplicate_share_of_nothing():
    assert near_duplicate_share(["", "  "], embed=lambda ts: pytest.fail("nothing to embed"))["share"] is None


@pytest.mark.slow
def test_minilm_finds_reworded_requests():
    texts = ["What's the weather in Paris today?", "What is the weather in Paris today?",
             "Book me a flight to Lisbon.", "Show my last three bank transfers."]
    result = near_duplicate_share(texts)
    assert result["near_duplicates"] == 2 and result["share"] == 0.5
    assert set(result["examples"]) == set(texts[:2])
