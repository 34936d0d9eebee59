"""Language-model backends: embedded (CPU transformers), openai (any compatible server),
vllm (in-process, GPU), scripted (tests).  Importing this package loads no model."""

from .base import (
    BackendUnavailable,
    ChatRequest,
    ChatResult,
    InvalidModelOutput,
    LLMBackend,
    LLMError,
    ToolCall,
    normalize_tool,
    to_openai_tool,
)
from .registry import available_backends, clear_backend_cache, get_backend, register_backend
from .roles import ROLES, backends_for_roles

__all__ = [
    "ROLES",
    "BackendUnavailable",
    "ChatRequest",
    "ChatResult",
    "InvalidModelOutput",
    "LLMBackend",
    "LLMError",
    "ToolCall",
    "available_backends",
    "backends_for_roles",
    "clear_backend_cache",
    "get_backend",
    "normalize_tool",
    "register_backend",
    "to_openai_tool",
]
