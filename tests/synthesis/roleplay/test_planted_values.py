"""Values a person would not type, as the embedded model wrote them into accepted
trajectories: a parameter's description used as its value, a number as a resource's
name, a text that says the same thing over and over.  Each bad twin is rejected by the
rules alone (every verifier votes accept), and its good twin passes them."""

import pytest

from .planted.cases_second import PERSONA, c, calls, multi, result, say, single, user
from .test_planted import rules_of, run_verify

DELETE_MONITOR = {
    "name": "ConnectionMonitors_Delete",
    "description": "Deletes the specified connection monitor.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "resourceGroupName": {"type": "string", "description": "The name of the resource group."},
            "networkWatcherName": {"type": "string", "description": "The name of the network watcher."},
            "connectionMonitorName": {"type": "string", "description": "The name of the connection monitor."},
        },
        "required": ["resourceGroupName", "networkWatcherName", "connectionMonitorName"],
    },
}

SPEAK = {
    "name": "text_to_speech",
    "description": "Convert a text to speech.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to speak."}},
        "required": ["text"],
    },
}

ATTACH = {
    "name": "create_content_attachment",
    "description": "Create a content attachment.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "The title of the attachment."},
            "body": {"type": "string", "description": "Body of the attachment."},
        },
        "required": ["title", "body"],
    },
}

RAMBLE = ("The user would need to present their assessment of the drive in the region. "
          "The user would need to present their assessment so that the data is clear.")
GOOD_TEXT = "The table for four is booked for eight tonight. See you soon."
DESCRIBED = "The name of the group you're in"
DELETED = {"status": "deleted"}

CASES = [
    single("number_as_name", "the resource group's name is a number", "a number where a name belongs",
           "single", [DELETE_MONITOR],
           "Delete connection monitor latency-check of watcher nw-eu in resource group rg-payments.",
           [c("ConnectionMonitors_Delete", resourceGroupName="rg-payments", networkWatcherName="nw-eu",
              connectionMonitorName="latency-check")],
           [c("ConnectionMonitors_Delete", resourceGroupName="10520160", networkWatcherName="nw-eu",
              connectionMonitorName="latency-check")],
           bad_query="Delete connection monitor latency-check of watcher nw-eu in resource group 10520160."),
    single("text_says_it_twice", "the text to speak repeats its own sentence", "the same words over and over",
           "single", [SPEAK], f"Can you turn this text into speech: “{GOOD_TEXT}”",
           [c("text_to_speech", text=GOOD_TEXT)], [c("text_to_speech", text=RAMBLE)],
           bad_query=f"Can you turn this text into speech: “{RAMBLE}”"),
    single("description_as_body", "the attachment's body is its parameter's description",
           "a description of the parameter", "single", [ATTACH],
           "Please create a content attachment titled Release plan saying “Ship on Friday after the review.”",
           [c("create_content_attachment", title="Release plan", body="Ship on Friday after the review.")],
           [c("create_content_attachment", title="Release plan", body="Body of the attachment")],
           bad_query="Please create a content attachment titled Release plan saying “Body of the attachment”"),
]

MULTI = [
    multi("mt_description_as_value", "the user gives the resource group's description as its name, and the "
          "agent calls with it", "a description of the parameter", [DELETE_MONITOR],
          "I want to delete connection monitor latency-check of watcher nw-eu.",
          [c("ConnectionMonitors_Delete", resourceGroupName="rg-payments", networkWatcherName="nw-eu",
             connectionMonitorName="latency-check")],
          [user("Please delete connection monitor latency-check of watcher nw-eu."),
           say("Which resource group is it in?"), user("The resource group name is rg-payments."),
           calls(c("ConnectionMonitors_Delete", resourceGroupName="rg-payments", networkWatcherName="nw-eu",
                   connectionMonitorName="latency-check")),
           result("ConnectionMonitors_Delete", DELETED), say("Done: the connection monitor is deleted."),
           user("Thanks!")],
          [user("Please delete connection monitor latency-check of watcher nw-eu."),
           say("Which resource group is it in?"), user(f"The resource group name is {DESCRIBED}."),
           calls(c("ConnectionMonitors_Delete", resourceGroupName=DESCRIBED, networkWatcherName="nw-eu",
                   connectionMonitorName="latency-check")),
           result("ConnectionMonitors_Delete", DELETED), say("Done: the connection monitor is deleted."),
           user("Thanks!")]),
]


@pytest.mark.parametrize("case", CASES + MULTI, ids=lambda x: x.name)
def test_a_value_no_person_would_type_is_rejected_and_its_good_twin_passes(case):
    assert case.good.persona == PERSONA
    assert rules_of(case, bad=False) == [], f"{case.name}: the good twin is rejected"
    problems = rules_of(case, bad=True)
    assert any(case.caught_by in p for p in problems), f"{case.name} ({case.defect}): {problems}"
    assert run_verify(case, problems) == "reject"
