"""Which model plays each role of an iteration: the settings' defaults, overridden by the
iteration's config; the Tool Agent runs the iteration's input checkpoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from synthesis.llm.roles import backends_for_roles

from .iteration_config import API_KEY_ENV_RE, IterationConfig
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
            for key in ("timeout", "max_retries", "backoff"):
                if d.get(key) is not None:
                    spec[key] = d[key]
            if d.get("model"):
                spec["model"] = d["model"]
            if d.get("api_key_env"):
                # Checked when the config was made; checked again for a config edited since:
                # no other variable (SECRET_KEY, DATABASE_URL) may go out as a bearer token.
                name = str(d["api_key_env"])
                spec["api_key"] = os.environ.get(name, "") if API_KEY_ENV_RE.match(name) else ""
            elif settings.INFTOOL_LLM_API_KEY:
                spec["api_key"] = settings.INFTOOL_LLM_API_KEY
        elif backend in ("embedded", "vllm") and d.get("model"):
            spec["model_path" if backend == "embedded" else "model"] = d["model"]
        return spec

    specs = {role: spec_from(d) for role, d in settings.INFTOOL_ROLE_BACKENDS.items()}
    for role, d in IterationConfig.from_dict(iteration.config).backends.items():
        specs[role] = spec_from(d)
    ckpt = iteration.input_checkpoint
    agent = specs.get("agent", {})
    if ckpt and ckpt.kind != "base" and agent.get("backend") == "embedded" and "model_path" not in agent:
        agent["model_path"] = ckpt.path
    return specs


def backends_for_iteration(iteration: Iteration) -> dict[str, Any]:
    """The backend of every role (:func:`role_backend_specs`), built or reused."""
    backends = backends_for_roles(role_backend_specs(iteration))
    backends["scenario"] = backends["user"]
    backends["default"] = backends["agent"]
    return backends
