"""Writes for API sources, tools, duplicates and the MCP tree.

Conversion happens in ``synthesis.mcp_tree`` (plain Python); these functions store what it
returns.  Every source is written in one transaction: it lands whole or, on a bad spec,
only its failure (reason code and message) is recorded and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from inftool_web.core.text import storable, storable_text
from synthesis.llm.base import normalize_tool
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD, CurationReport, usability
from synthesis.mcp_tree.dedup import content_hash, embedded_text_hash
from synthesis.mcp_tree.openapi import SpecError, convert_spec, spec_digest
from synthesis.mcp_tree.tool_check import tool_problem

from .models import ApiSource, DuplicateLink, Tool, ToolVector, TreeBuild, TreeNode

WRITE_BATCH = 2000


@dataclass
class IngestOutcome:
    source: str
    status: str  # "ok" | "failed" | "unchanged"
    operations: int = 0
    tools: int = 0
    added: int = 0
    error_code: str = ""
    error: str = ""
    warnings: int = 0


@dataclass
class ConvertedSpec:
    """What a conversion worker hands back: plain data, cheap to pickle between processes."""
    name: str
    location: str
    content_hash: str
    ok: bool
    title: str = ""
    version: str = ""
    categories: list[str] = field(default_factory=list)
    operations: int = 0
    tools: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    error_code: str = ""
    error: str = ""


def convert_openapi_file(path: str, name: str) -> ConvertedSpec:
    """Read and convert one spec file (runs in worker processes: no database access)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return ConvertedSpec(name=name, location=path, content_hash="", ok=False,
                             error_code="unreadable", error=f"cannot read {path}: {exc.strerror or exc}")
    digest = spec_digest(raw)
    try:
        result = convert_spec(raw, source_name=name)
    except SpecError as exc:
        return ConvertedSpec(name=name, location=path, content_hash=digest, ok=False,
                             error_code=exc.reason_code, error=exc.message)
    except Exception as exc:  # noqa: BLE001 - one broken spec must not stop a corpus run
        return ConvertedSpec(name=name, location=path, content_hash=digest, ok=False,
                             error_code="conversion_failed", error=f"{type(exc).__name__}: {exc}")

    tools = []
    for t in result.tools:
        mcp = storable(t.to_mcp())  # a NUL in a spec's text must not fail the whole write
        row = {
            "name": t.name,
            "description": mcp["description"],
            "input_schema": mcp["inputSchema"],
            "output_schema": mcp.get("outputSchema"),
            "method": t.method,
            "path": t.path,
            "content_hash": content_hash(mcp),
        }
        tools.append({**row, **tool_usability_fields(row)})  # scored here, in the worker processes
    src = result.source
    return ConvertedSpec(
        name=name, location=path, content_hash=digest, ok=True, title=storable(src.api_title[:500]),
        version=storable(src.api_version[:100]), categories=storable(list(src.categories)),
        operations=result.operations, tools=tools,
        warnings=storable([{"operation": w.operation, "code": w.code, "message": w.message[:500]}
                           for w in result.warnings[:200]]),
    )


def source_is_current(*, name: str, content_hash: str) -> bool:
    return ApiSource.objects.filter(name=name, content_hash=content_hash, status=ApiSource.Status.OK).exists()


@transaction.atomic
def source_store_conversion(*, converted: ConvertedSpec, kind: str = ApiSource.Kind.OPENAPI) -> IngestOutcome:
    """Store one converted spec (or its failure) atomically; re-running adds no rows."""
    source, _ = ApiSource.objects.select_for_update().get_or_create(
        name=converted.name, defaults={"kind": kind, "location": converted.location}
    )
    now = timezone.now()
    if not converted.ok:
        # The tools of an earlier good version stay; the failure is recorded on the source.
        source.status = ApiSource.Status.FAILED
        source.error_code = converted.error_code or "conversion_failed"
        source.error = converted.error or "conversion failed"
        source.location = converted.location
        source.content_hash = converted.content_hash
        source.ingested_at = now
        source.save()
        return IngestOutcome(source=source.name, status="failed", error_code=source.error_code, error=source.error)
    added = _replace_tools(source, converted.tools)
    source.kind = kind
    source.location = converted.location
    source.title = converted.title
    source.version = converted.version
    source.categories = converted.categories
    source.content_hash = converted.content_hash
    source.status = ApiSource.Status.OK
    source.error_code = ""
    source.error = ""
    source.operations_count = converted.operations
    source.tools_count = len(converted.tools)
    source.warnings = converted.warnings
    source.ingested_at = now
    source.save()
    return IngestOutcome(source=source.name, status="ok", operations=converted.operations,
                         tools=len(converted.tools), added=added, warnings=len(converted.warnings))


