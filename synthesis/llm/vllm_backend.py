"""The ``vllm`` backend: vLLM in this process, on a GPU.

vLLM is an optional extra (``pip install -e '.[gpu]'``) and is imported only when this
backend is built.  Prompts use the same Hermes layout as the embedded backend (tools
rendered into the system prompt by :mod:`.prompting`), so a checkpoint trained here sees
the same text under either backend.  ``json_schema`` and forced tool calls use vLLM's
guided decoding (structured outputs) with the same schemas as the embedded backend.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .base import BackendUnavailable, ChatRequest, ChatResult, LLMBackend, normalize_tool
from .prompting import to_hermes_messages
from .toolcalls import apply_tool_call_parsing

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install -e '.[gpu]'"


def is_vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


class VLLMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str = Field(
        ..., description="A local checkpoint folder (or a model vLLM can load offline)."
    )
    dtype: str = Field("auto", description="vLLM dtype: auto, bfloat16, float16.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)


def tool_call_schema(
    tools: list[dict[str, Any]], choice: str | dict[str, Any]
) -> dict[str, Any] | None:
    """JSON Schema of one ``{"name", "arguments"}`` call allowed by ``choice``, or None."""
    tools = [normalize_tool(t) for t in tools]
    if isinstance(choice, dict):
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        tools = [t for t in tools if t["name"] == name]
    elif choice != "required":
        return None
    variants = [
        {
            "type": "object",
            "properties": {"name": {"const": t["name"]}, "arguments": t["inputSchema"]},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


class VLLMBackend(LLMBackend):
    name = "vllm"
    supports_tools = True
    supports_schema = True
    Options = VLLMOptions

    def __init__(self, options: VLLMOptions | None = None, **kwargs: Any):
        if not is_vllm_available():
            raise BackendUnavailable(f"the vllm backend needs vLLM and a GPU: {INSTALL_HINT}")
        from vllm import LLM

        self.options = opts = options or VLLMOptions(**kwargs)
        llm_kwargs: dict[str, Any] = {
            "model": opts.model_path,
            "dtype": opts.dtype,
            "gpu_memory_utilization": opts.gpu_memory_utilization,
            "tensor_parallel_size": opts.tensor_parallel_size,
        }
        if opts.max_model_len:
            llm_kwargs["max_model_len"] = opts.max_model_len
        try:
            self.llm = LLM(**llm_kwargs)
        except Exception as exc:  # noqa: BLE001 - CUDA, a missing checkpoint, OOM: say which model
            raise BackendUnavailable(
                f"vLLM could not load {opts.model_path!r}: {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc
        self.tokenizer = self.llm.get_tokenizer()
        self.model_id = opts.model_path.rstrip("/").rsplit("/", 1)[-1]

    def _sampling_params(self, req: ChatRequest) -> tuple[Any, bool]:
        """vLLM SamplingParams for ``req``, and whether they force a bare call object."""
        from vllm import SamplingParams

        kwargs: dict[str, Any] = {
            "n": req.n,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "stop": req.stop or None,
            "seed": req.seed,
        }
        schema = req.json_schema
        forced = False
        if schema is None and req.tools:
            schema = tool_call_schema(req.constraint_tools(), req.tool_choice)
            forced = schema is not None
        if schema is not None:
            guided = _guided_params(schema)
            if guided is not None:
                kwargs.update(guided)
            else:
                logger.warning("this vLLM has no guided decoding; generating unconstrained")
        return SamplingParams(**kwargs), forced

    def complete_batch(self, requests: list[ChatRequest]) -> list[list[ChatResult]]:
        prompts, params, forced = [], [], []
        for req in requests:
            tools = req.tools if req.tools and req.tool_choice != "none" else None
            msgs = to_hermes_messages(req.messages, tools)
            prompts.append(
                self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            )
            sp, is_forced = self._sampling_params(req)
            params.append(sp)
            forced.append(is_forced)
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for req, is_forced, out in zip(requests, forced, outputs, strict=True):
            row = []
            for comp in out.outputs:
                text = comp.text
                if is_forced:
                    # Guided decoding produced the bare call object: give it its block.
                    text = f"<tool_call>\n{text}\n</tool_call>"
                res = ChatResult(
                    text=text,
                    finish_reason=comp.finish_reason or "stop",
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(comp.token_ids),
                )
                if req.tools and req.tool_choice != "none" and req.json_schema is None:
                    apply_tool_call_parsing(res)
                row.append(res)
            results.append(row)
        return results


def _guided_params(schema: dict[str, Any]) -> dict[str, Any] | None:
    """SamplingParams keyword for JSON-schema guided decoding in this vLLM version."""
    try:  # vLLM >= 0.10
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=json.dumps(schema))}
    except ImportError:
        pass
    try:  # vLLM 0.8 - 0.9
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}
    except ImportError:
        return None
