"""Which model plays each role of an iteration: the settings' defaults, overridden by the
iteration's config; the Tool Agent runs the iteration's input checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from inftool_web.core.outbound import api_key_for, model_host_problem
from synthesis.llm.roles import backends_for_roles

from .iteration_config import IterationConfig
from .models import Iteration


def role_backend_specs(iteration: Iteration) -> dict[str, dict[str, Any]]:
    """The backend spec of every role (``{"backend", **options}``, API key included):
    settings defaults, overridden by the iteration's config.  The Tool Agent runs the
    iteration's input checkpoint (the loop's latest model)."""
    def spec_from(d: Mapping[str, Any]) -> dict[str, Any]:
        backend = d.get("backend") or "embedded"
        spec: dict[str, Any] = {"backend": backend}
        if backend == "openai":
            spec["base_url"] = d.get("base_url")
            # Checked when the config was made; checked again for a config edited since.
            problem = model_host_problem(spec["base_url"] or "")
            if problem:
                raise ValueError(problem)
            for key in ("timeout", "max_retries", "backoff"):
                if d.get(key) is not None:
                    spec[key] = d[key]
            if d.get("model"):
                spec["model"] = d["model"]
            # A key goes only to the host it was configured for; "" sends none (and keeps the
            # backend from falling back to $OPENAI_API_KEY).
            spec["api_key"] = api_key_for(base_url=spec["base_url"] or "", api_key_env=d.get("api_key_env"))
        elif backend in ("embedded", "vllm") and d.get("model"):
            # both backends load a local checkpoint folder: VLLMOptions names it model_path too
            spec["model_path"] = d["model"]
        return spec

    specs = {role: spec_from(d) for role, d in settings.INFTOOL_ROLE_BACKENDS.items()}
    for role, d in IterationConfig.from_dict(iteration.config).backends.items():
        specs[role] = spec_from(d)
    ckpt = iteration.input_checkpoint
    agent = specs.get("agent", {})
    if ckpt and ckpt.kind != "base" and agent.get("backend") in ("embedded", "vllm") and "model_path" not in agent:
        agent["model_path"] = ckpt.path
    return specs


def backends_for_iteration(iteration: Iteration) -> dict[str, Any]:
    """The backend of every role (:func:`role_backend_specs`), built or reused."""
    backends = backends_for_roles(role_backend_specs(iteration))
    backends["scenario"] = backends["user"]
    backends["default"] = backends["agent"]
    return backends
