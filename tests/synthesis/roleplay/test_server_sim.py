import json

from synthesis.llm.scripted import ScriptedBackend
from synthesis.roleplay import MemorySink, RoleplayConfig, TrajectorySpec, run_trajectories
from synthesis.roleplay.server_sim import INVALID_PARAMS, ServerSimulator, response_value, verb_of
from synthesis.schema_utils import validation_errors

from .fakes import (
    ALL_TOOLS,
    CREATE_ORDER,
    GET_ORDER,
    ORDER_OUT,
    as_json,
    call,
    smart_backend,
    text,
)


def drive(gen, replies=()):
    """Run a server generator, answering its model requests with ``replies``."""
    replies = list(replies)
    try:
        ask = next(gen)
        while True:
            ask = gen.send([[replies.pop(0)] for _ in ask])
    except StopIteration as stop:
        return stop.value


def exec_call(server, rpc_id, name, args, replies=()):
    resp = drive(server.handle(rpc_id, name, args), replies)
    server.observe(name, args, resp)
    return resp


def test_protocol_errors_are_json_rpc_errors():
    s = ServerSimulator(ALL_TOOLS, use_model=False)
    r = exec_call(s, 1, "launch_rocket", {})
    assert r["jsonrpc"] == "2.0" and r["id"] == 1 and r["error"]["code"] == INVALID_PARAMS
    assert "Unknown tool" in r["error"]["message"]
    r = exec_call(s, 2, "create_order", {"item": "tea"})
    assert r["error"]["code"] == INVALID_PARAMS and "quantity" in r["error"]["message"]


def test_results_validate_and_carry_structured_content():
    s = ServerSimulator(ALL_TOOLS, use_model=False, seed=4)
    r = exec_call(s, 1, "create_order", {"item": "tea", "quantity": 2})
    res = r["result"]
    assert res["isError"] is False and validation_errors(res["structuredContent"], ORDER_OUT) == []
    assert json.loads(res["content"][0]["text"]) == res["structuredContent"]
    # the result echoes the arguments it was given
    assert res["structuredContent"]["item"] == "tea" and res["structuredContent"]["quantity"] == 2
    # no outputSchema: text content only
    r = exec_call(s, 2, "send_email", {"to": "a@example.com", "subject": "hi"})
    assert "structuredContent" not in r["result"] and json.loads(r["result"]["content"][0]["text"])


def test_created_id_is_found_later_updated_and_deleted():
    s = ServerSimulator(ALL_TOOLS, use_model=False, seed=1)
    created = response_value(exec_call(s, 1, "create_order", {"item": "oat milk", "quantity": 3}))
    oid = created["order_id"]
    got = response_value(exec_call(s, 2, "get_order", {"order_id": oid}))
    assert got == created
    exec_call(s, 3, "delete_order", {"order_id": oid})
    r = exec_call(s, 4, "get_order", {"order_id": oid})
    assert r["result"]["isError"] is True and oid in r["result"]["content"][0]["text"]


def test_model_results_are_kept_when_valid_and_made_consistent():
    s = ServerSimulator(ALL_TOOLS, use_model=True, seed=1)
    model_create = as_json(
        {"order_id": "ORD-77", "item": "oat milk", "quantity": 3, "status": "placed"}
    )
    created = response_value(
        exec_call(s, 1, "create_order", {"item": "oat milk", "quantity": 3}, [model_create])
    )
    assert created["order_id"] == "ORD-77"
    # the model forgets what it created; the store wins
    model_get = as_json({"order_id": "ORD-77", "item": "bread", "quantity": 9, "status": "shipped"})
    got = response_value(exec_call(s, 2, "get_order", {"order_id": "ORD-77"}, [model_get]))
    assert (got["item"], got["quantity"]) == ("oat milk", 3)
    assert got["status"] == "placed"
    # garbage from the model: a valid instance instead
    r = exec_call(s, 3, "get_order", {"order_id": "ORD-77"}, [text("{not json")])
    assert validation_errors(r["result"]["structuredContent"], ORDER_OUT) == []
    assert r["result"]["structuredContent"]["item"] == "oat milk"
    # the model saw the stored record
    prompt = drive_prompt(s, "get_order", {"order_id": "ORD-77"})
    assert "oat milk" in prompt


def drive_prompt(server, name, args):
    gen = server.handle(9, name, args)
    ask = next(gen)
    gen.close()
    assert ask[0].request.json_schema == ORDER_OUT
    return ask[0].request.messages[-1]["content"]


def test_unknown_ids_are_taken_as_existing_and_then_stay_stable():
    s = ServerSimulator(ALL_TOOLS, use_model=False, seed=2)
    first = response_value(exec_call(s, 1, "get_order", {"order_id": "A-1"}))
    again = response_value(exec_call(s, 2, "get_order", {"order_id": "A-1"}))
    assert first["order_id"] == "A-1" and again == first


