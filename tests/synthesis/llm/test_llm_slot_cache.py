"""The embedded backend's slot KV cache (plain tensors, no model is loaded)."""

import torch

from synthesis.llm.embedded.cache import SlotCache


def make(rows_lengths, width, layers=2, kv=1, d=2):
    """A cache holding rows whose entry at column c of row r is 100 * r + c (c < length)."""
    cache = SlotCache(layers=layers, kv_heads=kv, head_dim=d, dtype=torch.float32)
    n = len(rows_lengths)
    k = torch.zeros((n, kv, width, d))
    for r, length in enumerate(rows_lengths):
        for c in range(length):  # left padded, as a batched prefill leaves them
            k[r, :, width - length + c] = 100 * r + c
    cache.put_rows(0, [(k, -k)] * layers, rows_lengths, width)
    return cache


def test_prefill_rows_land_unpadded_and_steps_write_each_row_at_its_own_column():
    cache = make([3, 1], width=3)
    assert cache.lens.tolist()[:2] == [3, 1]
    assert cache.keys[0][1, 0, 0].tolist() == [100, 100]
    pos, mask = cache.begin_step(2)
    assert pos.tolist() == [[3], [1]]
    assert mask.shape == (2, 1, 1, 4)
    assert mask[:, 0, 0].tolist() == [[True] * 4, [True, True, False, False]]
    new = torch.tensor([7.0, 8.0]).view(2, 1, 1, 1).expand(2, 1, 1, 2)
    k, v = cache.update(new, -new, 0)
    assert k.shape == (2, 1, 4, 2) and v.shape == k.shape
    assert k[0, 0, 3].tolist() == [7, 7] and k[1, 0, 1].tolist() == [8, 8]
    cache.end_step(2)
    assert cache.lens.tolist()[:2] == [4, 2]


def test_equal_lengths_need_no_mask_and_a_freed_row_takes_the_last_one():
    cache = make([2, 2, 1], width=2)
    cache.move_row(2, 0)  # row 0 finished; the last row moves into it
    assert cache.lens[0] == 1 and cache.keys[1][0, 0, 0].tolist() == [200, 200]
    pos, mask = cache.begin_step(1)
    assert mask is None and pos.tolist() == [[1]]


def test_the_cache_grows_and_keeps_what_it_holds():
    cache = make([2], width=2)
    cols = cache.cols
    cache.lens[0] = cols  # as if decoding had filled every column
    pos, _ = cache.begin_step(1)
    assert cache.cols > cols and pos.tolist() == [[cols]]
    assert cache.keys[0][0, 0, 1].tolist() == [1, 1]
