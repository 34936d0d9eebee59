"""Ingestion into the database: specs, a live MCP server, idempotent re-runs, dedup and tree."""

from __future__ import annotations

import io
import multiprocessing
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F, Q

from inftool_web.catalog.models import (
    ApiSource,
    DuplicateLink,
    Tool,
    ToolVector,
    TreeBuild,
    TreeNode,
)
from tests.conftest import ROOT, free_port

SPECS = ROOT / "tests" / "synthesis" / "mcp_tree" / "specs"
MCP_SERVER = ROOT / "tests" / "web" / "fixtures" / "mcp_demo_server.py"


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


@pytest.mark.django_db
def test_ingest_folder_keeps_good_specs_and_records_bad_ones(tmp_path):
    for f in SPECS.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "not-json.json").write_text("{ this is not json")
    summary = run("ingest_openapi", str(tmp_path), workers=1)
    ok = ApiSource.objects.filter(status="ok")
    failed = ApiSource.objects.filter(status="failed")
    assert ok.count() == 4
    assert {Path(s.location).name for s in failed} == {"swagger12.json", "not-json.json", "truncated.json", "malformed_paths.yaml"}
    for s in failed:
        assert s.error_code and s.error, s.name
        assert not s.tools.exists(), "nothing of a failed spec is stored"
    assert "failed specs by reason" in summary and "unsupported_version" in summary
    validator = jsonschema.Draft202012Validator
    for tool in Tool.objects.all():
        validator.check_schema(tool.input_schema)
        assert tool.input_schema.get("type") == "object"
        if tool.output_schema:
            validator.check_schema(tool.output_schema)
    # Re-running adds nothing and changes nothing.
    before = sorted(Tool.objects.values_list("source__name", "name", "content_hash"))
    again = run("ingest_openapi", str(tmp_path), workers=1)
    assert sorted(Tool.objects.values_list("source__name", "name", "content_hash")) == before
    assert "unchanged (skipped)" in again


@pytest.mark.django_db
def test_ingest_with_worker_processes_matches_serial(tmp_path):
    shutil.copy(SPECS / "petstore_swagger2.json", tmp_path / "a.json")
    shutil.copy(SPECS / "library_oas30.yaml", tmp_path / "b.yaml")
    run("ingest_openapi", str(tmp_path), workers=2)
    assert Tool.objects.count() > 0
    assert ApiSource.objects.filter(status="ok").count() == 2


@pytest.mark.django_db
def test_missing_path_is_a_clear_error():
    with pytest.raises(CommandError, match="no such file"):
        run("ingest_openapi", "/nonexistent/spec.json")


@pytest.mark.django_db
def test_live_mcp_server_over_stdio_is_ingested_and_rerun_adds_nothing():
    command = f"{sys.executable} {MCP_SERVER}"
    out = run("ingest_mcp", server_command=command, name="demo-stdio")
    assert "3 tools (3 new)" in out
    src = ApiSource.objects.get(name="demo-stdio")
    assert src.kind == "mcp_stdio" and src.status == "ok"
    weather = src.tools.get(name="get_weather")
    assert weather.input_schema["required"] == ["city"]
    assert "0 new" in run("ingest_mcp", server_command=command, name="demo-stdio")
    assert src.tools.count() == 3


@pytest.mark.django_db
def test_live_mcp_server_over_streamable_http():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(MCP_SERVER), "http", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        run("ingest_mcp", url=url, name="demo-http")
        src = ApiSource.objects.get(name="demo-http")
        assert src.kind == "mcp_http" and src.tools.count() == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.django_db
def test_unreachable_mcp_server_is_recorded_as_failed():
    with pytest.raises(CommandError, match="127.0.0.1:1"):
        run("ingest_mcp", url="http://127.0.0.1:1/mcp", name="dead", timeout=10)
    src = ApiSource.objects.get(name="dead")
    assert src.status == "failed" and src.error_code == "mcp_unreachable"


