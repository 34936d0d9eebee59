"""What keeps synthesized data readable whatever the model: implausible values replaced,
junk queries replaced by a plain request, raw-echo answers replaced by a summary."""

import dataclasses
import json
import random

import pytest

from synthesis.llm.base import ChatResult
from synthesis.llm.scripted import ScriptedBackend
from synthesis.roleplay import (
    MemorySink,
    RoleplayConfig,
    TrajectorySpec,
    plan_specs,
    run_trajectories,
)
from synthesis.roleplay.phrasing import action_phrase, answer_text, request_text
from synthesis.roleplay.steps import MessageStep, ScenarioStep
from synthesis.roleplay.values import cap_strings, implausible, polish_arguments, query_problems
from synthesis.schema_utils import validation_errors

from .fakes import (
    ALL_TOOLS,
    GET_ORDER,
    GET_WEATHER,
    SEND_EMAIL,
    as_json,
    call,
    smart_backend,
    smart_reply,
)

CFG = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0)


def run(spec, **backends):
    sink = MemorySink()
    (res,) = run_trajectories([spec], {"default": smart_backend(), **backends}, sink, CFG)
    return res, sink.steps[spec.id]


def scenario_of(steps):
    return next(s for s in steps if isinstance(s, ScenarioStep))


# ---------------------------------------------------------------- values


def test_placeholders_and_junk_values_are_implausible():
    for value, key in [("{city}", "city"), ("[unit]", "unit"), ("string", "name"), ("get_weather", "city"),
                       ("12345678910111111", "amount"), ("aaaaaaa", "code"), ("GET /users/1", "path"),
                       ("topic_id", "history_item_id"), ("user_name", "owner")]:
        assert implausible(value, key, tool_names=("get_weather",)), value
    for value, key in [("Lisbon", "city"), ("2025-06-14", "date"), ("ord_4f2a91c0", "order_id"), (42, "n"),
                       ("Please call me after 5pm about the delivery.", "body")]:
        assert implausible(value, key) is None, value


ADYEN_DISABLE = {  # APIs.guru's adyen.com RecurringService, /disable: the enum is written in prose
    "type": "object",
    "required": ["contract", "merchantAccount"],
    "properties": {
        "contract": {"type": "string", "description": (
            "Specify the contract if you only want to disable a specific use.\n\nThis field can be set to one of "
            "the following values, or to their combination (comma-separated):\n* ONECLICK\n* RECURRING\n* PAYOUT")},
        "merchantAccount": {"type": "string", "description": "Your merchant account."},
    },
}


def test_a_value_outside_the_values_a_description_lists_is_replaced_by_one_of_them():
    """Read off an accepted trajectory: `contract = no_autofill` where the spec lists ONECLICK,
    RECURRING and PAYOUT."""
    contract = ADYEN_DISABLE["properties"]["contract"]
    assert implausible("no_autofill", "contract", contract) == "not one of the values its description lists"
    assert implausible("RECURRING", "contract", contract) is None
    assert implausible("ONECLICK, PAYOUT", "contract", contract) is None
    out, notes = polish_arguments({"contract": "no_autofill", "merchantAccount": "Rossi Ltd"}, ADYEN_DISABLE,
                                  random.Random(0))
    assert out["contract"] in ("ONECLICK", "RECURRING", "PAYOUT") and out["merchantAccount"] == "Rossi Ltd"
    assert [(n["argument"], n["action"]) for n in notes] == [("contract", "replaced")]


def test_polish_replaces_required_drops_optional_and_keeps_the_call_valid():
    schema = SEND_EMAIL["inputSchema"]
    args = {"to": "lena.berg@example.com", "subject": "{subject}", "body": "string"}
    out, notes = polish_arguments(args, schema, random.Random(1), tool_names=("send_email",))
    assert out["to"] == "lena.berg@example.com"
    assert "body" not in out  # optional and implausible: dropped
    assert out["subject"] != "{subject}" and implausible(out["subject"], "subject") is None
    assert validation_errors(out, schema) == []
    assert {(n["argument"], n["action"]) for n in notes} == {("subject", "replaced"), ("body", "dropped")}


SUGGEST_CONTAINER = {  # read off accepted trajectories of the tenth session's 64-run
    "type": "object",
    "required": ["previous_pid", "ServiceSid"],
    "properties": {"previous_pid": {"type": "string"}, "previous_container": {"type": "string"},
                   "ServiceSid": {"type": "string"}, "body": {"type": "string"}},
}


def test_a_fragment_cut_from_the_request_and_an_endless_code_are_not_values():
    """`previous_container = " drops to "` (from "with previous container drops to") and a
    72-character ServiceSid the model ran on with: the optional one is dropped, the required
    one replaced; a message body may keep its spaces, a 34-character sid stays."""
    endless = "ZB878894A16CDAEB0E4E8E54F6FDE4EAD3E2EFD64E3782E71E3C2E1C1E2E4F0F8F5C0FED5"
    args = {"previous_pid": "101", "previous_container": " drops to ", "ServiceSid": endless, "body": " Hi "}
    out, notes = polish_arguments(args, SUGGEST_CONTAINER, random.Random(0))
    assert "previous_container" not in out and out["body"] == " Hi " and out["previous_pid"] == "101"
    assert out["ServiceSid"] != endless and implausible(out["ServiceSid"], "ServiceSid") is None
    assert {(n["argument"], n["action"]) for n in notes} == {("previous_container", "dropped"),
                                                              ("ServiceSid", "replaced")}
    assert polish_arguments({"previous_pid": "101", "ServiceSid": "ZS28F68D7CB8743B6D82C9169F2BDBBF59"},
                            SUGGEST_CONTAINER, random.Random(0))[1] == []


