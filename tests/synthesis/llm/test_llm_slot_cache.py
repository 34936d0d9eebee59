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


# ---------------------------------------------------------------------------- prefix store

def layers_for(ids, layers=2, kv=1, d=2):
    """Per-layer (kv, len, d) entries whose column c holds token ids[c] (keys) and -ids[c]."""
    k = torch.tensor(ids, dtype=torch.float32).view(1, -1, 1).expand(kv, len(ids), d).contiguous()
    return [(k, -k) for _ in range(layers)]


def test_a_prompt_is_reused_up_to_where_it_parts_from_the_longest_match():
    from synthesis.llm.embedded.cache import PrefixStore

    store = PrefixStore(max_bytes=1 << 20)
    shared = list(range(1, 41))
    store.put(shared + [50, 51], layers_for(shared + [50, 51]))
    store.put(shared + [60, 61, 62, 63], layers_for(shared + [60, 61, 62, 63]))
    n, past = store.longest(shared + [60, 61, 99])
    assert n == 42
    assert past[0][0][0, :, 0].tolist() == shared + [60, 61]  # the matching entry's columns
    assert past[1][1][0, :, 0].tolist() == [-x for x in shared + [60, 61]]
    # the same prompt again: all but its last token (whose logits must be computed)
    n, _ = store.longest(shared + [50, 51])
    assert n == 41
    # too short a shared beginning is not worth a prefill of its own
    assert store.longest(list(range(1, 20)) + [7] * 30) == (0, None)
    assert store.longest([]) == (0, None)


def test_a_longer_prompt_replaces_its_beginning_and_the_oldest_entries_go_past_the_budget():
    from synthesis.llm.embedded.cache import PrefixStore

    one = 2 * 2 * 2 * 4  # bytes per token: layers * (keys, values) * d * float32
    store = PrefixStore(max_bytes=150 * one)
    turn1 = list(range(1, 51))
    store.put(turn1, layers_for(turn1))
    turn2 = turn1 + list(range(100, 140))
    store.put(turn2, layers_for(turn2))  # the conversation grew: one entry covers both
    assert len(store) == 1 and store.used == 90 * one
    store.put(turn1, layers_for(turn1))  # a beginning of what is held: nothing new
    assert len(store) == 1
    other = list(range(500, 580))
    store.put(other, layers_for(other))  # 170 tokens > 150: the least recent goes
    assert len(store) == 1 and store.used == 80 * one
    assert store.longest(turn2 + [1]) == (0, None)
    assert store.longest(other + [1])[0] == 80
    store.put(list(range(1000, 1200)), layers_for(list(range(1000, 1200))))  # over the whole budget
    assert len(store) == 1 and store.used == 80 * one


def test_stored_entries_are_copies():
    from synthesis.llm.embedded.cache import PrefixStore

    store = PrefixStore(max_bytes=1 << 20)
    ids = list(range(1, 41))
    layers = layers_for(ids)
    store.put(ids, layers)
    layers[0][0].zero_()  # the prefill's buffer is reused later
    _, past = store.longest(ids + [5])
    assert past[0][0][0, :, 0].tolist() == ids
