"""Throughput of the embedded backend against raw ``model.generate`` on the same model.

    python bench/bench_llm.py [--reps 3] [--threads N] [--out bench/RESULTS-llm.md]

Prints one table: batch-1 greedy generation (raw vs backend, identical outputs); 32
conversations of different lengths through the backend's continuous batching vs raw
forced-length batch-16 generation and vs raw static batches of the same 32; constrained
vs unconstrained decoding; bf16 vs fp32; GGUF (cold) vs cached-checkpoint load time.

Raw and backend runs alternate after one warm-up of each, and each figure is the best of
``--reps``, so that other work on a shared machine skews both sides alike.  Every ratio is
also given by CPU time (the process's, all threads): on a shared machine that one moves
less with other people's jobs.  Raw means ``model.generate`` on the backend's own model
object, greedy, on the exact prompt text the backend renders.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from synthesis.llm.base import ChatRequest  # noqa: E402
from synthesis.llm.embedded import (  # noqa: E402
    EmbeddedBackend,
    cpu_supports_bf16,
    ensure_embedded_checkpoint,
    gguf_path,
)

TOPICS = [
    "the sea",
    "a dragon",
    "autumn leaves",
    "a robot learning to paint",
    "the history of bread",
    "a lighthouse keeper",
    "the moon landing",
    "a city at night",
    "a lost key",
    "coffee",
    "a mountain village",
    "the first computer",
    "a rainy Monday",
    "an old library",
    "a chess game",
    "the desert",
    "a friendly ghost",
    "a train journey",
    "a garden in spring",
    "the northern lights",
    "a busy kitchen",
    "a sleepy cat",
    "an island",
    "a violin",
    "a snowstorm",
    "a market day",
    "a paper boat",
    "the ocean floor",
    "a clockmaker",
    "a kite",
    "a volcano",
    "a bicycle",
]
TOOL = {
    "name": "create_event",
    "description": "Create a calendar event",
    "inputSchema": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 40},
            "day": {
                "type": "string",
                "enum": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            },
            "attendees": {
                "type": "array",
                "items": {"type": "string", "maxLength": 16},
                "maxItems": 3,
            },
            "hours": {"type": "integer", "minimum": 1, "maximum": 8},
        },
        "required": ["title", "day", "attendees", "hours"],
    },
}


def conversation(i: int) -> list[dict]:
    """Conversations of different prompt lengths."""
    msgs = [{"role": "user", "content": f"Write a short story about {TOPICS[i % len(TOPICS)]}."}]
    if i % 3 == 1:
        msgs = [
            {
                "role": "system",
                "content": "You are a creative writer who likes vivid details and long sentences.",
            },
            {"role": "user", "content": "Hi! I would like some help with my writing today."},
            {"role": "assistant", "content": "Of course! What would you like to write about?"},
        ] + msgs
    if i % 3 == 2:
        msgs[0]["content"] += " Make it about a page long, with a title and a surprising ending."
    return msgs


class Timer:
    """Best wall-clock and best CPU seconds over several timed runs."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, fn):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        self.wall.append(time.perf_counter() - t0)
        self.cpu.append(time.process_time() - c0)
        return out

    def rate(self, n: int) -> tuple[float, float]:
        """(tokens per wall second, tokens per CPU second), each from the fastest run."""
        return n / min(self.wall), n / min(self.cpu)


def raw_generate(
    model,
    tok,
    prompts: list[str],
    max_new: int,
    force: bool,
    limits: list[int] | None = None,
    texts: list[str] | None = None,
) -> int:
    """Greedy generate on one left-padded batch; returns new tokens (without padding/eos),
    counting at most ``limits[i]`` for row i when given; appends the decoded texts to
    ``texts`` when given."""
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    kwargs = {"max_new_tokens": max_new, "do_sample": False, "pad_token_id": tok.pad_token_id}
    if force:
        kwargs["min_new_tokens"] = max_new
    with torch.inference_mode():
        out = model.generate(**enc, **kwargs)
    new = out[:, enc["input_ids"].shape[1] :]
    if force:
        return int(new.numel())
    eos = tok.eos_token_id
    total = 0
    for i, row in enumerate(new.tolist()):
        n = row.index(eos) if eos in row else len(row)
        total += min(n, limits[i]) if limits else n
        if texts is not None:
            texts.append(tok.decode(row[:n], skip_special_tokens=True))
    return total


