"""Deduplicate the stored tools and organise the canonical ones into domains and categories.

    manage.py build_tree                        # exact + semantic dedup; the judge role's model judges the
                                                # pairs the vectors cannot settle, if it is not the embedded one
    manage.py build_tree --judge on             # the judge role's model judges, even the embedded one
    manage.py build_tree --no-judge             # (= --judge off) those pairs stay apart
    manage.py build_tree --domains 15 --categories 40
    manage.py build_tree --force                # rebuild even when nothing changed

Incremental: vectors are stored per chunk as they are made (a killed run resumes after the
last stored chunk), only tools without a vector of the current recipe are embedded, a
rebuild reuses the judge's verdicts on pairs of unchanged tools, and a run over the same
tools with the same settings as the last build stops at once.
"""

from __future__ import annotations

import resource
import time

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from tqdm import tqdm

from inftool_web.catalog.models import Tool
from inftool_web.catalog.selectors import (
    curation_summary,
    judge_verdicts_kept,
    tool_vectors,
    tree_is_current,
)
from inftool_web.catalog.services import (
    duplicates_store,
    tool_set_embeddings,
    tool_vectors_restamp,
    tools_curate,
    tree_build_record,
    tree_fingerprint,
    tree_fingerprint_start,
    tree_store,
)
from synthesis.llm.registry import forget_backend, get_backend
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD
from synthesis.mcp_tree.dedup import (
    EMBED_DTYPES,
    EMBED_RECIPE,
    RECIPES,
    DedupConfig,
    EmbedProcess,
    RememberingJudge,
    embed_dtype,
    embedded_text_hash,
    finish_dedup,
    make_llm_judge,
    plan_dedup,
    release_memory,
    slim_tool,
    text_hash,
    tool_text,
)
from synthesis.mcp_tree.tree import TreeConfig, build_tree, make_llm_namer, resource_phrases

# The embedded judge decodes fewer pairs at once than the backend's default: a batch of 8
# judges at nearly the speed of 16 and holds half the keys, values and prefill activations.
# (32 at once, measured on the corpus: the judge phase 6 s shorter, its peak 550 MB higher,
# over 2 GB in all.)
# No prefix store: the judge's prompts share only their ~75-token instructions, and a prompt
# that reuses them is prefilled alone rather than in a batch.  On the 300-spec sample a
# 32 MB store gave the same verdicts with dedup at 232 s against 196 s without (one run
# each), and the backend's 256 MB default would put #20's 2 GB bound at risk.
EMBEDDED_JUDGE_OPTIONS = {"max_batch_size": 8, "max_prefill_tokens": 4096, "prefix_cache_mb": 0}


def _judge_backend(spec: dict):
    """The judge role's backend alone (the other roles' backends are not built: each would
    load the embedded model), with the embedded model's batch set to
    :data:`EMBEDDED_JUDGE_OPTIONS` unless the spec sets it."""
    name = spec.get("backend", "embedded")
    options = {k: v for k, v in spec.items() if k != "backend"}
    if name == "embedded":
        options = {**EMBEDDED_JUDGE_OPTIONS, **options}
    return get_backend(name, **options)


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB


