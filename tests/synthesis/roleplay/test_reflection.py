from synthesis.llm.base import ChatResult, InvalidModelOutput
from synthesis.llm.scripted import ScriptedBackend
from synthesis.roleplay import MemorySink, RoleplayConfig, TrajectorySpec, run_trajectories
from synthesis.roleplay.steps import MessageStep, ReflectionStep

from .fakes import GET_WEATHER, as_json, call, smart_backend

CFG = dict(
    agent_protocol="native", consistency_samples=0, single_turn_execute=False, verifier_count=0
)


def run_single(agent: ScriptedBackend, **cfg):
    sink = MemorySink()
    spec = TrajectorySpec(id="t", mode="single", tools=[GET_WEATHER], seed=3)
    (res,) = run_trajectories(
        [spec], {"agent": agent, "default": smart_backend()}, sink, RoleplayConfig(**{**CFG, **cfg})
    )
    return res, sink.steps["t"]


def reflections(steps):
    return [s for s in steps if isinstance(s, ReflectionStep)]


def test_hallucinated_tool_is_repaired():
    agent = ScriptedBackend(
        replies=[call("get_wether", city="Oslo"), call("get_weather", city="Oslo")]
    )
    res, steps = run_single(agent)
    (r,) = reflections(steps)
    assert r.action == "repaired" and r.attempts == 2
    assert [p["code"] for p in r.problems[0]] == ["unknown_tool"]
    assert "get_wether" in r.problem
    msg = steps[r.index + 1]
    assert isinstance(msg, MessageStep) and r.target_index == msg.index
    assert msg.calls() == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    # the model was re-asked with the validator's message and its own failed attempt
    repair = agent.requests[1]
    assert "does not exist" in repair.messages[-1]["content"]
    assert repair.messages[-2]["tool_calls"][0]["function"]["name"] == "get_wether"
    assert repair.tool_choice == "required"
    assert res.status == "accepted"


def test_schema_invalid_arguments_are_rejected_after_bounded_attempts():
    agent = ScriptedBackend(replies=[call("get_weather", city=3)] * 3)
    res, steps = run_single(agent, max_repair_attempts=2, reference_fallback=False)
    (r,) = reflections(steps)
    assert r.action == "rejected" and r.attempts == 3 and len(r.problems) == 3
    assert all(p[0]["code"] == "schema_violation" for p in r.problems)
    assert len(agent.requests) == 3
    # repairs are forced onto the right tool, so constrained backends fix the arguments
    assert agent.requests[1].tool_choice == {"name": "get_weather"}
    # nothing follows the rejected step but the finish
    assert steps[-1].kind == "finish" and steps[-2] is r
    assert res.status == "rejected" and "self-reflection" in res.finish.reason


def test_a_rejected_agent_step_gives_way_to_the_reference_answer_and_a_hard_score():
    agent = ScriptedBackend(replies=[call("get_weather", city=3)] * 3)
    res, steps = run_single(agent, max_repair_attempts=2, single_turn_execute=True)
    r = reflections(steps)[0]
    assert r.action == "rejected"
    scenario = next(s for s in steps if s.kind == "scenario")
    answer = steps[r.index + 1]
    # the reference calls carry the conversation on, marked as not the model's
    assert isinstance(answer, MessageStep) and answer.role == "assistant"
    assert answer.meta["source"] == "reference" and answer.calls() == scenario.reference_calls
    assert [m.role for m in steps if isinstance(m, MessageStep)][-2:] == ["tool", "assistant"]
    # the model's failure is what the score measures: no agreement with the reference
    assert res.finish.score_components["reference"] == 0.0 and res.finish.split == "hard"
    assert res.status == "accepted"


def test_invented_argument_and_unparseable_reply_are_repaired():
    bad_json = ChatResult(
        text='{"name": "get_weather", "arguments": {', error=InvalidModelOutput("bad", raw="{")
    )
    agent = ScriptedBackend(
        replies=[
            bad_json,
            call("get_weather", city="Oslo", colour="red"),
            call("get_weather", city="Oslo"),
        ]
    )
    res, steps = run_single(agent, max_repair_attempts=2)
    (r,) = reflections(steps)
    assert r.action == "repaired" and r.attempts == 3
    assert [p[0]["code"] for p in r.problems] == ["invalid_output", "unknown_argument"]
    assert "colour" in r.problems[1][0]["message"]


def test_zero_repairs_rejects_at_once():
    agent = ScriptedBackend(replies=[call("nope")])
    res, steps = run_single(agent, max_repair_attempts=0)
    (r,) = reflections(steps)
    assert r.action == "rejected" and r.attempts == 1 and len(agent.requests) == 1