def test_verbs():
    assert verb_of("create_order") == "create"
    assert verb_of("deleteOrder") == "delete"
    assert verb_of("orders.cancel") == "cancel"


def last_tool_result(req):
    tool_msgs = [m for m in req.messages if m["role"] == "tool"]
    return json.loads(tool_msgs[-1]["content"]) if tool_msgs else None


def test_multi_turn_conversation_finds_the_created_order():
    """create_order returns id X in turn 1; get_order(X) in turn 2 returns the same order."""

    def agent(req):
        n_user = sum(1 for m in req.messages if m["role"] == "user")
        if req.messages[-1]["role"] == "tool":
            return "All done."
        if n_user == 1:
            return call("create_order", item="oat milk", quantity=3)
        order = [m for m in req.messages if m["role"] == "tool"][-1]
        return call("get_order", order_id=json.loads(order["content"])["order_id"])

    users = iter(
        [
            {"goal_met": False, "message": "Order 3 oat milk please."},
            {"goal_met": False, "message": "What is the status of that order?"},
            {"goal_met": True, "message": "Thanks!"},
        ]
    )
    user = ScriptedBackend(default=lambda r: json.dumps(next(users)))
    sink = MemorySink()
    spec = TrajectorySpec(
        id="mt",
        mode="multi_turn",
        tools=[CREATE_ORDER, GET_ORDER],
        seed=8,
        target_tools=["create_order", "get_order"],
    )
    cfg = RoleplayConfig(agent_protocol="native", verifier_count=1)
    (res,) = run_trajectories(
        [spec],
        {
            "agent": ScriptedBackend(default=agent),
            "user": user,
            # the plan the user's messages follow
            "scenario": smart_backend(call("create_order", item="oat milk", quantity=3)),
            "default": smart_backend(),
        },
        sink,
        cfg,
    )
    tools = [m for m in res.messages() if m.role == "tool"]
    assert [m.name for m in tools] == ["create_order", "get_order"]
    created, found = (m.mcp["result"]["structuredContent"] for m in tools)
    assert found["order_id"] == created["order_id"]
    assert (
        (found["item"], found["quantity"])
        == (created["item"], created["quantity"])
        == ("oat milk", 3)
    )
    # JSON-RPC shapes are kept: the request on the assistant message, the response on the tool message
    calls = [m for m in res.messages() if m.role == "assistant" and m.tool_calls]
    assert [c.mcp[0]["id"] for c in calls] == [1, 2] and calls[1].mcp[0]["method"] == "tools/call"
    assert [t.mcp["id"] for t in tools] == [1, 2]
    assert res.messages()[-1].meta["goal_met"] is True
    assert res.finish.score_components["execution"] == 1.0


def test_placeholder_values_in_a_model_result_are_replaced_and_the_result_stays_valid():
    tool = {"name": "get_session", "description": "Get a session.",
            "inputSchema": {"type": "object", "properties": {"session_id": {"type": "string"}}},
            "outputSchema": {"type": "object", "properties": {
                "session_id": {"type": "string"}, "token": {"type": "string"},
                "owner": {"type": "object", "properties": {"name": {"type": "string"}}}}}}
    s = ServerSimulator([tool], seed=2)
    reply = as_json({"session_id": "sess_81c2", "token": "YOUR_API_KEY_HERE", "owner": {"name": "{"}})
    value = response_value(exec_call(s, 1, "get_session", {"session_id": "sess_81c2"}, [reply]))
    assert value["session_id"] == "sess_81c2"
    assert value["token"] != "YOUR_API_KEY_HERE" and value["token"]
    assert value["owner"]["name"] not in ("{", "") and validation_errors(value, tool["outputSchema"]) == []


def test_a_result_without_output_schema_drops_the_echoed_envelope():
    """Read off an accepted trajectory: a tool with no output schema answered
    {"method": "<the tool>", "$schema": "Product launch", ...}, and the closing answer read it
    out ("the method is deletePersonalised..., the $schema is Product launch")."""
    tool = {"name": "remove_favourite", "description": "Remove a favourite.",
            "inputSchema": {"type": "object", "properties": {"pid": {"type": "string"}}, "required": ["pid"]}}
    s = ServerSimulator([tool], use_model=True, seed=1)
    echo = as_json({"method": "remove_favourite", "$schema": "Product launch", "removed": True})
    got = response_value(exec_call(s, 1, "remove_favourite", {"pid": "pid_1"}, [echo]))
    assert got == {"removed": True}
    only_envelope = as_json({"method": "remove_favourite", "$schema": "x"})
    got = response_value(exec_call(s, 2, "remove_favourite", {"pid": "pid_2"}, [only_envelope]))
    assert got == {"success": True, "pid": "pid_2"}