def test_cap_strings_bounds_free_strings_only():
    capped = cap_strings(SEND_EMAIL)["inputSchema"]["properties"]
    assert capped["subject"]["maxLength"] == 80 and capped["body"]["maxLength"] == 300
    assert "maxLength" not in capped["to"]  # has a format
    assert "maxLength" not in SEND_EMAIL["inputSchema"]["properties"]["subject"]  # a copy


# ---------------------------------------------------------------- phrasing


def test_action_phrases_are_imperative():
    assert action_phrase({"name": "x", "description": "Returns the list of invoices."}) == "get the list of invoices"
    assert action_phrase({"name": "x", "description": "This endpoint allows you to search books by title."}) == "search books by title"
    assert action_phrase({"name": "listInflectedForms", "description": ""}) == "list inflected forms"


def test_plain_request_mentions_every_value_and_no_tool_name():
    calls = [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}},
             {"name": "send_email", "arguments": {"to": "a.b@example.com", "subject": "Trip"}}]
    text = request_text(calls, ALL_TOOLS, random.Random(0))
    for v in ("Oslo", "celsius", "a.b@example.com", "Trip"):
        assert v in text
    assert query_problems(text, ("get_weather", "send_email")) == []


def test_junk_queries_are_named():
    assert "reads like an HTTP request, not a person" in query_problems("GET /api/v2/users/42 now please")
    assert any("SQL" in p for p in query_problems("select * from orders where id = 4"))
    assert any("names the tool" in p for p in query_problems("please run get_weather for Oslo", ("get_weather",)))
    assert any("placeholder" in p for p in query_problems("What is the weather in {city} today?"))


