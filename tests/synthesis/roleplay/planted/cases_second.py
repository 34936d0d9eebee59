"""A second set of planted bad trajectories (written apart from cases.py, by another hand): realistic, otherwise-good examples with exactly one defect.

Each :class:`Planted` case holds the GOOD twin (what the pipeline should accept) and the
BAD one (the same example with one defect), in the form the engine verifies them:

* single-turn modes: a :class:`ScenarioStep` (what is trained on is its query and
  ``reference_calls``; for ``irrelevance``, no call);
* ``multi_turn``: the :class:`ScenarioStep` plus the conversation's message list (what is
  trained on is the whole conversation).

``caught_by`` is a phrase of the rule problem that must reject the bad twin (the test
names it in its assertion message).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from synthesis.roleplay.steps import MessageStep, ScenarioStep
from tests.synthesis.roleplay import fakes


def without_output(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool of the fakes without its outputSchema (this set plants results freely)."""
    return {k: v for k, v in tool.items() if k != "outputSchema"}


PERSONA = {"name": "Dana", "role": "shop owner", "background": "Runs a small shop.", "style": "brief, polite"}

GET_WEATHER = without_output(fakes.GET_WEATHER)

GET_FORECAST = {
    "name": "get_forecast",
    "description": "Weather forecast for a city on a given date.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "date": {"type": "string", "format": "date"},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
}

CREATE_ORDER = {
    "name": "create_order",
    "description": "Place an order for an item.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "item": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
            "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        },
        "required": ["item", "quantity"],
        "additionalProperties": False,
    },
}

GET_ORDER = without_output(fakes.GET_ORDER)

CANCEL_ORDER = {
    "name": "cancel_order",
    "description": "Cancel an order that has not shipped yet.",
    "inputSchema": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
}

LIST_ORDERS = {
    "name": "list_orders",
    "description": "List your orders, filtered by status, one page at a time.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["placed", "shipped", "delivered", "cancelled"]},
            "since": {"type": "string", "format": "date"},
            "page": {"type": "integer", "minimum": 1},
        },
        "additionalProperties": False,
    },
}

SEND_EMAIL = {  # declares its parameters, but does not forbid others
    "name": "send_email",
    "description": "Send an email message to one recipient.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "to": {"type": "string", "format": "email"},
            "subject": {"type": "string"},
        },
        "required": ["to", "subject"],
    },
}


