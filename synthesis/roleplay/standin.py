"""A stand-in for a GPU model server: an OpenAI-compatible ``/v1/chat/completions`` (Starlette
on uvicorn, asynchronous) that answers every request after a fixed delay, with deterministic
answers that move the role-play along.

* Tool calls are schema-valid: arguments are taken from the user's text where it names them,
  and the rest are synthesized from the tool's ``inputSchema``.
* JSON answers are valid against a requested ``json_schema``.
* Everything else gets a short sentence.

It has no capacity limit and no model: the benches use it to measure how the workers'
orchestration scales, not model speed or answer quality (``bench/bench_workers.py``).
The tests check its answers against the schemas offered (``tests/bench``).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

MODEL_NAME = "bench-latency-model"


# ============================================================================ the latency server
# Deterministic answers to the role-play's requests.  They are rules, not a model: enough for
# every step to go through validation the way a competent model's answer would.


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content or ""


def _without_ids(value: Any) -> Any:
    """``value`` less tool-call ids: a client may draw them at random (the ``openai`` backend
    does for calls that have none), and the same conversation must get the same answer."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "tool_call_id")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _rng(req, salt: int = 0) -> random.Random:
    key = json.dumps(_without_ids(req.messages), sort_keys=True, default=str).encode()
    return random.Random(zlib.crc32(key) + (req.seed or 0) + salt)


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.strip().strip('"')


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pairs(text: str) -> dict[str, Any]:
    """``a = "x"; b = 3`` (the user simulator's prompt) -> {"a": "x", "b": 3}."""
    out = {}
    for part in text.split("; "):
        key, sep, raw = part.partition(" = ")
        if sep:
            out[key.strip()] = _loads(raw)
    return out


def _spoken(details: dict[str, Any]) -> str:
    from synthesis.roleplay.phrasing import humanize

    return ", ".join(f"{humanize(k)}: {_fmt(v)}" for k, v in details.items() if not isinstance(v, dict | list))


def _coerce(raw: str, node: dict[str, Any]) -> Any:
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "integer" in types and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if "number" in types and re.fullmatch(r"-?\d+(\.\d+)?", raw):
        return float(raw)
    if "boolean" in types and raw.lower() in ("yes", "no", "true", "false"):
        return raw.lower() in ("yes", "true")
    return raw


def regex_example(pattern: str, rng: random.Random) -> str | None:
    """A string matching ``pattern`` (what a grammar-constrained decoder would write), or
    None for a pattern Python cannot parse or this walk cannot satisfy."""
    try:
        import re._parser as sre  # Python 3.11+
    except ImportError:  # pragma: no cover
        import sre_parse as sre
    categories = {sre.CATEGORY_DIGIT: "0123456789", sre.CATEGORY_WORD: "abcdefxyz", sre.CATEGORY_SPACE: " ",
                  sre.CATEGORY_NOT_DIGIT: "abcxyz", sre.CATEGORY_NOT_WORD: "-", sre.CATEGORY_NOT_SPACE: "abc"}
    repeats = {sre.MAX_REPEAT, sre.MIN_REPEAT} | ({sre.POSSESSIVE_REPEAT} if hasattr(sre, "POSSESSIVE_REPEAT") else set())

    def one_of(items) -> str:
        if items and items[0][0] == sre.NEGATE:
            banned = "".join(gen([x]) for x in items[1:] if x[0] == sre.LITERAL)
            return next((c for c in "aZ0_-" if c not in banned), "q")
        pool = []
        for op, av in items:
            if op == sre.LITERAL:
                pool.append(chr(av))
            elif op == sre.RANGE:
                pool.append(chr(rng.randint(av[0], av[1])))
            elif op == sre.CATEGORY:
                pool.append(rng.choice(categories.get(av, "a")))
        return rng.choice(pool) if pool else "a"

    def gen(items) -> str:
        out = []
        for op, av in items:
            if op == sre.LITERAL:
                out.append(chr(av))
            elif op == sre.NOT_LITERAL:
                out.append("a" if av != ord("a") else "b")
            elif op == sre.ANY:
                out.append("x")
            elif op == sre.IN:
                out.append(one_of(av))
            elif op == sre.CATEGORY:
                out.append(rng.choice(categories.get(av, "a")))
            elif op in repeats:
                lo, hi, sub = av
                out.extend(gen(sub) for _ in range(rng.randint(lo, max(lo, min(hi, lo + 3)))))
            elif op == sre.SUBPATTERN:
                out.append(gen(av[-1]))
            elif op == sre.BRANCH:
                out.append(gen(rng.choice(av[1])))
            elif op == getattr(sre, "ATOMIC_GROUP", None):
                out.append(gen(av))
        return "".join(out)

    try:
        parsed = sre.parse(pattern)
        for _ in range(5):
            value = gen(parsed)
            if re.search(pattern, value):
                return value
    except (re.error, RecursionError, TypeError, ValueError, OverflowError):
        pass
    return None


