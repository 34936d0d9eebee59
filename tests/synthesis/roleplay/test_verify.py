from synthesis.llm.scripted import ScriptedBackend
from synthesis.roleplay import MemorySink, RoleplayConfig, TrajectorySpec, run_trajectories
from synthesis.roleplay.steps import VoteStep
from synthesis.roleplay.verify import majority

from .fakes import GET_WEATHER, as_json, smart_backend, smart_reply

CFG = dict(consistency_samples=0, single_turn_execute=False)


def vote(decision, why):
    return as_json({"rationale": why, "decision": decision})


def run(backends, mode="single", **cfg):
    sink = MemorySink()
    spec = TrajectorySpec(id="t", mode=mode, tools=[GET_WEATHER], seed=5)
    (res,) = run_trajectories(
        [spec], {**backends, "default": smart_backend()}, sink, RoleplayConfig(**{**CFG, **cfg})
    )
    return res, [s for s in sink.steps["t"] if isinstance(s, VoteStep)]


def test_split_vote_triggers_negotiation_and_all_votes_are_emitted():
    v0 = ScriptedBackend(replies=[vote("accept", "get_weather is the right tool"), vote("accept", "get_weather is still right")])
    v1 = ScriptedBackend(
        replies=[
            vote("reject", "the city is invented"),
            vote("accept", "the query does name the city"),
        ]
    )
    v2 = ScriptedBackend(replies=[vote("accept", "a natural weather question"), vote("accept", "a natural weather question")])
    res, votes = run(
        {"verifier:0": v0, "verifier:1": v1, "verifier:2": v2},
        verifier_count=3,
        negotiation_rounds=2,
    )
    assert [(v.verifier, v.round, v.decision) for v in votes] == [
        ("rules", 0, "accept"),
        ("v0-intent", 0, "accept"),
        ("v1-faithfulness", 0, "reject"),
        ("v2-realism", 0, "accept"),
        ("v0-intent", 1, "accept"),
        ("v1-faithfulness", 1, "accept"),
        ("v2-realism", 1, "accept"),
    ]
    # unanimous after round 1: no round 2
    assert res.finish.verdict == "accept" and res.status == "accepted"
    # in negotiation each verifier read the others' rationales
    negotiation = v0.requests[1].messages[-1]["content"]
    assert "the city is invented" in negotiation and "the right tool" in negotiation
    assert (
        "the city is invented"
        not in v1.requests[1].messages[-1]["content"].split("The other reviewers voted:")[1]
    )


def test_majority_of_last_round_decides_and_a_tie_rejects():
    a = ScriptedBackend(default=lambda r: vote("accept", "get_weather fits the city asked for").text)
    b = ScriptedBackend(default=lambda r: vote("reject", "the city value is wrong").text)
    res, votes = run({"verifier:0": a, "verifier:1": b}, verifier_count=2, negotiation_rounds=1)
    assert [v.round for v in votes] == [0, 0, 0, 1, 1]
    assert res.finish.verdict == "reject"
    res, votes = run(
        {"verifier:0": a, "verifier:1": b, "verifier:2": a}, verifier_count=3, negotiation_rounds=3
    )
    assert max(v.round for v in votes) == 3
    assert res.finish.verdict == "accept"


def http_line_query(req):
    if req.json_schema and set(req.json_schema.get("properties", {})) == {"query"}:
        return as_json({"query": "GET /v1/stocks/ACME/quote please"})
    return smart_reply(req)


def test_rule_reject_skips_model_votes():
    # an irrelevance task with no absent tool to ask about: the model writes the query, and
    # one that reads like an HTTP request fails the rule checks
    verifier = ScriptedBackend(default=lambda r: vote("accept", "ok").text)
    res, votes = run(
        {"scenario": ScriptedBackend(default=http_line_query), "verifier": verifier},
        mode="irrelevance",
        verifier_count=3,
    )
    assert [v.verifier for v in votes] == ["rules"]
    assert votes[0].decision == "reject" and "HTTP request" in votes[0].rationale
    assert verifier.requests == []
    assert res.status == "rejected"


def test_an_unreadable_vote_abstains_and_a_readable_one_decides():
    bad = ScriptedBackend(default=lambda r: "not json")
    res, votes = run({"verifier": bad}, verifier_count=1)
    assert "error" in votes[-1].meta and votes[-1].meta["abstain"] == "unreadable vote"
    assert res.finish.verdict == "accept"  # the rule checks' decision stands
    grounded = ScriptedBackend(default=lambda r: vote("reject", "the city is not the one asked").text)
    res, votes = run({"verifier:0": bad, "verifier:1": grounded}, verifier_count=2, negotiation_rounds=0)
    assert res.finish.verdict == "reject"