def test_answer_text_summarises_results_and_errors():
    ok = {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": {"city": "Oslo", "temperature": 3.5}}}
    err = {"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "unknown order ord_1"}}
    text = answer_text([("get_weather", ok), ("get_order", err)])
    assert "Oslo" in text and "3.5" in text and "unknown order ord_1" in text


# ---------------------------------------------------------------- in the role-play


def junk_everything(req):
    """A model that writes placeholders, HTTP lines and raw echoes."""
    props = set((req.json_schema or {}).get("properties") or {})
    if props == {"query"}:
        return as_json({"query": "GET /weather/{city}"})
    if isinstance(req.tool_choice, dict) and req.tool_choice["name"] == "get_weather":
        return call("get_weather", city="{city}")
    return smart_reply(req)


def test_a_junk_writing_model_still_gives_a_readable_valid_single_turn_example():
    spec = TrajectorySpec(id="s", mode="single", tools=[GET_WEATHER], seed=3)
    res, steps = run(spec, scenario=ScriptedBackend(default=junk_everything))
    sc = scenario_of(steps)
    (ref,) = sc.reference_calls
    assert ref["arguments"]["city"] != "{city}" and implausible(ref["arguments"]["city"], "city") is None
    assert sc.meta["reference"][0]["polished"][0]["action"] == "replaced"
    # the rewrite failed every attempt: the plain request is the query, with the value in it
    assert sc.meta["query"]["source"] == "plain" and sc.meta["query"]["rejected"]
    assert ref["arguments"]["city"] in sc.query and query_problems(sc.query, ("get_weather",)) == []
    assert res.status == "accepted"


@pytest.mark.parametrize("attempts", [1, 3])
def test_query_attempts_bound_the_rewrites_before_the_plain_request(attempts):
    """One model attempt by default (no retry of the embedded model ever passed); a
    stronger model may be given more, each told what was wrong with the last."""
    spec = TrajectorySpec(id="s", mode="single", tools=[GET_WEATHER], seed=3)
    asked = []

    def junk(req):
        if set((req.json_schema or {}).get("properties") or {}) == {"query"}:
            asked.append(req)
        return junk_everything(req)

    sink = MemorySink()
    cfg = dataclasses.replace(CFG, query_attempts=attempts)
    run_trajectories([spec], {"default": smart_backend(), "scenario": ScriptedBackend(default=junk)}, sink, cfg)
    sc = scenario_of(sink.steps["s"])
    assert len(asked) == attempts == sc.meta["query"]["attempts"] == len(sc.meta["query"]["rejected"])
    assert sc.meta["query"]["source"] == "plain"
    assert attempts == 1 or "Not usable" in asked[-1].messages[-1]["content"]


def test_query_attempts_must_be_at_least_one():
    with pytest.raises(ValueError, match="query_attempts"):
        RoleplayConfig(query_attempts=0)


def test_a_good_rewrite_is_kept():
    spec = TrajectorySpec(id="s", mode="single", tools=[GET_WEATHER], seed=3)
    res, steps = run(spec)
    sc = scenario_of(steps)
    assert sc.meta["query"]["source"] == "model" and sc.query.startswith("Hello there.")


def test_irrelevance_asks_for_what_an_absent_tool_does():
    spec = TrajectorySpec(id="i", mode="irrelevance", tools=[GET_WEATHER], seed=3, absent_tool=SEND_EMAIL)
    res, steps = run(spec)
    sc = scenario_of(steps)
    assert sc.reference_calls == []
    absent = sc.meta["absent_call"]
    assert absent["name"] == "send_email" and absent["arguments"]["to"] in sc.query
    assert "send" in sc.query.lower() and "send_email" not in sc.query


def test_an_irrelevance_request_names_the_absent_tools_required_arguments_only():
    """Read off a loop run: an irrelevance request spelt out every optional argument of the
    absent tool ("..., with notification level default, last consumed message index -1, last
    consumption timestamp ..., please") and read like a form."""
    props = {k: {"type": "string"} for k in ("cc", "bcc", "reply_to", "priority", "footer")}
    wide = {**SEND_EMAIL, "inputSchema": {**SEND_EMAIL["inputSchema"],
                                          "properties": {**SEND_EMAIL["inputSchema"]["properties"], **props}}}

    def planner_fills_everything(req):
        if isinstance(req.tool_choice, dict) and req.tool_choice["name"] == "send_email":
            return call("send_email", to="ana.silva@example.com", subject="Quarterly report", cc="li.wei@example.com",
                        priority="high", footer="Sent from my phone")
        return smart_reply(req)

    spec = TrajectorySpec(id="i", mode="irrelevance", tools=[GET_WEATHER], seed=3, absent_tool=wide)
    _, steps = run(spec, default=ScriptedBackend(replies=[], default=planner_fills_everything))
    sc = scenario_of(steps)
    assert sc.meta["absent_call"]["arguments"] == {"to": "ana.silva@example.com", "subject": "Quarterly report"}
    assert "Sent from my phone" not in sc.query and "li.wei" not in sc.query


def test_plan_specs_gives_irrelevance_a_tool_from_another_domain():
    specs = plan_specs({"weather": [GET_WEATHER], "mail": [SEND_EMAIL], "shop": [GET_ORDER]}, 12,
                       RoleplayConfig(modes={"irrelevance": 1.0}), seed=4)
    for s in specs:
        assert s.absent_tool is not None and s.absent_tool["name"] not in {t["name"] for t in s.tools}


def echoing_agent(req):
    if req.tool_choice == "none":
        return ChatResult(text='<tool_response> {"city": "Oslo"} </tool_response>')
    return smart_reply(req)


def test_an_answer_echoing_raw_tool_output_is_replaced_by_a_summary():
    spec = TrajectorySpec(id="e", mode="single", tools=[GET_WEATHER], seed=3)
    res, steps = run(spec, agent=ScriptedBackend(default=echoing_agent))
    msgs = [s for s in steps if isinstance(s, MessageStep)]
    final = msgs[-1]
    assert final.role == "assistant" and final.meta.get("source") == "plain"
    assert "<tool_response>" not in final.content and final.content.startswith("Here is what I found:")
    assert any(r.kind == "reflection" and r.action == "rejected" for r in steps)
    assert res.status == "accepted"


def junk_user(req):
    props = set((req.json_schema or {}).get("properties") or {})
    if props == {"goal"}:
        return as_json({"goal": "POST /orders {item}"})
    if props == {"goal_met", "message"}:
        return as_json({"goal_met": False, "message": "GET /orders/{order_id}"})
    return smart_reply(req)


def test_a_junk_user_simulator_is_replaced_by_plain_turns_and_the_conversation_goes_on():
    from .fakes import CREATE_ORDER

    spec = TrajectorySpec(id="m", mode="multi_turn", tools=[CREATE_ORDER, GET_ORDER], seed=3,
                          target_tools=["create_order"])
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=3)
    sink = MemorySink()
    (res,) = run_trajectories([spec], {"default": smart_backend(), "scenario": ScriptedBackend(default=junk_user),
                                       "user": ScriptedBackend(default=junk_user)}, sink, cfg)
    steps = sink.steps["m"]
    sc = scenario_of(steps)
    assert sc.meta["goal"]["source"] == "plain" and sc.goal.startswith("I want to place an order")
    users = [s for s in steps if isinstance(s, MessageStep) and s.role == "user"]
    assert users and all(u.meta.get("source") == "plain" for u in users)
    assert all(query_problems(u.content) == [] or u.meta.get("goal_met") for u in users)
    # the first turn states the goal with details, the agent then calls the tool
    assert "place an order" in users[0].content.lower()
    assert any(isinstance(s, MessageStep) and s.role == "assistant" and s.tool_calls for s in steps)
    assert res.status in ("accepted", "rejected") and res.finish is not None


def drifting_rewrite(req):
    props = set((req.json_schema or {}).get("properties") or {})
    if props == {"query"}:
        return as_json({"query": "todos los requests recibidos, por favor"})
    if props == {"goal"}:
        return as_json({"goal": "Ermi komplett für frame-deklarier und verstecken"})
    return smart_reply(req)


def test_a_rewrite_or_goal_that_drifts_from_the_plan_is_replaced_even_without_values():
    no_args = {"name": "list_categories", "description": "Get the list of all content categories.",
               "inputSchema": {"type": "object", "properties": {}}}
    spec = TrajectorySpec(id="d", mode="single", tools=[no_args], seed=3)
    _, steps = run(spec, scenario=ScriptedBackend(default=drifting_rewrite))
    sc = scenario_of(steps)
    assert sc.meta["query"]["source"] == "plain" and "categories" in sc.query
    assert "drifts away from the request it rewrites" in sc.meta["query"]["rejected"][0]["problems"]
    from .fakes import CREATE_ORDER
    spec = TrajectorySpec(id="g", mode="multi_turn", tools=[CREATE_ORDER], seed=3)
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=2)
    sink = MemorySink()
    run_trajectories([spec], {"default": smart_backend(), "scenario": ScriptedBackend(default=drifting_rewrite)}, sink, cfg)
    goal = scenario_of(sink.steps["g"])
    assert goal.meta["goal"]["source"] == "plain" and "is not about the planned calls" in goal.meta["goal"]["rejected"]


