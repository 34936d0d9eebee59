"""A backend that plays back queued replies, for tests of the logic around a model.

>>> b = ScriptedBackend(replies=["hello", '<tool_call>{"name": "f", "arguments": {}}</tool_call>'])
>>> b.complete(ChatRequest(messages=[{"role": "user", "content": "hi"}])).text
'hello'
>>> b.complete(ChatRequest(messages=[], tools=[{"name": "f"}])).tool_calls[0].name
'f'
>>> len(b.requests)
2
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from .base import ChatRequest, ChatResult, LLMBackend, LLMError
from .toolcalls import apply_tool_call_parsing

Reply = str | ChatResult | Callable[[ChatRequest], "str | ChatResult"]


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    replies: list[Any] = []
    # What to answer once the queue is empty; None makes an empty queue an error.
    default: Any = None
    model_id: str = "scripted"


class ScriptExhausted(LLMError):
    pass


class ScriptedBackend(LLMBackend):
    """Answers each choice of each request with the next queued reply.

    A reply is a string (parsed for tool calls like a model's text when the request has
    tools), a ready :class:`ChatResult` (returned as is, copied), or a function of the
    request returning either.  Every request received is kept in ``requests``.
    """

    name = "scripted"
    supports_tools = True
    supports_schema = True
    cacheable = False
    Options = ScriptedOptions

    def __init__(self, options: ScriptedOptions | None = None, **kwargs: Any):
        opts = options or ScriptedOptions(**kwargs)
        self._replies: deque[Reply] = deque(opts.replies)
        self.default: Reply | None = opts.default
        self.model_id = opts.model_id
        self.requests: list[ChatRequest] = []
        self._lock = threading.Lock()

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        return len(self._replies)

    def complete_batch(self, requests: list[ChatRequest]) -> list[list[ChatResult]]:
        out = []
        for req in requests:
            with self._lock:
                self.requests.append(req)
            out.append([self._answer(req) for _ in range(req.n)])
        return out

    def _answer(self, req: ChatRequest) -> ChatResult:
        with self._lock:
            if self._replies:
                reply = self._replies.popleft()
            elif self.default is not None:
                reply = self.default
            else:
                raise ScriptExhausted(
                    f"scripted backend has no reply left for request #{len(self.requests)} "
                    f"(last message: {req.messages[-1] if req.messages else None!r})"
                )
        if callable(reply):
            reply = reply(req)
        if isinstance(reply, ChatResult):
            return copy.deepcopy(reply)
        result = ChatResult(text=str(reply), completion_tokens=len(str(reply).split()))
        if req.tools and req.tool_choice != "none" and req.json_schema is None:
            apply_tool_call_parsing(result)
        return result
