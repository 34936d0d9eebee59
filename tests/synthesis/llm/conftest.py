"""Fixtures for the LLM backend tests: one loaded embedded model per session, and a real
loopback HTTP server running the OpenAI-compatible handlers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from synthesis.llm.base import LLMBackend
from synthesis.llm.serving import BadRequest, chat_completions, list_models


@pytest.fixture(scope="session")
def embedded():
    """The embedded backend (SmolLM2-135M), loaded once for every slow test."""
    from synthesis.llm.registry import get_backend

    return get_backend("embedded")


def _handler_for(backend: LLMBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/v1/models":
                self._send(200, list_models([backend]))
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"null")
                self._send(200, chat_completions(body, backend))
            except BadRequest as e:
                self._send(e.status, e.to_dict())
            except json.JSONDecodeError as e:
                self._send(400, {"error": {"message": f"invalid JSON: {e}"}})

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[LLMBackend], str]]:
    """Start a loopback HTTP server answering /v1 with a backend; returns its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(backend: LLMBackend) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(backend))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def embedded_tokenizer():
    """The converted embedded checkpoint's tokenizer (converted once if missing)."""
    from transformers import AutoTokenizer

    from synthesis.llm.embedded import ensure_embedded_checkpoint

    return AutoTokenizer.from_pretrained(str(ensure_embedded_checkpoint()), local_files_only=True)


@pytest.fixture(scope="session")
def tiny_embedded(tmp_path_factory):
    """The embedded backend over a tiny, randomly initialised Llama with SmolLM2's tokenizer:
    it writes nonsense, but fast, so the scheduler's logic (cancelling, deadlines, streaming)
    is tested in well under a second per request.  One slot, so a second request waits."""
    import shutil

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from synthesis.llm.embedded import EmbeddedBackend, ensure_embedded_checkpoint

    real = ensure_embedded_checkpoint()
    path = tmp_path_factory.mktemp("tiny-llama")
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
    ):
        if (real / name).is_file():
            shutil.copy(real / name, path / name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=2,
        bos_token_id=1,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=2, bos_token_id=1)
    model.save_pretrained(path, safe_serialization=True)
    backend = EmbeddedBackend(model_path=str(path), dtype="float32", max_batch_size=1)
    yield backend
    backend.close()