@pytest.mark.django_db
def test_build_tree_stores_duplicates_and_a_two_level_tree(tmp_path):
    shutil.copy(SPECS / "petstore_swagger2.json", tmp_path / "petstore.json")
    shutil.copy(SPECS / "petstore_swagger2.json", tmp_path / "petstore-copy.json")  # every tool an exact duplicate
    shutil.copy(SPECS / "library_oas30.yaml", tmp_path / "library.yaml")
    shutil.copy(SPECS / "shop_swagger2.yaml", tmp_path / "shop.yaml")
    run("ingest_openapi", str(tmp_path), workers=1)
    n_pet = ApiSource.objects.get(name__endswith="petstore.json").tools.count()
    summary = run("build_tree", no_judge=True, domains=3, categories=5)
    exact = DuplicateLink.objects.filter(method="exact", is_duplicate=True)
    assert exact.count() == n_pet
    for link in exact:
        assert link.tool.canonical_id is not None, "every exact duplicate points at a canonical tool"
    assert Tool.objects.filter(canonical__isnull=False).count() >= n_pet
    domains = TreeNode.objects.filter(level="domain")
    cats = TreeNode.objects.filter(level="category")
    assert 1 <= domains.count() <= 3 and cats.count() >= domains.count()
    assert all(c.parent.level == "domain" for c in cats)
    assert not Tool.objects.filter(category__isnull=True).exists(), "every tool lands in a category"
    for dup in Tool.objects.filter(canonical__isnull=False).select_related("canonical"):
        assert (dup.domain_id, dup.category_id) == (dup.canonical.domain_id, dup.canonical.category_id)
    # One vector per exact group: the copies share their twins' and are not embedded.
    assert ToolVector.objects.count() == Tool.objects.count() - n_pet
    assert re.search(rf"embedded now\s+{Tool.objects.count() - n_pet}\b", summary)
    assert "duplicates removed" in summary
    # Rebuilding replaces, it does not add; a tool the new tree leaves out has no node after it.
    stray = Tool.objects.filter(canonical=None).first()
    run("build_tree", no_judge=True, domains=3, categories=5)
    assert TreeNode.objects.filter(level="domain").count() == domains.count()
    assert not Tool.objects.filter(category__isnull=True).exists()
    from inftool_web.catalog import services

    kept = list(TreeNode.objects.filter(level="category").values_list("pk", "parent_id")[:1])
    services.tree_store(domains=[{"name": "Only", "categories": [
        {"name": "One", "tool_ids": [t for t in Tool.objects.filter(canonical=None).values_list("pk", flat=True)
                                     if t != stray.pk]}]}])
    stray.refresh_from_db()
    assert stray.domain_id is None and stray.category_id is None and kept
    assert TreeNode.objects.count() == 2 and Tool.objects.filter(category__name="One").count() > 0
    assert DuplicateLink.objects.filter(method="exact", is_duplicate=True).count() == n_pet


def _tree_of_tools() -> dict[str, tuple[str, str]]:
    rows = Tool.objects.filter(canonical=None).values_list("source__name", "name", "domain__name", "category__name")
    return {f"{src}/{name}": (dom, cat) for src, name, dom, cat in rows}


def _two_specs(tmp_path):
    shutil.copy(SPECS / "library_oas30.yaml", tmp_path / "library.yaml")
    shutil.copy(SPECS / "shop_swagger2.yaml", tmp_path / "shop.yaml")
    run("ingest_openapi", str(tmp_path), workers=1)


@pytest.mark.django_db
def test_a_rebuild_over_the_same_tools_and_settings_stops_at_once(tmp_path):
    _two_specs(tmp_path)
    run("build_tree", no_judge=True, domains=2, categories=3)
    assert TreeBuild.objects.count() == 1
    nodes = set(TreeNode.objects.values_list("pk", flat=True))
    again = run("build_tree", no_judge=True, domains=2, categories=3)
    assert "nothing changed since tree build" in again
    assert TreeBuild.objects.count() == 1 and set(TreeNode.objects.values_list("pk", flat=True)) == nodes
    # Another setting, --force, or a changed tool each rebuild.
    assert "nothing changed" not in run("build_tree", no_judge=True, domains=2, categories=4)
    assert "nothing changed" not in run("build_tree", no_judge=True, domains=2, categories=4, force=True)
    assert TreeBuild.objects.count() == 3
    lib = tmp_path / "library.yaml"
    lib.write_text(lib.read_text().replace("summary: Get a book", "summary: Fetch one book by its id"))
    run("ingest_openapi", str(tmp_path), workers=1)
    out = run("build_tree", no_judge=True, domains=2, categories=4)
    assert "nothing changed" not in out and re.search(r"embedded now\s+1\b", out)
    assert TreeBuild.objects.count() == 4
    # A deleted tree is rebuilt even though the tools did not change.
    TreeNode.objects.all().delete()
    assert "nothing changed" not in run("build_tree", no_judge=True, domains=2, categories=4)