class Command(BaseCommand):
    help = "Embed, deduplicate (exact, semantic, LLM judge) and cluster stored tools into a two-level tree."

    def add_arguments(self, parser):
        parser.add_argument("--domains", type=int, default=15)
        parser.add_argument("--categories", type=int, default=40)
        parser.add_argument("--lower", type=float, default=0.86, help="Cosine from which a pair goes to the judge")
        parser.add_argument("--upper", type=float, default=0.96, help="Cosine from which a pair is a duplicate")
        parser.add_argument("--judge", dest="judge_mode", choices=["auto", "on", "off"], default="auto",
                            help="who settles the pairs the vectors cannot (borderline pairs, and pairs of one "
                                 "API): auto = the judge role's model when one other than the embedded model is "
                                 "configured, else nobody (they stay apart); on = the judge role's model, even "
                                 "the embedded one; off = nobody")
        parser.add_argument("--no-judge", action="store_true", help="Do not ask the LLM judge (= --judge off)")
        parser.add_argument("--max-judge-pairs", type=int, default=200)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--min-category-size", type=int, default=10,
                            help="fewest tools a category may hold (a smaller one joins its nearest sibling)")
        parser.add_argument("--max-domain-share", type=float, default=0.15,
                            help="most of the canonical tools one domain may hold")
        parser.add_argument("--embed-chunk", type=int, default=2048,
                            help="tools embedded and stored together (a killed run resumes after the last stored chunk)")
        parser.add_argument("--embed-dtype", dest="dtype", choices=list(EMBED_DTYPES), default=None,
                            help="what the embedder computes in (default $INFTOOL_EMBED_DTYPE, else auto: "
                                 "bf16 where the CPU has bf16 instructions that beat float32)")
        parser.add_argument("--namer", choices=["auto", "keywords", "llm"], default="auto",
                            help="who names the nodes: auto = the judge role's model when one other than the "
                                 "embedded model is configured, else the corpus's categories and keyphrases")
        parser.add_argument("--force", action="store_true",
                            help="rebuild even when no tool and no setting changed since the last build")

    def handle(self, *args, **options):
        self._embedder: EmbedProcess | None = None
        try:
            return self._build(*args, **options)
        finally:
            if self._embedder is not None:  # ends the embedder's process, whatever happened
                self._embedder.close()
                self._embedder = None

    def _build(self, *args, domains, categories, lower, upper, no_judge, max_judge_pairs, seed,
               min_category_size, max_domain_share, embed_chunk=2048, namer="auto", force=False,
               dtype=None, judge_mode="auto", **options):
        t0 = time.perf_counter()
        # Tools stored before curation existed get their score now, so the tree's tools are
        # all ready for role-play to filter by usability.
        tools_curate(only_missing=True)
        # The judge role's model judges borderline pairs and, where it is not the embedded
        # one, names the nodes; the settings fingerprint leaves its keys out.
        role_spec = {k: v for k, v in dict(settings.INFTOOL_ROLE_BACKENDS["judge"]).items() if v}
        role_public = {k: v for k, v in role_spec.items() if "key" not in k.lower()}
        stronger = role_spec.get("backend") not in (None, "embedded", "scripted")
        # The embedded 135M model judges no better than chance (#20, on the corpus: 137 of 174
        # pairs "distinct", most with a reply that said both; two runs agreed on 44-48% of
        # pairs) and took 126 of 403 s: by default it is not asked.
        if no_judge:
            judge_mode = "off"
        if judge_mode == "auto" and not stronger:
            self.stdout.write("judge: none (auto: the judge role's model is the embedded one, whose verdicts "
                              "are no better than chance; --judge on asks it): pairs the vectors cannot "
                              "settle stay apart")
        judge_spec = role_spec if judge_mode == "on" or (judge_mode == "auto" and stronger) else None
        namer_spec = role_spec
        if namer == "auto":
            namer = "llm" if stronger else "keywords"
        build_settings = {
            "namer": role_public if namer == "llm" else "keywords",
            "domains": domains, "categories": categories, "lower": lower, "upper": upper,
            "judge": None if judge_spec is None else role_public,
            "max_judge_pairs": max_judge_pairs, "seed": seed, "min_category_size": min_category_size,
            "max_domain_share": max_domain_share,
        }
        fingerprint = tree_fingerprint(recipe=EMBED_RECIPE, settings=build_settings)
        last = None if force else tree_is_current(fingerprint=fingerprint)
        if last is not None:
            self.stdout.write(
                f"nothing changed since tree build {last.pk} ({last.created_at:%Y-%m-%d %H:%M}): "
                f"same tools, same settings; the tree is kept (--force rebuilds it). "
                f"{time.perf_counter() - t0:.1f} s"
            )
            return
        # Stream the tools and keep a slim stand-in of each (exact key and completeness
        # computed on the full schemas, then the schemas dropped), so memory stays bounded
        # by the corpus size times a few hundred bytes rather than by its schemas.
        n_total = Tool.objects.count()
        if not n_total:
            raise CommandError("no tools stored: run ingest_openapi or ingest_mcp first")
        dtype = embed_dtype(dtype)
        recipe = RECIPES[EMBED_RECIPE]
        # A tool whose content changed may keep its vector (its embedded text may not have),
        # which only the read below can tell: the embedder starts early only for tools that
        # surely need one.
        if Tool.objects.filter(Q(vector__isnull=True) | ~Q(vector__recipe=EMBED_RECIPE)).exists():
            # Some tool needs a vector: the embedder's process starts, and loads its model,
            # while this one reads the tools.
            self._embedder = EmbedProcess(max_seq_length=recipe.max_seq_length, dtype=dtype)
        ids: list[int] = []
        hashes: list[str] = []  # content hash of each tool as read, stored beside its vector
        # Vectors kept whose stamps are out of date: the tool changed but not the text its
        # recipe embeds, or the vector was stored before text hashes were.
        restamp: list[tuple[int, str, str]] = []
        content_changed: set[int] = set()  # tools whose content changed, their embedded text not
        tools: list[dict] = []
        categories_of: list[list[str]] = []
        resources_of: list[list[str]] = []
        emb = np.zeros((n_total, 384), dtype=np.float32)
        missing: list[int] = []
        twins: set[int] = set()  # exact duplicates without a vector of their own
        rep_of: dict[str, int] = {}
        qs = Tool.objects.order_by("id").values_list(
            "id", "name", "description", "input_schema", "output_schema", "source__name", "source__categories",
            "vector__vector", "vector__recipe", "content_hash", "path", "vector__content_hash",
            "vector__text_hash",
        )
        built_from = tree_fingerprint_start(recipe=EMBED_RECIPE, settings=build_settings)
        for i, r in enumerate(qs.iterator(chunk_size=2000)):
            if i >= n_total:  # tools added while this runs wait for the next run
                break
            ids.append(r[0])
            hashes.append(r[9])
            built_from.update(f"\n{r[0]}:{r[9]}".encode())
            tools.append(slim_tool({"name": r[1], "description": r[2], "inputSchema": r[3], "outputSchema": r[4],
                                    "source": r[5]}, key=r[0]))
            categories_of.append(list(r[6] or []))
            resources_of.append(resource_phrases(r[10]))
            # Dedup and the tree read only the vector of each exact group's first tool (its
            # twins share name and schema), so only that one is embedded and stored.
            rep = rep_of.setdefault(tools[-1]["_exact_key"], i)
            ours = bool(r[7]) and r[8] == EMBED_RECIPE  # a vector of this recipe
            current = ours and r[11] == r[9] and bool(r[12])
            if ours and not current:
                # A vector of this recipe whose stamps are not the tool's: kept if the text
                # it was made from is still the tool's text (or, stored before text hashes
                # were, its content is still the tool's).
                digest = embedded_text_hash(tools[-1])
                if digest == r[12] or (not r[12] and r[11] == r[9]):
                    current = True
                    restamp.append((r[0], r[9], digest))
                    if r[11] != r[9]:
                        content_changed.add(r[0])
            if current:
                emb[i] = np.frombuffer(bytes(r[7]), dtype="<f4")
            elif rep == i:
                missing.append(i)
            else:
                twins.add(i)
        emb = emb[: len(ids)]
        if restamp:
            stamped = tool_vectors_restamp(ids=[x[0] for x in restamp], hashes=[x[1] for x in restamp],
                                           text_hashes=[x[2] for x in restamp])
            if content_changed:
                self.stdout.write(f"{len(content_changed)} changed tools keep their vectors (the text embedded "
                                  f"is the same); {stamped} vectors stamped")
        t_read = time.perf_counter() - t0
        peak = {"reading": _peak_mb()}
        t_embed = time.perf_counter()
        if missing:
            # Tools whose texts are equal share one vector, encoded once (on the corpus,
            # 101,676 texts for 104,386 tools).  (Chunks of texts of like length were tried:
            # 4% faster on 8,192 texts alone, 19 s slower on the corpus, so not kept.)
            by_text: dict[str, list[int]] = {}
            for i in missing:
                by_text.setdefault(recipe.text(tools[i]), []).append(i)
            texts = list(by_text)
            chunk = max(1, embed_chunk)
            chunks = [texts[s : s + chunk] for s in range(0, len(texts), chunk)]
            self.stdout.write(f"embedding {len(missing)} tools ({len(texts)} distinct texts, {EMBED_RECIPE}, {dtype})")
            # The embedder runs in a process of its own, a chunk ahead: this one stores each
            # chunk as soon as it is made (a killed run resumes after it) while the next is
            # encoded, and the model's memory leaves with that process.
            embedder = self._embedder or EmbedProcess(max_seq_length=recipe.max_seq_length, dtype=dtype)
            self._embedder = embedder
            embedder.submit(chunks[0])
            for k, part in enumerate(tqdm(chunks, desc="embed", unit="chunk", file=self.stderr._out)):
                if k + 1 < len(chunks):
                    embedder.submit(chunks[k + 1])
                vecs = embedder.result()
                rows = [i for t in part for i in by_text[t]]
                vecs = np.repeat(vecs, [len(by_text[t]) for t in part], axis=0)
                emb[rows] = vecs
                tool_set_embeddings(ids=[ids[i] for i in rows], vectors=vecs, recipe=EMBED_RECIPE,
                                    hashes=[hashes[i] for i in rows],
                                    text_hashes=[text_hash(t) for t in part for _ in by_text[t]])
            del by_text, texts, chunks
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
        for i in twins:
            emb[i] = emb[rep_of[tools[i]["_exact_key"]]]
        t_embed = time.perf_counter() - t_embed
        peak["embedding"] = _peak_mb()

        judge = None
        if judge_spec is not None:
            # Verdicts on pairs of tools that kept their vector are still good; the judge's
            # model is loaded only if some pair has none.
            changed = {ids[i] for i in missing} | content_changed  # the judge reads parameters too
            judge = RememberingJudge(lambda: make_llm_judge(_judge_backend(judge_spec)),
                                     known=judge_verdicts_kept(changed=changed))
        t_dedup = time.perf_counter()
        cfg = DedupConfig(lower=lower, upper=upper, max_judge_pairs=max_judge_pairs)
        plan = plan_dedup(tools, embeddings=emb, config=cfg, judged=judge is not None)
        released = judge is not None and judge.will_ask([(tools[a], tools[b]) for a, b, _ in plan.to_judge])
        if released:
            # The judge's model is about to load: no vectors beside it (#20: on the corpus the
            # judge phase was the run's peak, with 350 MB of vectors held for the tree). They
            # are stored; the tree reads its canonical tools' back.
            plan.drop_embeddings()
            del emb
            release_memory()
        result = finish_dedup(plan, tools, judge)
        del plan
        decisions = [
            {
                "tool_id": ids[d.tool], "canonical_id": ids[d.other], "method": d.method, "similarity": d.similarity,
                "is_duplicate": d.verdict, "judge_verdict": ("duplicate" if d.verdict else "distinct") if d.method == "judge" else "",
                "rationale": d.rationale,
            }
            for d in result.decisions
        ]
        canonical_of = {ids[i]: (None if c == i else ids[c]) for i, c in enumerate(result.canonical_of)}
        dedup_stats, n_removed, keep = result.stats, result.duplicates, result.canonical
        links = duplicates_store(decisions=decisions, canonical_of=canonical_of)
        reused = judge.reused if judge else 0
        # The judge's model is not needed for the tree: dropped, so that the tree's own peak
        # does not come on top of it (#20: the corpus run's peak 3.45 GB with it, 2.37 without).
        # Only the judge's backend: a process that called this command keeps its others.
        if judge is not None and judge.backend is not None:
            forget_backend(judge.backend)
        del judge, result, decisions
        release_memory()
        t_dedup = time.perf_counter() - t_dedup
        peak["dedup"] = _peak_mb()

        t_tree = time.perf_counter()
        # The tree reads only the canonical tools: the rest (and every full-corpus list) is
        # dropped first, so the clustering's own copies do not come on top of them.
        if released:
            # A twin without a vector of its own has its exact group's first tool's.
            kept_emb = tool_vectors(ids=[ids[rep_of[tools[i]["_exact_key"]] if i in twins else i] for i in keep],
                                    recipe=EMBED_RECIPE)
            self.stdout.write(f"vectors released while the judge ran; {len(keep)} read back for the tree")
        else:
            kept_emb = emb[keep]
            del emb
        texts = [tool_text(tools[i]) for i in keep]
        kept_sources = [tools[i]["source"] for i in keep]
        kept_categories = [categories_of[i] for i in keep]
        kept_resources = [resources_of[i] for i in keep]
        del tools, categories_of, resources_of, rep_of, twins, hashes
        release_memory()
        tree = build_tree(
            kept_emb, texts, kept_categories, sources=kept_sources, resources=kept_resources,
            namer=make_llm_namer(_judge_backend(namer_spec)) if namer == "llm" else None,
            config=TreeConfig(n_domains=domains, n_categories=max(categories, domains), seed=seed,
                              min_category_size=min_category_size, max_domain_share=max_domain_share),
        )
        # Duplicates sit in their canonical tool's category, so browsing by category shows them.
        duplicates_of: dict[int, list[int]] = {}
        for tool_id, canonical_id in canonical_of.items():
            if canonical_id is not None:
                duplicates_of.setdefault(canonical_id, []).append(tool_id)
        payload = []
        for d in tree.domains():
            cats = [n for n in tree.categories() if n.parent == d.key]
            payload.append({
                "name": d.name, "name_source": d.name_source, "description": ", ".join(d.keywords),
                "categories": [
                    {"name": c.name, "name_source": c.name_source, "description": ", ".join(c.keywords),
                     "tool_ids": [ids[keep[m]] for m in c.members],
                     "duplicate_ids": [t for m in c.members for t in duplicates_of.get(ids[keep[m]], ())]}
                    for c in cats
                ],
            })
        n_dom, n_cat = tree_store(domains=payload)
        t_tree = time.perf_counter() - t_tree
        peak["tree"] = _peak_mb()

        table = [
            ("tools", len(ids)),
            ("embedded now", len(missing)),
            ("exact duplicates", dedup_stats.get("exact_duplicates", 0)),
            ("candidate pairs", dedup_stats.get("candidate_pairs", 0)),
            ("judged pairs", dedup_stats.get("judged", 0)),
            ("judge verdicts reused", reused),
            ("duplicates removed", n_removed),
            ("canonical tools", len(keep)),
            ("decisions stored", links),
            (f"canonical usable (>= {DEFAULT_THRESHOLD:g})", curation_summary(threshold=DEFAULT_THRESHOLD).canonical_kept),
            ("domains", n_dom),
            ("categories", n_cat),
            ("reading s", f"{t_read:.1f}"),
            ("embedding s", f"{t_embed:.1f}"),
            ("dedup s", f"{t_dedup:.1f}"),
            ("tree s", f"{t_tree:.1f}"),
            ("total s", f"{time.perf_counter() - t0:.1f}"),
            # The process's peak resident set so far, at the end of each phase.
            *((f"peak RSS after {k} MB", v) for k, v in peak.items()),
        ]
        tree_build_record(fingerprint=built_from.hexdigest(), settings=build_settings, stats=dict(table))
        width = max(len(k) for k, _ in table)
        self.stdout.write("\n" + "\n".join(f"{k:<{width}}  {v:>10}" for k, v in table))