def test_a_query_in_the_assistants_voice_is_refused():
    assert "speaks as the assistant, not the user" in query_problems(
        "Can you get the domain doma_1? I'm here to help! What is it you need?")


def _closing_with(text):
    """An agent that calls as the smart fake does, then closes with ``text``."""
    def reply(req):
        return ChatResult(text=text) if req.tool_choice == "none" else smart_reply(req)
    return reply


def test_a_closing_answer_must_use_the_tool_results():
    def quoting(req):
        if req.tool_choice == "none":
            tool_msgs = [m for m in req.messages if m["role"] == "tool"]
            city = json.loads(tool_msgs[-1]["content"]).get("city", "?")
            return ChatResult(text=f"It is mild in {city} right now.")
        return smart_reply(req)

    rambling = _closing_with("I'm glad to hear that you're enjoying the tool. Just ask!")

    spec = TrajectorySpec(id="q", mode="single", tools=[GET_WEATHER], seed=3)
    _, steps = run(spec, agent=ScriptedBackend(default=quoting))
    final = [s for s in steps if isinstance(s, MessageStep)][-1]
    assert final.content.startswith("It is mild in") and final.meta.get("source") is None
    _, steps = run(spec, agent=ScriptedBackend(default=rambling))
    final = [s for s in steps if isinstance(s, MessageStep)][-1]
    assert final.meta.get("source") == "plain"
    problems = [p["code"] for r in steps if r.kind == "reflection" for ps in r.problems for p in ps]
    assert "ungrounded_answer" in problems


def test_a_closing_answer_may_not_say_a_successful_call_could_not_be_done():
    # seen in a stored run: Account_users({}) -> {} -> "The tool is not available."
    users = {"name": "Account_users", "description": "List the users of the account.",
             "inputSchema": {"type": "object", "properties": {}},
             "outputSchema": {"type": "object", "properties": {}}}

    spec = TrajectorySpec(id="n", mode="single", tools=[users], seed=3)
    _, steps = run(spec, agent=ScriptedBackend(default=_closing_with("The tool is not available.")))
    messages = [s for s in steps if isinstance(s, MessageStep)]
    tool_results = [m for m in messages if m.role == "tool"]
    assert tool_results and not any(m.is_error() for m in tool_results)
    final = messages[-1]
    assert final.meta.get("source") == "plain" and "not available" not in final.content
    problems = [p["code"] for r in steps if r.kind == "reflection" for ps in r.problems for p in ps]
    assert "contradicts_results" in problems


def test_a_multi_turn_answer_to_results_is_checked_as_a_closing_answer_is():
    # seen in a stored run: three successful calls, then "I'm sorry for the confusion. I'm
    # here to help you with your project." as the agent's last word, accepted
    apology = "I'm sorry for the confusion. I'm here to help you with your project."

    def agent(req):
        after_results = req.messages and req.messages[-1]["role"] == "tool"
        if after_results and req.json_schema is None:
            return ChatResult(text=apology)
        return smart_reply(req)

    spec = TrajectorySpec(id="mt", mode="multi_turn", tools=[GET_ORDER], seed=5)
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=0, max_turns=2)
    sink = MemorySink()
    run_trajectories([spec], {"default": smart_backend(), "agent": ScriptedBackend(default=agent)}, sink, cfg)
    steps = sink.steps["mt"]
    messages = [s for s in steps if isinstance(s, MessageStep)]
    after = [m for i, m in enumerate(messages) if m.role == "assistant" and i and messages[i - 1].role == "tool"]
    assert after, [m.role for m in messages]
    assert all(apology not in (m.content or "") for m in after)
    assert after[0].meta.get("source") == "plain"
    problems = [p["code"] for r in steps if r.kind == "reflection" for ps in r.problems for p in ps]
    assert "contradicts_results" in problems


def scripted_user(*, opening: dict | None = None, later: dict | None = None, seen: list | None = None):
    """A User Simulator backend that answers the opening turn with ``opening`` and later
    turns with ``later`` (each a reply object; None: the fake's own), noting the opening's
    prompts in ``seen``; everything else as :func:`smart_reply`."""

    def reply(req):
        props = set((req.json_schema or {}).get("properties") or {})
        if props == {"goal_met", "message"}:
            is_later = "Conversation so far" in req.messages[-1]["content"]
            if not is_later and seen is not None:
                seen.append(req.messages[-1]["content"])
            chosen = later if is_later else opening
            if chosen is not None:
                return as_json(chosen)
        return smart_reply(req)

    return ScriptedBackend(default=reply)


def test_the_user_does_not_close_while_part_of_the_goal_is_undone():
    # seen in a stored run: 6 of 8 rejected multi-turn conversations ended with the user's
    # "That's all, thanks." before the agent made the goal's second call
    from .fakes import CREATE_ORDER


    spec = TrajectorySpec(id="h", mode="multi_turn", tools=[CREATE_ORDER, GET_ORDER], seed=5,
                          target_tools=("create_order", "get_order"))
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=0, max_turns=4)
    sink = MemorySink()
    (res,) = run_trajectories([spec], {"default": smart_backend(), "user": scripted_user(later={"goal_met": True, "message": "Thanks, that is all."})},
                              sink, cfg)
    steps = sink.steps["h"]
    users = [s for s in steps if isinstance(s, MessageStep) and s.role == "user"]
    nudge = users[1]
    assert not nudge.meta.get("goal_met") and nudge.meta.get("source") == "plain", nudge
    assert any("closes before the goal is done" in p for r in nudge.meta["rejected"] for p in r["problems"])
    assert "order" in nudge.content.lower()
    calls = [c["name"] for s in steps if isinstance(s, MessageStep) and s.role == "assistant" for c in s.calls()]
    assert calls == ["create_order", "get_order"]
    assert users[-1].meta.get("goal_met"), [u.content for u in users]
    assert res.status == "accepted", res.finish.reason