def test_planned_protocol_repairs_the_forced_call():
    agent = ScriptedBackend(
        replies=[
            as_json({"action": "call_tools", "tools": ["get_weather"]}),
            call("get_weather", city=3),
            call("get_weather", city="Oslo"),
        ]
    )
    res, steps = run_single(agent, agent_protocol="planned")
    (r,) = reflections(steps)
    assert r.action == "repaired"
    assert agent.requests[0].json_schema["properties"]["tools"]["items"]["enum"] == ["get_weather"]
    assert agent.requests[1].tool_choice == {"name": "get_weather"}
    assert steps[r.index + 1].calls()[0]["arguments"] == {"city": "Oslo"}


def test_a_planned_call_shows_the_plans_tools_and_is_bounded_while_decoding():
    """The forced call's prompt renders the tools exactly as the plan's did (so the two share
    their prompt up to the last message); the string bounds go to the decoder only."""
    agent = ScriptedBackend(
        replies=[as_json({"action": "call_tools", "tools": ["get_weather"]}), call("get_weather", city="Oslo")]
    )
    run_single(agent, agent_protocol="planned")
    plan, forced = agent.requests[:2]
    assert forced.tools == plan.tools == [GET_WEATHER]
    (bounded,) = forced.decode_tools
    assert bounded["inputSchema"]["properties"]["city"]["maxLength"] == 80
    assert "maxLength" not in GET_WEATHER["inputSchema"]["properties"]["city"]


def test_every_agent_step_is_reflected_even_when_fine():
    agent = ScriptedBackend(
        replies=[call("get_weather", city="Oslo")], default=lambda r: "It is sunny in Oslo."
    )
    res, steps = run_single(agent, single_turn_execute=True)
    rs = reflections(steps)
    assert [r.action for r in rs] == ["ok", "ok"]
    assert all(steps[r.index + 1].index == r.target_index for r in rs)


def test_planned_repeats_of_one_call_are_dropped_not_rejected():
    agent = ScriptedBackend(
        replies=[
            as_json(
                {"action": "call_tools", "tools": ["get_weather", "get_weather", "get_weather"]}
            ),
            call("get_weather", city="Oslo"),
            call("get_weather", city="Oslo"),
            call("get_weather", city="Rome"),
        ]
    )
    res, steps = run_single(agent, agent_protocol="planned")
    (r,) = reflections(steps)
    assert r.action == "ok"
    assert [c["arguments"]["city"] for c in steps[r.index + 1].calls()] == ["Oslo", "Rome"]


def test_duplicate_calls_in_one_reply_are_a_problem():
    agent = ScriptedBackend(
        replies=[
            ChatResult(text="", tool_calls=[call("get_weather", city="Oslo").tool_calls[0]] * 2),
            call("get_weather", city="Oslo"),
        ]
    )
    res, steps = run_single(agent)
    (r,) = reflections(steps)
    assert r.action == "repaired" and r.problems[0][0]["code"] == "duplicate_call"


def test_multi_turn_agent_that_always_fails_is_replaced_by_the_plan_and_the_ids_come_from_results():
    from .fakes import CREATE_ORDER, GET_ORDER

    # every agent reply is unusable JSON; the user, the server and the verifiers are fine
    agent = ScriptedBackend(replies=[ChatResult(text="", error=InvalidModelOutput("not JSON", raw="{oops"))] * 400)
    sink = MemorySink()
    spec = TrajectorySpec(id="m", mode="multi_turn", tools=[CREATE_ORDER, GET_ORDER], seed=5,
                          target_tools=("create_order", "get_order"))
    cfg = RoleplayConfig(**{**CFG, "single_turn_execute": True, "max_turns": 6})
    (res,) = run_trajectories([spec], {"agent": agent, "default": smart_backend()}, sink, cfg)
    steps = sink.steps["m"]
    scenario = steps[0]
    made = [m for m in steps if isinstance(m, MessageStep) and m.role == "assistant" and m.tool_calls]
    assert [m.calls()[0]["name"] for m in made] == ["create_order", "get_order"]
    assert all(m.meta["source"] == "reference" for m in made)
    # the first call takes the values the user gave, the second the id the server returned
    assert made[0].calls()[0]["arguments"] == scenario.reference_calls[0]["arguments"]
    created = next(m for m in steps if isinstance(m, MessageStep) and m.role == "tool")
    assert made[1].calls()[0]["arguments"]["order_id"] == created.mcp["result"]["structuredContent"]["order_id"]
    assert res.status == "accepted", res.finish.reason
    # the model made none of the calls: the score says so
    assert res.finish.score_components["reference"] == 0.0 and res.finish.split == "hard"


def test_a_text_reply_stuck_in_a_loop_is_a_problem():
    # seen in a stored multi-turn run, as the agent's reply to "Now please get the suggested
    # playspace container.": "I'm sorry, I'm sorry. I'm sorry. I'm sorry. ..."
    from synthesis.roleplay.reflection import check_reply

    stuck = ChatResult(text="I'm sorry, I'm sorry. " + "I'm sorry. " * 12)
    assert [p.code for p in check_reply(stuck, {})] == ["degenerate_reply"]
    assert check_reply(ChatResult(text="Sorry, I need the previous pid first: what is it?"), {}) == []
