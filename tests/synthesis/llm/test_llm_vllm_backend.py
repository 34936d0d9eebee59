import importlib.util

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