def with_pattern_examples(schema: Any, rng: random.Random) -> Any:
    """A copy of ``schema`` whose patterned strings carry a matching example, which
    ``synthesize_instance`` then uses (its own pattern fitting is best-effort)."""
    if isinstance(schema, list):
        return [with_pattern_examples(x, rng) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: with_pattern_examples(v, rng) for k, v in schema.items()}
    if isinstance(schema.get("pattern"), str) and "examples" not in schema:
        example = regex_example(schema["pattern"], rng)
        lo, hi = schema.get("minLength") or 0, schema.get("maxLength")
        if example is not None and len(example) >= lo and (not isinstance(hi, int) or len(example) <= hi):
            out["examples"] = [example]
    return out


def _instance(schema: Any, rng: random.Random, **kwargs) -> Any:
    """An instance of ``schema`` that validates when one of a few tries does: with ``hints``
    first, then without, on fresh random draws."""
    from synthesis.schema_utils import is_valid, synthesize_instance

    value = None
    for _ in range(4):
        value = synthesize_instance(with_pattern_examples(schema, rng), rng=rng, **kwargs)
        if not isinstance(schema, dict) or is_valid(value, schema):
            return value
        kwargs.pop("hints", None)
    return value


def _mentions(tool: dict[str, Any], text: str) -> dict[str, list[Any]]:
    """Values the user gave for ``tool``'s parameters, in order: ``city Lisbon`` or
    ``city: Lisbon`` (each parameter may be given several times, for parallel calls)."""
    from synthesis.roleplay.phrasing import humanize
    from synthesis.schema_utils import schema_properties

    found: dict[str, list[Any]] = {}
    for name, node in schema_properties(tool.get("inputSchema")).items():
        words = humanize(name)
        if not words:
            continue
        rx = re.compile(r"(?<![\w-])" + re.escape(words) + r":?\s+(?!\()([^()]+?)(?=,\s|;\s|\s+and\s|\?|\)|\.(?:\s|$)|$)", re.I)
        values = [_coerce(m.group(1).strip(), node if isinstance(node, dict) else {}) for m in rx.finditer(text)]
        if values:
            found[name] = values
    return found


def _arguments(tool: dict[str, Any], text: str, nth: int, rng: random.Random) -> dict[str, Any]:
    """Arguments valid against the tool's schema, using the ``nth`` value the user gave for each."""
    from synthesis.schema_utils import is_valid

    schema = tool.get("inputSchema") or {"type": "object"}
    hints = {k: v[min(nth, len(v) - 1)] for k, v in _mentions(tool, text).items()}
    args = _instance(schema, rng, hints=hints, optional_ratio=0.0)
    if not isinstance(args, dict):
        return {}
    for k, v in hints.items():  # optional parameters the user named are kept too
        if k not in args and is_valid({**args, k: v}, schema):
            args[k] = v
    return args


@dataclass
class Plan:
    action: str  # call_tools | ask_user | answer
    calls: list[tuple[str, int]] = field(default_factory=list)  # (tool, which mention)
    missing: list[str] = field(default_factory=list)


def _conversation(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("role") != "system"]


