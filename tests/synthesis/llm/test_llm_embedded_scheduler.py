"""The embedded scheduler's request handling (cancelling, deadlines, streamed text, grammar
compiling), on a tiny random model: the logic, not the model's replies."""

import json
import threading
import time

import pytest

from synthesis.llm.base import ChatRequest, GenerationTimeout
from synthesis.llm.embedded import GrammarCache


def hello(max_tokens=8, **kw):
    return ChatRequest(messages=[{"role": "user", "content": "hello"}], max_tokens=max_tokens, **kw)


def test_streamed_text_adds_up_to_the_reply(tiny_embedded):
    parts: list[tuple[int, str]] = []
    gen = tiny_embedded.submit(
        hello(12, n=2, temperature=1.0, seed=3), on_text=lambda i, t: parts.append((i, t))
    )
    results = gen.results(timeout=60)
    for i, r in enumerate(results):
        assert "".join(t for c, t in parts if c == i) == r.text
        assert r.completion_tokens <= 12


def test_cancel_ends_the_request_and_frees_its_slot(tiny_embedded):
    started = threading.Event()
    gen = tiny_embedded.submit(hello(900), on_text=lambda i, t: started.set())
    assert started.wait(30)
    gen.cancel()
    t0 = time.monotonic()
    [r] = gen.results(timeout=10)
    assert r.finish_reason == "cancelled" and r.completion_tokens < 900
    # The only slot is free again: a new request goes through at once.
    assert tiny_embedded.submit(hello(3)).results(timeout=10)[0].completion_tokens <= 3
    assert time.monotonic() - t0 < 10


def test_a_request_past_its_deadline_is_cancelled(tiny_embedded):
    gen = tiny_embedded.submit(hello(900))
    with pytest.raises(GenerationTimeout):
        gen.results(timeout=0.05)
    gen.done.result(timeout=10)  # the scheduler let it go
    assert gen.results()[0].finish_reason == "cancelled"


def test_a_request_cancelled_while_queued_never_takes_the_slot(tiny_embedded):
    started = threading.Event()
    first = tiny_embedded.submit(hello(900), on_text=lambda i, t: started.set())
    assert started.wait(30)
    queued = tiny_embedded.submit(hello(900))
    queued.cancel()
    first.cancel()
    assert queued.results(timeout=10)[0].completion_tokens == 0
    assert first.results(timeout=10)[0].finish_reason == "cancelled"


def test_a_slow_grammar_does_not_hold_up_other_requests():
    """Compiling happens outside the cache's lock; one compile per key even when asked twice."""
    release, calls = threading.Event(), []

    class Compiler:
        def compile_json_schema(self, text, any_whitespace):
            schema = json.loads(text)
            calls.append(schema)
            if schema == {"big": True}:
                release.wait(10)
            return f"grammar {schema}"

    grammars = GrammarCache(Compiler(), constrain_tool_calls=True)

    def schema_request(schema):
        return ChatRequest(messages=[], json_schema=schema)

    big = [
        threading.Thread(target=grammars.for_request, args=(schema_request({"big": True}), []))
        for _ in range(2)
    ]
    for t in big:
        t.start()
    time.sleep(0.1)
    out = []
    small = threading.Thread(
        target=lambda: out.append(grammars.for_request(schema_request({"small": 1}), []))
    )
    small.start()
    small.join(2)
    assert out == ["grammar {'small': 1}"]
    release.set()
    for t in big:
        t.join(5)
    assert calls.count({"big": True}) == 1


WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "inputSchema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}},
                           "required": ["city"]}}


def test_what_the_grammar_forces_at_the_start_is_prefilled_not_decoded(tiny_embedded):
    """A forced call's ``<tool_call>\\n{"name": "get_weather", "arguments": `` goes in with the
    prompt: one prefill instead of a decode step per token; the reply and the stream still
    carry it, and the call parses."""
    req = ChatRequest(messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER],
                      tool_choice={"name": "get_weather"}, max_tokens=60)
    parts: list[str] = []
    steps = tiny_embedded.stats["steps"]
    gen = tiny_embedded.submit(req, on_text=lambda i, t: parts.append(t))
    (r,) = gen.results(timeout=60)
    steps = tiny_embedded.stats["steps"] - steps
    streamed = "".join(parts)
    assert streamed.startswith('<tool_call>\n{"name": "get_weather", "arguments": ')
    forced = len(tiny_embedded.tokenizer('<tool_call>\n{"name": "get_weather", "arguments": ',
                                         add_special_tokens=False)["input_ids"]) - 1
    assert forced >= 10
    # every token after the first came from a decode step, except the forced ones
    assert steps <= r.completion_tokens - forced
    if r.finish_reason == "tool_calls":  # the call is parsed out of the text
        assert [c.name for c in r.tool_calls] == ["get_weather"] and streamed.rstrip().endswith("</tool_call>")
    else:
        assert r.text == streamed
    # prompt_tokens is the request's prompt, not the forced tokens
    assert r.prompt_tokens == len(tiny_embedded._prepare(req).prompt_ids)


def test_forced_tokens_never_exceed_max_tokens(tiny_embedded):
    req = ChatRequest(messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER],
                      tool_choice={"name": "get_weather"}, max_tokens=4)
    r = tiny_embedded.complete(req)
    assert r.completion_tokens <= 4 and r.finish_reason == "length"
    assert r.text.startswith("<tool")


def test_a_json_reply_is_decoded_from_its_first_token(tiny_embedded):
    """Jumping over '{"rationale": "' changed what the verifiers wrote; only a call's
    envelope is prefilled."""
    schema = {"type": "object", "properties": {"rationale": {"type": "string", "maxLength": 20}},
              "required": ["rationale"], "additionalProperties": False}
    req = ChatRequest(messages=[{"role": "user", "content": "Judge this."}], json_schema=schema, max_tokens=30)
    steps = tiny_embedded.stats["steps"]
    r = tiny_embedded.complete(req)
    assert r.text.startswith('{"')
    assert tiny_embedded.stats["steps"] - steps >= r.completion_tokens - 1


def test_decode_tools_constrain_the_call_while_the_prompt_shows_the_tools(tiny_embedded):
    """The prompt renders ``tools`` as given; the call is constrained by ``decode_tools`` (here
    an enum the prompt never shows), so requests that differ only in their bounds share a
    prompt."""
    shown = {"name": "get_weather", "description": "Weather in a city",
             "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    bound = {**shown, "inputSchema": {"type": "object", "properties": {"city": {"enum": ["Oslo"]}},
                                      "required": ["city"]}}
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    req = ChatRequest(messages=messages, tools=[shown], decode_tools=[bound],
                      tool_choice={"name": "get_weather"}, max_tokens=40)
    plain = ChatRequest(messages=messages, tools=[shown], tool_choice={"name": "get_weather"}, max_tokens=40)
    assert tiny_embedded.render_prompt(req) == tiny_embedded.render_prompt(plain)
    assert "Oslo\"]" not in tiny_embedded.render_prompt(req)
    r = tiny_embedded.complete(req)
    assert r.finish_reason == "tool_calls", r.text
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("get_weather", {"city": "Oslo"})]


def test_decode_tools_must_name_the_offered_tools():
    with pytest.raises(ValueError, match="decode_tools must name the same tools"):
        ChatRequest(messages=[], tools=[WEATHER], decode_tools=[{**WEATHER, "name": "other"}])