def c(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


# ---------------------------------------------------------------------------------------
# Messages


def user(text: str) -> MessageStep:
    return MessageStep(role="user", content=text)


def calls(*cs: dict[str, Any], first: int = 1) -> MessageStep:
    return MessageStep(
        role="assistant",
        content="",
        tool_calls=[
            {"id": f"call_{first + i}", "type": "function",
             "function": {"name": x["name"], "arguments": json.dumps(x["arguments"])}}
            for i, x in enumerate(cs)
        ],
    )


def result(name: str, data: Any, call_id: int = 1) -> MessageStep:
    return MessageStep(  # as the engine's execute_calls stores it
        role="tool",
        content=json.dumps(data),
        name=name,
        tool_call_id=f"call_{call_id}",
        mcp={"jsonrpc": "2.0", "id": call_id, "result": {
            "content": [{"type": "text", "text": json.dumps(data)}], "structuredContent": data, "isError": False}},
    )


def say(text: str) -> MessageStep:
    return MessageStep(role="assistant", content=text)


# ---------------------------------------------------------------------------------------
# Cases


@dataclass
class Planted:
    name: str
    defect: str
    caught_by: str
    good: ScenarioStep
    bad: ScenarioStep
    good_messages: list[MessageStep] = field(default_factory=list)
    bad_messages: list[MessageStep] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return self.good.mode


def single(name: str, defect: str, caught_by: str, mode: str, tools: list[dict[str, Any]], query: str,
           good: list[dict[str, Any]], bad: list[dict[str, Any]], *, bad_query: str | None = None) -> Planted:
    scenario = ScenarioStep(mode=mode, persona=PERSONA, tools=tools, query=query, reference_calls=good)
    return Planted(name, defect, caught_by, scenario,
                   dataclasses.replace(scenario, reference_calls=bad, query=bad_query or query))


def multi(name: str, defect: str, caught_by: str, tools: list[dict[str, Any]], goal: str,
          plan: list[dict[str, Any]], good: list[MessageStep], bad: list[MessageStep]) -> Planted:
    facts = {k: v for x in plan for k, v in x["arguments"].items()}
    scenario = ScenarioStep(mode="multi_turn", persona=PERSONA, tools=tools, goal=goal, reference_calls=plan,
                            user_facts=facts)
    return Planted(name, defect, caught_by, scenario, scenario, good, bad)


ORDER = "ord_3f9a2c71"
ORDER_OUT = {"order_id": ORDER, "item": "desk lamp", "quantity": 2, "status": "shipped"}

SINGLE_TURN = [
    single("wrong_tool", "the reference cancels the order the user only wants to look up",
           "fits the request less than", "multiple", [GET_ORDER, CANCEL_ORDER, GET_WEATHER],
           f"Could you look up my order {ORDER} for me?",
           [c("get_order", order_id=ORDER)], [c("cancel_order", order_id=ORDER)]),
    single("wrong_tool_weather", "the reference asks for the current weather when the user wants a forecast",
           "fits the request less than", "multiple", [GET_WEATHER, GET_FORECAST],
           "What does the forecast say for Oslo on June 14, 2025?",
           [c("get_forecast", city="Oslo", date="2025-06-14")], [c("get_weather", city="Oslo")],
           ),
    single("wrong_city", "the request says Paris, the call says Lisbon", "mentions only",
           "single", [GET_WEATHER], "What's the weather like in Paris right now?",
           [c("get_weather", city="Paris")], [c("get_weather", city="Lisbon")]),
    single("wrong_number", "the request orders 12 notebooks, the call orders 2", "only inside",
           "single", [CREATE_ORDER], "Please order 12 notebooks for the office.",
           [c("create_order", item="notebooks", quantity=12)], [c("create_order", item="notebooks", quantity=2)]),
    single("wrong_date", "the request asks for June 14, the call for June 15", "mentions only",
           "single", [GET_FORECAST], "What's the forecast for Oslo on June 14, 2025?",
           [c("get_forecast", city="Oslo", date="2025-06-14")], [c("get_forecast", city="Oslo", date="2025-06-15")]),
    single("invented_id", "the call looks up an order id the request does not have", "mentions only",
           "single", [GET_ORDER], f"Where is my order {ORDER}? It has been a week.",
           [c("get_order", order_id=ORDER)], [c("get_order", order_id="ord_77b1e0d4")]),
    single("irrelevance_with_call", "no offered tool books flights, yet the reference calls one",
           "an irrelevance task has no reference call", "irrelevance", [GET_WEATHER, GET_FORECAST],
           "Can you book me a flight from Boston to Denver on March 3?",
           [], [c("get_weather", city="Denver")]),
    single("page_as_string", 'the integer page is the string "2"', "is not of type 'integer'",
           "single", [LIST_ORDERS], "Show me page 2 of my shipped orders.",
           [c("list_orders", status="shipped", page=2)], [c("list_orders", status="shipped", page="2")]),
    single("number_as_string", 'the integer days is the string "5"', "is not of type 'integer'",
           "single", [GET_FORECAST], "Give me the 5 day forecast for Denver, please.",
           [c("get_forecast", city="Denver", days=5)], [c("get_forecast", city="Denver", days="5")]),
    single("missing_required", "the call leaves out the required city", "is a required property",
           "single", [GET_FORECAST], "What's the forecast for Denver on March 3, 2026?",
           [c("get_forecast", city="Denver", date="2026-03-03")], [c("get_forecast", date="2026-03-03")]),
    single("invented_argument", "the call adds a priority parameter send_email does not have",
           "has no parameter", "single", [SEND_EMAIL],
           "Email jane.doe@example.com with the subject Invoice overdue, high priority please.",
           [c("send_email", to="jane.doe@example.com", subject="Invoice overdue")],
           [c("send_email", to="jane.doe@example.com", subject="Invoice overdue", priority="high")]),
    single("parallel_extra_call", "the reference adds a call for a city the request never names", "mentions only",
           "parallel", [GET_WEATHER], "What's the weather in Paris and in Lisbon today?",
           [c("get_weather", city="Paris"), c("get_weather", city="Lisbon")],
           [c("get_weather", city="Paris"), c("get_weather", city="Lisbon"), c("get_weather", city="Madrid")]),
    single("parallel_missing_call", "the request asks about three orders, the reference looks up two",
           "no reference call carries", "parallel", [GET_ORDER],
           "Can you check my orders ord_3f9a2c71, ord_5b6e1d20 and ord_9c0d4e88?",
           [c("get_order", order_id="ord_3f9a2c71"), c("get_order", order_id="ord_5b6e1d20"),
            c("get_order", order_id="ord_9c0d4e88")],
           [c("get_order", order_id="ord_3f9a2c71"), c("get_order", order_id="ord_5b6e1d20")]),
    single("parallel_repeated_call", "the second call asks for the first one's page again",
           "repeats an earlier one", "parallel", [LIST_ORDERS], "Show me pages 1 and 2 of my shipped orders.",
           [c("list_orders", status="shipped", page=1), c("list_orders", status="shipped", page=2)],
           [c("list_orders", status="shipped", page=1), c("list_orders", page=1, status="shipped")],
           bad_query="Show me page 1 of my shipped orders, and page 1 again."),
    single("parallel_one_call", "a parallel task with a single reference call",
           "needs at least two reference calls", "parallel", [GET_WEATHER],
           "What's the weather in Paris and in Lisbon today?",
           [c("get_weather", city="Paris"), c("get_weather", city="Lisbon")],
           [c("get_weather", city="Paris")], bad_query="What's the weather in Paris today, and in Paris again?"),
    single("enum_outside", "the status returned is not one of the enum's values", "is not one of",
           "single", [LIST_ORDERS], "List my returned orders since May 2, 2025.",
           [c("list_orders", since="2025-05-02")], [c("list_orders", status="returned", since="2025-05-02")]),
    single("pattern_violation", "the sku ABC1234 does not match ^[A-Z]{3}-[0-9]{4}$", "does not match",
           "single", [CREATE_ORDER], "Order 3 desk lamps, SKU ABC-1234.",
           [c("create_order", item="desk lamps", quantity=3, sku="ABC-1234")],
           [c("create_order", item="desk lamps", quantity=3, sku="ABC1234")],
           bad_query="Order 3 desk lamps, SKU ABC1234."),
    single("format_violation", "the date 14/06/2025 is not an ISO date", "is not a 'date'",
           "single", [LIST_ORDERS], "List my shipped orders since 2025-06-14.",
           [c("list_orders", status="shipped", since="2025-06-14")],
           [c("list_orders", status="shipped", since="14/06/2025")],
           bad_query="List my shipped orders since 14/06/2025."),
    single("email_format_violation", "the recipient is not an email address", "is not a 'email'",
           "single", [SEND_EMAIL], "Email jane.doe@example.com with the subject Invoice overdue.",
           [c("send_email", to="jane.doe@example.com", subject="Invoice overdue")],
           [c("send_email", to="jane.doe.example.com", subject="Invoice overdue")],
           bad_query="Email jane.doe.example.com with the subject Invoice overdue."),
]

WEATHER_OSLO = {"city": "Oslo", "temperature": 12, "unit": "celsius", "conditions": "light rain"}
CANCELLED = {**ORDER_OUT, "status": "cancelled"}
SHOP = [CREATE_ORDER, GET_ORDER, CANCEL_ORDER, LIST_ORDERS]

MULTI_TURN = [
    multi("mt_unasked_cancel", "the agent cancels the order the user only asked about",
          "changes something the user did not ask for", SHOP, f"I want to check the status of order {ORDER}.",
          [c("get_order", order_id=ORDER)],
          [user(f"Hi, where is my order {ORDER}?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", ORDER_OUT), say("Your order of 2 desk lamps has shipped."), user("Thanks!")],
          [user(f"Hi, where is my order {ORDER}?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", ORDER_OUT), calls(c("cancel_order", order_id=ORDER), first=2),
           result("cancel_order", CANCELLED, 2), say("Your order of 2 desk lamps has shipped."), user("Thanks!")]),
    multi("mt_never_calls_needed", "the agent places the order but never checks it, which the goal needs",
          "never called get_order", SHOP, "I want to order 2 desk lamps, then check the order.",
          [c("create_order", item="desk lamp", quantity=2), c("get_order", order_id=ORDER)],
          [user("Please order 2 desk lamps and then check on the order."),
           calls(c("create_order", item="desk lamp", quantity=2)), result("create_order", {**ORDER_OUT, "status": "placed"}),
           calls(c("get_order", order_id=ORDER), first=2), result("get_order", {**ORDER_OUT, "status": "placed"}, 2),
           say(f"Done: order {ORDER} for 2 desk lamps is placed."), user("Great, thanks.")],
          [user("Please order 2 desk lamps and then check on the order."),
           calls(c("create_order", item="desk lamp", quantity=2)), result("create_order", {**ORDER_OUT, "status": "placed"}),
           say(f"Done: order {ORDER} for 2 desk lamps is placed."), user("Great, thanks.")]),
    multi("mt_answer_wrong_number", "the result says 12 degrees, the answer says 30",
          "the tool results and the conversation do not hold", [GET_WEATHER, GET_FORECAST],
          "I want to know the weather in Oslo.", [c("get_weather", city="Oslo")],
          [user("What's the weather in Oslo right now?"), calls(c("get_weather", city="Oslo")),
           result("get_weather", WEATHER_OSLO), say("It is 12 degrees Celsius in Oslo, with light rain."),
           user("Thanks!")],
          [user("What's the weather in Oslo right now?"), calls(c("get_weather", city="Oslo")),
           result("get_weather", WEATHER_OSLO), say("It is 30 degrees Celsius in Oslo, with light rain."),
           user("Thanks!")]),
    multi("mt_answer_wrong_status", 'the result says "cancelled", the answer says "confirmed"',
          "status the tool results do not give", SHOP, f"I want to check the status of order {ORDER}.",
          [c("get_order", order_id=ORDER)],
          [user(f"Can you check order {ORDER}?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", CANCELLED), say("I'm sorry: that order was cancelled."), user("Thanks.")],
          [user(f"Can you check order {ORDER}?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", CANCELLED), say("Good news: your order is confirmed."), user("Thanks.")]),
    multi("mt_invented_id", "the agent looks up an order id nobody gave and no result returned",
          "appears nowhere before the call", SHOP, f"I want to check the status of order {ORDER}.",
          [c("get_order", order_id=ORDER)],
          [user(f"Where is my order {ORDER}?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", ORDER_OUT), say("It has shipped."), user("Thanks!")],
          [user(f"Where is my order {ORDER}?"), calls(c("get_order", order_id="ord_deadbeef")),
           result("get_order", {**ORDER_OUT, "order_id": "ord_deadbeef"}), say("It has shipped."), user("Thanks!")]),
    multi("mt_id_fragment", "the user gives order ord_3f9a2c71, the agent looks up 3f9a2c71, a piece of it",
          "which nobody gave", SHOP, f"I want to check the status of order {ORDER}.",
          [c("get_order", order_id=ORDER)],
          [user(f"Where is my order {ORDER}?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", ORDER_OUT), say("It has shipped."), user("Thanks!")],
          [user(f"Where is my order {ORDER}?"), calls(c("get_order", order_id=ORDER.removeprefix("ord_"))),
           result("get_order", {**ORDER_OUT, "order_id": ORDER.removeprefix("ord_")}), say("It has shipped."),
           user("Thanks!")]),
    multi("mt_wrong_city", "the user asks about Paris, the agent calls for Lisbon",
          "but the user gave", [GET_WEATHER, GET_FORECAST], "I want to know the weather in Paris.",
          [c("get_weather", city="Paris")],
          [user("How's the weather in Paris?"), calls(c("get_weather", city="Paris")),
           result("get_weather", {**WEATHER_OSLO, "city": "Paris"}), say("It is 12 degrees in Paris, with light rain."),
           user("Thanks!")],
          [user("How's the weather in Paris?"), calls(c("get_weather", city="Lisbon")),
           result("get_weather", {**WEATHER_OSLO, "city": "Lisbon"}), say("It is 12 degrees in Lisbon, with light rain."),
           user("Thanks!")]),
    multi("mt_call_when_nothing_fits", "the user asks for a currency conversion no tool does; the agent calls "
          "the forecast anyway", "nothing the user asked for", [GET_ORDER, GET_WEATHER, GET_FORECAST],
          f"I want to check my order {ORDER}.", [c("get_order", order_id=ORDER)],
          [user(f"Where is my order {ORDER}? And can you convert 20 dollars into euros?"),
           calls(c("get_order", order_id=ORDER)), result("get_order", ORDER_OUT),
           say("Your order has shipped. I can't convert currencies with the tools I have."), user("Thanks!")],
          [user(f"Where is my order {ORDER}? And can you convert 20 dollars into euros?"),
           calls(c("get_order", order_id=ORDER)), result("get_order", ORDER_OUT),
           calls(c("get_forecast", city="euros"), first=2), result("get_forecast", {"city": "euros", "temperature": 20}, 2),
           say("Your order has shipped."), user("Thanks!")]),
    multi("mt_wrong_type", 'the agent passes days as the string "5"', "is not of type 'integer'",
          [GET_WEATHER, GET_FORECAST], "I want the 5 day forecast for Denver.", [c("get_forecast", city="Denver", days=5)],
          [user("What's the 5 day forecast for Denver?"), calls(c("get_forecast", city="Denver", days=5)),
           result("get_forecast", {"city": "Denver", "temperature": 12}), say("Denver will be around 12 degrees."),
           user("Thanks!")],
          [user("What's the 5 day forecast for Denver?"), calls(c("get_forecast", city="Denver", days="5")),
           result("get_forecast", {"city": "Denver", "temperature": 12}), say("Denver will be around 12 degrees."),
           user("Thanks!")]),
    multi("mt_answer_invented_tracking", "the answer gives a tracking number no result holds",
          "the tool results and the conversation do not hold", SHOP, f"I want to check the status of order {ORDER}.",
          [c("get_order", order_id=ORDER)],
          [user(f"Is order {ORDER} on its way?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", ORDER_OUT), say("Yes, your 2 desk lamps have shipped."), user("Thanks!")],
          [user(f"Is order {ORDER} on its way?"), calls(c("get_order", order_id=ORDER)),
           result("get_order", ORDER_OUT), say("Yes, your 2 desk lamps have shipped; the tracking number is 1Z999AA10123456784."),
           user("Thanks!")]),
]

CASES = SINGLE_TURN + MULTI_TURN
