import pytest

from synthesis.llm.base import ChatRequest, ChatResult, InvalidModelOutput, ToolCall
from synthesis.llm.scripted import ScriptedBackend, ScriptExhausted

TOOLS = [{"name": "lookup", "inputSchema": {"type": "object"}}]


def req(text="hi", **kw):
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def test_plays_back_in_order_and_records_requests():
    b = ScriptedBackend(replies=["one", ChatResult(text="two", tool_calls=[ToolCall("f", {})])])
    b.queue(lambda r: f"echo {r.messages[-1]['content']}")
    out = b.complete_batch([req("a"), req("b", n=2)])
    assert [[r.text for r in row] for row in out] == [["one"], ["two", "echo b"]]
    assert [r.messages[-1]["content"] for r in b.requests] == ["a", "b"]
    with pytest.raises(ScriptExhausted):
        b.complete(req())


def test_default_reply_when_queue_is_empty():
    b = ScriptedBackend(default="ok")
    assert b.complete(req()).text == "ok" and b.complete(req()).text == "ok"


def test_malformed_model_output_gives_invalid_model_output_with_raw_text():
    bad = '<tool_call>{"name": "lookup", "arguments": {"q": "x"</tool_call>'
    b = ScriptedBackend(
        replies=[bad, '<tool_call>{"name": "lookup", "arguments": {"q": "y"}}</tool_call>']
    )
    first, second = (row[0] for row in b.complete_batch([req(tools=TOOLS), req(tools=TOOLS)]))
    assert isinstance(first.error, InvalidModelOutput)
    assert first.error.raw == bad and first.text == bad and first.tool_calls == []
    assert first.finish_reason == "error"
    # One bad reply does not sink the rest of the batch.
    assert second.error is None and second.tool_calls[0].arguments == {"q": "y"}


def test_no_tool_parsing_without_tools():
    text = '{"name": "lookup", "arguments": {}}'
    assert ScriptedBackend(replies=[text]).complete(req()).tool_calls == []