def test_a_count_of_the_items_a_result_holds_is_grounded():
    # seen in a stored run: our own summary "the result has 1 item (...)" rejected with
    # "the answer states 1, which no tool result or message holds"
    from synthesis.roleplay.multi_turn import rule_problems

    result = {"result": [{"id": "id_0a0f80af", "name": "Dylan Curtis"}]}
    call = {"id": "c1", "type": "function", "function": {"name": "list_people", "arguments": "{}"}}
    sc = ScenarioStep(mode="multi_turn", persona={}, tools=[], reference_calls=[{"name": "list_people", "arguments": {}}])

    def problems(answer):
        messages = [
            MessageStep(role="user", content="Who is on the list?"),
            MessageStep(role="assistant", content=None, tool_calls=[call]),
            MessageStep(role="tool", content=json.dumps(result), tool_call_id="c1", name="list_people",
                        mcp={"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": result,
                                                                  "content": [{"type": "text", "text": json.dumps(result)}]}}),
            MessageStep(role="assistant", content=answer),
        ]
        return [p for p in rule_problems(messages, sc) if "states" in p]

    assert problems("Here is what I found: the result has 1 item (the first: the name is Dylan Curtis).") == []
    assert problems("Here is what I found: the result has 3 items.") == [
        "the answer states 3, which no tool result or message holds"]


# ---------------------------------------------------------------- the agent's argument values


def test_agent_values_must_be_plausible_and_ids_must_come_from_the_conversation():
    from synthesis.roleplay.agent import conversation_context
    from synthesis.roleplay.reflection import value_problems

    from .fakes import CREATE_ORDER

    tools = {t["name"]: t for t in (GET_ORDER, CREATE_ORDER)}
    history = [
        {"role": "user", "content": "Where is my order ord_4f2a91c0? I ordered 100000 paper clips."},
        {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {
            "name": "create_order", "arguments": json.dumps({"item": "paper clips", "quantity": 100})}}]},
        {"role": "tool", "content": json.dumps({"order_id": "ord_77aa01b2", "status": "placed"})},
    ]
    ctx = conversation_context(history)

    def codes(name, **args):
        return [p.code for p in value_problems(call(name, **args), tools, ctx)]

    assert codes("get_order", order_id="ord_4f2a91c0") == []  # the user said it
    assert codes("get_order", order_id="ord_77aa01b2") == []  # an earlier result returned it
    assert codes("get_order", order_id="ord_3c9e1a42") == ["invented_id"]
    assert codes("get_order", order_id=");") == ["implausible_argument"]
    assert codes("get_order", order_id="1234567890123") == ["implausible_argument"]
    assert codes("create_order", item="{item}", quantity=3) == ["implausible_argument"]
    assert codes("create_order", item="paper clips", quantity=100) == ["repeated_call"]
    assert codes("create_order", item="paper clips", quantity=50) == []  # round figures are fine
    # without a conversation (no context) only the values themselves are judged
    assert [p.code for p in value_problems(call("get_order", order_id="ord_3c9e1a42"), tools)] == []


def inventing_agent(req):
    """An agent that makes up an order id, then, told so, asks the user for it."""
    last = req.messages[-1]["content"] if req.messages else ""
    if isinstance(last, str) and "appears nowhere in the conversation" in last:
        return ChatResult(text="Could you tell me the id of your order?", finish_reason="stop")
    if req.tools and req.tool_choice != "none" and not req.json_schema:
        return call("get_order", order_id="ord_5b3e0d71")
    return smart_reply(req)


def test_an_invented_id_and_a_needless_question_give_way_to_the_plans_call():
    spec = TrajectorySpec(id="i", mode="multi_turn", tools=[GET_ORDER], seed=5)
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=2,
                         agent_protocol="native")
    sink = MemorySink()
    run_trajectories([spec], {"default": smart_backend(), "agent": ScriptedBackend(default=inventing_agent)},
                     sink, cfg)
    steps = sink.steps["i"]
    refl = [s for s in steps if s.kind == "reflection" and s.subject == "agent"][0]
    # the invented id is refused; asking for an id the user already gave is refused too
    assert refl.problems[0][0]["code"] == "invented_id"
    assert refl.problems[1][0]["code"] == "missing_call"
    user = next(s for s in steps if isinstance(s, MessageStep) and s.role == "user")
    given = steps[0].user_facts["order_id"]
    assert given in user.content
    # so the plan's call with the id the user gave takes the agent's place
    first_agent = next(s for s in steps if isinstance(s, MessageStep) and s.role == "assistant")
    assert first_agent.calls() == [{"name": "get_order", "arguments": {"order_id": given}}]
    assert first_agent.meta["source"] == "reference"


