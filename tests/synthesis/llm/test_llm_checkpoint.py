"""The embedded checkpoint's location and completeness rules (no model is loaded)."""

import json

from synthesis.llm.embedded import checkpoint as embedded


def test_var_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("INFTOOL_VAR_DIR", str(tmp_path))
    assert embedded.embedded_checkpoint_dir() == tmp_path / "models" / "smollm2-135m-instruct"
    monkeypatch.delenv("INFTOOL_VAR_DIR")
    # <repo>/var, the folder the README and the Django settings name (not synthesis/var)
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    assert (repo / "manage.py").exists()
    assert embedded.var_dir() == repo / "var"


def test_half_written_checkpoint_is_converted_again(monkeypatch, tmp_path):
    monkeypatch.setenv("INFTOOL_VAR_DIR", str(tmp_path))
    dest = embedded.embedded_checkpoint_dir()
    dest.mkdir(parents=True)
    (dest / "config.json").write_text("{}")  # no weights: a conversion killed midway
    calls = []

    def fake_convert(path):
        calls.append(path)
        (path / "model.safetensors").write_bytes(b"x")
        embedded.write_checkpoint_marker(path)
        return path

    monkeypatch.setattr(embedded, "convert_gguf_checkpoint", fake_convert)
    assert embedded.ensure_embedded_checkpoint() == dest
    assert embedded.ensure_embedded_checkpoint() == dest
    assert calls == [dest]


def test_gguf_is_found_in_the_installed_package():
    path = embedded.gguf_path()
    assert path.name == embedded.GGUF_FILE and path.stat().st_size > 50_000_000


def test_a_checkpoint_from_an_older_conversion_is_converted_again(monkeypatch, tmp_path):
    """The conversion's cache key: a folder written before templates rendered tools (no
    marker, or an older version in it) is converted again, once."""
    monkeypatch.setenv("INFTOOL_VAR_DIR", str(tmp_path))
    dest = embedded.embedded_checkpoint_dir()
    dest.mkdir(parents=True)
    (dest / "config.json").write_text("{}")
    (dest / "model.safetensors").write_bytes(b"x")  # complete weights, but no marker
    calls = []

    def fake_convert(path):
        calls.append(path)
        embedded.write_checkpoint_marker(path)
        return path

    monkeypatch.setattr(embedded, "convert_gguf_checkpoint", fake_convert)
    embedded.ensure_embedded_checkpoint()
    assert calls == [dest]
    (dest / embedded.CHECKPOINT_MARKER).write_text('{"conversion": 1}')
    embedded.ensure_embedded_checkpoint()
    embedded.ensure_embedded_checkpoint()
    assert calls == [dest, dest]
    # a newer template version is a new cache key too
    marker = json.loads((dest / embedded.CHECKPOINT_MARKER).read_text())
    (dest / embedded.CHECKPOINT_MARKER).write_text(json.dumps({**marker, "chat_template": 0}))
    embedded.ensure_embedded_checkpoint()
    assert calls == [dest, dest, dest]
