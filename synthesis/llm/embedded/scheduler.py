"""The embedded backend's scheduler: one thread owns the model and decodes every queued
sequence together, continuously batched over a slot cache (see the package docstring)."""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..base import ChatRequest, ChatResult, Generation, LLMBackend, LLMError, OnText
from ..prompting import to_hermes_messages
from ..toolcalls import (
    TOOL_CALL_CLOSE,
    apply_tool_call_parsing,
    ends_repeating_a_call,
    ends_with_repeated_call,
)
from .cache import PrefixStore, SlotCache
from .checkpoint import (
    EMBEDDED_MODEL_NAME,
    cpu_supports_bf16,
    ensure_embedded_checkpoint,
    resolve_dtype,
)
from .grammar import GrammarCache, check_tool_choice

logger = logging.getLogger(__name__)


class EmbeddedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str | None = Field(
        None, description="A local transformers checkpoint folder; default: the packaged SmolLM2."
    )
    dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto", description="auto: bfloat16 where the CPU has bf16 instructions that beat float32, else float32."
    )
    max_batch_size: int = Field(
        64, ge=1,
        description="Sequences decoded together (synthesis keeps 64 conversations in flight; a decode "
                    "step of 64 rows costs 2.5x one of 16 on 2 cores, so wider is cheaper per token).",
    )
    max_prefill_tokens: int = Field(
        8192, ge=1, description="Padded prompt tokens prefilled in one pass when admitting."
    )
    num_threads: int | None = Field(None, ge=1, description="torch threads; default: all cores.")
    constrain_tool_calls: bool = Field(
        True,
        description="With tool_choice=auto, constrain calls the model opens to the tools' schemas.",
    )
    prefix_cache_mb: int = Field(
        1024, ge=0,
        description="Keys and values of recent prompts kept to prefill a prompt that begins like "
                    "one of them from where they part (0: off).",
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
    # Set from any thread; the scheduler ends the sequence at its next step.
    cancelled: bool = False
    # Called on the scheduler thread with each token kept (streaming).
    on_token: Callable[[int], None] | None = None
    # A reply read for tool calls ends when it repeats a call it already made (a small
    # model otherwise loops on the same call until max_tokens); the repeat is cut off.
    parse_calls: bool = False
    calls_closed_at: list[int] = field(default_factory=list)
    keep: int | None = None  # tokens of the reply; None: all of ``generated``
    # Tokens the grammar forced at the start of the reply: already in ``generated`` and at
    # the end of ``prompt_ids`` (prefilled, not decoded); streamed when the prefill runs.
    forced: int = 0


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
        self.dtype = resolve_dtype(opts.dtype)
        path = Path(opts.model_path) if opts.model_path else ensure_embedded_checkpoint(self.dtype)
        if not (path / "config.json").is_file():
            raise LLMError(f"{path} is not a transformers checkpoint folder (no config.json)")
        self.model_path = path
        self.model_id = EMBEDDED_MODEL_NAME if not opts.model_path else path.name
        t0 = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=self.dtype, local_files_only=True, attn_implementation="sdpa"
        )
        self.model.eval()
        # transformers renamed past_key_values to cache (the old name warns on every step).
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        # Decode steps drive the decoder layers directly over a slot cache (see SlotCache),
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
            "bf16 is faster than float32 on this CPU" if cpu_supports_bf16() else "bf16 is not faster on this CPU",
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
        self.grammars = GrammarCache(xgr.GrammarCompiler(self._tokenizer_info),
                                     constrain_tool_calls=opts.constrain_tool_calls)
        # Tokens that can end "</tool_call>" (">", ">\n", ...): only after these is a reply
        # checked for a repeated call (decoding on every step would slow the scheduler down).
        pieces = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        self._closing_ids = frozenset(i for i, t in enumerate(pieces) if t and ">" in t)
        self._queue: queue.Queue[_Seq] = queue.Queue()
        # used by the scheduler thread only
        self._prefixes = PrefixStore(opts.prefix_cache_mb << 20) if opts.prefix_cache_mb else None
        self._held: _Seq | None = None
        self._closed = threading.Event()
        self._stats_lock = threading.Lock()
        self.stats: dict[str, float] = dict.fromkeys(
            (
                "steps",
                "decode_tokens",
                "prefills",
                "prefill_tokens",
                "prefix_reused_tokens",
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

    def submit(self, request: ChatRequest, *, on_text: OnText | None = None) -> Generation:
        """Queue ``request`` and return at once (see :class:`~synthesis.llm.base.Generation`).

        ``on_text(choice, new_text)`` receives each choice's text as it is decoded, on the
        scheduler thread; the caller must hand it off, not work in it.  Cancelling frees the
        request's slots at the next decode step.
        """
        if self._closed.is_set():
            raise LLMError("the embedded backend was closed")
        p = self._prepare(request)
        done: concurrent.futures.Future = concurrent.futures.Future()
        futures: list[concurrent.futures.Future | None] = []
        seqs: list[_Seq] = []
        left = [0]
        left_lock = threading.Lock()

        def one_done(_: concurrent.futures.Future) -> None:
            with left_lock:
                left[0] -= 1
                last = left[0] == 0
            if last and not done.done():
                done.set_result(None)

        for i in range(request.n):
            if p.max_new <= 0:
                futures.append(None)
                continue
            fut: concurrent.futures.Future = concurrent.futures.Future()
            seq = self._new_seq(p, i, fut)
            if on_text is not None:
                seq.on_token = _TextDeltas(self.tokenizer, i, on_text)
            seqs.append(seq)
            futures.append(fut)
        left[0] = len(seqs)
        if not seqs:
            done.set_result(None)
        for seq in seqs:
            seq.future.add_done_callback(one_done)
        for seq in seqs:
            self._queue.put(seq)

        def cancel() -> None:
            for seq in seqs:
                seq.cancelled = True

        return Generation(done, lambda: [self._result(p, f) for f in futures], cancel)

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        """How many tokens of the context ``request``'s prompt takes."""
        ids = self.tokenizer(self.render_prompt(request), add_special_tokens=False)["input_ids"]
        return len(ids)

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
        tools = request.constraint_tools()
        check_tool_choice(request.tool_choice, tools)
        try:
            grammar = self.grammars.for_request(request, tools)
        except Exception as e:  # xgrammar raises several types for unsupported schemas
            msg = f"schema could not be compiled into a grammar, generated unconstrained: {e}"
            logger.warning(msg)
            warnings.append(msg)
        parse_calls = bool(tools) and request.tool_choice != "none" and request.json_schema is None
        return _Prepared(request, ids, grammar, parse_calls, warnings, max_new)

    def _new_seq(self, p: _Prepared, choice: int, fut: concurrent.futures.Future) -> _Seq:
        import torch

        r = p.request
        gen = None
        if r.temperature > 0:
            gen = torch.Generator()
            gen.manual_seed((r.seed + choice) if r.seed is not None else random.getrandbits(63))
        matcher = self._xgr.GrammarMatcher(p.grammar) if p.grammar is not None else None
        # Only a call's envelope is jumped over, never the start of a JSON reply: with
        # '{"rationale": "' prefilled, the 135M verifiers' rationales came out usable more
        # often and their (weak) rejections counted: 5 of 10 trajectories accepted against 7.
        calls = r.json_schema is None and r.tool_choice not in ("auto", "none")
        forced = self._forced_start(matcher, p.max_new) if matcher is not None and calls else []
        return _Seq(
            prompt_ids=p.prompt_ids + forced,
            generated=list(forced),
            forced=len(forced),
            max_new=p.max_new,
            temperature=r.temperature,
            top_p=r.top_p,
            generator=gen,
            matcher=matcher,
            stop=list(r.stop or []),
            future=fut,
            parse_calls=p.parse_calls,
        )

    def _forced_start(self, matcher: Any, max_new: int) -> list[int]:
        """The tokens the grammar forces at the start of a reply, accepted by ``matcher``.

        A forced call begins with ``<tool_call>\n{"name": "<tool>", "arguments": `` (20-30
        tokens): decoded one step at a time, each of them costs a decode step of the whole
        batch; appended to the prompt they are prefilled in one pass.  The last token of the
        forced text is left to the model, so that the boundary between the forced text and
        what the model writes next is one the model chooses.
        """
        text = matcher.find_jump_forward_string()
        if not text:
            return []
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][:-1]
        out: list[int] = []
        for tok in ids[: max(max_new - 1, 0)]:
            if not matcher.accept_token(tok):
                break
            out.append(tok)
        return out

    def _result(self, p: _Prepared, fut: concurrent.futures.Future | None) -> ChatResult:
        if fut is None:
            return ChatResult(
                text="",
                finish_reason="length",
                prompt_tokens=len(p.prompt_ids),
                warnings=list(p.warnings),
            )
        seq: _Seq = fut.result()
        text = self.tokenizer.decode(seq.generated[: seq.keep], skip_special_tokens=True)
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
        cache: SlotCache | None = None
        while not self._closed.is_set():
            newcomers: list[_Seq] = []
            try:
                for s in active:
                    if s.cancelled:
                        s.finish_reason = "cancelled"
                if cache is not None:
                    active = self._drop_finished(active, cache)
                newcomers = self._admit(len(active), block=not active)
                if not newcomers and not active:
                    cache = None  # idle: give the cache's memory back
                    continue
                with torch.inference_mode():
                    if newcomers:
                        if cache is None:
                            cache = self._new_cache()
                        # Rows follow the groups' order: each group's rows are contiguous.
                        groups = prefill_groups([len(s.prompt_ids) for s in newcomers],
                                                self.options.max_prefill_tokens)
                        newcomers = [newcomers[i] for g in groups for i in g]
                        start = 0
                        for g in groups:
                            self._prefill(newcomers[start:start + len(g)], cache, first_row=len(active) + start)
                            start += len(g)
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
            if s.cancelled:  # cancelled while it waited: never takes a slot
                s.finish_reason = "cancelled"
                if not s.future.done():
                    s.future.set_result(s)
                continue
            longest_next = max(longest, len(s.prompt_ids))
            if out and longest_next * (len(out) + 1) > self.options.max_prefill_tokens:
                self._held = s  # first in the next round, so that arrival order is kept
                break
            out.append(s)
            longest = longest_next
        return out

    def _new_cache(self) -> SlotCache:
        cfg = self.model.config
        heads = cfg.num_attention_heads
        return SlotCache(
            layers=cfg.num_hidden_layers,
            kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
            head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // heads,
            dtype=self.dtype,
        )

    def _prefill(self, seqs: list[_Seq], cache: SlotCache, first_row: int) -> None:
        """Prefill newcomers and move their keys/values into slot rows ``first_row...``; the
        rows already decoding are not touched.  A prompt that begins like a recent one
        (:class:`PrefixStore`) computes only the rest, alone; the others are prefilled
        together, left-padded.  Newcomers with the same prompt (the choices of one request
        with ``n`` > 1) are computed once and copied."""
        import torch

        unique: dict[tuple[int, ...], int] = {}
        row_of = [unique.setdefault(tuple(s.prompt_ids), len(unique)) for s in seqs]
        prompts = [list(p) for p in unique]
        # per distinct prompt: its last logits and unpadded (kv_heads, length, head_dim) layers
        done: list[tuple[Any, list[tuple[Any, Any]]] | None] = [None] * len(prompts)
        t0 = time.perf_counter()
        computed = reused = 0
        fresh = []
        for i, p in enumerate(prompts):
            n, past = self._prefixes.longest(p) if self._prefixes is not None else (0, None)
            if past is None:
                fresh.append(i)
                continue
            done[i] = self._extend(p, n, past)
            reused += n
            computed += len(p) - n
        if fresh:
            computed += self._prefill_padded([prompts[i] for i in fresh], fresh, done)
        for j, s in enumerate(seqs):
            n = len(s.prompt_ids)
            layers = [(k[None], v[None]) for k, v in done[row_of[j]][1]]
            cache.put_rows(first_row + j, layers, [n], n)
        logits = torch.stack([done[row_of[j]][0] for j in range(len(seqs))])
        for s in seqs:
            if s.forced and s.on_token is not None:
                for tok in s.generated[: s.forced]:
                    s.on_token(tok)
        if self._prefixes is not None:
            for p, (_, layers) in zip(prompts, done, strict=True):
                self._prefixes.put(p, layers)
        with self._stats_lock:
            self.stats["prefills"] += 1
            self.stats["prefill_tokens"] += computed
            self.stats["prefix_reused_tokens"] += reused
            self.stats["forward_seconds"] += time.perf_counter() - t0
        self._sample(seqs, logits)

    def _prefill_padded(self, prompts: list[list[int]], slots: list[int], done: list[Any]) -> int:
        """Prefill ``prompts`` in one left-padded pass into ``done[slots[i]]``; the prompt
        tokens computed (padding not counted)."""
        import torch
        from transformers import DynamicCache

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        scratch = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            **{self._cache_arg: scratch},
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1, :]
        layers = [(layer.keys, layer.values) for layer in scratch.layers]
        for j, (slot, p) in enumerate(zip(slots, prompts, strict=True)):
            start = width - len(p)
            done[slot] = (logits[j], [(k[j, :, start:], v[j, :, start:]) for k, v in layers])
        return int(mask.sum())

    def _extend(self, prompt: list[int], n: int, past: list[tuple[Any, Any]]) -> tuple[Any, list[tuple[Any, Any]]]:
        """Prefill ``prompt`` whose first ``n`` tokens' layers are ``past``: only the rest is
        computed.  Its last logits and its layers."""
        import torch
        from transformers import DynamicCache

        scratch = DynamicCache(ddp_cache_data=[(k[None], v[None]) for k, v in past], config=self.model.config)
        out = self.model(
            input_ids=torch.tensor([prompt[n:]]),
            attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
            position_ids=torch.arange(n, len(prompt))[None],
            **{self._cache_arg: scratch},
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[0, -1, :], [(layer.keys[0], layer.values[0]) for layer in scratch.layers]

    def _decode_step(self, seqs: list[_Seq], cache: SlotCache) -> None:
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
            if s.on_token is not None:
                s.on_token(tok)
            if s.parse_calls and self._repeats_a_call(s, tok):
                s.finish_reason = "stop"
            elif len(s.generated) >= s.max_new:
                # The grammar may have just been completed by this last token: the model
                # stopped rather than ran out.
                complete = s.matcher is not None and s.matcher.is_completed()
                if not complete and s.parse_calls and s.calls_closed_at:
                    complete = self._cut_repeat_in_progress(s)
                s.finish_reason = "stop" if complete else "length"
            elif s.stop:
                tail = self.tokenizer.decode(s.generated[-16:], skip_special_tokens=True)
                if any(stop in tail for stop in s.stop):
                    s.finish_reason = "stop"

    def _repeats_a_call(self, s: _Seq, tok: int) -> bool:
        """After a token that closes a tool call: whether that call repeats an earlier one of
        the reply; if so the reply keeps only what came before the repeat."""
        if tok not in self._closing_ids:
            return False
        text = self.tokenizer.decode(s.generated, skip_special_tokens=True)
        if not text.rstrip().endswith(TOOL_CALL_CLOSE):
            return False
        if ends_with_repeated_call(text):
            s.keep = s.calls_closed_at[-1] if s.calls_closed_at else None
            return True
        s.calls_closed_at.append(len(s.generated))
        return False

    def _cut_repeat_in_progress(self, s: _Seq) -> bool:
        """At max_tokens: whether the reply was repeating a call it made; if so it keeps
        what came before the repeat and counts as stopped (its calls are all there)."""
        text = self.tokenizer.decode(s.generated, skip_special_tokens=True)
        if not ends_repeating_a_call(text):
            return False
        s.keep = s.calls_closed_at[-1]
        return True

    def _drop_finished(self, seqs: list[_Seq], cache: SlotCache) -> list[_Seq]:
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


class _TextDeltas:
    """Turns one sequence's tokens into the text each adds, for ``on_text``.

    The whole sequence is decoded each time: a token may be half of a character (the text
    then ends in U+FFFD and is held back until the rest arrives), and a tokenizer may merge
    spaces across tokens, so decoding tokens one by one would not add up to the reply.
    """

    def __init__(self, tokenizer: Any, choice: int, on_text: OnText):
        self.tokenizer, self.choice, self.on_text = tokenizer, choice, on_text
        self.ids: list[int] = []
        self.sent = 0

    def __call__(self, tok: int) -> None:
        self.ids.append(tok)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd") or len(text) <= self.sent:
            return
        new, self.sent = text[self.sent :], len(text)
        try:
            self.on_text(self.choice, new)
        except Exception:  # a broken listener must not stop the scheduler
            logger.exception("on_text callback failed")


def prefill_groups(lengths: list[int], max_tokens: int, waste: float = 0.15) -> list[list[int]]:
    """Indices of prompts prefilled together: sorted by length, a group grows while its
    left padding stays within ``waste`` of its real tokens and its padded size within
    ``max_tokens``.  One padded pass over prompts of 200 and 1,000 tokens computes 2,000
    positions and attention over the longest for both; on a CPU, where prefill is bound
    by arithmetic, that costs more than two passes (measured: 16 prompts of 217-649
    tokens, 52 s padded together against 30 s one by one).

    >>> prefill_groups([300, 40, 310, 1000, 42], 8192)
    [[1, 4], [0, 2], [3]]
    >>> prefill_groups([100] * 5, 250)
    [[0, 1], [2, 3], [4]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    real = 0
    for i in order:
        n = lengths[i]
        if groups:
            g = groups[-1]
            padded = n * (len(g) + 1)  # sorted: n is the group's longest
            if padded <= max_tokens and padded - (real + n) <= waste * (real + n):
                g.append(i)
                real += n
                continue
        groups.append([i])
        real = n
    return groups


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