def _replace_tools(source: ApiSource, tools: list[dict[str, Any]]) -> int:
    existing = dict(Tool.objects.filter(source=source).values_list("name", "content_hash"))
    names = {t["name"] for t in tools}
    stale = set(existing) - names
    if stale:
        Tool.objects.filter(source=source, name__in=stale).delete()
    changed = [t for t in tools if existing.get(t["name"]) != t["content_hash"]]
    changed = [t if "usability_score" in t else {**t, **tool_usability_fields(t)} for t in changed]
    # A changed tool keeps its stored vector: build_tree embeds it again only if the text
    # its recipe embeds changed too (#20: a converter change moved 34,133 tools' content
    # hashes on the corpus, most of them in parameters, which are not embedded).
    _stamp_texts_before_change(source, [t["name"] for t in changed if t["name"] in existing])
    for i in range(0, len(changed), WRITE_BATCH):
        Tool.objects.bulk_create(
            [Tool(source=source, **t) for t in changed[i : i + WRITE_BATCH]],
            update_conflicts=True,
            unique_fields=["source", "name"],
            update_fields=["description", "input_schema", "output_schema", "method", "path", "content_hash",
                           "usability_score", "usability_reasons"],
        )
    return sum(1 for t in changed if t["name"] not in existing)


def _stamp_texts_before_change(source: ApiSource, names: list[str]) -> int:
    """Vectors stored before text hashes were, still made from their tool's content, get the
    hash of the text they were made from while that tool is still as it was: after the
    change, build_tree can then tell whether the text it embeds changed too."""
    stamped = 0
    for i in range(0, len(names), WRITE_BATCH):
        rows = ToolVector.objects.filter(
            tool__source=source, tool__name__in=names[i : i + WRITE_BATCH], text_hash="",
            content_hash=F("tool__content_hash"),
        ).values_list("tool_id", "recipe", "tool__name", "tool__description", "tool__input_schema")
        stamps = []
        for pk, recipe, name, description, schema in rows:
            digest = embedded_text_hash({"name": name, "description": description, "inputSchema": schema}, recipe)
            if digest is not None:
                stamps.append(ToolVector(tool_id=pk, text_hash=digest))
        ToolVector.objects.bulk_update(stamps, ["text_hash"])
        stamped += len(stamps)
    return stamped


def source_ingest_mcp(*, name: str, kind: str, location: str, tools: list[dict[str, Any]]) -> IngestOutcome:
    """Store the tools listed by a live MCP server.

    A tool that could not be role-played (a name models refuse, an ``inputSchema`` that is
    not valid JSON Schema, refers to itself, or is too big or too deep) is left out and
    recorded as a warning on the source with its reason; the others are stored.
    """

    rows = []
    rejected: list[dict[str, str]] = []
    seen: set[str] = set()
    for t in tools:
        label = str(t.get("name", "?"))[:100] if isinstance(t, dict) else "?"
        try:
            mcp = normalize_tool(t)
        except (KeyError, TypeError, AttributeError):
            mcp = t
        problem = tool_problem(mcp)
        if problem is None and mcp["name"] in seen:
            problem = "another tool of this server has the same name"
        if problem:
            rejected.append(storable({"operation": label, "code": "invalid_tool", "message": problem[:500]}))
            continue
        seen.add(mcp["name"])
        mcp = storable(mcp)
        row = {
            "name": mcp["name"],
            "description": mcp.get("description", ""),
            "input_schema": mcp["inputSchema"],
            "output_schema": mcp.get("outputSchema"),
            "method": "",
            "path": "",
            "content_hash": content_hash(mcp),
        }
        rows.append({**row, **tool_usability_fields(row)})
    digest = hashlib.sha256(repr(sorted((r["name"], r["content_hash"]) for r in rows)).encode()).hexdigest()
    converted = ConvertedSpec(name=name, location=location, content_hash=digest, ok=True,
                              title=name, operations=len(tools), tools=rows, warnings=rejected[:200])
    return source_store_conversion(converted=converted, kind=kind)