def plan(messages: list[dict[str, Any]], tools: list[dict[str, Any]], max_calls: int = 3) -> Plan:
    """What a competent agent would do next: call the tools whose parameters the user
    gave, ask for missing required values, or answer (after results, or when no tool fits)."""
    from synthesis.roleplay.phrasing import humanize
    from synthesis.roleplay.values import content_words
    from synthesis.schema_utils import required_names

    convo = _conversation(messages)
    if not convo or convo[-1].get("role") != "user":
        return Plan("answer")
    users = [_text(m) for m in convo if m.get("role") == "user"]
    text = " ".join(users) if len(users) > 1 else users[-1]
    done = {(tc.get("function") or {}).get("name") or tc.get("name") for m in convo if m.get("role") == "assistant"
            for tc in m.get("tool_calls") or []}
    scored = []
    for i, tool in enumerate(tools):
        found = _mentions(tool, text)
        required = required_names(tool.get("inputSchema"))
        missing = [r for r in required if r not in found]
        if found:
            scored.append((len(required) - len(missing), len(found), -i, tool, found, missing))
    scored.sort(key=lambda s: s[:3], reverse=True)
    complete = [s for s in scored if not s[5] and s[3]["name"] not in done]
    if complete:
        calls = []
        for *_, tool, found, _missing in complete:
            times = 1 if len(users) > 1 else max(len(v) for v in found.values())
            calls += [(tool["name"], k) for k in range(times)]
        return Plan("call_tools", calls[:max_calls])
    if scored and scored[0][3]["name"] not in done:
        return Plan("ask_user", missing=[humanize(m) for m in scored[0][5]])
    if not scored and not done:
        # No parameter named: call the tool the request is about, if any.
        words = content_words(text)
        best = max(tools, key=lambda t: len(words & content_words(f"{humanize(t['name'])} {t.get('description', '')}")),
                   default=None)
        if best is not None and len(words & content_words(f"{humanize(best['name'])} {best.get('description', '')}")) >= 2:
            return Plan("call_tools", [(best["name"], 0)])
    return Plan("answer")


_ELSEWHERE = [
    "Could you book a table for two at an Italian restaurant in Porto on Friday at 8 pm?",
    "Please water the tomato plants on my balcony tomorrow morning before I leave for work.",
    "Can you find a plumber to fix the leaking kitchen sink in my flat on Rua Augusta this week?",
    "I need my grandmother's handwritten recipe book scanned and bound as a birthday present.",
    "Could you walk my neighbour's dog around Stanley Park on Saturday afternoon?",
]