@pytest.mark.django_db
def test_a_run_killed_while_embedding_resumes_after_its_stored_chunks(tmp_path, monkeypatch):
    import inftool_web.catalog.management.commands.build_tree as command
    from synthesis.mcp_tree.dedup import EMBED_RECIPE

    _two_specs(tmp_path)
    n = Tool.objects.count()
    assert n > 4
    real = command.tool_set_embeddings
    stored = []

    def killed_after_two_chunks(*, ids, **kwargs):
        if len(stored) == 2:
            raise SystemExit("killed")  # while the embedding process encodes the next chunk
        stored.append(len(ids))
        return real(ids=ids, **kwargs)

    monkeypatch.setattr(command, "tool_set_embeddings", killed_after_two_chunks)
    with pytest.raises(SystemExit):
        run("build_tree", no_judge=True, domains=2, categories=3, embed_chunk=2)
    assert stored == [2, 2]
    assert ToolVector.objects.filter(recipe=EMBED_RECIPE).count() == 4
    assert not [p for p in multiprocessing.active_children() if p.name == "inftool-embed"]  # ended with the run
    monkeypatch.setattr(command, "tool_set_embeddings", real)
    out = run("build_tree", no_judge=True, domains=2, categories=3, embed_chunk=2)
    assert f"embedding {n - 4} tools" in out
    assert ToolVector.objects.filter(recipe=EMBED_RECIPE).count() == n


@pytest.mark.django_db
def test_vectors_of_another_recipe_are_embedded_again(tmp_path):
    _two_specs(tmp_path)
    run("build_tree", no_judge=True, domains=2, categories=3)
    n = Tool.objects.count()
    ToolVector.objects.filter(tool_id__in=list(Tool.objects.values_list("pk", flat=True)[:4])).update(recipe="full-128")
    out = run("build_tree", no_judge=True, domains=2, categories=3, force=True)
    assert "embedding 4 tools" in out and ToolVector.objects.filter(recipe="lead-64").count() == n
    # A vector made from other content than the tool's and from another text than the one
    # its recipe makes of the tool now is stale too: embedded again, not mixed in.
    first3 = list(Tool.objects.order_by("pk").values_list("pk", flat=True)[:3])
    ToolVector.objects.filter(tool_id__in=first3).update(content_hash="0" * 64, text_hash="1" * 64)
    out = run("build_tree", no_judge=True, domains=2, categories=3, force=True)
    assert "embedding 3 tools" in out
    kept_third = bytes(ToolVector.objects.get(tool_id=first3[2]).vector)
    assert not ToolVector.objects.exclude(content_hash=F("tool__content_hash")).exists()
    assert "1" * 64 not in set(ToolVector.objects.filter(tool_id__in=first3).values_list("text_hash", flat=True))
    # A vector stored before text hashes were, whose content is not the tool's: nothing says
    # what it was made from, so it is embedded again too.
    ToolVector.objects.filter(tool_id__in=first3[:2]).update(content_hash="0" * 64, text_hash="")
    out = run("build_tree", no_judge=True, domains=2, categories=3, force=True)
    assert "embedding 2 tools" in out
    assert bytes(ToolVector.objects.get(tool_id=first3[2]).vector) == kept_third


@pytest.mark.django_db
def test_a_vector_is_kept_while_the_text_it_was_made_from_is_the_tools(tmp_path):
    _two_specs(tmp_path)
    run("build_tree", no_judge=True, domains=2, categories=3)
    rows = {v.tool_id: v for v in ToolVector.objects.all()}
    assert rows and all(len(v.text_hash) == 64 for v in rows.values()), "every vector says what text it was made from"
    # Vectors stored before text hashes were (a database migrated from then) are kept and
    # stamped with their text's hash, not embedded again.
    ToolVector.objects.update(text_hash="")
    out = run("build_tree", no_judge=True, domains=2, categories=3, force=True)
    assert not re.search(r"embedding \d+ tools", out)
    assert {v.tool_id: (v.text_hash, bytes(v.vector)) for v in ToolVector.objects.all()} == {
        k: (v.text_hash, bytes(v.vector)) for k, v in rows.items()}
    # A vector whose content hash is not its tool's but whose text hash is (a schema changed,
    # the name and description did not) is kept and stamped with the tool's new hash.
    some = list(rows)[:3]
    ToolVector.objects.filter(tool_id__in=some).update(content_hash="0" * 64)
    out = run("build_tree", no_judge=True, domains=2, categories=3, force=True)
    assert not re.search(r"embedding \d+ tools", out) and "3 changed tools keep their vectors" in out
    assert not ToolVector.objects.exclude(content_hash=F("tool__content_hash")).exists()
    assert {v.tool_id: bytes(v.vector) for v in ToolVector.objects.all()} == {k: bytes(v.vector) for k, v in rows.items()}