def source_record_failure(*, name: str, kind: str, location: str, error_code: str, error: str) -> IngestOutcome:
    converted = ConvertedSpec(name=name, location=location, content_hash="", ok=False,
                              error_code=error_code, error=error)
    return source_store_conversion(converted=converted, kind=kind)


# ----------------------------------------------------------------------------- curation


def tool_usability_fields(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The stored curation of one tool (a stored row's fields or an MCP tool dict)."""
    u = usability(tool)
    return {"usability_score": u.score, "usability_reasons": u.reasons_as_dicts()}


def tools_curate(*, threshold: float = DEFAULT_THRESHOLD, only_missing: bool = False) -> CurationReport:
    """(Re)score every stored tool, or only those never scored; returns what ``threshold``
    keeps and, by reason code, why it drops the rest (over the tools scored in this call).

    Idempotent: a row is written only when its score or reasons change.  Batches commit
    one by one, so a stopped run keeps what it wrote and the next one goes on.
    """
    if not (0.0 <= threshold <= 1.0):
        raise ValueError(f"the usability threshold must be from 0 to 1, not {threshold}")
    report = CurationReport(threshold=threshold)
    fields = ("id", "name", "description", "input_schema", "output_schema", "method", "path",
              "usability_score", "usability_reasons")
    qs = Tool.objects.all()
    if only_missing:
        qs = qs.filter(usability_score__isnull=True)
    last = 0
    while True:
        # Keyset pages: no long-lived cursor, and rows written meanwhile do not shift the pages.
        rows = list(qs.filter(pk__gt=last).order_by("pk").values(*fields)[:WRITE_BATCH])
        if not rows:
            return report
        last = rows[-1]["id"]
        updates = []
        for row in rows:
            new = tool_usability_fields(row)
            report.add(new["usability_score"], new["usability_reasons"])
            if (row["usability_score"], row["usability_reasons"]) != (new["usability_score"], new["usability_reasons"]):
                updates.append(Tool(pk=row["id"], **new))
        if updates:
            with transaction.atomic():
                Tool.objects.bulk_update(updates, ["usability_score", "usability_reasons"])


# ----------------------------------------------------------------------------- dedup, tree


def _stage(cur: Any, table: str, columns: str, rows: Iterable[tuple]) -> None:
    """``rows`` into the session's own temporary ``table`` (``columns``: names and types), by
    one COPY.  The table is emptied first: a caller's transaction may hold the last call's
    rows, since nothing commits in between."""
    cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS")
    cur.execute(f"TRUNCATE {table}")
    names = ", ".join(c.split()[0] for c in columns.split(","))
    with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def tool_set_embeddings(*, ids: list[int], vectors, recipe: str, hashes: list[str],
                        text_hashes: list[str] | None = None) -> int:
    """Store float32 vectors (one row per id, in order), the recipe that made them, the
    content hash of the tool each was made from and the hash of the text embedded (a vector
    whose two hashes are both no longer its tool's is stale).  A tool deleted meanwhile is
    skipped.  Returns the rows stored.

    One COPY into a temporary table, then one upsert into ``catalog_toolvector`` (#20: 0.05 s
    per 2,048 vectors, where an UPDATE of the tools' own rows took 0.5-1 s)."""
    arr = np.asarray(vectors, dtype="<f4")
    text_hashes = list(text_hashes) if text_hashes is not None else [""] * len(ids)
    if not (len(ids) == len(arr) == len(hashes) == len(text_hashes)):
        raise ValueError(f"{len(ids)} ids, {len(hashes)} hashes, {len(text_hashes)} text hashes "
                         f"for {len(arr)} vectors")
    table = ToolVector._meta.db_table
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor() as cur:
            _stage(cur, "_vectors_in", "tool_id bigint, recipe varchar(32), content_hash varchar(64), "
                   "text_hash varchar(64), vector bytea",
                   ((pk, recipe, digest, text_digest, row.tobytes())
                    for pk, digest, text_digest, row in zip(ids, hashes, text_hashes, arr, strict=True)))
            cur.execute(
                f"INSERT INTO {table} (tool_id, recipe, content_hash, text_hash, vector) "
                f"SELECT DISTINCT ON (v.tool_id) v.tool_id, v.recipe, v.content_hash, v.text_hash, v.vector "
                f"FROM _vectors_in v JOIN {Tool._meta.db_table} t ON t.id = v.tool_id "
                "ON CONFLICT (tool_id) DO UPDATE SET recipe = EXCLUDED.recipe, "
                "content_hash = EXCLUDED.content_hash, text_hash = EXCLUDED.text_hash, vector = EXCLUDED.vector"
            )
            return cur.rowcount


def tool_vectors_restamp(*, ids: list[int], hashes: list[str], text_hashes: list[str]) -> int:
    """Stamp stored vectors with their tool's current content hash and the hash of the text
    they were made from: for tools that changed where the embedded text did not (a
    converter's change to a schema), and for vectors stored before text hashes were.  The
    vectors themselves are not touched.  One COPY and one UPDATE; returns the rows stamped."""
    if not (len(ids) == len(hashes) == len(text_hashes)):
        raise ValueError(f"{len(ids)} ids, {len(hashes)} hashes, {len(text_hashes)} text hashes")
    if not ids:
        return 0
    table = ToolVector._meta.db_table
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor() as cur:
            _stage(cur, "_stamps_in", "tool_id bigint, content_hash varchar(64), text_hash varchar(64)",
                   zip(ids, hashes, text_hashes, strict=True))
            cur.execute(f"UPDATE {table} AS v SET content_hash = s.content_hash, text_hash = s.text_hash "
                        "FROM _stamps_in AS s WHERE v.tool_id = s.tool_id")
            return cur.rowcount


def tree_fingerprint_start(*, recipe: str, settings: Mapping[str, Any]) -> Any:
    """A SHA-256 over the recipe and settings, to which ``"\\n{id}:{content_hash}"`` of
    each tool in id order is added (what :func:`tree_fingerprint` does over every tool)."""
    h = hashlib.sha256()
    h.update(recipe.encode())
    h.update(json.dumps(dict(settings), sort_keys=True, default=str).encode())
    return h


def tree_fingerprint(*, recipe: str, settings: Mapping[str, Any]) -> str:
    """SHA-256 of every stored tool's id and content hash, the embedding recipe and the
    build's settings: equal fingerprints mean a rebuild would find what the last one did."""
    h = tree_fingerprint_start(recipe=recipe, settings=settings)
    qs = Tool.objects.order_by("id").values_list("id", "content_hash")
    for pk, digest in qs.iterator(chunk_size=10000):
        h.update(f"\n{pk}:{digest}".encode())
    return h.hexdigest()


def tree_build_record(*, fingerprint: str, settings: Mapping[str, Any], stats: Mapping[str, Any]) -> TreeBuild:
    return TreeBuild.objects.create(fingerprint=fingerprint, settings=dict(settings), stats=dict(stats))



@transaction.atomic
def duplicates_store(*, decisions: Iterable[dict[str, Any]], canonical_of: dict[int, int | None]) -> int:
    """Store every dedup decision and point each duplicate at its group's canonical tool.

    ``decisions``: dicts with tool_id, canonical_id, method, similarity, is_duplicate,
    judge_verdict, rationale.  ``canonical_of`` maps every tool id considered to its
    canonical id (None for canonical tools).  Re-running replaces earlier decisions.
    """
    DuplicateLink.objects.all().delete()
    # One COPY: on the corpus without a judge every pair kept apart is a decision too
    # (210,260 rows), which bulk_create's model instances and INSERTs took seconds over.
    now = timezone.now()
    seen: set[tuple[int, int]] = set()
    written = 0
    columns = "tool_id, canonical_id, method, similarity, is_duplicate, judge_verdict, rationale, created_at"
    connection.ensure_connection()
    with connection.connection.cursor() as cur, cur.copy(
        f"COPY {DuplicateLink._meta.db_table} ({columns}) FROM STDIN"
    ) as copy:
        for d in decisions:
            key = (d["tool_id"], d["canonical_id"])
            if key[0] == key[1] or key in seen:
                continue
            seen.add(key)
            copy.write_row((
                key[0], key[1], d["method"], max(-1.0, min(1.0, float(d["similarity"]))), bool(d["is_duplicate"]),
                d.get("judge_verdict", "")[:16], storable_text(str(d.get("rationale", ""))[:2000]), now,
            ))
            written += 1
    ids = list(canonical_of)
    _assign_tools(ids, {"canonical_id": [None if canonical_of[i] == i else canonical_of[i] for i in ids]})
    return written


@transaction.atomic
def tree_store(*, domains: list[dict[str, Any]]) -> tuple[int, int]:
    """Replace the tree.  ``domains``: [{name, description, seed_categories, categories: [
    {name, description, seed_categories, tool_ids, duplicate_ids}]}]: ``tool_ids`` are the
    category's canonical tools (its size), ``duplicate_ids`` their duplicates, placed in it
    too.  A tool in no category has none afterwards.  Returns (domains, categories)."""
    old = list(TreeNode.objects.values_list("pk", flat=True))
    # The old nodes go once no tool points at them; until then their names must not take
    # the new ones' (names are unique), so they hold their ids for the transaction's length.
    TreeNode.objects.filter(pk__in=old).update(name=Concat(Value("~"), Cast("pk", CharField())))
    ids: list[int] = []
    placed: dict[str, list[int | None]] = {"domain_id": [], "category_id": []}
    n_cat = 0
    for d in domains:
        domain = TreeNode.objects.create(
            level=TreeNode.Level.DOMAIN, name=d["name"][:200], description=d.get("description", ""),
            seed_categories=d.get("seed_categories", []), name_source=d.get("name_source", ""),
        )
        size = 0
        used: set[str] = set()
        for c in d["categories"]:
            cname = c["name"][:200]
            suffix = 2
            while cname in used:  # names come from keywords or an LLM: keep them unique per domain
                cname = f"{c['name'][:190]} ({suffix})"
                suffix += 1
            used.add(cname)
            cat = TreeNode.objects.create(
                level=TreeNode.Level.CATEGORY, name=cname, parent=domain,
                description=c.get("description", ""), seed_categories=c.get("seed_categories", []),
                size=len(c["tool_ids"]), name_source=c.get("name_source", ""),
            )
            members = [*c["tool_ids"], *c.get("duplicate_ids", ())]
            ids += members
            placed["domain_id"] += [domain.pk] * len(members)
            placed["category_id"] += [cat.pk] * len(members)
            size += len(c["tool_ids"])
            n_cat += 1
        domain.size = size
        domain.save(update_fields=["size"])
    _assign_tools(ids, placed)
    # Nothing points at the old nodes any more: deleting them updates no tool.
    TreeNode.objects.filter(pk__in=old).delete()
    return len(domains), n_cat


def _assign_tools(ids: list[int], columns: dict[str, list[int | None]]) -> int:
    """Set foreign-key ``columns`` (name -> one value per id) of the tools ``ids``, and
    clear them on every other tool.  Only rows whose values change are written, with one
    ``UPDATE ... FROM unnest`` per batch: each row at most once (a rebuild's tree has new
    nodes, so every placed tool; canonical links that stay, none), where clearing every row
    first and then an update per group and per category wrote the corpus's 125,207 rows
    several times in 13,009 statements (#20: 75 s of a 186 s rebuild).  Returns the rows
    written."""
    table = Tool._meta.db_table
    names = list(columns)
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM v.{c}" for c in names)
    written = 0
    with connection.cursor() as cur:
        for i in range(0, len(ids), 20 * WRITE_BATCH):
            part = slice(i, i + 20 * WRITE_BATCH)
            cur.execute(
                f"UPDATE {table} AS t SET {', '.join(f'{c} = v.{c}' for c in names)} "
                f"FROM unnest(%s::bigint[], {', '.join(['%s::bigint[]'] * len(names))}) AS v(id, {', '.join(names)}) "
                f"WHERE t.id = v.id AND ({differs})",
                [ids[part], *(columns[c][part] for c in names)],
            )
            written += cur.rowcount
        cur.execute(
            f"UPDATE {table} AS t SET {', '.join(f'{c} = NULL' for c in names)} "
            f"WHERE ({' OR '.join(f't.{c} IS NOT NULL' for c in names)}) "
            "AND NOT EXISTS (SELECT 1 FROM unnest(%s::bigint[]) AS v(id) WHERE v.id = t.id)",
            [ids],
        )
        written += cur.rowcount
    return written