def test_a_free_form_result_that_reports_an_error_is_rebuilt_as_a_success():
    """Read off an accepted trajectory: deleteUserAttributes answered {"result": {"error":
    "Team offsite", "message": "error", "type": "error"}} with the arguments around it, and the
    Tool Agent said "Done: ...".  The simulator decides when a call fails, not the model."""
    tool = {"name": "deleteUserAttributes", "description": "Delete a user's attributes.",
            "inputSchema": {"type": "object", "properties": {"userid": {"type": "string"}}, "required": ["userid"]}}
    s = ServerSimulator([tool], use_model=True, seed=1)
    failed = as_json({"result": {"error": "Team offsite", "message": "error", "type": "error"}})
    got = response_value(exec_call(s, 1, "deleteUserAttributes", {"userid": "user_1"}, [failed]))
    assert got == {"success": True, "userid": "user_1"}
    worked = as_json({"deleted": True, "errors": []})
    assert response_value(exec_call(s, 2, "deleteUserAttributes", {"userid": "user_2"}, [worked]))["deleted"] is True


def test_a_result_of_a_call_that_worked_carries_no_error_code():
    """Read off a side-by-side run: DeleteBinding answered {"Sid": ..., "ErrorCode": "ORQ"} and
    the Tool Agent said "Done: ... and the error code is ORQ"."""
    tool = {"name": "DeleteBinding", "description": "Delete a binding.",
            "inputSchema": {"type": "object", "properties": {"Sid": {"type": "string"}}, "required": ["Sid"]},
            "outputSchema": {"type": "object", "properties": {"Sid": {"type": "string"}, "ErrorCode": {"type": "string"},
                                                              "error_message": {"type": ["string", "null"]}}}}
    s = ServerSimulator([tool], use_model=True, seed=1)
    reply = as_json({"Sid": "BS1", "ErrorCode": "ORQ", "error_message": "Team offsite"})
    assert response_value(exec_call(s, 1, "DeleteBinding", {"Sid": "BS1"}, [reply])) == {"Sid": "BS1"}


def test_a_result_keyed_by_values_keeps_only_field_names_or_is_rebuilt():
    """Read off an accepted trajectory: a tool with no output schema answered
    {"2023-08-19T12:34:24.548.28.38": "Supplier contract"}, and the closing answer read out
    "the 2023 08 19 t12:34:24 548 28 38 is Supplier contract"."""
    tool = {"name": "deleteAccount", "description": "Delete an account.",
            "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}
    s = ServerSimulator([tool], use_model=True, seed=1)
    only_values = as_json({"2023-08-19T12:34:24.548.28.38": "Supplier contract"})
    got = response_value(exec_call(s, 1, "deleteAccount", {"id": "acc_1"}, [only_values]))
    assert got == {"success": True, "id": "acc_1"}
    mixed = as_json({"deleted": True, "Draft for the tax return due in April": 3,
                     "account": {"id": "acc_2", "17": "x"}, "history": [{"at": "noon", "2023": 1}]})
    got = response_value(exec_call(s, 2, "deleteAccount", {"id": "acc_2"}, [mixed]))
    assert got == {"deleted": True, "account": {"id": "acc_2"}, "history": [{"at": "noon"}]}


def test_a_result_whose_schema_allows_any_key_loses_value_keys_but_stays_valid():
    tool = {"name": "get_rates", "description": "Exchange rates.",
            "inputSchema": {"type": "object", "properties": {"base": {"type": "string"}}},
            "outputSchema": {"type": "object", "properties": {"base": {"type": "string"}},
                             "additionalProperties": {"type": "number"}}}
    s = ServerSimulator([tool], seed=3)
    reply = as_json({"base": "EUR", "USD": 1.08, "2024-01-01": 1.1})
    value = response_value(exec_call(s, 1, "get_rates", {"base": "EUR"}, [reply]))
    assert value == {"base": "EUR", "USD": 1.08}
    assert validation_errors(value, tool["outputSchema"]) == []


def test_a_result_names_the_thing_the_call_named_however_its_key_is_written():
    """Read off an accepted trajectory: CreateFunction(ServiceSid="serv_631a94b8") answered
    {"service_sid": "ZS1B1A1B3A3EB8B2A2C2EB8B2A2A2A2A2A"}, another service."""
    tool = {"name": "CreateFunction", "description": "Create a new Function resource.",
            "inputSchema": {"type": "object", "properties": {"ServiceSid": {"type": "string"},
                                                             "FriendlyName": {"type": "string"}},
                            "required": ["ServiceSid"]}}
    s = ServerSimulator([tool], use_model=True, seed=1)
    reply = as_json({"service_sid": "ZS1B1A1B3A3EB8B2A2C2EB8B2A2A2A2A2A", "friendly-name": "x", "sid": "ZH12"})
    got = response_value(exec_call(s, 1, "CreateFunction", {"ServiceSid": "serv_631a94b8", "FriendlyName": "Billing"},
                                   [reply]))
    assert got["service_sid"] == "serv_631a94b8" and got["friendly-name"] == "Billing" and got["sid"] == "ZH12"
