"""The one interface every agent uses to talk to a language model.

Messages are OpenAI-style chat dicts (``{"role": ..., "content": ...}``; assistant messages
may carry ``tool_calls``; tool results use ``role="tool"``).  Tools are MCP tool
definitions (``{"name", "description", "inputSchema", "outputSchema"?}``); OpenAI
function definitions (``{"type": "function", "function": {...}}``) are accepted too and
normalised by :func:`normalize_tool`.

A backend implements one method, :meth:`LLMBackend.complete_batch`, over a list of
:class:`ChatRequest`; :meth:`LLMBackend.complete` is the single-request convenience.
"""

from __future__ import annotations

import abc
import concurrent.futures
import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


class LLMError(Exception):
    """Base class of every error raised by a backend."""


class BackendUnavailable(LLMError):
    """The backend cannot be reached or loaded (server down, package missing)."""


class InvalidModelOutput(LLMError):
    """The model produced text that cannot be parsed as requested (e.g. invalid JSON).

    ``raw`` keeps the model's exact text so that callers can store or repair it.
    """

    def __init__(self, message: str, *, raw: str):
        super().__init__(f"{message}: {raw[:200]!r}")
        self.raw = raw


class GenerationTimeout(LLMError):
    """A request ran past its deadline; its sequences were cancelled."""


def normalize_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Return an MCP tool definition from an MCP or OpenAI function definition.

    >>> normalize_tool({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}})
    {'name': 'f', 'description': '', 'inputSchema': {'type': 'object'}}
    """
    if tool.get("type") == "function" and "function" in tool:
        fn = tool["function"]
        return {
            "name": fn["name"],
            "description": fn.get("description", ""),
            "inputSchema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
    out = {
        "name": tool["name"],
        "description": tool.get("description", ""),
        "inputSchema": tool.get("inputSchema")
        or tool.get("parameters")
        or {"type": "object", "properties": {}},
    }
    if tool.get("outputSchema"):
        out["outputSchema"] = tool["outputSchema"]
    return out


def to_openai_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Return the OpenAI ``{"type": "function", ...}`` form of an MCP tool definition."""
    t = normalize_tool(tool)
    return {
        "type": "function",
        "function": {
            "name": t["name"],
            "description": t["description"],
            "parameters": t["inputSchema"],
        },
    }


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {
                "name": self.name,
                "arguments": json.dumps(self.arguments, ensure_ascii=False),
            },
        }


@dataclass
class ChatRequest:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    # Constrain the whole reply to this JSON Schema (the reply text is then JSON).
    json_schema: dict[str, Any] | None = None
    # "auto": the model may call tools or answer; "required": it must call a tool;
    # "none": it must not; or {"name": ...} to force one tool (arguments then constrained
    # to that tool's inputSchema where the backend supports constraints).
    tool_choice: str | dict[str, Any] = "auto"
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: list[str] | None = None
    seed: int | None = None
    # With tool_choice="required": may the reply hold several calls (parallel calls)?
    parallel_tool_calls: bool = True
    # The tool definitions a call is constrained by where they differ from ``tools``, the
    # ones the prompt shows: e.g. with bounds on strings that keep a small model from running
    # a value to the token limit.  Same names as ``tools``; None: ``tools``.  Keeping them out
    # of the prompt keeps it the prompt a trained model sees, and shared with the requests
    # before it (a prefix cache reuses it).  A backend that cannot tell the two apart (a remote
    # server) sends these.
    decode_tools: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.decode_tools is not None:
            names = sorted(normalize_tool(t)["name"] for t in self.decode_tools)
            if names != sorted(normalize_tool(t)["name"] for t in self.tools or []):
                raise ValueError(f"decode_tools must name the same tools as tools, got {names}")

    def constraint_tools(self) -> list[dict[str, Any]]:
        """The tools (normalised) that constrain this request's calls."""
        return [normalize_tool(t) for t in (self.decode_tools if self.decode_tools is not None else self.tools) or []]


@dataclass
class ChatResult:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"  # "stop" | "length" | "tool_calls" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Set when the model's output could not be parsed (e.g. invalid JSON in a tool call);
    # the raw text stays in ``text``.  Never raised from a batch call: one bad reply must
    # not sink the others.
    error: InvalidModelOutput | None = None
    # Things the caller should know that are not errors, e.g. a schema the grammar engine
    # could not compile, so that this reply was generated unconstrained.
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["error"] = str(self.error) if self.error else None
        return d


# Text as it is generated: (choice index, new text).  Called from the backend's own thread.
OnText = Callable[[int, str], None]


class Generation:
    """One request in flight: wait for its choices, or cancel it.

    ``done`` resolves when every choice has ended (it carries no value: awaiting code can
    wrap it with ``asyncio.wrap_future``); :meth:`results` then builds the replies.
    :meth:`cancel` stops the request's sequences at the next step and frees their slots;
    the cancelled choices end with ``finish_reason="cancelled"``.
    """

    def __init__(
        self,
        done: concurrent.futures.Future,
        results: Callable[[], list[ChatResult]],
        cancel: Callable[[], None] | None = None,
    ):
        self.done = done
        self._results = results
        self._cancel = cancel

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel()

    def results(self, timeout: float | None = None) -> list[ChatResult]:
        """The request's choices; past ``timeout`` seconds it is cancelled and
        :class:`GenerationTimeout` is raised."""
        try:
            self.done.result(timeout)
        except concurrent.futures.TimeoutError:
            self.cancel()
            raise GenerationTimeout(
                f"no reply within {timeout:g} s; the request was cancelled"
            ) from None
        return self._results()


class LLMBackend(abc.ABC):
    """A language model.  Subclasses set capability flags and implement ``complete_batch``."""

    name: ClassVar[str] = ""
    supports_tools: ClassVar[bool] = True
    supports_schema: ClassVar[bool] = False

    model_id: str = ""

    @abc.abstractmethod
    def complete_batch(self, requests: list[ChatRequest]) -> list[list[ChatResult]]:
        """Answer every request; the i-th list holds ``requests[i].n`` choices."""

    def complete(self, request: ChatRequest) -> ChatResult:
        return self.complete_batch([request])[0][0]

    def submit(self, request: ChatRequest, *, on_text: OnText | None = None) -> Generation:
        """Start ``request`` and return at once.  This default runs :meth:`complete_batch` on
        a thread of its own, sends no partial text and cannot cancel; backends that decode
        token by token (the embedded one) stream ``on_text`` and cancel for real."""
        done: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(self.complete_batch([request])[0])
            except BaseException as e:  # handed to the waiter, not lost in the thread
                done.set_exception(e)

        threading.Thread(target=run, name=f"{self.name}-submit", daemon=True).start()
        return Generation(done, done.result)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, connections)."""
