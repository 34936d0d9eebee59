import json

from synthesis.llm.base import ToolCall
from synthesis.llm.prompting import DEFAULT_SYSTEM, to_hermes_messages

TOOL = {
    "name": "get_weather",
    "description": "Weather",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_tools_go_into_the_system_prompt():
    msgs = to_hermes_messages(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], [TOOL]
    )
    assert msgs[0]["role"] == "system"
    system = msgs[0]["content"]
    assert system.startswith("Be brief.") and "<tools>" in system and "<tool_call>" in system
    listed = system.split("<tools>\n")[1].split("\n</tools>")[0]
    assert json.loads(listed) == {
        "name": "get_weather",
        "description": "Weather",
        "parameters": TOOL["inputSchema"],
    }


def test_openai_tools_accepted_and_default_system_used():
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    msgs = to_hermes_messages([{"role": "user", "content": "hi"}], [tool])
    assert msgs[0]["content"].startswith(DEFAULT_SYSTEM) and '"name": "f"' in msgs[0]["content"]


def test_tool_calls_and_results_rendered_hermes_style():
    msgs = to_hermes_messages(
        [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    ToolCall(name="get_weather", arguments={"city": "Rome"}),
                ],
            },
            {"role": "tool", "tool_call_id": "1", "content": {"temp": 20}},
            {"role": "tool", "tool_call_id": "2", "content": "25C"},
            {"role": "assistant", "content": "Paris 20, Rome 25."},
        ]
    )
    roles = [m["role"] for m in msgs]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert msgs[1]["content"].count("<tool_call>") == 2
    assert '{"name": "get_weather", "arguments": {"city": "Rome"}}' in msgs[1]["content"]
    assert (
        msgs[2]["content"]
        == '<tool_response>\n{"temp": 20}\n</tool_response>\n<tool_response>\n25C\n</tool_response>'
    )
