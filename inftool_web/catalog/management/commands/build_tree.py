"""Deduplicate the stored tools and organise the canonical ones into domains and categories.

    manage.py build_tree                        # exact + semantic dedup, LLM judge on borderline pairs
    manage.py build_tree --no-judge             # borderline pairs stay apart
    manage.py build_tree --domains 15 --categories 40
"""

from __future__ import annotations

import time

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import OuterRef, Subquery
from tqdm import tqdm

from inftool_web.catalog.models import Tool
from inftool_web.catalog.selectors import curation_summary
from inftool_web.catalog.services import (
    duplicates_store,
    tool_set_embeddings,
    tools_curate,
    tree_store,
)
from synthesis.llm.roles import backends_for_roles
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD
from synthesis.mcp_tree.dedup import (
    DedupConfig,
    dedup_tools,
    embed_texts,
    load_embedder,
    make_llm_judge,
    slim_tool,
    tool_text,
)
from synthesis.mcp_tree.tree import TreeConfig, build_tree


class Command(BaseCommand):
    help = "Embed, deduplicate (exact, semantic, LLM judge) and cluster stored tools into a two-level tree."

    def add_arguments(self, parser):
        parser.add_argument("--domains", type=int, default=15)
        parser.add_argument("--categories", type=int, default=40)
        parser.add_argument("--lower", type=float, default=0.86, help="Cosine from which a pair goes to the judge")
        parser.add_argument("--upper", type=float, default=0.96, help="Cosine from which a pair is a duplicate")
        parser.add_argument("--no-judge", action="store_true", help="Do not ask the LLM judge")
        parser.add_argument("--max-judge-pairs", type=int, default=200)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--min-category-size", type=int, default=10,
                            help="fewest tools a category may hold (a smaller one joins its nearest sibling)")
        parser.add_argument("--max-domain-share", type=float, default=0.15,
                            help="most of the canonical tools one domain may hold")

    def handle(self, *args, domains, categories, lower, upper, no_judge, max_judge_pairs, seed,
               min_category_size, max_domain_share, **options):
        t0 = time.perf_counter()
        # Tools stored before curation existed get their score now, so the tree's tools are
        # all ready for role-play to filter by usability.
        tools_curate(only_missing=True)
        # Stream the tools and keep a slim stand-in of each (exact key and completeness
        # computed on the full schemas, then the schemas dropped), so memory stays bounded
        # by the corpus size times a few hundred bytes rather than by its schemas.
        n_total = Tool.objects.count()
        if not n_total:
            raise CommandError("no tools stored: run ingest_openapi or ingest_mcp first")
        ids: list[int] = []
        tools: list[dict] = []
        categories_of: list[list[str]] = []
        emb = np.zeros((n_total, 384), dtype=np.float32)
        missing = []
        qs = Tool.objects.order_by("id").values_list(
            "id", "name", "description", "input_schema", "output_schema", "source__name", "source__categories",
            "embedding",
        )
        for i, r in enumerate(qs.iterator(chunk_size=2000)):
            if i >= n_total:  # tools added while this runs wait for the next run
                break
            ids.append(r[0])
            tools.append(slim_tool({"name": r[1], "description": r[2], "inputSchema": r[3], "outputSchema": r[4],
                                    "source": r[5]}))
            categories_of.append(list(r[6] or []))
            if r[7]:
                emb[i] = np.frombuffer(bytes(r[7]), dtype="<f4")
            else:
                missing.append(i)
        emb = emb[: len(ids)]
        t_embed = time.perf_counter()
        if missing:
            model = load_embedder()
            self.stdout.write(f"embedding {len(missing)} tools")
            chunk = 2048
            for start in tqdm(range(0, len(missing), chunk), desc="embed", unit="chunk", file=self.stderr._out):
                part = missing[start : start + chunk]
                vecs = embed_texts([tool_text(tools[i]) for i in part], model=model)
                emb[part] = vecs
                tool_set_embeddings(ids=[ids[i] for i in part], vectors=vecs)
        t_embed = time.perf_counter() - t_embed

        judge = None
        if not no_judge:
            spec = dict(settings.INFTOOL_ROLE_BACKENDS["judge"])
            spec = {k: v for k, v in spec.items() if v}
            judge = make_llm_judge(backends_for_roles({"judge": spec})["judge"])
        t_dedup = time.perf_counter()
        cfg = DedupConfig(lower=lower, upper=upper, max_judge_pairs=max_judge_pairs)
        result = dedup_tools(tools, embeddings=emb, config=cfg, judge=judge)
        decisions = [
            {
                "tool_id": ids[d.tool], "canonical_id": ids[d.other], "method": d.method, "similarity": d.similarity,
                "is_duplicate": d.verdict, "judge_verdict": ("duplicate" if d.verdict else "distinct") if d.method == "judge" else "",
                "rationale": d.rationale,
            }
            for d in result.decisions
        ]
        canonical_of = {ids[i]: (None if c == i else ids[c]) for i, c in enumerate(result.canonical_of)}
        links = duplicates_store(decisions=decisions, canonical_of=canonical_of)
        t_dedup = time.perf_counter() - t_dedup

        t_tree = time.perf_counter()
        keep = result.canonical
        tree = build_tree(
            emb[keep], [tool_text(tools[i]) for i in keep], [categories_of[i] for i in keep],
            sources=[tools[i]["source"] for i in keep],
            config=TreeConfig(n_domains=domains, n_categories=max(categories, domains), seed=seed,
                              min_category_size=min_category_size, max_domain_share=max_domain_share),
        )
        payload = []
        for d in tree.domains():
            cats = [n for n in tree.categories() if n.parent == d.key]
            payload.append({
                "name": d.name, "name_source": d.name_source, "description": ", ".join(d.keywords),
                "categories": [
                    {"name": c.name, "name_source": c.name_source, "description": ", ".join(c.keywords),
                     "tool_ids": [ids[keep[m]] for m in c.members]}
                    for c in cats
                ],
            })
        n_dom, n_cat = tree_store(domains=payload)
        # Duplicates sit in their canonical tool's category, so browsing by category shows them.

        Tool.objects.filter(canonical__isnull=False).update(
            domain=Subquery(Tool.objects.filter(pk=OuterRef("canonical")).values("domain")[:1]),
            category=Subquery(Tool.objects.filter(pk=OuterRef("canonical")).values("category")[:1]),
        )
        t_tree = time.perf_counter() - t_tree

        table = [
            ("tools", len(ids)),
            ("exact duplicates", result.stats.get("exact_duplicates", 0)),
            ("candidate pairs", result.stats.get("candidate_pairs", 0)),
            ("judged pairs", result.stats.get("judged", 0)),
            ("duplicates removed", result.duplicates),
            ("canonical tools", len(keep)),
            ("decisions stored", links),
            (f"canonical usable (>= {DEFAULT_THRESHOLD:g})", curation_summary(threshold=DEFAULT_THRESHOLD).canonical_kept),
            ("domains", n_dom),
            ("categories", n_cat),
            ("embedding s", f"{t_embed:.1f}"),
            ("dedup s", f"{t_dedup:.1f}"),
            ("tree s", f"{t_tree:.1f}"),
            ("total s", f"{time.perf_counter() - t0:.1f}"),
        ]
        width = max(len(k) for k, _ in table)
        self.stdout.write("\n" + "\n".join(f"{k:<{width}}  {v:>10}" for k, v in table))