def test_the_users_opening_turn_must_ask_and_a_closing_turn_must_be_the_user():
    from synthesis.roleplay.values import is_request

    assert is_request("Can you look up order ord_1?") and is_request("Cancel my order ord_1.")
    assert not is_request("Enjoyed a new order, was refunded in full on the payment.")

    def rambling_user(req):
        props = set((req.json_schema or {}).get("properties") or {})
        if props == {"goal_met", "message"}:
            if "Conversation so far" in (req.messages[-1]["content"] or ""):
                return as_json({"goal_met": True, "message": "I'm here to help you with your order"})
            return as_json({"goal_met": False, "message": "Enjoyed a new order of 3 books, lovely weather too."})
        return smart_reply(req)

    from .fakes import CREATE_ORDER as CO

    spec = TrajectorySpec(id="u", mode="multi_turn", tools=[CO], seed=3)
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=3)
    sink = MemorySink()
    run_trajectories([spec], {"default": smart_backend(), "user": ScriptedBackend(default=rambling_user)}, sink, cfg)
    users = [s for s in sink.steps["u"] if isinstance(s, MessageStep) and s.role == "user"]
    assert users[0].meta.get("source") == "plain" and is_request(users[0].content)
    assert any("asks for nothing" in " ".join(r["problems"]) for r in users[0].meta["rejected"])
    assert all("here to help" not in u.content for u in users)


def test_a_closing_answer_about_the_user_instead_of_to_them_is_replaced():
    def third_person(req):
        if req.tool_choice == "none":
            tool_msgs = [m for m in req.messages if m["role"] == "tool"]
            city = json.loads(tool_msgs[-1]["content"]).get("city", "?") if tool_msgs else "?"
            return ChatResult(text=f"The user has the weather for {city}.", finish_reason="stop")
        return smart_reply(req)

    spec = TrajectorySpec(id="t", mode="single", tools=[GET_WEATHER], seed=3)
    _, steps = run(spec, agent=ScriptedBackend(default=third_person))
    final = [s for s in steps if isinstance(s, MessageStep)][-1]
    assert final.meta.get("source") == "plain" and "the user" not in final.content.lower()


def test_broken_dates_and_script_like_requests_are_caught():
    assert implausible("2015-11-26T01:33:54.15MZT18|", "date") == "not a valid date or time"
    assert implausible("2023-02-26T10:30:54ZM", "since") == "not a valid date or time"
    for ok, key in [("2025-06-14", "date"), ("2025-06-14T09:30:00Z", "created_at"), ("14:00", "start_time"),
                    ("next Monday", "date")]:
        assert implausible(ok, key) is None, ok
    assert implausible("2015-13-99", "d", {"format": "date"}) == "not a valid date or time"
    assert "starts with a speaker label, like a script" in query_problems("Liam: I'm working on the dweet today")
    assert query_problems("Hi: could you get me the weather in Oslo?") == []


def test_an_empty_reference_value_is_named_in_the_coverage_problem():
    from synthesis.roleplay.single_turn import rule_problems

    tool = {"name": "search_notes", "description": "Search the notes.",
            "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}
    sc = ScenarioStep(mode="single", persona={}, tools=[tool], query="Search the notes for me, please.",
                      reference_calls=[{"name": "search_notes", "arguments": {"q": ""}}])
    assert any(p.endswith("(missing: '')") for p in rule_problems(sc, RoleplayConfig())), rule_problems(sc, RoleplayConfig())


def test_a_question_for_the_next_call_may_follow_results_in_a_conversation():
    from synthesis.roleplay.agent import answer_check

    result = {"result": {"structuredContent": {"order_id": "ord_81c2", "status": "placed"}}}
    results = [MessageStep(role="tool", content=json.dumps(result["result"]["structuredContent"]),
                           tool_call_id="c1", name="create_order", mcp=result)]
    question = ChatResult(text="Which address should the order ship to?")
    assert answer_check(results, questions_ok=True)(question) == []
    assert [p.code for p in answer_check(results)(question)] == ["ungrounded_answer"]
    sorry = ChatResult(text="I'm sorry, I could not do that. Could you try again?")
    assert [p.code for p in answer_check(results, questions_ok=True)(sorry)] == ["contradicts_results"]


def test_the_opening_turn_asks_for_the_plans_first_step():
    """A user who opens with the plan's second step leaves the agent to make the first one
    unasked: such an opening is refused, and the plain opening asks for the first step."""
    from .fakes import CREATE_ORDER as CO

    prompts_seen: list[str] = []

    spec = TrajectorySpec(id="o", mode="multi_turn", tools=[CO, GET_ORDER], seed=4,
                          target_tools=("create_order", "get_order"))
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=3)
    sink = MemorySink()
    run_trajectories([spec], {"default": smart_backend(), "user": scripted_user(seen=prompts_seen, opening={
        "goal_met": False, "message": "Could you look up the status of my order for me?"})}, sink, cfg)
    steps = sink.steps["o"]
    scenario = steps[0]
    assert [c["name"] for c in scenario.reference_calls] == ["create_order", "get_order"]
    assert prompts_seen and all("Start with the first step: place an order" in p for p in prompts_seen), prompts_seen[:1]
    opening = next(s for s in steps if isinstance(s, MessageStep) and s.role == "user")
    assert any("does not start with the goal's first step" in " ".join(r["problems"])
               for r in opening.meta["rejected"]), opening.meta
    assert opening.meta.get("source") == "plain"
    item = scenario.reference_calls[0]["arguments"]["item"]
    assert item in opening.content and "order" in opening.content.lower(), opening.content