@pytest.mark.django_db
def test_only_the_judge_is_built_with_a_small_batch_and_dropped_before_the_tree(tmp_path, settings, monkeypatch):
    from inftool_web.catalog.management.commands import build_tree as cmd
    from synthesis.llm import registry
    from synthesis.llm.base import ChatResult

    built, events = [], []

    class Judge:
        def complete_batch(self, requests):
            events.append("judged")
            return [[ChatResult(text='{"reason": "different operations", "duplicate": false}')] for _ in requests]

        def close(self):
            events.append("closed")

    def get_backend(name, **options):
        built.append((name, options))
        backend = Judge()
        registry._cache[("test-judge", str(len(built)))] = backend  # cached like a real one
        return backend

    class Other(Judge):
        def close(self):
            events.append("other closed")

    other = Other()
    monkeypatch.setitem(registry._cache, ("test-other", ""), other)  # a backend of the calling process
    tree = cmd.build_tree
    monkeypatch.setattr(cmd, "get_backend", get_backend)
    monkeypatch.setattr(cmd, "build_tree", lambda *a, **k: (events.append("tree"), tree(*a, **k))[1])
    settings.INFTOOL_ROLE_BACKENDS = {**settings.INFTOOL_ROLE_BACKENDS, "judge": {"backend": "embedded"}}
    _two_specs(tmp_path)
    run("build_tree", domains=2, categories=3, lower=0.2, upper=0.999, judge_mode="on")
    # One backend, the judge's, not one per role; with the embedded model's smaller batch.
    assert built == [("embedded", cmd.EMBEDDED_JUDGE_OPTIONS)]
    assert events[0] == "judged" and events[-2:] == ["closed", "tree"]
    assert not any(k[0] == "test-judge" for k in registry._cache)
    assert registry._cache[("test-other", "")] is other and "other closed" not in events


@pytest.mark.django_db
def test_stored_vectors_are_read_back_in_the_order_asked(tmp_path):
    from inftool_web.catalog.selectors import tool_vectors
    from inftool_web.catalog.services import tool_set_embeddings

    _two_specs(tmp_path)
    (a, ha), (b, hb), (c, hc) = Tool.objects.order_by("id").values_list("id", "content_hash")[:3]
    vecs = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
    assert tool_set_embeddings(ids=[a, b, c], vectors=vecs, recipe="r1", hashes=[ha, hb, hc]) == 3
    got = tool_vectors(ids=[c, a, c, b], recipe="r1")
    assert got.dtype == np.float32 and np.array_equal(got, vecs[[2, 0, 2, 1]])
    # Stored again: replaced, not added.
    assert tool_set_embeddings(ids=[a], vectors=vecs[:1] + 1, recipe="r2", hashes=[ha]) == 1
    assert ToolVector.objects.count() == 3 and ToolVector.objects.get(tool_id=a).recipe == "r2"
    with pytest.raises(ValueError, match="1 of 2 tools have no stored r2 vector"):
        tool_vectors(ids=[a, b], recipe="r2")
    # A vector made from content the tool no longer has is not read back.
    assert tool_set_embeddings(ids=[b], vectors=vecs[1:2], recipe="r2", hashes=["f" * 64]) == 1
    with pytest.raises(ValueError, match="1 of 2 tools have no stored r2 vector"):
        tool_vectors(ids=[a, b], recipe="r2")
    # A tool deleted while its chunk was being embedded is skipped, the rest stored.
    Tool.objects.filter(pk=c).delete()
    assert tool_set_embeddings(ids=[c, a], vectors=vecs[:2], recipe="r3", hashes=[hc, ha]) == 1
    assert list(ToolVector.objects.filter(recipe="r3").values_list("tool_id", flat=True)) == [a]
    with pytest.raises(ValueError, match="2 ids, 1 hashes, 2 text hashes for 2 vectors"):
        tool_set_embeddings(ids=[a, b], vectors=vecs[:2], recipe="r3", hashes=[ha])


