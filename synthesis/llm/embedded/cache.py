"""The slot cache: one preallocated key/value row per decoding sequence, written in place."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class SlotCache:
    """Keys and values of the active sequences in preallocated buffers, one row per sequence.

    Row ``i`` holds its sequence's entries at columns ``0 .. lens[i]-1`` (no left padding).  A
    decode step writes each row's new entry at that row's own column and attends over the
    first ``max(lens)+1`` columns with a padding mask, so nothing is concatenated or copied
    per step (``DynamicCache`` copies the whole cache at every step); admitting a sequence
    copies its prefilled entries in once, and a finished row is overwritten by the last one.
    Buffers grow (rows up to the batch size, columns in blocks) only when needed.
    """

    BLOCK = 128

    def __init__(self, *, layers: int, kv_heads: int, head_dim: int, dtype: Any):
        import torch

        self._shape = (kv_heads, head_dim)
        self.dtype = dtype
        self.keys: list[Any] = [None] * layers
        self.values: list[Any] = [None] * layers
        self.rows = 0
        self.cols = 0
        self.lens = torch.zeros(0, dtype=torch.long)
        self._step: tuple[Any, Any, int] | None = None

    def _reserve(self, rows: int, cols: int) -> None:
        import torch

        if rows <= self.rows and cols <= self.cols:
            return
        new_rows, new_cols = max(rows, self.rows), max(cols, self.cols)
        new_cols = -(-new_cols // self.BLOCK) * self.BLOCK
        kv, d = self._shape
        for store in (self.keys, self.values):
            for li, old in enumerate(store):
                # Zeros, not empty: masked columns still enter the attention product, and
                # 0 * NaN from uninitialised memory would be NaN.
                buf = torch.zeros((new_rows, kv, new_cols, d), dtype=self.dtype)
                if old is not None:
                    buf[: self.rows, :, : self.cols] = old
                store[li] = buf
        lens = torch.zeros(new_rows, dtype=torch.long)
        lens[: self.rows] = self.lens
        self.lens, self.rows, self.cols = lens, new_rows, new_cols

    def put_rows(
        self, first: int, layers: list[tuple[Any, Any]], lengths: list[int], width: int
    ) -> None:
        """Copy left-padded prefill entries ((b, kv, width, d) per layer) into rows ``first...``."""
        self._reserve(first + len(lengths), max(lengths) + 1)
        for li, (k, v) in enumerate(layers):
            for j, n in enumerate(lengths):
                self.keys[li][first + j, :, :n] = k[j, :, width - n :]
                self.values[li][first + j, :, :n] = v[j, :, width - n :]
        for j, n in enumerate(lengths):
            self.lens[first + j] = n

    def move_row(self, src: int, dst: int) -> None:
        n = int(self.lens[src])
        for store in (self.keys, self.values):
            for buf in store:
                buf[dst, :, :n] = buf[src, :, :n]
        self.lens[dst] = n

    def begin_step(self, n: int) -> tuple[Any, Any]:
        """Positions (n, 1) and the attention mask for a one-token step of rows 0..n-1."""
        import torch

        lens = self.lens[:n]
        width = int(lens.max()) + 1
        self._reserve(n, width)
        lens = self.lens[:n]
        if int(lens.min()) + 1 == width:
            mask = None  # every row attends to every column: sdpa's unmasked (fastest) path
        else:
            mask = (torch.arange(width) <= lens[:, None])[:, None, None, :]
        self._step = (torch.arange(n), lens.clone(), width)
        return lens[:, None].clone(), mask

    def end_step(self, n: int) -> None:
        self.lens[:n] += 1
        self._step = None

    def update(self, key_states: Any, value_states: Any, layer_idx: int, *args: Any, **kwargs: Any):
        """The cache interface the attention layers call: store this step's entry of every
        row at its own column, return the rows' keys and values so far."""
        rows, cols, width = self._step
        n = key_states.shape[0]
        k, v = self.keys[layer_idx], self.values[layer_idx]
        k[rows, :, cols] = key_states[:, :, 0]
        v[rows, :, cols] = value_states[:, :, 0]
        return k[:n, :, :width], v[:n, :, :width]


class PrefixStore:
    """Keys and values of recent prompts, so that a prompt that begins like one of them is
    prefilled from where they part (least recently used dropped past ``max_bytes``).

    Synthesis sends prompts that share long beginnings: one role's system prompt and tool
    list across scenarios, a conversation's history growing turn by turn, a reflection
    retry that repeats the attempt it corrects.  On the prompts a 10-trajectory run sent
    the embedded model, 52-61% of prompt tokens were such a shared beginning.

    An entry is one prompt's token ids and its unpadded per-layer ``(keys, values)``, each
    ``(kv_heads, length, head_dim)``.
    """

    MIN_REUSE = 32  # tokens; a shorter shared beginning is not worth a prefill of its own

    def __init__(self, max_bytes: int):
        import collections

        self.max_bytes = max_bytes
        self.used = 0
        self._entries: collections.OrderedDict[int, tuple[Any, list[tuple[Any, Any]], int]] = (
            collections.OrderedDict()
        )
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def longest(self, ids: list[int]) -> tuple[int, list[tuple[Any, Any]] | None]:
        """The longest stored beginning of ``ids`` (at most ``len(ids) - 1`` tokens: the
        last one must be computed for its logits) and its layers; ``(0, None)`` if under
        :attr:`MIN_REUSE`."""
        import numpy as np

        if not self._entries or len(ids) <= self.MIN_REUSE:
            return 0, None
        query = np.asarray(ids)
        best, best_key = 0, None
        for key, (stored, _, _) in self._entries.items():
            if min(len(stored), len(query)) <= best:
                continue
            n = _shared(stored, query)
            if n > best:
                best, best_key = n, key
        best = min(best, len(ids) - 1)
        if best < self.MIN_REUSE or best_key is None:
            return 0, None
        self._entries.move_to_end(best_key)
        layers = self._entries[best_key][1]
        return best, [(k[:, :best], v[:, :best]) for k, v in layers]

    def put(self, ids: list[int], layers: list[tuple[Any, Any]]) -> None:
        """Store a prompt's layers (copied; ``layers`` may be views of a larger buffer)."""
        import numpy as np

        if len(ids) <= self.MIN_REUSE:
            return
        new = np.asarray(ids)
        for key, (stored, _, stored_size) in list(self._entries.items()):
            if _shared(stored, new) < min(len(stored), len(new)):
                continue
            if len(stored) >= len(new):  # already held as (the beginning of) a longer prompt
                self._entries.move_to_end(key)
                return
            del self._entries[key]  # the new prompt extends it: one entry covers both
            self.used -= stored_size
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if size > self.max_bytes:
            return
        self._entries[self._next] = (
            new, [(k.clone(), v.clone()) for k, v in layers], size
        )
        self._next += 1
        self.used += size
        while self.used > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self.used -= dropped



def _shared(a: Any, b: Any) -> int:
    """How many leading tokens two id arrays have in common."""
    import numpy as np

    m = min(len(a), len(b))
    differ = np.flatnonzero(a[:m] != b[:m])
    return int(differ[0]) if len(differ) else m
