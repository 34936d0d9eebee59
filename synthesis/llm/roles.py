"""Which backend plays which role in role-play and verification.

A configuration maps role names to backend specs, each ``{"backend": name, **options}``;
a ``"default"`` entry applies to the roles not named; roles left out get the embedded
model.  Roles with the same spec share one backend instance (and so one loaded model).

>>> from synthesis.llm.roles import resolve_role_specs
>>> specs = resolve_role_specs({"agent": {"backend": "openai", "base_url": "http://gpu-1:8000/v1"}})
>>> specs["agent"]["backend"], specs["user"]["backend"]
('openai', 'embedded')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthesis.records import Role, values

from .base import LLMBackend
from .registry import backend_options, get_backend

ROLES = values(Role)
DEFAULT_SPEC: dict[str, Any] = {"backend": "embedded"}


def resolve_role_specs(
    config: Mapping[str, Mapping[str, Any] | str] | None = None,
    *,
    default: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The backend spec of every role, with defaults filled in and options validated.

    A spec may also be a bare backend name (``{"user": "scripted"}``).
    """
    config = dict(config or {})
    unknown = set(config) - set(ROLES) - {"default"}
    if unknown:
        raise ValueError(
            f"unknown role(s) {', '.join(sorted(unknown))}; valid roles: {', '.join(ROLES)} (and 'default')"
        )
    base = _as_spec(config.pop("default", None) or default or DEFAULT_SPEC)
    specs: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        spec = _as_spec(config.get(role) or base)
        name = spec.get("backend")
        if not isinstance(name, str):
            raise ValueError(f"role {role!r}: the spec needs a 'backend' name, got {spec!r}")
        options = {k: v for k, v in spec.items() if k != "backend"}
        try:
            backend_options(name, **options)
        except Exception as e:
            raise ValueError(f"role {role!r}: bad options for backend {name!r}: {e}") from e
        specs[role] = spec
    return specs


def backends_for_roles(
    config: Mapping[str, Mapping[str, Any] | str] | None = None,
    *,
    default: Mapping[str, Any] | None = None,
) -> dict[str, LLMBackend]:
    """A backend for each of :data:`ROLES`, built (or reused) through the registry."""
    specs = resolve_role_specs(config, default=default)
    out: dict[str, LLMBackend] = {}
    for role, spec in specs.items():
        options = {k: v for k, v in spec.items() if k != "backend"}
        out[role] = get_backend(spec["backend"], **options)
    return out


def _as_spec(spec: Mapping[str, Any] | str) -> dict[str, Any]:
    return {"backend": spec} if isinstance(spec, str) else dict(spec)
