"""Requests built from calls read like a person wrote them: the examples a user reported
(issue "Data worth training on") and the rules that fixed them."""

import random

import pytest

from synthesis.roleplay.phrasing import (
    REGISTERS,
    action_phrase,
    mentions,
    new_values,
    register_of,
    request_text,
    spoken,
)
from synthesis.roleplay.values import query_problems
from synthesis.roleplay.verify import value_coverage


def tool(name, description):
    return {"name": name, "description": description}


def test_the_reported_requests_no_longer_read_like_machine_noise():
    cases = [
        (tool("getAuthIntrospectV2", "Performs introspection of the provided Bearer JWT token."), {}),
        (tool("getDeleted", "Deleted domains, latest if date not specified"), {"date": "2021-02-27T10:32:00Z", "page": 50}),
        (tool("getApiVersion", "API version"), {}),
    ]
    texts = [request_text([{"name": t["name"], "arguments": a}], [t], random.Random(3)) for t, a in cases]
    assert "get performs" not in texts[0].lower() and "perform introspection" in texts[0]
    # the description's clause is cut, the date-time is said in words
    assert "latest if" not in texts[1] and "February 27, 2021 at 10:32 UTC" in texts[1] and "page 50" in texts[1]
    assert "aPI" not in texts[2] and "API version" in texts[2]
    for t in texts:
        assert t[0].isupper() and t.rstrip()[-1] in ".?!"
        assert query_problems(t, tuple(c[0]["name"] for c in cases)) == []


def test_action_phrases_from_summaries():
    assert action_phrase(tool("x", "Get Generated Items. Returns metadata.")) == "get generated items"
    assert action_phrase(tool("x", "All Podcasts. Retrieve all Podcasts")) == "get all podcasts"
    assert action_phrase(tool("x", "Standings")) == "get the standings"
    assert action_phrase(tool("x", "Fetch one channel of a user (by UserSid), in the Twilio API.")) == "get one channel of a user"
    assert action_phrase(tool("x", "Cancel a payment based on the provided payment ID.")) == "cancel a payment"


def test_values_sit_where_people_put_them_and_are_all_mentioned():
    forecast = tool("getForecast", "Returns the weather forecast for a city.")
    payment = tool("cancelPayment", "Cancel a payment based on the provided payment ID.")
    calls = [{"name": "getForecast", "arguments": {"city": "Lisbon", "days": 3, "date": "2025-06-14"}},
             {"name": "cancelPayment", "arguments": {"paymentId": "pay_4f2a91c0"}}]
    text = request_text(calls, [forecast, payment], random.Random(0))
    assert "forecast for Lisbon" in text and "for 3 days" in text and "on June 14, 2025" in text
    assert "cancel payment pay_4f2a91c0" in text
    assert value_coverage(text, calls) == (1.0, [])


def test_repeated_calls_of_one_tool_read_as_one_action():
    forecast = tool("getForecast", "Returns the weather forecast for a city.")
    calls = [{"name": "getForecast", "arguments": {"city": c, "days": 2}} for c in ("Lisbon", "Oslo", "Lima")]
    text = request_text(calls, [forecast], random.Random(0))
    assert "forecast for Lisbon, Oslo and Lima for 2 days" in text
    assert value_coverage(text, calls)[0] == 1.0


@pytest.mark.parametrize("empty", ["", []])
def test_repeated_calls_whose_first_value_is_empty_still_read(empty):
    # A parallel reference of getServerAttributes with serverid "" first failed the whole
    # trajectory ("ValueError: empty separator").
    servers = tool("getServerAttributes", "Get all attributes of a server.")
    calls = [{"name": "getServerAttributes", "arguments": {"serverid": v}} for v in (empty, "serv_6dbf7e31")]
    text = request_text(calls, [servers], random.Random(0))
    assert "serv_6dbf7e31" in text


def test_registers_follow_the_persona_and_requests_vary():
    assert register_of("terse and precise, uses technical terms") == "terse"
    assert register_of("formal, slightly unsure, spells out details") == "formal"
    assert register_of("warm, a bit hurried, mixes in small talk") == "warm"
    assert register_of("casual and enthusiastic") == "casual"
    forecast = tool("getForecast", "Returns the weather forecast for a city.")
    call = [{"name": "getForecast", "arguments": {"city": "Lisbon"}}]
    for style in ("terse", "formal", "warm", "casual"):
        seen = {request_text(call, [forecast], random.Random(i), style=style) for i in range(40)}
        assert len(seen) >= min(4, len(REGISTERS[style])), seen
    terse = request_text(call, [forecast], random.Random(1), style="terse")
    warm = request_text(call, [forecast], random.Random(1), style="warm")
    assert terse != warm


def test_spoken_forms_and_made_up_values():
    assert spoken("2025-06-14") == "June 14, 2025" and spoken("2025-06-14T09:05:00Z") == "June 14, 2025 at 09:05 UTC"
    assert spoken("2025-06-14T09:05:13+02:00") == "2025-06-14T09:05:13+02:00"  # seconds and offsets stay exact
    assert mentions("on June 14, 2025 please", "2025-06-14") and mentions("on 2025-06-14", "2025-06-14")
    assert not mentions("on June 15, 2025", "2025-06-14")
    assert new_values("Please get player 2 in xml. Use official 4DC 2017-2022.", "Get player 2 in xml.") == ["4DC", "2017-2022"]
    assert new_values("Hey, could you pull up player 2 for me, in xml?", "Get player 2 in xml.") == []


def test_every_opener_reads_as_a_request_and_passes_the_query_checks():
    from synthesis.roleplay.phrasing import opening
    from synthesis.roleplay.values import is_request

    for style, templates in REGISTERS.items():
        for i in range(len(templates) * 6):
            text = opening("reset the policy CALL", style, random.Random(i))
            assert is_request(text) and query_problems(text) == [], text


def test_a_long_summary_is_cut_on_a_word_that_ends_a_phrase():
    text = action_phrase(tool("x", "Perform an action against an account and log this action in the moderation history."))
    assert text == "perform an action against an account and log this action"
