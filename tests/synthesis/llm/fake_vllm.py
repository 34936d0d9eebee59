"""A stand-in for the ``vllm`` package (``LLM``, ``SamplingParams``, ``chat``, structured
outputs), for CPU tests of the code around vLLM.  Tests put it in ``sys.modules``; it plays
back queued completions and records what it was asked."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Completion:
    text: str
    finish_reason: str = "stop"
    token_ids: list[int] = field(default_factory=lambda: [1, 2, 3])


@dataclass
class RequestOutput:
    outputs: list[Completion]
    prompt_token_ids: list[int] = field(default_factory=lambda: [1] * 7)


class SamplingParams:
    def __init__(self, **kwargs: Any):
        unknown = set(kwargs) - {"n", "temperature", "top_p", "max_tokens", "stop", "seed",
                                 "structured_outputs", "guided_decoding"}
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword(s) {sorted(unknown)}")
        self.__dict__.update(kwargs)


class StructuredOutputsParams:
    def __init__(self, json: str | dict | None = None, **kwargs: Any):
        self.json = json


class Tokenizer:
    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False, **kw):
        return json.dumps(messages) + ("<|assistant|>" if add_generation_prompt else "")


class LLM:
    instances: list[LLM] = []
    fail_with: Exception | None = None

    def __init__(self, **kwargs: Any):
        if LLM.fail_with is not None:
            raise LLM.fail_with
        self.kwargs = kwargs
        self.replies: list[list[str]] = []  # per generate() prompt: the texts of its n samples
        self.calls: list[tuple[list[str], list[SamplingParams]]] = []
        LLM.instances.append(self)

    def get_tokenizer(self) -> Tokenizer:
        return Tokenizer()

    def generate(self, prompts, sampling_params, use_tqdm=True):
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        self.calls.append((list(prompts), list(params)))
        out = []
        for p in params:
            texts = self.replies.pop(0) if self.replies else ["ok"]
            out.append(RequestOutput([Completion(t) for t in texts[: getattr(p, "n", 1)]]))
        return out

    def chat(self, messages, sampling_params=None, use_tqdm=True, **kwargs):
        convs = messages if messages and isinstance(messages[0], list) else [messages]
        prompts = [self.get_tokenizer().apply_chat_template(m, add_generation_prompt=True) for m in convs]
        return self.generate(prompts, sampling_params or SamplingParams(), use_tqdm=use_tqdm)


def install(monkeypatch) -> types.ModuleType:
    """Put the stand-in in ``sys.modules`` as ``vllm`` (and ``vllm.sampling_params``)."""
    vllm = types.ModuleType("vllm")
    vllm.__spec__ = importlib.machinery.ModuleSpec("vllm", None, is_package=True)
    vllm.__path__ = []
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.__spec__ = importlib.machinery.ModuleSpec("vllm.sampling_params", None)
    sampling.SamplingParams = SamplingParams
    sampling.StructuredOutputsParams = StructuredOutputsParams
    vllm.LLM, vllm.SamplingParams, vllm.sampling_params = LLM, SamplingParams, sampling
    LLM.instances, LLM.fail_with = [], None
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    return vllm