def test_a_planned_change_the_user_has_not_asked_for_yet_is_refused():
    from synthesis.llm.base import ToolCall
    from synthesis.roleplay.multi_turn import plan_check

    from .fakes import DELETE_ORDER

    sc = ScenarioStep(mode="multi_turn", persona={}, tools=[GET_ORDER, DELETE_ORDER], goal="",
                      reference_calls=[{"name": "delete_order", "arguments": {"order_id": "ord_1"}},
                                       {"name": "get_order", "arguments": {"order_id": "ord_2"}}])

    def problems(user_text, name, order_id):
        check = plan_check(sc, [MessageStep(role="user", content=user_text)])
        return [p.code for p in check(ChatResult(text="", tool_calls=[ToolCall(name=name, arguments={"order_id": order_id})]))]

    # asked for the second step: deleting the first one's order is nobody's request yet
    assert problems("Where is my order ord_2?", "delete_order", "ord_3") == ["unasked_call"]
    # asked for by its value, or by what it does
    assert problems("Please cancel order ord_1.", "delete_order", "ord_1") == []
    assert problems("I'd like to delete the order, then check another.", "delete_order", "ord_1") == []
    # a read the plan holds is not a change
    assert problems("Please cancel order ord_1.", "get_order", "ord_2") == []
    # a value every step names does not say which step the user asks for
    sc.reference_calls[1]["arguments"]["order_id"] = "ord_1"
    assert problems("Where is my order ord_1?", "delete_order", "ord_1") == ["unasked_call"]
    assert problems("Please cancel order ord_1.", "delete_order", "ord_1") == []
    # nor does asking for another change: a delete is asked for by asking that something go
    assert problems("Please create an order like ord_1.", "delete_order", "ord_1") == ["unasked_call"]
    # a read outside the plan is refused unless the user asked for it in their words
    sc.tools.append(GET_WEATHER)
    check = plan_check(sc, [MessageStep(role="user", content="Please write a play event for order ord_1.")])
    assert [p.code for p in check(ChatResult(text="", tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})]))] \
        == ["unasked_call"]
    check = plan_check(sc, [MessageStep(role="user", content="And what is the weather in Oslo today?")])
    assert check(ChatResult(text="", tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})])) == []


def test_a_planned_read_the_user_has_not_asked_for_yet_is_refused_and_rejected():
    from synthesis.llm.base import ToolCall
    from synthesis.roleplay.multi_turn import plan_check, rule_problems

    # Seen in a 128-trajectory run: "Could you please get all users matching addToCart, for
    # server 51272?" answered with the plan's three reads at once.
    sc = ScenarioStep(mode="multi_turn", persona={}, tools=[GET_ORDER, GET_WEATHER], goal="",
                      reference_calls=[{"name": "get_order", "arguments": {"order_id": "ord_1"}},
                                       {"name": "get_weather", "arguments": {"city": "Oslo"}}])
    opening = MessageStep(role="user", content="Where is my order ord_1?")
    check = plan_check(sc, [opening])
    got = check(ChatResult(text="", tool_calls=[ToolCall(name="get_order", arguments={"order_id": "ord_1"}),
                                                ToolCall(name="get_weather", arguments={"city": "Oslo"})]))
    assert [(p.code, p.call) for p in got] == [("unasked_call", 1)], got
    assert "get_weather is a step the user has not asked for yet" in got[0].message

    def call(name, **args):
        return MessageStep(role="assistant", content="", tool_calls=[
            {"id": name, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}])

    def result(text):
        return MessageStep(role="tool", content=text, tool_call_id="x")

    ahead = [opening, call("get_order", order_id="ord_1"), call("get_weather", city="Oslo"), result("sunny"),
             MessageStep(role="assistant", content="Your order ord_1 is on its way."),
             MessageStep(role="user", content="And the weather in Oslo?"),
             MessageStep(role="assistant", content="It is sunny in Oslo.")]
    assert "the agent called get_weather before the user asked for it" in rule_problems(ahead, sc)
    in_order = [opening, call("get_order", order_id="ord_1"), result("shipped"),
                MessageStep(role="assistant", content="Your order ord_1 is shipped."),
                MessageStep(role="user", content="And the weather in Oslo?"), call("get_weather", city="Oslo"),
                result("sunny"), MessageStep(role="assistant", content="It is sunny in Oslo.")]
    assert not [p for p in rule_problems(in_order, sc) if "before the user asked" in p], rule_problems(in_order, sc)


