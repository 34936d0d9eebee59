import pytest

from synthesis.llm.base import ChatResult, InvalidModelOutput, ToolCall
from synthesis.llm.toolcalls import (
    apply_tool_call_parsing,
    format_tool_call,
    parse_completion,
    parse_reply,
    parse_tool_calls,
)


def test_hermes_block_with_text_around():
    content, calls = parse_tool_calls(
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )
    assert content == "Let me check."
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_")


def test_several_blocks_are_parallel_calls():
    text = (
        '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>\n'
        '<tool_call>{"name": "b", "parameters": {"y": [1, 2]}}</tool_call>'
    )
    content, calls = parse_tool_calls(text)
    assert content == ""
    assert [(c.name, c.arguments) for c in calls] == [("a", {"x": 1}), ("b", {"y": [1, 2]})]


def test_unclosed_last_block_is_read_to_the_end():
    _, calls = parse_tool_calls('<tool_call>{"name": "a", "arguments": {}}')
    assert calls[0].name == "a"


@pytest.mark.parametrize(
    "text,expected",
    [
        ('{"name": "f", "arguments": {"q": "x"}}', [("f", {"q": "x"})]),
        ('{"name": "f", "parameters": {"q": "x"}}', [("f", {"q": "x"})]),
        (
            '[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"n": 2}}]',
            [("f", {}), ("g", {"n": 2})],
        ),
        ('{"tool_calls": [{"name": "f", "arguments": {}}]}', [("f", {})]),
        ('```json\n{"name": "f", "arguments": {"a": true}}\n```', [("f", {"a": True})]),
        ('{"function": {"name": "f", "arguments": "{\\"a\\": 1}"}}', [("f", {"a": 1})]),
        ('{"name": "f", "arguments": "{\\"a\\": 1}"}', [("f", {"a": 1})]),
    ],
)
def test_bare_json_calls(text, expected):
    content, calls = parse_tool_calls(text)
    assert content == ""
    assert [(c.name, c.arguments) for c in calls] == expected


@pytest.mark.parametrize(
    "text",
    ["Hello there!", '{"answer": 42}', '{"name": "Alice"}', "[1, 2, 3]", "{not json at all", ""],
)
def test_plain_text_and_non_call_json_stay_content(text):
    content, calls = parse_tool_calls(text)
    assert calls == [] and content == text


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name": "f", "arguments": {"x": }</tool_call>',
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": [1]}</tool_call>',
        '{"name": "f", "arguments": {"x": 1,}}',
        '[{"name": "f", "arguments": {',
        '{"name": "f", "arguments": "{broken"}',
    ],
)
def test_malformed_calls_raise_with_raw_text(text):
    with pytest.raises(InvalidModelOutput) as info:
        parse_tool_calls(text)
    assert info.value.raw == text


def test_truncated_tail_is_dropped_only_when_cut_off_by_length():
    text = '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "a", "argu'
    parsed = parse_reply(text, truncated=True)
    assert [c.name for c in parsed.tool_calls] == ["a"] and parsed.dropped_tail
    with pytest.raises(InvalidModelOutput):
        parse_reply(text)


def test_apply_parsing_never_raises_and_keeps_raw_text():
    raw = '<tool_call>{"name": "f", "arguments": {oops}}</tool_call>'
    result = apply_tool_call_parsing(ChatResult(text=raw))
    assert isinstance(result.error, InvalidModelOutput)
    assert result.text == raw and result.error.raw == raw
    assert result.finish_reason == "error"

    ok = apply_tool_call_parsing(
        ChatResult(text='<tool_call>{"name": "f", "arguments": {}}</tool_call>')
    )
    assert ok.error is None and ok.finish_reason == "tool_calls" and ok.tool_calls[0].name == "f"


def test_format_round_trips():
    call = ToolCall(name="search", arguments={"q": "café", "n": [1, {"k": None}]})
    _, calls = parse_tool_calls(format_tool_call(call))
    assert (calls[0].name, calls[0].arguments) == (call.name, call.arguments)
    openai_form = call.to_openai()
    assert parse_tool_calls(format_tool_call(openai_form))[1][0].arguments == call.arguments


@pytest.mark.parametrize(
    "text,strict,lenient",
    [
        ('<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>', 1, 1),
        ('<tool_call>{"name": "f", "parameters": "{\\"x\\": 1}"}</tool_call>', 1, 1),
        ('<tool_call>{"function": {"name": "f", "arguments": "{}"}}</tool_call>', 0, 1),
        (
            '<tool_call>[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]</tool_call>',
            0,
            2,
        ),
        ('{"name": "f", "arguments": {}}', 0, 1),
        ('```json\n{"name": "f", "arguments": {}}\n```', 0, 1),
        ("Hello", 0, 0),
    ],
)
def test_strict_reads_only_the_trained_layout_lenient_what_synthesis_accepts(text, strict, lenient):
    s, le = parse_completion(text, mode="strict"), parse_completion(text, mode="lenient")
    assert (len(s.calls), len(le.calls)) == (strict, lenient)
    # strict counts the other shapes in a block as malformed, and never raises
    assert bool(s.malformed) == (text.startswith("<tool_call>") and strict == 0)
    assert not le.malformed


def test_parse_completion_reports_text_around_and_unclosed_blocks():
    p = parse_completion('Why.\n<tool_call>{"name": "f", "arguments": {}}</tool_call>\nAfter.')
    assert (p.text_before, p.text_after, p.content, p.blocks, p.well_formed) == (
        "Why.",
        "After.",
        "Why.\n\nAfter.",
        1,
        True,
    )
    cut = parse_completion('<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"na')
    assert cut.unclosed and cut.blocks == 2 and len(cut.malformed) == 1 and len(cut.calls) == 1
    truncated = parse_completion(
        '<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"na', truncated=True
    )
    assert truncated.dropped_tail and not truncated.malformed and truncated.well_formed
    with pytest.raises(ValueError, match="valid: strict, lenient"):
        parse_completion("x", mode="loose")


def test_doctests():
    import doctest

    import synthesis.llm.toolcalls as module

    assert doctest.testmod(module).failed == 0


def test_the_parser_and_template_import_without_django_or_training():
    import subprocess
    import sys

    code = (
        "import sys, synthesis.llm.toolcalls, synthesis.llm.chat_template, synthesis.llm.embedded; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'training', 'inftool_web')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
