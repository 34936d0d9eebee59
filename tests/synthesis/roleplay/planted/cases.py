"""Planted bad trajectories: each is a realistic, otherwise good example with exactly one
defect, beside its good twin (the same example without the defect).

Single-turn cases are scenarios (what training learns: the request and its reference
calls); multi-turn cases are scenarios with their conversation.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from synthesis.roleplay.steps import MessageStep, ScenarioStep

from ..fakes import CREATE_ORDER, DELETE_ORDER, GET_ORDER, GET_WEATHER, SEND_EMAIL

AIR_QUALITY = {
    "name": "get_air_quality",
    "description": "Get the air quality index for a city.",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                    "additionalProperties": False},
}
BOOK_TABLE = {
    "name": "book_table",
    "description": "Book a restaurant table.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "restaurant": {"type": "string"},
            "date": {"type": "string", "format": "date"},
            "guests": {"type": "integer", "minimum": 1, "maximum": 12},
            "code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{3}$"},
        },
        "required": ["restaurant", "date", "guests"],
    },
}
LIST_INVOICES = {
    "name": "list_invoices",
    "description": "List the invoices of an account.",
    "inputSchema": {
        "type": "object",
        "properties": {"account": {"type": "string"}, "page": {"type": "integer", "minimum": 1}},
        "required": ["account"],
    },
}
SEARCH_FLIGHTS = {
    "name": "search_flights",
    "description": "Search flights between two airports.",
    "inputSchema": {
        "type": "object",
        "properties": {"origin": {"type": "string"}, "destination": {"type": "string"},
                       "date": {"type": "string", "format": "date"}},
        "required": ["origin", "destination", "date"],
    },
}


@dataclass
class Case:
    name: str
    defect: str
    mode: str
    good: ScenarioStep
    bad: ScenarioStep
    good_messages: list[MessageStep] = field(default_factory=list)
    bad_messages: list[MessageStep] = field(default_factory=list)


def scenario(mode: str, tools: list[dict], query: str, calls: list[dict], **kw: Any) -> ScenarioStep:
    return ScenarioStep(mode=mode, persona={"name": "Lena Berg"}, tools=tools, query=query,
                        reference_calls=calls, **kw)


def c(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def single(name, defect, mode, tools, query, good_calls, bad_calls=None, bad_query=None) -> Case:
    good = scenario(mode, tools, query, good_calls)
    bad = scenario(mode, tools, bad_query or query, good_calls if bad_calls is None else bad_calls)
    return Case(name, defect, mode, good, bad)


def user(text: str) -> MessageStep:
    return MessageStep(role="user", content=text)


def calls(*cs: dict[str, Any]) -> MessageStep:
    return MessageStep(role="assistant", content=None, tool_calls=[
        {"id": f"call_{i}", "type": "function", "function": {"name": x["name"], "arguments": json.dumps(x["arguments"])}}
        for i, x in enumerate(cs)])


def result(name: str, value: dict[str, Any], i: int = 0) -> MessageStep:
    return MessageStep(role="tool", name=name, tool_call_id=f"call_{i}", content=json.dumps(value),
                       mcp={"jsonrpc": "2.0", "id": i + 1, "result": {"structuredContent": value, "content": [
                           {"type": "text", "text": json.dumps(value)}]}})


def say(text: str) -> MessageStep:
    return MessageStep(role="assistant", content=text)


def multi(name, defect, tools, goal, refs, good_msgs, bad_msgs) -> Case:
    sc = ScenarioStep(mode="multi_turn", persona={"name": "Lena Berg"}, tools=tools, goal=goal, reference_calls=refs)
    return Case(name, defect, "multi_turn", sc, copy.deepcopy(sc), good_msgs, bad_msgs)


ORDER = {"order_id": "ord_4f2a91c0", "item": "paper clips", "quantity": 3, "status": "shipped"}
WEATHER_Q = "What's the weather in Paris right now?"

CASES: list[Case] = [
    # --- single
    single("wrong tool", "the call uses another offered tool than the request asks for", "single",
           [GET_WEATHER, AIR_QUALITY], WEATHER_Q, [c("get_weather", city="Paris")], [c("get_air_quality", city="Paris")]),
    single("wrong city", "request says Paris, call says Lisbon", "single",
           [GET_WEATHER], WEATHER_Q, [c("get_weather", city="Paris")], [c("get_weather", city="Lisbon")]),
    single("wrong number", "request says 4 guests, call says 6", "single",
           [BOOK_TABLE], "Book a table at Chez Marie on June 14, 2025 for 4 guests.",
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4)],
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=6)]),
    single("wrong date", "request says June 14, call says June 15", "single",
           [BOOK_TABLE], "Book a table at Chez Marie on June 14, 2025 for 4 guests.",
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4)],
           [c("book_table", restaurant="Chez Marie", date="2025-06-15", guests=4)]),
    single("invented id", "the order id appears nowhere in the request", "single",
           [GET_ORDER], "Where is my order ord_4f2a91c0?", [c("get_order", order_id="ord_4f2a91c0")],
           [c("get_order", order_id="ord_77bb2c10")]),
    single("integer as string", '"page": "2" for an integer parameter', "single",
           [LIST_INVOICES], "Show me page 2 of the invoices of account ACME.",
           [c("list_invoices", account="ACME", page=2)], [c("list_invoices", account="ACME", page="2")]),
    single("number as string", '"guests": "4" for an integer parameter', "single",
           [BOOK_TABLE], "Book a table at Chez Marie on June 14, 2025 for 4 guests.",
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4)],
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests="4")]),
    single("missing required argument", "the date is required and left out", "single",
           [BOOK_TABLE], "Book a table at Chez Marie on June 14, 2025 for 4 guests.",
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4)],
           [c("book_table", restaurant="Chez Marie", guests=4)], "Book a table at Chez Marie for 4 guests."),
    single("invented argument", "an argument the tool does not have", "single",
           [BOOK_TABLE], "Book a table at Chez Marie on June 14, 2025 for 4 guests.",
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4)],
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4, table="window")],
           "Book a window table at Chez Marie on June 14, 2025 for 4 guests."),
    single("value outside the enum", "unit kelvin is not one of celsius, fahrenheit", "single",
           [GET_WEATHER], "What's the weather in Paris, in celsius?", [c("get_weather", city="Paris", unit="celsius")],
           [c("get_weather", city="Paris", unit="kelvin")], "What's the weather in Paris, in kelvin?"),
    single("format violation", "a date that is not a date", "single",
           [BOOK_TABLE], "Book a table at Chez Marie on 2025-06-14 for 4 guests.",
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4)],
           [c("book_table", restaurant="Chez Marie", date="14/06/2025", guests=4)],
           "Book a table at Chez Marie on 14/06/2025 for 4 guests."),
    single("pattern violation", "a booking code that does not match ^[A-Z]{3}-\\d{3}$", "single",
           [BOOK_TABLE], "Book a table at Chez Marie on June 14, 2025 for 4 guests, code ABC-123.",
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4, code="ABC-123")],
           [c("book_table", restaurant="Chez Marie", date="2025-06-14", guests=4, code="abc123")],
           "Book a table at Chez Marie on June 14, 2025 for 4 guests, code abc123."),
    single("template debris in the request", "the request carries code/template debris", "single",
           [GET_WEATHER], WEATHER_Q, [c("get_weather", city="Paris")], None,
           "What's the weather in Paris }}  # Use format to collect the data in a list."),
    # --- parallel
    single("parallel call not asked for", "a second call for Tokyo the request never mentions", "parallel",
           [GET_WEATHER], "What's the weather in Paris and in Tokyo?",
           [c("get_weather", city="Paris"), c("get_weather", city="Tokyo")],
           [c("get_weather", city="Paris"), c("get_weather", city="Tokyo")], "What's the weather in Paris?"),
    single("parallel with one call", "a parallel task whose reference has one call", "parallel",
           [GET_WEATHER], "What's the weather in Paris and in Tokyo?",
           [c("get_weather", city="Paris"), c("get_weather", city="Tokyo")], [c("get_weather", city="Paris")],
           "What's the weather in Paris?"),
    # --- multiple
    single("multiple: distractor chosen", "the request asks for the weather, the call asks for air quality", "multiple",
           [AIR_QUALITY, GET_WEATHER, SEND_EMAIL], WEATHER_Q, [c("get_weather", city="Paris")],
           [c("get_air_quality", city="Paris")]),
    single("multiple: wrong tool with the same values", "flights asked for, an email sent", "multiple",
           [SEARCH_FLIGHTS, SEND_EMAIL], "Find flights from Lisbon to Oslo on June 14, 2025.",
           [c("search_flights", origin="Lisbon", destination="Oslo", date="2025-06-14")],
           [c("send_email", to="lena.berg@example.com", subject="Lisbon to Oslo on 2025-06-14")]),
    # --- irrelevance
    single("call in an irrelevance task", "an irrelevance task whose reference makes a call", "irrelevance",
           [SEND_EMAIL], "Book a table at Chez Marie on June 14, 2025 for 4 guests.", [],
           [c("send_email", to="chez.marie@example.com", subject="Table for 4")]),
    single("irrelevance an offered tool serves", "the request is exactly what the offered tool does", "irrelevance",
           [GET_WEATHER], "Book a table at Chez Marie on June 14, 2025 for 4 guests.", [], [],
           "What's the current weather for the city of Paris?"),
    # --- multi-turn
    multi("answer contradicts the result (number)", "the result says 12 degrees, the answer 30", [GET_WEATHER],
          "I want to know the weather in Oslo.", [c("get_weather", city="Oslo")],
          [user("What's the weather in Oslo?"), calls(c("get_weather", city="Oslo")),
           result("get_weather", {"city": "Oslo", "temperature": 12}), say("It is 12 degrees in Oslo right now.")],
          [user("What's the weather in Oslo?"), calls(c("get_weather", city="Oslo")),
           result("get_weather", {"city": "Oslo", "temperature": 12}), say("It is 30 degrees in Oslo right now.")]),
    multi("answer contradicts the result (status)", "the result says shipped, the answer confirmed... cancelled",
          [GET_ORDER], "I want to know where my order ord_4f2a91c0 is.", [c("get_order", order_id="ord_4f2a91c0")],
          [user("Where is my order ord_4f2a91c0?"), calls(c("get_order", order_id="ord_4f2a91c0")),
           result("get_order", ORDER), say("Your order of paper clips has shipped.")],
          [user("Where is my order ord_4f2a91c0?"), calls(c("get_order", order_id="ord_4f2a91c0")),
           result("get_order", ORDER), say("Your order of paper clips was cancelled.")]),
    multi("invented id in a conversation", "the agent looks up an order id nobody gave", [GET_ORDER],
          "I want to know where my order ord_4f2a91c0 is.", [c("get_order", order_id="ord_4f2a91c0")],
          [user("Where is my order ord_4f2a91c0?"), calls(c("get_order", order_id="ord_4f2a91c0")),
           result("get_order", ORDER), say("Your order of paper clips has shipped.")],
          [user("Where is my order ord_4f2a91c0?"), calls(c("get_order", order_id="ord_9c1d22e7")),
           result("get_order", {**ORDER, "order_id": "ord_9c1d22e7"}), say("Your order of paper clips has shipped.")]),
    multi("wrong value in a conversation", "the user said Oslo, the agent asked for Lisbon", [GET_WEATHER],
          "I want to know the weather in Oslo.", [c("get_weather", city="Oslo")],
          [user("What's the weather in Oslo?"), calls(c("get_weather", city="Oslo")),
           result("get_weather", {"city": "Oslo", "temperature": 12}), say("It is 12 degrees in Oslo.")],
          [user("What's the weather in Oslo?"), calls(c("get_weather", city="Lisbon")),
           result("get_weather", {"city": "Lisbon", "temperature": 12}), say("It is 12 degrees in Lisbon.")]),
    multi("unasked state change", "asked where the order is, the agent deletes it", [GET_ORDER, DELETE_ORDER],
          "I want to know where my order ord_4f2a91c0 is.", [c("get_order", order_id="ord_4f2a91c0")],
          [user("Where is my order ord_4f2a91c0?"), calls(c("get_order", order_id="ord_4f2a91c0")),
           result("get_order", ORDER), say("Your order of paper clips has shipped.")],
          [user("Where is my order ord_4f2a91c0?"), calls(c("get_order", order_id="ord_4f2a91c0")),
           result("get_order", ORDER), calls(c("delete_order", order_id="ord_4f2a91c0")),
           result("delete_order", {"deleted": True}, 1), say("Your order of paper clips has shipped.")]),
    multi("needed tool never called", "asked to order and then check, the agent only orders",
          [CREATE_ORDER, GET_ORDER], "I want to order 3 paper clips, then check the order.",
          [c("create_order", item="paper clips", quantity=3), c("get_order", order_id="ord_4f2a91c0")],
          [user("Please order 3 paper clips and then check on the order."),
           calls(c("create_order", item="paper clips", quantity=3)), result("create_order", ORDER),
           calls(c("get_order", order_id="ord_4f2a91c0")), result("get_order", ORDER, 1),
           say("Your order ord_4f2a91c0 of 3 paper clips has shipped.")],
          [user("Please order 3 paper clips and then check on the order."),
           calls(c("create_order", item="paper clips", quantity=3)), result("create_order", ORDER),
           say("Your order ord_4f2a91c0 of 3 paper clips has shipped.")]),
    multi("call where no tool fits", "asked for a table booking, the agent sends an email anyway", [SEND_EMAIL],
          "I want to send Chez Marie an email titled Booking.", [c("send_email", to="chez.marie@example.com", subject="Booking")],
          [user("Email chez.marie@example.com with the subject Booking, please."),
           calls(c("send_email", to="chez.marie@example.com", subject="Booking")),
           result("send_email", {"sent": True}), say("Your email titled Booking is sent.")],
          [user("Book me a table at Chez Marie for 4 on Friday."),
           calls(c("send_email", to="chez.marie@example.com", subject="Booking")),
           result("send_email", {"sent": True}), say("Your email titled Booking is sent.")]),
]