def test_a_value_the_user_gave_that_the_agent_replaces_is_refused_and_rejected():
    from synthesis.llm.base import ToolCall
    from synthesis.roleplay.multi_turn import plan_check, rule_problems

    # Accepted in a 128-trajectory run: "... Function Version resource for service
    # serv_22c60968" answered with ServiceSid set to the version's own id.
    sc = ScenarioStep(mode="multi_turn", persona={}, tools=[GET_ORDER], goal="",
                      reference_calls=[{"name": "get_order", "arguments": {"order_id": "ord_1"}}])
    opening = MessageStep(role="user", content="Where is my order ord_1?")
    got = plan_check(sc, [opening])(ChatResult(text="", tool_calls=[ToolCall(name="get_order", arguments={"order_id": "ord_2"})]))
    assert [(p.code, p.message) for p in got] == [
        ("changed_value", "get_order argument order_id = ord_2, but the user gave ord_1: use the value the user gave")]
    assert plan_check(sc, [opening])(ChatResult(text="", tool_calls=[
        ToolCall(name="get_order", arguments={"order_id": "ord_1"})])) == []
    made = MessageStep(role="assistant", content="", tool_calls=[
        {"id": "c", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "ord_2"}'}}])
    assert "the agent called get_order with order_id = ord_2, but the user gave ord_1" in rule_problems(
        [opening, made, MessageStep(role="tool", content="shipped", tool_call_id="c"),
         MessageStep(role="assistant", content="It is shipped.")], sc)


def test_once_the_goal_is_done_a_later_turn_that_does_not_close_is_refused():
    # Accepted in a 128-trajectory run, after the agent had made both planned calls: "1 month
    # ago, I'm happy with my travel experience, but I'd like to do something more meaningful,
    # like getting paid for payment milestones", answered by repeating the last summary.
    spec = TrajectorySpec(id="d", mode="multi_turn", tools=[GET_ORDER], seed=4, target_tools=("get_order",))
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=3)
    sink = MemorySink()
    ramble = "I'm happy with my order, but I'd like to do something more meaningful with my order."
    run_trajectories([spec], {"default": smart_backend(), "user": scripted_user(later={
        "goal_met": False, "message": ramble})}, sink, cfg)
    users = [s for s in sink.steps["d"] if isinstance(s, MessageStep) and s.role == "user"]
    assert len(users) == 2 and ramble not in users[1].content, [u.content for u in users]
    assert any("the goal is done: the user closes" in r["problems"] for r in users[1].meta["rejected"]), users[1].meta
    assert users[1].meta.get("source") == "plain"


def test_a_later_turn_with_nothing_left_to_give_asks_for_the_rest_of_the_goal():
    from .fakes import CREATE_ORDER as CO


    spec = TrajectorySpec(id="r", mode="multi_turn", tools=[CO, GET_ORDER], seed=4,
                          target_tools=("create_order", "get_order"))
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=3)
    sink = MemorySink()
    run_trajectories([spec], {"default": smart_backend(), "user": scripted_user(later={
        "goal_met": False, "message": "The interface is extremely unpolished. You need to improve it."})}, sink, cfg)
    steps = sink.steps["r"]
    users = [s for s in steps if isinstance(s, MessageStep) and s.role == "user"]
    assert len(users) >= 2 and all("unpolished" not in u.content for u in users), [u.content for u in users]
    assert any("asks for none of what is left of the goal (look up an order)" in " ".join(r["problems"])
               for r in users[1].meta["rejected"]), users[1].meta
    assert users[1].meta.get("source") == "plain" and "look up an order" in users[1].content
    calls = [c["name"] for s in steps if isinstance(s, MessageStep) and s.role == "assistant" for c in s.calls()]
    assert calls == ["create_order", "get_order"], calls


def test_the_plain_user_gives_the_details_of_the_step_at_hand_only():
    from synthesis.roleplay.multi_turn import plain_user_message

    play = {"name": "post_play", "description": "Write a play event.", "inputSchema": {"type": "object"}}
    vendor = {"name": "delete_vendor_export", "description": "Remove vendor export preferences.",
              "inputSchema": {"type": "object"}}
    calls = [{"name": "post_play", "arguments": {"pid": "pid_a6fd", "version_pid": "v3"}},
             {"name": "delete_vendor_export", "arguments": {"vendor": "spotify"}}]
    sc = ScenarioStep(mode="multi_turn", persona={}, tools=[play, vendor], goal="", reference_calls=calls)
    hidden = {"version_pid": "v3", "vendor": "spotify"}
    transcript = [("user", "Can you write a play event for pid pid_a6fd?"), ("assistant", "Which version pid?")]
    text, closing = plain_user_message(sc, hidden, transcript, pending=calls)
    assert "v3" in text and "spotify" not in text and not closing, text
    # once that step is done, the next one's details
    text, _ = plain_user_message(sc, {"vendor": "spotify"}, transcript, pending=calls[1:])
    assert "spotify" in text, text
    # a step at hand that needs none of them is asked for, not answered with a later step's value
    export = {"name": "delete_export", "description": "Remove export preferences.", "inputSchema": {"type": "object"}}
    sc = ScenarioStep(mode="multi_turn", persona={}, tools=[play, export, vendor], goal="",
                      reference_calls=[calls[0], {"name": "delete_export", "arguments": {}}, calls[1]])
    text, closing = plain_user_message(sc, {"vendor": "spotify"}, transcript, pending=sc.reference_calls[1:])
    assert "remove export preferences" in text and "spotify" not in text and not closing, text
    # the opening too gives the first step's details only
    sc.reference_calls = sc.reference_calls[1:]
    text, _ = plain_user_message(sc, {"vendor": "spotify"}, [], pending=sc.reference_calls)
    assert "remove export preferences" in text and "spotify" not in text, text


def test_an_opening_for_a_first_step_without_details_need_not_give_a_later_steps():
    export = {"name": "delete_export", "description": "Remove the export preferences.",
              "inputSchema": {"type": "object", "properties": {}}}
    vendor = {"name": "delete_vendor_export", "description": "Remove the export preferences of one vendor.",
              "inputSchema": {"type": "object", "properties": {"vendor": {"type": "string", "enum": ["spotify"]}},
                              "required": ["vendor"]}}
    spec = TrajectorySpec(id="e", mode="multi_turn", tools=[export, vendor], seed=2,
                          target_tools=("delete_export", "delete_vendor_export"))
    cfg = RoleplayConfig(consistency_samples=0, verifier_count=1, negotiation_rounds=0, max_turns=2)
    sink = MemorySink()
    opening = {"goal_met": False, "message": "Could you remove my export preferences, please?"}
    run_trajectories([spec], {"default": smart_backend(), "user": scripted_user(opening=opening)}, sink, cfg)
    user = next(s for s in sink.steps["e"] if isinstance(s, MessageStep) and s.role == "user")
    assert user.content == opening["message"] and "rejected" not in user.meta, user.meta
