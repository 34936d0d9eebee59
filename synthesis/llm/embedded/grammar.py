"""Constrained decoding with xgrammar: which grammar a request needs, compiled once and cached."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import logging
import threading
from typing import Any

from ..base import ChatRequest, LLMError

logger = logging.getLogger(__name__)


GRAMMAR_CACHE_SIZE = 256


class GrammarCache:
    """Compiled xgrammar grammars by what they constrain (a schema, a forced tool, the
    offered tools), least recently used dropped past GRAMMAR_CACHE_SIZE.

    Agents send the same tools and schemas over and over, and building a structural tag's
    grammar text costs more than decoding a token; xgrammar's own cache sits behind this
    one.  Compiling happens outside the lock (a large schema takes seconds and must not hold
    up other requests), and a second request for the same grammar waits for the first
    one's result instead of compiling it again.
    """

    def __init__(self, compiler: Any, *, constrain_tool_calls: bool):
        self._compiler = compiler
        self.constrain_tool_calls = constrain_tool_calls
        self._compile_lock = threading.Lock()
        self._compiling: dict[str, concurrent.futures.Future] = {}
        self._grammars: collections.OrderedDict[str, Any] = collections.OrderedDict()

    def for_request(self, request: ChatRequest, tools: list[dict[str, Any]]) -> Any:
        """The compiled grammar that constrains this request's reply, or None."""
        choice = request.tool_choice
        if request.json_schema is not None:
            key: Any = ("schema", request.json_schema)
        elif not tools or choice == "none":
            return None
        elif isinstance(choice, dict):
            fname = forced_name(choice)
            key = ("tool", next(t for t in tools if t["name"] == fname))
        elif choice == "required":
            key = ("required", tools, request.parallel_tool_calls)
        elif choice == "auto" and self.constrain_tool_calls:
            key = ("auto", tools)
        else:
            return None
        text = json.dumps(key, sort_keys=True, default=str)
        with self._compile_lock:
            grammar = self._grammars.get(text)
            if grammar is not None:
                self._grammars.move_to_end(text)
                return grammar
            pending = self._compiling.get(text)
            owner = pending is None
            if owner:
                pending = self._compiling[text] = concurrent.futures.Future()
        if not owner:
            return pending.result()
        try:
            grammar = self._compile(key)
        except BaseException as e:
            with self._compile_lock:
                self._compiling.pop(text, None)
            pending.set_exception(e)
            raise
        with self._compile_lock:
            self._grammars[text] = grammar
            if len(self._grammars) > GRAMMAR_CACHE_SIZE:
                self._grammars.popitem(last=False)
            self._compiling.pop(text, None)
        pending.set_result(grammar)
        return grammar

    def _compile(self, key: tuple[Any, ...]) -> Any:
        kind = key[0]
        if kind == "schema":
            return self._compiler.compile_json_schema(json.dumps(key[1]), any_whitespace=False)
        if kind == "tool":
            fmt = tool_tag(key[1])
        elif kind == "required":
            fmt = {
                "type": "tags_with_separator",
                "tags": [tool_tag(t) for t in key[1]],
                "separator": "\n",
                "at_least_one": True,
                "stop_after_first": not key[2],
            }
        else:
            fmt = {
                "type": "triggered_tags",
                "triggers": ["<tool_call>"],
                "tags": [tool_tag(t) for t in key[1]],
            }
        return self._compiler.compile_structural_tag({"type": "structural_tag", "format": fmt})


def forced_name(choice: dict[str, Any]) -> str | None:
    return choice.get("name") or (choice.get("function") or {}).get("name")


def check_tool_choice(choice: str | dict[str, Any], tools: list[dict[str, Any]]) -> None:
    if isinstance(choice, dict):
        fname = forced_name(choice)
        if fname not in {t["name"] for t in tools}:
            raise LLMError(
                f"tool_choice names {fname!r}, which is not among the tools "
                f"({', '.join(t['name'] for t in tools) or 'none given'})"
            )
    elif choice not in ("auto", "none", "required"):
        raise LLMError(
            f"tool_choice must be auto, none, required or {{'name': ...}}, got {choice!r}"
        )
    elif choice == "required" and not tools:
        raise LLMError("tool_choice='required' needs tools")


def tool_tag(tool: dict[str, Any]) -> dict[str, Any]:
    import xgrammar as xgr

    prefix = "<tool_call>\n" + json.dumps({"name": tool["name"], "arguments": 0})[:-2]
    # Compact JSON with json.dumps' separators: the layout the prompt and training data use,
    # and no room for a small model to wander off into whitespace.
    ebnf = str(
        xgr.Grammar.from_json_schema(
            json.dumps(tool["inputSchema"] or {"type": "object"}), any_whitespace=False
        )
    )
    return {
        "type": "tag",
        "begin": prefix,
        "content": {"type": "grammar", "grammar": ebnf},
        "end": "}\n</tool_call>",
    }
