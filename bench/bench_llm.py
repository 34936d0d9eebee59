"""Throughput of the embedded backend against raw ``model.generate`` on the same model.

    python bench/bench_llm.py [--reps 3] [--out bench/RESULTS-llm.md]

Prints one table: batch-1 greedy generation (raw vs backend, identical outputs); 32
conversations of different lengths through the backend's continuous batching vs raw
forced-length batch-16 generation and vs raw static batches of the same 32; constrained
vs unconstrained decoding; bf16 vs fp32; GGUF (cold) vs cached-checkpoint load time.

Raw and backend runs alternate and each figure is the best of ``--reps``, so that other
work on a shared machine skews both sides alike.
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


def best(fn, reps: int) -> tuple[float, object]:
    """(fastest seconds, last result) over ``reps`` runs."""
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def raw_generate(
    model, tok, prompts: list[str], max_new: int, force: bool, limits: list[int] | None = None
) -> int:
    """Greedy generate on one left-padded batch; returns new tokens (without padding/eos),
    counting at most ``limits[i]`` for row i when given."""
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
    return total


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"CPU bf16 instructions: {'yes' if cpu_supports_bf16() else 'no'}, Python {platform.python_version()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=3, help="runs per figure; the fastest counts")
    ap.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = ap.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    load_start = os.getloadavg()

    def row(what: str, raw: str, backend: str, ratio: str) -> None:
        rows.append((what, raw, backend, ratio))
        print(f"{what:<58} {raw:>14} {backend:>14} {ratio:>8}", flush=True)

    print(machine())
    print(f"{'':<58} {'raw':>14} {'backend':>14} {'ratio':>8}")

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
    )

    backend = EmbeddedBackend(dtype="float32", max_batch_size=16)
    model, tok = backend.model, backend.tokenizer
    row(
        "backend start (checkpoint + tokenizer + grammar engine), s",
        "",
        f"{backend.load_seconds:.2f}",
        "",
    )

    # -- batch 1 -----------------------------------------------------------------------------
    reqs1 = [ChatRequest(messages=conversation(i), max_tokens=64) for i in range(4)]
    prompts1 = [backend.render_prompt(r) for r in reqs1]
    raw_t, back_t, raw_n, back_n = [], [], 0, 0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        raw_n = sum(raw_generate(model, tok, [p], 64, force=False) for p in prompts1)
        raw_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        back_n = sum(backend.complete(r).completion_tokens for r in reqs1)
        back_t.append(time.perf_counter() - t0)
    r1, b1 = raw_n / min(raw_t), back_n / min(back_t)
    row(
        f"batch 1, greedy, 4 prompts ({raw_n} / {back_n} tokens), tok/s",
        f"{r1:.1f}",
        f"{b1:.1f}",
        f"{b1 / r1:.2f}",
    )

    # -- continuous batching -----------------------------------------------------------------
    reqs32 = [
        ChatRequest(messages=conversation(i), max_tokens=(32, 64, 96, 128)[i % 4])
        for i in range(32)
    ]
    prompts32 = [backend.render_prompt(r) for r in reqs32]
    raw16_t, cb_t, static_t = [], [], []
    cb_n = static_n = 0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        raw_generate(model, tok, prompts32[:16], 64, force=True)
        raw16_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        results = backend.complete_batch(reqs32)
        cb_t.append(time.perf_counter() - t0)
        cb_n = sum(r[0].completion_tokens for r in results)
        # What static batching gets from the same 32 conversations: each batch of 16 runs
        # until its longest member ends; only tokens within each sequence's limit are useful.
        t0 = time.perf_counter()
        static_n = 0
        for lo in range(0, 32, 16):
            limits = [r.max_tokens for r in reqs32[lo : lo + 16]]
            static_n += raw_generate(
                model, tok, prompts32[lo : lo + 16], max(limits), force=False, limits=limits
            )
        static_t.append(time.perf_counter() - t0)
    raw16 = 16 * 64 / min(raw16_t)
    cb = cb_n / min(cb_t)
    static = static_n / min(static_t)
    row("raw batch 16, 64 tokens forced, tok/s", f"{raw16:.1f}", "", "")
    row(
        f"32 conversations, mixed lengths ({cb_n} tokens): continuous, tok/s",
        f"{raw16:.1f}",
        f"{cb:.1f}",
        f"{cb / raw16:.2f}",
    )
    row(
        "same 32 as raw static batches of 16 (useful tok/s)",
        f"{static:.1f}",
        f"{cb:.1f}",
        f"{cb / static:.2f}",
    )

    # -- constrained vs unconstrained ---------------------------------------------------------
    asks = [f"Plan a meeting about {TOPICS[i]} with two colleagues." for i in range(8)]
    free = [
        ChatRequest(
            messages=[{"role": "user", "content": a}],
            tools=[TOOL],
            tool_choice="none",
            max_tokens=64,
        )
        for a in asks
    ]
    forced = [
        ChatRequest(
            messages=[{"role": "user", "content": a}],
            tools=[TOOL],
            tool_choice={"name": "create_event"},
            max_tokens=64,
        )
        for a in asks
    ]
    for label, batch in (("batch 1", 1), ("batch 8", 8)):
        ft, ct, fn_, cn = [], [], 0, 0
        for _ in range(args.reps):
            t0 = time.perf_counter()
            fn_ = sum(
                r[0].completion_tokens
                for i in range(0, 8, batch)
                for r in backend.complete_batch(free[i : i + batch])
            )
            ft.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cres = [
                r for i in range(0, 8, batch) for r in backend.complete_batch(forced[i : i + batch])
            ]
            ct.append(time.perf_counter() - t0)
            cn = sum(r[0].completion_tokens for r in cres)
        valid = sum(1 for r in cres if r[0].tool_calls and r[0].error is None)
        f_rate, c_rate = fn_ / min(ft), cn / min(ct)
        row(
            f"{label}: unconstrained vs forced tool call ({valid}/8 valid), tok/s",
            f"{f_rate:.1f}",
            f"{c_rate:.1f}",
            f"{c_rate / f_rate:.2f}",
        )

    # -- bf16 vs fp32 -------------------------------------------------------------------------
    bf16 = EmbeddedBackend(dtype="bfloat16", max_batch_size=16)
    reqs8 = [ChatRequest(messages=conversation(i), max_tokens=48) for i in range(8)]
    t32, t16, n32, n16 = [], [], 0, 0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        n32 = sum(r[0].completion_tokens for r in backend.complete_batch(reqs8))
        t32.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        n16 = sum(r[0].completion_tokens for r in bf16.complete_batch(reqs8))
        t16.append(time.perf_counter() - t0)
    r32, r16 = n32 / min(t32), n16 / min(t16)
    row(
        "batch 8: fp32 (raw column) vs bf16 (backend column), tok/s",
        f"{r32:.1f}",
        f"{r16:.1f}",
        f"{r16 / r32:.2f}",
    )
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
            f"`python bench/bench_llm.py --reps {args.reps}` on {time.strftime('%Y-%m-%d')}.",
            "",
            note,
            "",
            "| measurement | raw | backend | ratio |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {w} | {r} | {b} | {q} |" for w, r, b, q in rows]
        args.out.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
