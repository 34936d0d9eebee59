import importlib.util
import json

import pytest

from synthesis.llm.base import BackendUnavailable
from synthesis.llm.vllm_backend import (
    INSTALL_HINT,
    VLLMBackend,
    is_vllm_available,
    tool_call_schema,
)

HAS_GPU = (
    is_vllm_available()
    and importlib.util.find_spec("torch") is not None
    and __import__("torch").cuda.is_available()
)


def test_imports_cleanly_and_says_how_to_install():
    if is_vllm_available():
        pytest.skip("vllm is installed here")
    with pytest.raises(
        BackendUnavailable,
        match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]").replace(".", r"\."),
    ):
        VLLMBackend(model_path="/nonexistent")


def test_tool_call_schema():
    tools = [
        {"name": "a", "inputSchema": {"type": "object"}},
        {"name": "b", "inputSchema": {"type": "object"}},
    ]
    assert tool_call_schema(tools, {"name": "b"})["properties"]["name"] == {"const": "b"}
    assert len(tool_call_schema(tools, "required")["anyOf"]) == 2
    assert tool_call_schema(tools, "auto") is None


@pytest.mark.require_gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs vLLM and a CUDA device")
def test_vllm_generates_a_forced_call():
    from synthesis.llm.base import ChatRequest
    from synthesis.llm.embedded import ensure_embedded_checkpoint

    b = VLLMBackend(model_path=str(ensure_embedded_checkpoint()), gpu_memory_utilization=0.3)
    tools = [
        {
            "name": "f",
            "inputSchema": {
                "type": "object",
                "properties": {"x": {"type": "integer"}},
                "required": ["x"],
            },
        }
    ]
    r = b.complete(
        ChatRequest(
            messages=[{"role": "user", "content": "call f"}],
            tools=tools,
            tool_choice={"name": "f"},
            max_tokens=40,
        )
    )
    assert r.tool_calls and r.tool_calls[0].name == "f"


# ---------------------------------------------------------------------------- stand-in vllm (CPU)

from synthesis.llm.base import ChatRequest, InvalidModelOutput  # noqa: E402
from tests.synthesis.llm import fake_vllm  # noqa: E402