def test_votes_that_repeat_a_sentence_or_echo_the_instructions_abstain():
    from synthesis.roleplay.verify import unusable_rationale

    t = "get_weather(city=Oslo) User: weather in Oslo?"
    assert unusable_rationale("Oslo weather is not supported here. Oslo weather is not supported here.", t) == "it repeats itself"
    assert unusable_rationale("The request about Oslo is natural and specific, and does the conversation read like a real exchange", t) \
        == "it echoes the instructions"
    assert unusable_rationale("The call asks for Oslo, which the user named.", t) is None


def test_majority():
    assert majority(["accept"]) == "accept"
    assert majority(["accept", "reject"]) == "reject"
    assert majority(["reject", "accept", "accept"]) == "accept"


def test_a_vote_with_a_rambling_rationale_abstains_and_the_others_decide():
    ramble = "The answer is no, the answer is no, the answer is no, the answer is no."
    a = ScriptedBackend(default=lambda r: vote("reject", ramble).text)
    b = ScriptedBackend(default=lambda r: vote("accept", "The call uses the city the user asked about.").text)
    res, votes = run({"verifier:0": a, "verifier:1": b}, verifier_count=2, negotiation_rounds=1)
    first = [v for v in votes if v.verifier == "v0-intent"][0]
    assert first.meta.get("abstain") == "rationale unusable: it repeats itself"
    # no counted disagreement: no negotiation round, and the counted vote decides
    assert max(v.round for v in votes) == 0
    assert res.finish.verdict == "accept"


def test_when_every_model_vote_abstains_the_rule_checks_decide():
    ramble = ScriptedBackend(default=lambda r: vote("reject", "no no no no no no no no no no no no").text)
    res, votes = run({"verifier": ramble}, verifier_count=3)
    assert all(v.meta.get("abstain") for v in votes if v.verifier != "rules")
    assert votes[0].decision == "accept" and res.finish.verdict == "accept"


def test_a_vote_that_names_nothing_from_the_trajectory_or_makes_up_values_abstains():
    vague = ScriptedBackend(default=lambda r: vote("reject", "The answer is no, it does not fit.").text)
    made_up = ScriptedBackend(default=lambda r: vote("reject", "The tool is not 4DC 2017-2022.").text)
    fair = ScriptedBackend(default=lambda r: vote("accept", "get_weather gets the weather for the city named").text)
    res, votes = run({"verifier:0": vague, "verifier:1": made_up, "verifier:2": fair}, verifier_count=3,
                     negotiation_rounds=0)
    assert votes[1].meta["abstain"] == "rationale unusable: it names nothing from the trajectory"
    assert votes[2].meta["abstain"].startswith("rationale unusable: it cites values the trajectory does not hold: 4DC")
    assert not votes[3].meta.get("abstain")
    # the one vote that judged the trajectory decides
    assert res.finish.verdict == "accept"
    # and a grounded rejection still rejects
    res, votes = run({"verifier:0": ScriptedBackend(default=lambda r: vote("reject", "the city is not the one asked").text)},
                     verifier_count=1, negotiation_rounds=0)
    assert res.finish.verdict == "reject"


def test_a_vote_that_answers_the_request_instead_of_judging_it_abstains():
    # What the 135M verifier wrote in a counted vote: the assistant's reply to the user.
    serves = ScriptedBackend(default=lambda r: vote("accept", "Yes, I can help you with that weather request.").text)
    grounded = ScriptedBackend(default=lambda r: vote("reject", "get_weather asks for a city the user never named").text)
    res, votes = run({"verifier:0": serves, "verifier:1": grounded}, verifier_count=2, negotiation_rounds=1)
    assert votes[1].meta["abstain"] == "rationale unusable: it answers the request instead of judging it"
    # the one judging vote decides, with no negotiation against a vote that judged nothing
    assert not votes[2].meta.get("abstain") and max(v.round for v in votes) == 0
    assert res.finish.verdict == "reject"


def test_a_vote_that_thanks_like_the_user_abstains():
    from synthesis.roleplay.verify import unusable_rationale

    # A counted vote of the 135M verifier that sank a multi-turn conversation ending in
    # "Perfect, thank you!".
    t = "User: Cancel the operation spring-sale.\nAssistant calls cancel(name=spring-sale)\nUser: Perfect, thank you!"
    assert unusable_rationale("Awesome, thank you for the help!", t) == "it answers the request instead of judging it"
    assert unusable_rationale("Perfect, done, great help.", t) == "it names nothing from the trajectory"
    assert unusable_rationale("The cancel call names spring-sale, thanks to the user's message.", t) is None