def _answer_text(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    from synthesis.roleplay.phrasing import humanize

    convo = _conversation(messages)
    results = []
    for m in reversed(convo):
        if m.get("role") != "tool":
            break
        results.append(_loads(_text(m)))
    if results:
        values = []

        def walk(v):
            if isinstance(v, dict):
                for k, x in v.items():
                    if not isinstance(x, dict | list) and x not in (None, "") and len(values) < 4:
                        values.append(f"{humanize(k)} {_fmt(x)}")
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v[:2]:
                    walk(x)

        for r in reversed(results):
            walk(r)
        return ("Here is what I found: " + ", ".join(values) + ".") if values else "It is done."
    p = plan(messages, tools)
    if p.action == "ask_user" and p.missing:
        return f"Sure. Could you tell me the {' and the '.join(p.missing[:3])}?"
    return "Sorry, none of the tools I have can do that, so I cannot help with this request."


def _json_answer(req, schema: dict[str, Any], rng: random.Random) -> Any:
    from synthesis.roleplay.phrasing import humanize

    props = set((schema.get("properties") or {}).keys())
    last = _text(req.messages[-1]) if req.messages else ""
    if props == {"rationale", "decision"}:  # a verifier's vote
        return {"rationale": "The calls use the values the user gave and the answer reports the results.",
                "decision": "accept"}
    if props == {"action", "tools"}:  # the Tool Agent's plan
        max_calls = ((schema["properties"]["tools"] or {}).get("maxItems")) or 3
        p = plan(req.messages, req.tools or [], max_calls=max_calls)
        return {"action": p.action, "tools": [name for name, _ in p.calls] if p.action == "call_tools" else []}
    if props == {"query"}:
        if "Request: " in last:  # rewrite a plain request in the persona's words
            plain = re.search(r"^Request: (.*)$", last, re.M).group(1)
            return {"query": plain if plain.startswith("Hi") else "Hi! " + plain}
        if "NONE of these tools" in last:  # irrelevance: a request for something else
            from synthesis.roleplay.values import content_words

            offered = content_words(last)
            return {"query": min(_ELSEWHERE, key=lambda q: len(content_words(q) & offered))}
        tasks = re.findall(r"^- (.*?) \((.*)\)$", last, re.M)
        parts = [f"{desc[0].lower()}{desc[1:]} ({details})" for desc, details in tasks] or ["help me with this"]
        return {"query": "Could you " + "; and also ".join(parts) + "?"}
    if props == {"goal"}:
        names = re.findall(r"^- (\S+) with ", last, re.M)
        return {"goal": "I want to " + ", then ".join(humanize(n) for n in names or ["get this done"]) + "."}
    if props == {"goal_met", "message"}:  # the User Simulator's next turn
        goal = (re.search(r"^Your goal: (.*)$", last, re.M) or [None, "I need some help."])[1]
        hidden = _pairs((re.search(r"^Details not yet shared: (.*)$", last, re.M) or [None, ""])[1])
        if "Conversation so far:" not in last:
            first = dict(list(hidden.items())[: max(1, len(hidden) - 1)])
            return {"goal_met": False, "message": f"{goal} ({_spoken(first)})" if first else goal}
        if hidden:
            return {"goal_met": False, "message": f"Sure, here you go ({_spoken(hidden)})."}
        return {"goal_met": True, "message": "Thanks, that is all I needed."}
    hints = {}
    m = re.search(r"^Arguments: (\{.*\})", last, re.M)  # the MCP server simulator: echo the arguments
    if m:
        args = _loads(m.group(1))
        hints = args if isinstance(args, dict) else {}
    if schema.get("type") == "object" and not schema.get("properties"):  # a free-form result
        return {"status": "ok", **{k: v for k, v in hints.items() if not isinstance(v, dict | list)}}
    return _instance(schema, rng, hints=hints)


def reply(req, choice: int = 0):
    """The stand-in's answer to one request (a ``ChatRequest``): a ``ChatResult``."""
    from synthesis.llm.base import ChatResult, ToolCall
    from synthesis.schema_utils import is_valid

    rng = _rng(req, choice)
    if req.json_schema is not None:
        value = _json_answer(req, req.json_schema, rng)
        if not is_valid(value, req.json_schema):
            value = _instance(req.json_schema, rng)
        text = json.dumps(value, ensure_ascii=False)
        return ChatResult(text=text, completion_tokens=max(1, len(text) // 4))
    tools = {t["name"]: t for t in req.tools or []}
    choice_ = req.tool_choice
    convo = _conversation(req.messages)
    user_text = " ".join(_text(m) for m in convo if m.get("role") == "user")
    calls: list[tuple[str, int]] = []
    if isinstance(choice_, dict) and choice_.get("name") in tools:
        name = choice_["name"]
        note = _text(req.messages[-1]) if req.messages else ""
        m = re.match(r"Write call (\d+) of (\d+)", note)
        nth = int(m.group(1)) - 1 if m else 0
        planned = plan([x for x in req.messages if not (x.get("role") == "system" and x is req.messages[-1])],
                       list(tools.values()))
        # the nth planned call, or this tool's first mention
        mention = planned.calls[nth][1] if nth < len(planned.calls) and planned.calls[nth][0] == name else 0
        calls = [(name, mention)]
    elif tools and choice_ in ("auto", "required"):
        p = plan(req.messages, list(tools.values()))
        calls = p.calls if p.action == "call_tools" else []
        if not calls and choice_ == "required":
            calls = [(next(iter(tools)), 0)]
    if calls:
        tool_calls = [ToolCall(name=n, arguments=_arguments(tools[n], user_text, k, rng), id=f"call_{rng.getrandbits(40):x}")
                      for n, k in calls]
        return ChatResult(text="", tool_calls=tool_calls, finish_reason="tool_calls",
                          completion_tokens=sum(len(json.dumps(c.arguments)) // 4 + 4 for c in tool_calls))
    text = _answer_text(req.messages, list(tools.values()))
    return ChatResult(text=text, completion_tokens=max(1, len(text) // 4))


def latency_app(delay: float, model: str = MODEL_NAME):
    """The stand-in model server: an ASGI app (Starlette)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from synthesis.llm.serving import (
        BadRequest,
        chat_completion_response,
        list_models,
        parse_chat_completions_body,
    )

    stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "errors": 0}

    async def completions(request: Request):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stats["requests"] += 1
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            try:
                body = json.loads(await request.body() or b"null")
                req = parse_chat_completions_body(body)
            except (ValueError, UnicodeDecodeError) as exc:
                stats["errors"] += 1
                err = exc if isinstance(exc, BadRequest) else BadRequest(f"the body is not valid JSON: {exc}")
                return JSONResponse(err.to_dict(), status_code=err.status)
            results = [reply(req, i) for i in range(req.n)]
            await asyncio.sleep(max(0.0, delay - (loop.time() - t0)))
            return JSONResponse(chat_completion_response(results, model=body.get("model") or model))
        finally:
            stats["in_flight"] -= 1

    async def models(request: Request):
        return JSONResponse(list_models([model]))

    async def stats_view(request: Request):
        return JSONResponse(stats)

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                             Route("/v1/models", models), Route("/stats", stats_view)])


def serve_latency(port: int, delay: float) -> None:
    import uvicorn

    uvicorn.run(latency_app(delay), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ============================================================================ processes
