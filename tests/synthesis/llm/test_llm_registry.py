import threading

import pytest
from pydantic import ValidationError

from synthesis.llm import registry
from synthesis.llm.base import ChatRequest, ChatResult, LLMBackend
from synthesis.llm.registry import UnknownBackend, available_backends, get_backend, register_backend
from synthesis.llm.roles import ROLES, backends_for_roles, resolve_role_specs
from synthesis.llm.scripted import ScriptedBackend


def test_unknown_backend_lists_valid_names():
    with pytest.raises(UnknownBackend) as info:
        get_backend("gpt-9")
    for name in ("embedded", "openai", "vllm", "scripted"):
        assert name in str(info.value)


def test_options_are_validated_strictly():
    with pytest.raises(ValidationError):
        get_backend("openai", base_url="http://x/v1", concurency=3)
    with pytest.raises(ValidationError):
        get_backend("embedded", max_batch_size=0)


class _Counting(LLMBackend):
    name = "counting"
    built = 0
    lock = threading.Lock()

    class Options(ScriptedBackend.Options.__base__):  # a pydantic BaseModel
        model_config = {"extra": "forbid"}
        size: int = 1

    def __init__(self, options):
        import time

        time.sleep(0.05)  # widen the race window
        with _Counting.lock:
            _Counting.built += 1
        self.options = options

    def complete_batch(self, requests):
        return [[ChatResult(text="x")] for _ in requests]


def test_same_name_and_options_give_one_instance_across_threads():
    register_backend("counting", _Counting)
    try:
        assert "counting" in available_backends()
        got: list[LLMBackend] = []
        threads = [
            threading.Thread(target=lambda: got.append(get_backend("counting", size=2)))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _Counting.built == 1 and len({id(b) for b in got}) == 1
        assert get_backend("counting", size=3) is not got[0]
        assert get_backend("counting", size=2) is got[0]
    finally:
        registry._BACKENDS.pop("counting")
        registry.clear_backend_cache(close=False)


def test_forgetting_one_backend_closes_it_and_keeps_the_others(monkeypatch):
    closed = []
    monkeypatch.setattr(_Counting, "close", lambda self: closed.append(self.options.size), raising=False)
    register_backend("counting", _Counting)
    try:
        a, b = get_backend("counting", size=4), get_backend("counting", size=5)
        assert registry.forget_backend(a) is True and closed == [4]
        assert registry.forget_backend(a) is False and closed == [4], "already forgotten: not closed twice"
        assert get_backend("counting", size=5) is b
        assert get_backend("counting", size=4) is not a  # built afresh on the next ask
    finally:
        registry._BACKENDS.pop("counting")
        registry.clear_backend_cache(close=False)


def test_scripted_backends_are_not_shared():
    assert get_backend("scripted") is not get_backend("scripted")


def test_roles_defaults_and_validation():
    specs = resolve_role_specs(
        {"agent": {"backend": "openai", "base_url": "http://gpu:8000/v1"}, "default": "scripted"}
    )
    assert specs["agent"] == {"backend": "openai", "base_url": "http://gpu:8000/v1"}
    assert all(specs[r] == {"backend": "scripted"} for r in ROLES if r != "agent")
    assert resolve_role_specs()["judge"] == {"backend": "embedded"}
    with pytest.raises(ValueError, match="valid roles"):
        resolve_role_specs({"critic": {"backend": "embedded"}})
    with pytest.raises(ValueError, match="role 'user'"):
        resolve_role_specs({"user": {"backend": "openai", "bogus": 1}})
    with pytest.raises(ValueError, match="valid backends"):
        resolve_role_specs({"user": {"backend": "nope"}})


def test_backends_for_roles_builds_each_role():
    backends = backends_for_roles({"default": {"backend": "scripted", "replies": ["hi"]}})
    assert set(backends) == set(ROLES)
    assert (
        backends["user"].complete(ChatRequest(messages=[{"role": "user", "content": "x"}])).text
        == "hi"
    )