@pytest.mark.django_db
def test_a_rebuild_reuses_the_judges_verdicts_on_unchanged_tools(tmp_path, settings):
    settings.INFTOOL_ROLE_BACKENDS = {**settings.INFTOOL_ROLE_BACKENDS, "judge": {
        "backend": "scripted", "default": '{"duplicate": false, "reason": "different operations"}'}}
    _two_specs(tmp_path)
    # A low band sends many pairs to the judge.
    args = dict(domains=2, categories=3, lower=0.2, upper=0.999, max_judge_pairs=1000, judge_mode="on")
    first = run("build_tree", **args)
    judged = DuplicateLink.objects.filter(method="judge")
    n_judged = judged.count()
    assert n_judged > 3 and re.search(r"judge verdicts reused\s+0\b", first)
    # The judge's model loaded, so the vectors were let go while it ran and read back.
    assert "vectors released while the judge ran" in first
    tree_first = _tree_of_tools()
    again = run("build_tree", force=True, **args)
    assert re.search(rf"judge verdicts reused\s+{n_judged}\b", again)
    assert judged.count() == n_judged
    # Nothing asked, nothing released: and the same tree from the vectors held as read back.
    assert "vectors released" not in again
    assert _tree_of_tools() == tree_first
    # Pairs with a changed tool go to the judge again; the rest are reused.
    lib = tmp_path / "library.yaml"
    lib.write_text(lib.read_text().replace("summary: Get a book", "summary: Fetch one book by its id"))
    names = dict(Tool.objects.values_list("pk", "content_hash"))
    run("ingest_openapi", str(tmp_path), workers=1)
    (changed,) = [pk for pk, digest in Tool.objects.values_list("pk", "content_hash") if names[pk] != digest]
    with_changed = judged.filter(Q(tool=changed) | Q(canonical=changed)).count()
    assert with_changed
    third = run("build_tree", **args)
    reused = int(re.search(r"judge verdicts reused\s+(\d+)", third).group(1))
    assert reused == n_judged - with_changed


@pytest.mark.django_db
def test_a_configured_model_names_the_nodes_and_its_unusable_names_fall_back(tmp_path, settings):
    settings.INFTOOL_ROLE_BACKENDS = {**settings.INFTOOL_ROLE_BACKENDS, "judge": {
        "backend": "scripted", "default": '{"name": "Book Lending"}'}}
    _two_specs(tmp_path)
    run("build_tree", no_judge=True, domains=2, categories=3)  # auto: the scripted stand-in is no stronger model
    assert not TreeNode.objects.filter(name_source="llm").exists()
    run("build_tree", no_judge=True, domains=2, categories=3, namer="llm")
    named = TreeNode.objects.filter(name_source="llm")
    # The first node takes the model's name; the others would repeat it, so they fall back.
    assert list(named.values_list("name", flat=True)) == ["Book Lending"]
    assert TreeNode.objects.exclude(name_source="llm").count() == TreeNode.objects.count() - 1
    names = list(TreeNode.objects.values_list("name", flat=True))
    assert all(n.strip() for n in names) and len(set(names)) == len(names)


@pytest.mark.django_db
def test_a_new_converter_version_converts_unchanged_specs_again(tmp_path, monkeypatch):
    from django.core.management import call_command

    import synthesis.mcp_tree.openapi.model as openapi

    spec = Path(__file__).resolve().parents[1] / "synthesis" / "mcp_tree" / "specs" / "library_oas30.yaml"
    (tmp_path / "lib.yaml").write_bytes(spec.read_bytes())
    call_command("ingest_openapi", str(tmp_path), stdout=io.StringIO())
    again = io.StringIO()
    call_command("ingest_openapi", str(tmp_path), stdout=again)
    assert re.search(r"unchanged \(skipped\)\s+1", again.getvalue())
    monkeypatch.setattr(openapi, "CONVERTER_VERSION", openapi.CONVERTER_VERSION + "-next")
    after = io.StringIO()
    call_command("ingest_openapi", str(tmp_path), stdout=after)
    assert re.search(r"unchanged \(skipped\)\s+0", after.getvalue())