F_TOOL = {"name": "f", "description": "F", "inputSchema": {
    "type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}


@pytest.fixture
def vllm(monkeypatch):
    return fake_vllm.install(monkeypatch)


def test_options_map_onto_llm(vllm):
    b = VLLMBackend(model_path="/ckpt/iteration-2-grpo/", dtype="bfloat16", gpu_memory_utilization=0.5,
                    max_model_len=4096, tensor_parallel_size=2)
    assert vllm.LLM.instances[-1].kwargs == {
        "model": "/ckpt/iteration-2-grpo/", "dtype": "bfloat16", "gpu_memory_utilization": 0.5,
        "tensor_parallel_size": 2, "max_model_len": 4096}
    assert b.model_id == "iteration-2-grpo"
    VLLMBackend(model_path="/m")
    assert "max_model_len" not in vllm.LLM.instances[-1].kwargs  # vLLM's own default
    with pytest.raises(ValueError):
        VLLMBackend(model="/m")  # the option is model_path (services.py passed model)


def test_sampling_params_carry_the_request(vllm):
    b = VLLMBackend(model_path="/m")
    llm = vllm.LLM.instances[-1]
    llm.replies = [["a", "b"]]
    rows = b.complete_batch([ChatRequest(messages=[{"role": "user", "content": "hi"}], n=2, temperature=0.3,
                                         top_p=0.9, max_tokens=17, stop=["\n\n"], seed=5)])
    (prompts, (sp,)) = llm.calls[-1]
    assert (sp.n, sp.temperature, sp.top_p, sp.max_tokens, sp.stop, sp.seed) == (2, 0.3, 0.9, 17, ["\n\n"], 5)
    assert not hasattr(sp, "structured_outputs")  # free text: unconstrained
    assert [r.text for r in rows[0]] == ["a", "b"] and rows[0][0].prompt_tokens == 7
    assert prompts[0].endswith("<|assistant|>") and '"hi"' in prompts[0]


def test_json_schema_and_forced_calls_use_structured_outputs(vllm):
    b = VLLMBackend(model_path="/m")
    llm = vllm.LLM.instances[-1]
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    llm.replies = [['{"ok": true}'], ['{"name": "f", "arguments": {"x": 3}}']]
    msgs = [{"role": "user", "content": "go"}]
    plain, forced = b.complete_batch([ChatRequest(messages=msgs, json_schema=schema),
                                      ChatRequest(messages=msgs, tools=[F_TOOL], tool_choice={"name": "f"})])
    sp_schema, sp_forced = llm.calls[-1][1]
    assert json.loads(sp_schema.structured_outputs.json) == schema
    assert json.loads(sp_forced.structured_outputs.json) == tool_call_schema([F_TOOL], {"name": "f"})
    assert plain[0].text == '{"ok": true}' and not plain[0].tool_calls
    # the bare call object guided decoding produced becomes a parsed call
    (call,) = forced[0].tool_calls
    assert (call.name, call.arguments) == ("f", {"x": 3}) and forced[0].finish_reason == "tool_calls"


def test_tool_calls_in_text_are_parsed_and_bad_ones_reported(vllm):
    b = VLLMBackend(model_path="/m")
    llm = vllm.LLM.instances[-1]
    llm.replies = [['Sure.\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>'],
                   ['<tool_call>\n{"name": "f", "arguments": {x: 1\n</tool_call>'],
                   ['<tool_call>{"name": "f"}</tool_call>']]
    msgs = [{"role": "user", "content": "go"}]
    good, bad, no_tools = b.complete_batch([ChatRequest(messages=msgs, tools=[F_TOOL]),
                                            ChatRequest(messages=msgs, tools=[F_TOOL]),
                                            ChatRequest(messages=msgs, tools=[F_TOOL], tool_choice="none")])
    assert [c.name for c in good[0].tool_calls] == ["f"] and good[0].text.strip() == "Sure."
    assert isinstance(bad[0].error, InvalidModelOutput) and bad[0].finish_reason == "error"
    assert not no_tools[0].tool_calls and "<tool_call>" in no_tools[0].text  # tool_choice none: text
    # tools rendered into the prompt only when they may be called
    prompts = llm.calls[-1][0]
    assert "# Tools" in prompts[0] and "# Tools" not in prompts[2]


def test_a_model_vllm_cannot_load_is_backend_unavailable_naming_it(vllm):
    vllm.LLM.fail_with = RuntimeError("CUDA out of memory")
    with pytest.raises(BackendUnavailable, match=r"'/ckpt/big'.*CUDA out of memory"):
        VLLMBackend(model_path="/ckpt/big")


def test_the_registry_builds_it_from_a_role_spec(vllm):
    from synthesis.llm.roles import backends_for_roles

    backends = backends_for_roles({"agent": {"backend": "vllm", "model_path": "/ckpt/a"}})
    assert isinstance(backends["agent"], VLLMBackend)
    assert vllm.LLM.instances[-1].kwargs["model"] == "/ckpt/a"


def test_decode_tools_guide_the_call_and_tools_fill_the_prompt(vllm):
    b = VLLMBackend(model_path="/m")
    llm = vllm.LLM.instances[-1]
    bound = {**F_TOOL, "inputSchema": {"type": "object", "properties": {"x": {"const": 3}}}}
    llm.replies = [['{"name": "f", "arguments": {"x": 3}}']]
    msgs = [{"role": "user", "content": "go"}]
    b.complete_batch([ChatRequest(messages=msgs, tools=[F_TOOL], decode_tools=[bound], tool_choice={"name": "f"})])
    (prompt,), (sp,) = llm.calls[-1]
    assert json.loads(sp.structured_outputs.json) == tool_call_schema([bound], {"name": "f"})
    assert "const" not in prompt and "integer" in prompt, prompt