def in_batches(backend, requests: list[ChatRequest], size: int) -> list:
    """Results of ``requests`` sent ``size`` at a time, one call waiting for the previous."""
    return [
        r
        for i in range(0, len(requests), size)
        for r in backend.complete_batch(requests[i : i + size])
    ]


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"CPU bf16 faster than float32: {'yes' if cpu_supports_bf16() else 'no'}, Python {platform.python_version()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=3, help="runs per figure; the fastest counts")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[tuple[str, str, str, str, str]] = []
    load_start = os.getloadavg()

    def row(what: str, raw: str, backend: str, ratio: str, cpu_ratio: str = "") -> None:
        rows.append((what, raw, backend, ratio, cpu_ratio))
        print(f"{what:<66} {raw:>10} {backend:>10} {ratio:>7} {cpu_ratio:>7}", flush=True)

    def rates(what: str, n_raw: int, raw: Timer, n_back: int, back: Timer) -> float:
        (r, rc), (b, bc) = raw.rate(n_raw), back.rate(n_back)
        row(what, f"{r:.1f}", f"{b:.1f}", f"{b / r:.2f}", f"{bc / rc:.2f}")
        return b / r

    print(machine())
    print(f"{'':<66} {'raw':>10} {'backend':>10} {'ratio':>7} {'by CPU':>7}")

    # -- load times ---------------------------------------------------------------------------
    ckpt = ensure_embedded_checkpoint()
    src = gguf_path()
    t0 = time.perf_counter()
    AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    m = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    cold = time.perf_counter() - t0
    del m
    gc.collect()
    t0 = time.perf_counter()
    AutoTokenizer.from_pretrained(ckpt)
    m = AutoModelForCausalLM.from_pretrained(ckpt)
    warm = time.perf_counter() - t0
    del m
    gc.collect()
    row(
        "load: GGUF (cold) vs cached safetensors checkpoint, s",
        f"{cold:.2f}",
        f"{warm:.2f}",
        f"{cold / warm:.0f}x",
        "",
    )

    backend = EmbeddedBackend(dtype="float32", max_batch_size=16, num_threads=args.threads)
    model, tok = backend.model, backend.tokenizer
    row(
        "backend start (checkpoint + tokenizer + grammar engine), s",
        "",
        f"{backend.load_seconds:.2f}",
        "",
        "",
    )

    # -- batch 1 -----------------------------------------------------------------------------
    reqs1 = [ChatRequest(messages=conversation(i), max_tokens=64) for i in range(4)]
    prompts1 = [backend.render_prompt(r) for r in reqs1]
    raw_generate(model, tok, prompts1[:1], 8, force=False)  # warm-up of both sides
    backend.complete(ChatRequest(messages=conversation(0), max_tokens=8))
    raw_t, back_t = Timer(), Timer()
    for _ in range(args.reps):
        raw_texts: list[str] = []
        raw_n = raw_t(
            lambda out=raw_texts: sum(
                raw_generate(model, tok, [p], 64, force=False, texts=out) for p in prompts1
            )
        )
        results1 = back_t(lambda: [backend.complete(r) for r in reqs1])
        back_n = sum(r.completion_tokens for r in results1)
    same = sum(a == b.text for a, b in zip(raw_texts, results1, strict=True))
    rates(
        f"batch 1, greedy, 4 prompts ({raw_n} / {back_n} tokens, {same}/4 texts identical), tok/s",
        raw_n,
        raw_t,
        back_n,
        back_t,
    )

    # -- continuous batching -----------------------------------------------------------------
    reqs32 = [
        ChatRequest(messages=conversation(i), max_tokens=(32, 64, 96, 128)[i % 4])
        for i in range(32)
    ]
    prompts32 = [backend.render_prompt(r) for r in reqs32]
    raw16_t, cb_t, static_t = Timer(), Timer(), Timer()
    cb_n = static_n = 0
    for _ in range(args.reps):
        raw16_t(lambda: raw_generate(model, tok, prompts32[:16], 64, force=True))
        results = cb_t(lambda: backend.complete_batch(reqs32))
        cb_n = sum(r[0].completion_tokens for r in results)

        # What static batching gets from the same 32 conversations: each batch of 16 runs
        # until its longest member ends; only tokens within each sequence's limit are useful.
        def static_batches() -> int:
            n = 0
            for lo in range(0, 32, 16):
                limits = [r.max_tokens for r in reqs32[lo : lo + 16]]
                n += raw_generate(
                    model, tok, prompts32[lo : lo + 16], max(limits), force=False, limits=limits
                )
            return n

        static_n = static_t(static_batches)
    raw16, raw16_cpu = raw16_t.rate(16 * 64)
    row("raw batch 16 (16 padded prompts, 64 tokens forced), tok/s", f"{raw16:.1f}", "", "", "")
    rates(
        f"32 conversations, mixed lengths ({cb_n} tokens): continuous vs raw forced 16, tok/s",
        16 * 64,
        raw16_t,
        cb_n,
        cb_t,
    )
    rates("same 32 as raw static batches of 16 (useful tok/s)", static_n, static_t, cb_n, cb_t)

    # -- constrained vs unconstrained ---------------------------------------------------------
    # The same prompts (the tool rendered into the system prompt) both ways: unconstrained is
    # tool_choice="auto" on a second backend that leaves tool calls unconstrained.
    free_backend = EmbeddedBackend(
        dtype="float32", max_batch_size=16, num_threads=args.threads, constrain_tool_calls=False
    )
    asks = [f"Plan a meeting about {TOPICS[i]} with two colleagues." for i in range(8)]

    def tool_requests(choice) -> list[ChatRequest]:
        return [
            ChatRequest(
                messages=[{"role": "user", "content": a}],
                tools=[TOOL],
                tool_choice=choice,
                max_tokens=96,
            )
            for a in asks
        ]

    free, forced = tool_requests("auto"), tool_requests({"name": "create_event"})
    assert free_backend.render_prompt(free[0]) == backend.render_prompt(forced[0])
    free_backend.complete(free[0])
    backend.complete(forced[0])
    for label, batch in (("batch 1", 1), ("batch 8", 8)):
        ft, ct = Timer(), Timer()
        for _ in range(args.reps):
            fres = ft(lambda b=batch: in_batches(free_backend, free, b))
            cres = ct(lambda b=batch: in_batches(backend, forced, b))
        fn_ = sum(r[0].completion_tokens for r in fres)
        cn = sum(r[0].completion_tokens for r in cres)
        valid = sum(1 for r in cres if r[0].tool_calls and r[0].error is None)
        free_valid = sum(1 for r in fres if r[0].tool_calls and r[0].error is None)
        rates(
            f"{label}: unconstrained ({free_valid}/8 valid calls) vs forced tool call "
            f"({valid}/8 valid), tok/s",
            fn_,
            ft,
            cn,
            ct,
        )
    free_backend.close()

    # -- bf16 vs fp32 -------------------------------------------------------------------------
    bf16 = EmbeddedBackend(dtype="bfloat16", max_batch_size=16, num_threads=args.threads)
    reqs8 = [ChatRequest(messages=conversation(i), max_tokens=48) for i in range(8)]
    bf16.complete(reqs8[0])
    t32, t16 = Timer(), Timer()
    for _ in range(args.reps):
        n32 = sum(r[0].completion_tokens for r in t32(lambda: backend.complete_batch(reqs8)))
        n16 = sum(r[0].completion_tokens for r in t16(lambda: bf16.complete_batch(reqs8)))
    rates("batch 8 through the backend: fp32 (raw column) vs bf16, tok/s", n32, t32, n16, t16)
    bf16.close()
    backend.close()

    load_end = os.getloadavg()
    note = (
        f"Machine: {machine()}. Load average at start {load_start[0]:.1f}, at end {load_end[0]:.1f} "
        f"(other jobs share these cores; each figure is the best of {args.reps} alternating runs)."
    )
    print(note)
    if args.out:
        lines = [
            "# Embedded LLM backend: measured throughput",
            "",
            f"`python bench/bench_llm.py --reps {args.reps}"
            + (f" --threads {args.threads}" if args.threads else "")
            + f"` on {time.strftime('%Y-%m-%d %H:%M')}.",
            "",
            note,
            "",
            "| measurement | raw | backend | ratio | ratio by CPU time |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [f"| {w} | {r} | {b} | {q} | {c} |" for w, r, b, q, c in rows]
        args.out.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