@pytest.mark.django_db
def test_a_changed_spec_re_embeds_only_its_changed_tools(tmp_path):
    shutil.copy(SPECS / "library_oas30.yaml", tmp_path / "library.yaml")
    shutil.copy(SPECS / "shop_swagger2.yaml", tmp_path / "shop.yaml")
    run("ingest_openapi", str(tmp_path), workers=1)
    run("build_tree", no_judge=True, domains=2, categories=3)
    before = {v.tool_id: bytes(v.vector) for v in ToolVector.objects.all()}
    assert len(before) == Tool.objects.count() and all(before.values())
    hashes = dict(Tool.objects.values_list("pk", "content_hash"))
    lib = tmp_path / "library.yaml"
    lib.write_text(lib.read_text().replace("summary: Get a book", "summary: Fetch one book by its id"))
    run("ingest_openapi", str(tmp_path), workers=1)
    stale = [pk for pk, digest in Tool.objects.values_list("pk", "content_hash") if hashes[pk] != digest]
    assert len(stale) == 1, "only the tool whose description changed has another content hash"
    summary = run("build_tree", no_judge=True, domains=2, categories=3)
    assert "embedding 1 tools" in summary
    assert not TreeNode.objects.filter(name_source="").exists(), "every name says how it was chosen"
    after = {v.tool_id: bytes(v.vector) for v in ToolVector.objects.all()}
    assert after[stale[0]] != before[stale[0]]
    assert all(after[pk] == vec for pk, vec in before.items() if pk != stale[0])
    # A change to what is not embedded (a parameter's description: the converter's output
    # moves, the tool's name and description do not) re-embeds nothing.
    lib.write_text(lib.read_text().replace("A second bookId in the query, to test name clashes.",
                                           "Another bookId, in the query."))
    hashes = dict(Tool.objects.values_list("pk", "content_hash"))
    run("ingest_openapi", str(tmp_path), workers=1)
    moved = [pk for pk, digest in Tool.objects.values_list("pk", "content_hash") if hashes[pk] != digest]
    assert len(moved) == 1, "the tool with that parameter changed"
    summary = run("build_tree", no_judge=True, domains=2, categories=3)
    assert not re.search(r"embedding \d+ tools", summary) and "1 changed tools keep their vectors" in summary
    assert {v.tool_id: bytes(v.vector) for v in ToolVector.objects.all()} == after
    assert not ToolVector.objects.exclude(content_hash=F("tool__content_hash")).exists()
    # The same on a database whose vectors were stored before text hashes were (migrated
    # from then): the ingest stamps a changed tool's vector with its text before the change.
    ToolVector.objects.update(text_hash="")
    lib.write_text(lib.read_text().replace("Another bookId, in the query.", "The bookId again."))
    run("ingest_openapi", str(tmp_path), workers=1)
    assert ToolVector.objects.exclude(text_hash="").count() == 1
    summary = run("build_tree", no_judge=True, domains=2, categories=3)
    assert not re.search(r"embedding \d+ tools", summary) and "1 changed tools keep their vectors" in summary
    assert {v.tool_id: bytes(v.vector) for v in ToolVector.objects.all()} == after
    assert not ToolVector.objects.filter(text_hash="").exists(), "the rest stamped by build_tree as it read them"


