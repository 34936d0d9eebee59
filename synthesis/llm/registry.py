"""Backends by name, with one instance per (name, options) in a process.

>>> sorted(available_backends())
['embedded', 'openai', 'scripted', 'vllm']

A backend class declares its options as a pydantic model with ``extra="forbid"`` in its
``Options`` attribute; ``get_backend(name, **options)`` validates them, so a misspelt option
fails at once with pydantic's message.  Backends are imported only when first asked for,
so looking one up never loads torch or vllm for the others.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from .base import LLMBackend, LLMError

# name -> "module:Class"; modules are relative to this package.
_BACKENDS: dict[str, str] = {
    "embedded": ".embedded:EmbeddedBackend",
    "openai": ".openai_backend:OpenAIBackend",
    "vllm": ".vllm_backend:VLLMBackend",
    "scripted": ".scripted:ScriptedBackend",
}

_cache: dict[tuple[str, str], LLMBackend] = {}
_cache_lock = threading.Lock()
# One lock per key, so that loading one model does not hold up lookups of the others.
_key_locks: dict[tuple[str, str], threading.Lock] = {}


class UnknownBackend(LLMError, ValueError):
    pass


def register_backend(name: str, target: str | type[LLMBackend]) -> None:
    """Add a backend: a class, or ``"package.module:Class"`` imported on first use."""
    _BACKENDS[name] = (
        target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
    )


def available_backends() -> list[str]:
    return list(_BACKENDS)


def backend_class(name: str) -> type[LLMBackend]:
    try:
        target = _BACKENDS[name]
    except KeyError:
        raise UnknownBackend(
            f"unknown LLM backend {name!r}; valid backends: {', '.join(sorted(_BACKENDS))}"
        ) from None
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(
        module_name, package=__package__ if module_name.startswith(".") else None
    )
    return getattr(module, attr)


def backend_options(name: str, **options: Any) -> Any:
    """The validated options model of backend ``name`` (raises pydantic's ValidationError)."""
    cls = backend_class(name)
    options_model = getattr(cls, "Options", None)
    if options_model is None:
        if options:
            raise ValueError(f"backend {name!r} takes no options, got {sorted(options)}")
        return None
    return options_model(**options)


def get_backend(name: str, **options: Any) -> LLMBackend:
    """The backend ``name`` with ``options``; the same instance for the same arguments.

    Thread-safe: two threads asking at once for a backend that is not loaded yet share
    one load.  Backends whose class sets ``cacheable = False`` (the scripted one, whose
    queue is per test) are built fresh on every call.
    """
    cls = backend_class(name)
    opts = backend_options(name, **options)
    if not getattr(cls, "cacheable", True):
        return cls(opts) if opts is not None else cls()
    key = (name, opts.model_dump_json() if opts is not None else "")
    with _cache_lock:
        backend = _cache.get(key)
        if backend is not None:
            return backend
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _cache_lock:
            backend = _cache.get(key)
        if backend is None:
            backend = cls(opts) if opts is not None else cls()
            with _cache_lock:
                _cache[key] = backend
    return backend


def forget_backend(backend: LLMBackend, close: bool = True) -> bool:
    """Drop ``backend`` from the cache (closing it unless ``close`` is false), so that its
    model is freed once nothing else holds it; the other cached backends stay.  True if it
    was cached."""
    with _cache_lock:
        keys = [k for k, b in _cache.items() if b is backend]
        for k in keys:
            del _cache[k]
            _key_locks.pop(k, None)
    if keys and close:
        backend.close()
    return bool(keys)


def clear_backend_cache(close: bool = True) -> None:
    """Forget every cached backend (closing them unless ``close`` is false)."""
    with _cache_lock:
        backends = list(_cache.values())
        _cache.clear()
        _key_locks.clear()
    if close:
        for b in backends:
            b.close()
