"""The latency stand-in (``synthesis/roleplay/standin.py``, used by ``bench/standin.py``): served over HTTP by uvicorn and read by
the project's ``openai`` backend, its tool calls and JSON answers validate against the schemas
offered, it waits the configured delay, and it answers concurrent requests concurrently."""

from __future__ import annotations

import threading
import time

import pytest

from synthesis.llm.base import ChatRequest
from synthesis.roleplay import prompts, standin
from synthesis.schema_utils import validation_errors
from tests.synthesis.roleplay.fakes import ALL_TOOLS

DELAY = 0.2

NESTED = {
    "name": "create_shipment",
    "description": "Create a shipment for an order.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^ORD-[0-9]{4}$"},
            "weight_kg": {"type": "number", "minimum": 0.1, "maximum": 30},
            "parcels": {"type": "integer", "minimum": 1, "maximum": 5},
            "address": {"$ref": "#/$defs/address"},
            "express": {"type": "boolean"},
        },
        "required": ["order_id", "parcels", "address"],
        "additionalProperties": False,
        "$defs": {"address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string", "enum": ["PT", "ES", "FR"]}},
            "required": ["city", "country"],
        }},
    },
}
TOOLS = [*ALL_TOOLS, NESTED]


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from tests.conftest import free_port

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(standin.latency_app(DELAY), host="127.0.0.1", port=port,
                                        log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the latency server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def backend(server):
    from synthesis.llm.openai_backend import OpenAIBackend

    b = OpenAIBackend(base_url=server, max_retries=0)
    yield b
    b.close()


def _user(text: str) -> list[dict]:
    return [{"role": "system", "content": prompts.agent_system_message(TOOLS)}, {"role": "user", "content": text}]


def test_models_are_listed(backend):
    assert backend.list_models() == [standin.MODEL_NAME]


def test_forced_and_required_tool_calls_validate_against_each_tools_schema(backend):
    requests = [ChatRequest(messages=_user("Please help me with my order."), tools=TOOLS, tool_choice={"name": t["name"]})
                for t in TOOLS]
    requests.append(ChatRequest(messages=_user("Please help me with my order."), tools=TOOLS, tool_choice="required"))
    by_name = {t["name"]: t for t in TOOLS}
    for req, (result,) in zip(requests, backend.complete_batch(requests), strict=True):
        assert result.error is None and result.tool_calls, result
        for call in result.tool_calls:
            if isinstance(req.tool_choice, dict):
                assert call.name == req.tool_choice["name"]
            assert validation_errors(call.arguments, by_name[call.name]["inputSchema"]) == []


def test_calls_take_the_values_the_user_gave_one_call_per_mention(backend):
    text = ("Could you get the current weather for a city (city: Lisbon, unit: celsius); and also get the current "
            "weather for a city (city: Porto, unit: fahrenheit)?")
    plan_req = ChatRequest(messages=[*_user(text), {"role": "system", "content": prompts.PLAN_INSTRUCTION}], tools=TOOLS,
                           json_schema=prompts.plan_schema([t["name"] for t in TOOLS], max_calls=3))
    (plan,) = backend.complete_batch([plan_req])[0]
    assert plan.text == '{"action": "call_tools", "tools": ["get_weather", "get_weather"]}'
    calls = []
    for nth in (1, 2):
        note = {"role": "system", "content": prompts.next_call_instruction(nth, 2, [])}
        (res,) = backend.complete_batch([ChatRequest(messages=[*_user(text), note], tools=TOOLS,
                                                     tool_choice={"name": "get_weather"})])[0]
        calls.append(res.tool_calls[0].arguments)
    assert calls == [{"city": "Lisbon", "unit": "celsius"}, {"city": "Porto", "unit": "fahrenheit"}]


@pytest.mark.parametrize("schema", [
    prompts.PERSONA_SCHEMA, prompts.QUERY_SCHEMA, prompts.GOAL_SCHEMA, prompts.USER_TURN_SCHEMA, prompts.VOTE_SCHEMA,
    prompts.GENERIC_RESULT_SCHEMA, ALL_TOOLS[0]["outputSchema"], NESTED["inputSchema"],
    prompts.plan_schema(["get_order", "create_order"], max_calls=2),
], ids=["persona", "query", "goal", "user_turn", "vote", "generic_result", "output_schema", "nested", "plan"])
def test_json_schema_answers_are_valid(backend, schema):
    import json

    (res,) = backend.complete_batch([ChatRequest(messages=_user("Place an order, item: kettle, quantity: 2."),
                                                 tools=TOOLS[:2], json_schema=schema)])[0]
    assert validation_errors(json.loads(res.text), schema) == []


def test_text_answers_use_the_tool_results(backend):
    messages = [*_user("Get order order id: A-12."),
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "A-12"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": '{"order_id": "A-12", "status": "shipped"}'}]
    (res,) = backend.complete_batch([ChatRequest(messages=messages, tools=TOOLS, tool_choice="none")])[0]
    assert not res.tool_calls and "A-12" in res.text and "shipped" in res.text


def test_each_answer_waits_the_delay_and_requests_are_served_concurrently(backend):
    requests = [ChatRequest(messages=_user(f"Hello number {i}"), max_tokens=8) for i in range(8)]
    t0 = time.perf_counter()
    backend.complete_batch(requests[:1])
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = backend.complete_batch(requests)  # the backend sends up to 8 at once
    eight = time.perf_counter() - t0
    assert len(out) == 8 and all(r[0].text for r in out)
    assert one >= DELAY
    assert eight < 4 * DELAY, f"8 concurrent requests took {eight:.2f} s; one takes {one:.2f} s"


@pytest.mark.parametrize("pattern", [
    "^ORD-[0-9]{4}$", r"^[A-Z]{2}\d{2}[A-Z0-9]{1,30}$", "^(draft|sent|paid)$", r"^\w+@\w+\.(com|org)$",
    "^[^/]+/[^/]+$", r"^\+?[1-9]\d{1,14}$", "^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$",
])
def test_regex_examples_match_their_pattern(pattern):
    import random
    import re

    for seed in range(5):
        value = standin.regex_example(pattern, random.Random(seed))
        assert value is not None and re.search(pattern, value), (pattern, value)


def test_the_same_conversation_gets_the_same_answer_whatever_the_call_ids():
    def convo(call_id: str) -> list[dict]:
        return [*_user("Get order order id: A-12."),
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "get_order", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": call_id, "content": '{"order_id": "A-12"}'},
                {"role": "user", "content": "Now place an order."}]

    answers = {standin.reply(ChatRequest(messages=convo(cid), tools=TOOLS, tool_choice={"name": "create_order"}))
               .tool_calls[0].arguments.__repr__() for cid in ("call_1", "call_9f3e", "x")}
    assert len(answers) == 1