@pytest.mark.django_db
def test_by_default_only_a_model_stronger_than_the_embedded_one_judges(tmp_path, settings, monkeypatch):
    from inftool_web.catalog.management.commands import build_tree as cmd
    from synthesis.llm.base import ChatResult

    built = []

    class Judge:
        def complete_batch(self, requests):
            return [[ChatResult(text='{"reason": "different operations", "duplicate": false}')] for _ in requests]

        def close(self):
            pass

    def get_backend(name, **options):
        built.append(name)
        return Judge()

    monkeypatch.setattr(cmd, "get_backend", get_backend)
    _two_specs(tmp_path)
    args = dict(domains=2, categories=3, lower=0.2, upper=0.999, namer="keywords")
    settings.INFTOOL_ROLE_BACKENDS = {**settings.INFTOOL_ROLE_BACKENDS, "judge": {"backend": "embedded"}}
    out = run("build_tree", **args)
    # the embedded model is not asked: the pairs it would judge stay apart
    assert built == [] and "judge: none (auto" in out and re.search(r"judged pairs\s+0\b", out)
    assert not DuplicateLink.objects.filter(method="judge").exists()
    # a model stronger than the embedded one is, and so is the embedded one when asked for
    settings.INFTOOL_ROLE_BACKENDS = {**settings.INFTOOL_ROLE_BACKENDS, "judge": {
        "backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "judge-model"}}
    out = run("build_tree", **args)
    assert built == ["openai"] and "judge: none" not in out and DuplicateLink.objects.filter(method="judge").exists()
    settings.INFTOOL_ROLE_BACKENDS = {**settings.INFTOOL_ROLE_BACKENDS, "judge": {"backend": "embedded"}}
    DuplicateLink.objects.filter(method="judge").delete()  # else its verdicts are reused
    run("build_tree", force=True, judge_mode="on", **args)
    assert built == ["openai", "embedded"]


@pytest.mark.django_db
def test_duplicates_store_writes_each_pair_once_and_replaces_the_last_decisions(tmp_path):
    from inftool_web.catalog.services import duplicates_store

    _two_specs(tmp_path)
    a, b, c = Tool.objects.order_by("id").values_list("id", flat=True)[:3]

    def decision(t, k, method="semantic", dup=True, why="close"):
        return {"tool_id": t, "canonical_id": k, "method": method, "similarity": 1.00004, "is_duplicate": dup,
                "judge_verdict": "", "rationale": why}

    n = duplicates_store(decisions=[decision(b, a), decision(b, a, "judge"), decision(a, a), decision(c, a, dup=False, why="no\x00judge")],
                         canonical_of={a: None, b: a, c: None})
    assert n == 2
    links = {(x.tool_id, x.canonical_id): x for x in DuplicateLink.objects.all()}
    assert set(links) == {(b, a), (c, a)}
    assert links[(b, a)].method == "semantic" and links[(b, a)].similarity == 1.0 and links[(b, a)].is_duplicate
    assert "\x00" not in links[(c, a)].rationale and not links[(c, a)].is_duplicate
    assert Tool.objects.get(pk=b).canonical_id == a and Tool.objects.get(pk=c).canonical_id is None
    assert duplicates_store(decisions=[decision(c, a)], canonical_of={a: None, b: None, c: a}) == 1
    assert list(DuplicateLink.objects.values_list("tool_id", "canonical_id")) == [(c, a)]
    assert Tool.objects.get(pk=b).canonical_id is None


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_stored_vectors_out_of_the_tools_rows_and_back():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("catalog")
    executor.migrate([("catalog", "0005_tool_embedding_recipe_treebuild")])
    try:
        vec = np.arange(384, dtype="<f4").tobytes()
        src = ApiSource.objects.create(kind="openapi", name="m", location="m.yaml").pk  # its table is unchanged
        with connection.cursor() as cur:
            rows = [("with", vec, "lead-64"), ("without", None, ""), ("unlabelled", vec, "")]
            for name, emb, recipe in rows:
                cur.execute("INSERT INTO catalog_tool (source_id, name, description, input_schema, method, path, "
                            "content_hash, embedding, embedding_recipe, usability_reasons, created_at) "
                            "VALUES (%s, %s, '', '{}', '', '', %s, %s, %s, '[]', now())",
                            [src, name, (name * 8)[:64], emb, recipe])
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        moved = list(ToolVector.objects.values_list("tool__name", "recipe", "content_hash", "vector"))
        assert [(n, r, h, bytes(v)) for n, r, h, v in moved] == [("with", "lead-64", "with" * 8, vec)]
        executor = MigrationExecutor(connection)
        executor.migrate([("catalog", "0005_tool_embedding_recipe_treebuild")])
        with connection.cursor() as cur:
            cur.execute("SELECT name, embedding, embedding_recipe FROM catalog_tool ORDER BY name")
            back = [(n, bytes(e) if e is not None else None, r) for n, e, r in cur.fetchall()]
        assert back == [("unlabelled", None, ""), ("with", vec, "lead-64"), ("without", None, "")]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        Tool.objects.all().delete()
        ApiSource.objects.all().delete()
