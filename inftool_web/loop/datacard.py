"""The data card of an iteration: what it produced and kept, how its texts were written,
whether its values pass their schemas, how varied its requests are, whether it overlaps
BFCL, which models played which role, and how often reviewers agree with the verifiers.

``iteration_build_data_card`` computes the card and stores it on ``Iteration.data_card``
(when synthesis finishes, and on demand: ``manage.py data_card --iteration N``);
``data_card_get`` reads it with its audit section brought up to date (reviewers audit
after the card is built); ``data_card_markdown`` renders it as a Hugging Face dataset card
(``README.md`` with YAML metadata) for exports.

Where each text came from is read from the step log (``TrajectoryStep.data``): the
scenario's ``meta`` says whether the query or goal is the model's rewrite or the plain
request, and whether each reference call's arguments are the model's or a schema
instance (and what polishing dropped or replaced); each message's ``meta["source"]`` marks
a user turn, call or answer built without the model (``plain``, ``reference``); a vote's
``meta["abstain"]`` marks one that was not counted.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from inftool_web.synth.models import Message, Trajectory, TrajectoryStep
from inftool_web.synth.selectors import calls_of
from synthesis.llm.embedded import EMBEDDED_MODEL_NAME
from synthesis.llm.roles import ROLES, resolve_role_specs
from synthesis.records import Mode, values
from synthesis.roleplay.checks import ValueChecks, argument_value_checks
from synthesis.roleplay.diversity import NEAR_DUPLICATE_THRESHOLD, distinct_n, near_duplicate_share
from training.contamination import check_contamination

from .backends import role_backend_specs
from .models import Iteration

log = logging.getLogger(__name__)

CARD_VERSION = 1
MODES = values(Mode)
TERMINAL = ("done", "rejected", "failed")
KEPT = Q(audit_decision="accept") | Q(audit_decision="", verdict="accepted")
# The texts a trajectory is made of, in the order the card lists them.
TEXT_KINDS = {
    "queries": "user requests of single-turn tasks (the model's rewrite, or the plain request)",
    "goals": "multi-turn goals (the model's, or a plain statement of the plan)",
    "reference_arguments": "arguments of reference calls (the model's, or a schema instance)",
    "user_turns": "multi-turn user turns (the User Simulator's, or a plain turn)",
    "agent_calls": "Tool Agent messages with calls (the model's, or the plan's reference step)",
    "answers": "Tool Agent text answers (the model's, or built from the results / the plan)",
    "votes": "verifier votes (counted, or abstained: unreadable or judging nothing)",
}
MAX_LISTED = 50  # flags, disagreements and failures kept in the card


# ----------------------------------------------------------------------------- plain helpers


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 4 places, ``None`` for an empty whole.

    >>> rate(2, 3), rate(0, 0)
    (0.6667, None)
    """
    return round(part / whole, 4) if whole else None


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over the same items: ``(po - pe) / (1 - pe)``, with
    ``po`` the observed agreement and ``pe`` the agreement expected by chance from each
    rater's own label frequencies.  ``None`` when undefined (no items, or both raters
    always gave the one same label).

    >>> pairs = [("a", "a")] * 3 + [("r", "r")] * 4 + [("a", "r")] * 2 + [("r", "a")]
    >>> cohen_kappa(pairs)  # po = 0.7, pe = 0.4 * 0.5 + 0.6 * 0.5 = 0.5
    0.4
    >>> cohen_kappa([("a", "a"), ("a", "a")]) is None
    True
    """
    pairs = list(pairs)
    n = len(pairs)
    if not n:
        return None
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    po = sum(a == b for a, b in pairs) / n
    pe = sum(first[label] * second[label] for label in first.keys() | second.keys()) / (n * n)
    if math.isclose(pe, 1.0):
        return None
    return round((po - pe) / (1 - pe), 4)


def size_category(n: int) -> str:
    """The Hugging Face ``size_categories`` value for ``n`` rows.

    >>> size_category(0), size_category(999), size_category(1000), size_category(2_500_000)
    ('n<1K', 'n<1K', '1K<n<10K', '1M<n<10M')
    """
    bounds = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
              (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>1T" if n >= 10**12 else "1B<n<10B" if n < 10**10 else "10B<n<100B" if n < 10**11 else "100B<n<1T"


def _tally() -> dict[str, Counter]:
    return {kind: Counter() for kind in TEXT_KINDS}


def _source(meta: Any) -> str:
    src = meta.get("source") if isinstance(meta, dict) else None
    return str(src) if src else "model"


def tally_step(tally: dict[str, Counter], kind: str, data: dict[str, Any], *, first_user: bool) -> None:
    """Count where the texts of one stored step came from (see the module docstring).

    ``first_user`` says whether a user message is the trajectory's first one: in a
    single-turn task that one is the query, already counted from the scenario.
    """
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    if kind == "scenario":
        if data.get("mode") == "multi_turn":
            tally["goals"][_source(meta.get("goal"))] += 1
        elif data.get("query") or meta.get("query"):
            tally["queries"][_source(meta.get("query"))] += 1
        for note in meta.get("reference") or []:
            if isinstance(note, dict):
                tally["reference_arguments"]["fallback" if note.get("fallback") else "model"] += 1
    elif kind == "message":
        role = data.get("role")
        if role == "user" and ("turn" in meta or not first_user):
            tally["user_turns"][_source(meta)] += 1
        elif role == "assistant":
            tally["agent_calls" if data.get("tool_calls") else "answers"][_source(meta)] += 1
    elif kind == "vote":
        if meta.get("error"):
            tally["votes"]["unreadable"] += 1
        elif meta.get("abstain"):
            tally["votes"]["abstained"] += 1
        else:
            tally["votes"]["model"] += 1


def texts_summary(tally: dict[str, Counter]) -> dict[str, dict[str, Any]]:
    """Per kind of text: how many, how many the model wrote (and its share), how many a
    fallback built (or, for votes, were not counted), and the count of each source.

    >>> texts_summary({"queries": Counter(model=3, plain=1)})["queries"]
    {'total': 4, 'model': 3, 'fallback': 1, 'model_share': 0.75, 'sources': {'model': 3, 'plain': 1}}
    """
    out = {}
    for kind, counts in tally.items():
        total = sum(counts.values())
        model = counts.get("model", 0)
        out[kind] = {"total": total, "model": model, "fallback": total - model, "model_share": rate(model, total),
                     "sources": dict(sorted(counts.items()))}
    return out


def polishing_counts(scenario_meta: dict[str, Any]) -> Counter:
    """What polishing did to the reference arguments of one scenario, by action.

    >>> polishing_counts({"reference": [{"polished": [{"action": "dropped"}, {"action": "replaced"}]},
    ...                                 {"fallback": "schema_instance", "fallback_invalid": True}]})
    Counter({'dropped': 1, 'replaced': 1, 'schema_instance': 1, 'fallback_invalid': 1})
    """
    out: Counter = Counter()
    for note in scenario_meta.get("reference") or []:
        if not isinstance(note, dict):
            continue
        for change in note.get("polished") or []:
            if isinstance(change, dict) and change.get("action"):
                out[str(change["action"])] += 1
        if note.get("fallback"):
            out[str(note["fallback"])] += 1
        if note.get("fallback_invalid"):
            out["fallback_invalid"] += 1
    return out


# ----------------------------------------------------------------------------- the parts


def _rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    finished = [r for r in rows if r["status"] in TERMINAL]
    accepted = sum(r["verdict"] == "accepted" for r in finished)
    repaired = sum(bool(r["repaired"]) for r in finished)
    return {
        "trajectories": len(rows),
        "finished": len(finished),
        "accepted": accepted,
        "rejected": sum(r["verdict"] == "rejected" for r in finished),
        "failed": sum(r["status"] == "failed" for r in finished),
        "kept": sum(r["kept"] for r in rows),
        "repaired": repaired,
        "acceptance_rate": rate(accepted, len(finished)),
        "repair_rate": rate(repaired, len(finished)),
    }


def _production(rows: list[dict[str, Any]]) -> tuple[dict, dict]:
    by_mode: dict[str, list] = defaultdict(list)
    for r in rows:
        by_mode[r["mode"]].append(r)
    rates = {"overall": _rates(rows), "by_mode": {m: _rates(by_mode[m]) for m in MODES if by_mode.get(m)}}
    kept = [r for r in rows if r["kept"]]
    counts = {
        "kept": len(kept),
        "by_mode": {m: n for m in MODES if (n := sum(r["mode"] == m for r in kept))},
        "by_domain": dict(sorted(Counter(r["domain"] or "(none)" for r in kept).items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_difficulty": {d: sum(r["difficulty"] == d for r in kept) for d in ("easy", "hard")},
        "by_mode_difficulty": {
            m: {d: sum(r["mode"] == m and r["difficulty"] == d for r in kept) for d in ("easy", "hard")}
            for m in MODES if any(r["mode"] == m for r in kept)
        },
    }
    return counts, rates


def _texts(iteration: Iteration, kept_ids: set[int]) -> tuple[dict, dict]:
    """Text sources over every trajectory and over the kept ones, and polishing counts."""
    every, kept = _tally(), _tally()
    polish_all: Counter = Counter()
    polish_kept: Counter = Counter()
    seen_user: set[int] = set()
    steps = (
        TrajectoryStep.objects.filter(trajectory__iteration=iteration, kind__in=["scenario", "message", "vote"])
        .order_by("trajectory_id", "index").values_list("trajectory_id", "kind", "data")
    )
    for tid, kind, data in steps.iterator(chunk_size=2000):
        if not isinstance(data, dict):
            continue
        first_user = False
        if kind == "message" and data.get("role") == "user" and tid not in seen_user:
            seen_user.add(tid)
            first_user = True
        tally_step(every, kind, data, first_user=first_user)
        if tid in kept_ids:
            tally_step(kept, kind, data, first_user=first_user)
        if kind == "scenario" and isinstance(data.get("meta"), dict):
            counts = polishing_counts(data["meta"])
            polish_all.update(counts)
            if tid in kept_ids:
                polish_kept.update(counts)
    actions = ("dropped", "replaced", "kept", "schema_instance", "fallback_invalid")
    polishing = {
        "kept_trajectories": {a: polish_kept.get(a, 0) for a in actions},
        "all_trajectories": {a: polish_all.get(a, 0) for a in actions},
    }
    return {"all": texts_summary(every), "kept": texts_summary(kept)}, polishing


def _value_checks(kept_qs) -> dict[str, Any]:
    agent_calls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for tid, tool_calls in (Message.objects.filter(trajectory__in=kept_qs, role="assistant")
                            .exclude(tool_calls=[]).values_list("trajectory_id", "tool_calls").iterator(2000)):
        agent_calls[tid].extend(calls_of(tool_calls))
    reference, agent = ValueChecks(), ValueChecks()
    for tid, tools, refs in kept_qs.values_list("id", "offered_tools", "reference_calls").iterator(500):
        tools = [t for t in tools or [] if isinstance(t, dict) and t.get("name")]
        reference.add(argument_value_checks(calls_of(refs), tools))
        agent.add(argument_value_checks(agent_calls.get(tid, []), tools))
    total = ValueChecks()
    total.add(reference)
    total.add(agent)

    def part(c: ValueChecks) -> dict[str, Any]:
        return {"values": c.total, "valid": c.passed, "share": c.share, "failures": c.failures[:MAX_LISTED]}

    return {"all": part(total), "reference_calls": part(reference), "agent_calls": part(agent)}


def _requests(kept_qs) -> list[tuple[int, str]]:
    """The first user message of each kept trajectory: the query, or the opening turn."""
    rows = (Message.objects.filter(trajectory__in=kept_qs, role="user")
            .order_by("trajectory_id", "index").distinct("trajectory_id")
            .values_list("trajectory_id", "content"))
    return [(tid, text) for tid, text in rows if text and text.strip()]


def _diversity(requests: list[tuple[int, str]], *, embeddings: bool) -> dict[str, Any]:
    texts = [t for _, t in requests]
    out: dict[str, Any] = {"requests": len(texts), "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
                           "exact_duplicates": len(texts) - len(set(" ".join(t.lower().split()) for t in texts))}
    if not embeddings:
        out["near_duplicates"] = {"status": "not run", "reason": "embeddings are off for this build",
                                  "threshold": NEAR_DUPLICATE_THRESHOLD}
        return out
    try:
        result = near_duplicate_share(texts, NEAR_DUPLICATE_THRESHOLD)
    except Exception as exc:  # noqa: BLE001 - the card says why instead of failing
        out["near_duplicates"] = {"status": "not run", "reason": f"{type(exc).__name__}: {exc}"[:300],
                                  "threshold": NEAR_DUPLICATE_THRESHOLD}
        return out
    out["near_duplicates"] = {"status": "run", "model": "all-MiniLM-L6-v2", **result}
    return out


def _contamination(kept_qs, *, embeddings: bool, reference: list[tuple[str, str]] | None) -> dict[str, Any]:
    by_traj: dict[int, list[dict[str, str]]] = defaultdict(list)
    for tid, text in (Message.objects.filter(trajectory__in=kept_qs, role="user")
                      .order_by("trajectory_id", "index").values_list("trajectory_id", "content").iterator(2000)):
        by_traj[tid].append({"role": "user", "content": text or ""})
    items = [{"id": str(tid), "messages": msgs} for tid, msgs in by_traj.items()]
    methods = ["exact", "near"] + (["embedding"] if embeddings else [])
    base = {"reference": "BFCL V3" if reference is None else f"{len(reference)} given texts", "methods": methods,
            "near_threshold": 0.7, "embedding_threshold": 0.9 if embeddings else None, "checked": len(items)}
    if not items:
        return {"status": "run", **base, "flagged": 0, "flags": []}
    try:
        flags = check_contamination(items, near_threshold=0.7, embedding_threshold=0.9,
                                    use_embeddings=embeddings, reference=reference)
    except Exception as exc:  # noqa: BLE001 - e.g. the BFCL package is missing: say so
        return {"status": "not run", **base, "reason": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "run", **base, "flagged": len(flags),
            "by_method": dict(Counter(f.method for f in flags)),
            "flags": [{"trajectory": int(f.item_id), "bfcl_id": f.bfcl_id, "method": f.method,
                       "similarity": f.similarity, "text": f.item_text[:300], "bfcl_text": f.bfcl_text[:300]}
                      for f in flags[:MAX_LISTED]]}


def _backends(iteration: Iteration) -> dict[str, Any]:
    """Backend and model of every role, without loading any model (no secrets)."""
    try:
        specs = resolve_role_specs(role_backend_specs(iteration))
    except ValueError as exc:
        return {"error": str(exc)[:300]}
    out: dict[str, Any] = {}
    for role in ROLES:
        spec = specs[role]
        backend = spec.get("backend", "")
        model = spec.get("model") or spec.get("model_path") or (EMBEDDED_MODEL_NAME if backend == "embedded" else "")
        entry = {"backend": backend, "model": str(model) or "(the server's default)"}
        if spec.get("base_url"):
            entry["base_url"] = spec["base_url"]
        out[role] = entry
    ckpt = iteration.input_checkpoint
    if ckpt is not None:
        out["agent"]["checkpoint"] = ckpt.name
    # The scenario (queries, goals, reference calls) is written by the User Simulator's backend.
    out["scenario"] = {**out["user"], "same_as": "user"}
    return out


def audit_agreement(*, iteration: Iteration) -> dict[str, Any]:
    """How often reviewers' decisions agree with the pipeline's verdicts, over the
    audited trajectories that have a verdict (a flag counts as a rejection): the share,
    Cohen's kappa, the 2×2 table and the disagreements (ids and links)."""
    rows = list(
        Trajectory.objects.filter(iteration=iteration, verdict__in=["accepted", "rejected"])
        .exclude(audit_decision="").order_by("id").values("id", "seq", "mode", "verdict", "audit_decision")
    )
    pairs = [(r["verdict"], "accepted" if r["audit_decision"] == "accept" else "rejected") for r in rows]
    table = Counter(f"verifiers_{v}__reviewer_{a}" for v, a in pairs)
    disagreements = []
    for r, (v, a) in zip(rows, pairs, strict=True):
        if v != a:
            try:
                url = reverse("web:trajectory", args=[r["id"]])
            except NoReverseMatch:
                url = ""
            disagreements.append({"id": r["id"], "seq": r["seq"], "mode": r["mode"], "verdict": v,
                                  "decision": r["audit_decision"], "url": url})
    agree = sum(v == a for v, a in pairs)
    return {
        "audited": len(rows),
        "agree": agree,
        "agreement": rate(agree, len(rows)),
        "kappa": cohen_kappa(pairs),
        "table": {f"verifiers_{v}__reviewer_{a}": table.get(f"verifiers_{v}__reviewer_{a}", 0)
                  for v in ("accepted", "rejected") for a in ("accepted", "rejected")},
        "disagreements": disagreements[:MAX_LISTED],
    }


# ----------------------------------------------------------------------------- services


def data_card_compute(
    *, iteration: Iteration, embeddings: bool | None = None,
    contamination_reference: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The card of ``iteration`` as a JSON-ready dict (nothing is stored).

    ``embeddings`` (default: ``settings.INFTOOL_DATA_CARD_EMBEDDINGS``) turns on the
    MiniLM checks: near-duplicate requests and the paraphrase part of the contamination
    check.  ``contamination_reference``: (id, text) pairs to check against instead of
    every BFCL V3 user turn.
    """
    if embeddings is None:
        embeddings = getattr(settings, "INFTOOL_DATA_CARD_EMBEDDINGS", True)
    own = Trajectory.objects.filter(iteration=iteration)
    rows = list(own.values("id", "mode", "status", "verdict", "audit_decision", "repaired", "difficulty",
                           "domain__name"))
    for r in rows:
        # the effective verdict (Trajectory.effective_verdict): an audit beats the verifiers
        r["kept"] = r["audit_decision"] == "accept" or (r["audit_decision"] == "" and r["verdict"] == "accepted")
        r["domain"] = r.pop("domain__name")
    kept_qs = own.filter(KEPT)
    counts, rates = _production(rows)
    texts, polishing = _texts(iteration, {r["id"] for r in rows if r["kept"]})
    values = _value_checks(kept_qs)
    values["polishing"] = polishing
    requests = _requests(kept_qs)
    return {
        "version": CARD_VERSION,
        "built_at": timezone.now().isoformat(),
        "iteration": {"id": iteration.pk, "number": iteration.number, "name": iteration.name,
                      "status": iteration.status, "seed": (iteration.config or {}).get("seed"),
                      "created_at": iteration.created_at.isoformat() if iteration.created_at else None},
        "counts": counts,
        "rates": rates,
        "texts": texts,
        "values": values,
        "diversity": _diversity(requests, embeddings=embeddings),
        "contamination": _contamination(kept_qs, embeddings=embeddings, reference=contamination_reference),
        "backends": _backends(iteration),
        "audit": audit_agreement(iteration=iteration),
    }


def iteration_build_data_card(
    *, iteration: Iteration, embeddings: bool | None = None,
    contamination_reference: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Compute the card of ``iteration`` (see :func:`data_card_compute`) and store it."""
    card = data_card_compute(iteration=iteration, embeddings=embeddings,
                             contamination_reference=contamination_reference)
    now = timezone.now()
    with transaction.atomic():
        Iteration.objects.filter(pk=iteration.pk).update(data_card=card, data_card_at=now)
    iteration.data_card, iteration.data_card_at = card, now
    return card


def data_card_after_synthesis(*, iteration_id: int) -> None:
    """Build the card once synthesis has finished; a failure is logged and stored on the
    card (the iteration goes on: the card is a report, not a stage)."""
    try:
        iteration_build_data_card(iteration=Iteration.objects.select_related("input_checkpoint").get(pk=iteration_id))
    except Exception as exc:  # noqa: BLE001
        log.exception("building the data card of iteration %s failed", iteration_id)
        Iteration.objects.filter(pk=iteration_id).update(
            data_card={"version": CARD_VERSION, "error": f"{type(exc).__name__}: {exc}"[:2000]},
            data_card_at=timezone.now())


def _in_order(mapping: Any, order: Sequence[str]) -> Any:
    if not isinstance(mapping, dict):
        return mapping
    rank = {k: i for i, k in enumerate(order)}
    return dict(sorted(mapping.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def card_in_order(card: dict[str, Any]) -> dict[str, Any]:
    """The card with its mappings back in reading order: PostgreSQL's jsonb stores object
    keys sorted by length, so a stored card reads ``single, multiple, parallel, ...``."""
    card = json.loads(json.dumps(card))
    counts, rates = card.get("counts") or {}, card.get("rates") or {}
    for part, key in ((rates, "by_mode"), (counts, "by_mode"), (counts, "by_mode_difficulty")):
        if key in part:
            part[key] = _in_order(part[key], MODES)
    if isinstance(counts.get("by_domain"), dict):
        counts["by_domain"] = dict(sorted(counts["by_domain"].items(), key=lambda kv: (-kv[1], kv[0])))
    if isinstance(card.get("texts"), dict):
        card["texts"] = {k: _in_order(v, TEXT_KINDS) for k, v in _in_order(card["texts"], ("all", "kept")).items()}
    if "backends" in card:
        card["backends"] = _in_order(card["backends"], (*ROLES, "scenario"))
    return card


def data_card_get(*, iteration: Iteration) -> dict[str, Any]:
    """The stored card in reading order, with its audit section as of now ({} before the
    card is built)."""
    card = card_in_order(iteration.data_card or {})
    if card and "error" not in card:
        card["audit"] = audit_agreement(iteration=iteration)
    return card


# ----------------------------------------------------------------------------- markdown


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _num(x: Any) -> str:
    return "—" if x is None else f"{x:,}" if isinstance(x, int) else str(x)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _card_sections(card: dict[str, Any], level: int = 2) -> list[str]:
    h = "#" * level
    if card.get("error"):
        return [f"{h} Data card", "", f"The card could not be built: {card['error']}", ""]
    out: list[str] = []
    counts, rates = card.get("counts") or {}, card.get("rates") or {}
    overall = rates.get("overall") or {}
    out += [f"{h} Counts", "",
            f"{_num(overall.get('trajectories'))} trajectories synthesized, {_num(overall.get('finished'))} finished, "
            f"{_num(overall.get('accepted'))} accepted by the verifiers, {_num(counts.get('kept'))} kept "
            "(accepted after human audit overrides).", ""]
    by_mode = rates.get("by_mode") or {}
    kept_md = counts.get("by_mode_difficulty") or {}
    by_difficulty = counts.get("by_difficulty") or {}
    out += _table(["mode", "synthesized", "failed", "accepted", "acceptance", "repaired", "repair rate", "kept easy",
                   "kept hard"],
                  [[m, _num(r.get("trajectories")), _num(r.get("failed")), _num(r.get("accepted")),
                    _pct(r.get("acceptance_rate")), _num(r.get("repaired")), _pct(r.get("repair_rate")),
                    _num((kept_md.get(m) or {}).get("easy", 0)), _num((kept_md.get(m) or {}).get("hard", 0))]
                   for m, r in by_mode.items()]
                  + [["**all**", _num(overall.get("trajectories")), _num(overall.get("failed")),
                      _num(overall.get("accepted")), _pct(overall.get("acceptance_rate")),
                      _num(overall.get("repaired")), _pct(overall.get("repair_rate")),
                      _num(by_difficulty.get("easy", 0)), _num(by_difficulty.get("hard", 0))]])
    out += [f"{h}# Kept trajectories by domain", ""]
    out += _table(["domain", "kept"], [[d, _num(n)] for d, n in (counts.get("by_domain") or {}).items()]) \
        if counts.get("by_domain") else ["None kept.", ""]

    texts = (card.get("texts") or {}).get("all") or {}
    out += [f"{h} Written by the model or by a fallback", "",
            "Where each text of every synthesized trajectory came from (the step log records it).", ""]
    out += _table(["text", "total", "by the model", "by a fallback", "model share", "sources"],
                  [[k.replace("_", " "), _num(t.get("total")), _num(t.get("model")), _num(t.get("fallback")), _pct(t.get("model_share")),
                    ", ".join(f"{s} {n}" for s, n in (t.get("sources") or {}).items()) or "—"]
                   for k, t in texts.items()])

    values = card.get("values") or {}
    out += [f"{h} Value checks", "",
            "Argument values of the kept trajectories, each validated against its parameter's schema "
            "(type, enum, bounds, `pattern` and `format`).", ""]
    out += _table(["calls", "values", "valid", "share"],
                  [[name, _num((values.get(key) or {}).get("values")),
                    _num((values.get(key) or {}).get("valid")), _pct((values.get(key) or {}).get("share"))]
                   for key, name in (("reference_calls", "reference calls"), ("agent_calls", "Tool Agent calls"),
                                     ("all", "all"))])
    failures = (values.get("all") or {}).get("failures") or []
    if failures:
        out += ["Invalid values:", "", *[f"- `{f}`" for f in failures[:10]], ""]
    polish = (values.get("polishing") or {}).get("kept_trajectories") or {}
    if polish:
        out += ["Polishing of the reference arguments of kept trajectories: implausible values the model wrote "
                "(placeholders, runs of digits, pasted patterns) are dropped when optional, replaced when required "
                "(or kept when no valid replacement exists); argument sets the model could not write at all are "
                "built from the schema.", ""]
        out += _table(["dropped", "replaced", "kept", "built from the schema", "of those, invalid"],
                      [[_num(polish.get(k, 0)) for k in
                        ("dropped", "replaced", "kept", "schema_instance", "fallback_invalid")]])

    div = card.get("diversity") or {}
    nd = div.get("near_duplicates") or {}
    out += [f"{h} Request diversity", "",
            f"Over {_num(div.get('requests'))} requests (queries and opening user turns of kept trajectories): "
            f"distinct-1 {_num(div.get('distinct_1'))}, distinct-2 {_num(div.get('distinct_2'))}, "
            f"{_num(div.get('exact_duplicates'))} exact duplicates.", ""]
    if nd.get("status") == "run":
        out += [f"Near-duplicates (all-MiniLM-L6-v2 cosine ≥ {nd.get('threshold')} to another request): "
                f"{_num(nd.get('near_duplicates'))} of {_num(nd.get('texts'))} ({_pct(nd.get('share'))}).", ""]
    else:
        out += [f"Near-duplicates: not run ({nd.get('reason', 'no reason recorded')}).", ""]

    con = card.get("contamination") or {}
    out += [f"{h} Contamination", ""]
    if con.get("status") == "run":
        out += [f"The user turns of {_num(con.get('checked'))} kept trajectories were checked against "
                f"{con.get('reference')} ({', '.join(con.get('methods') or [])}): "
                f"{_num(con.get('flagged'))} flagged.", ""]
        flags = con.get("flags") or []
        if flags:
            out += _table(["trajectory", "BFCL id", "method", "similarity"],
                          [[f"#{f['trajectory']}", f["bfcl_id"], f["method"], f["similarity"]] for f in flags[:20]])
    else:
        out += [f"Not run{': ' + con['reason'] if con.get('reason') else ''}.", ""]

    backends = card.get("backends") or {}
    out += [f"{h} Models", ""]
    if backends.get("error"):
        out += [f"Unknown: {backends['error']}", ""]
    else:
        out += _table(["role", "backend", "model"],
                      [[role, b.get("backend", ""), b.get("model", "") + (f" (checkpoint {b['checkpoint']})"
                                                                          if b.get("checkpoint") else "")]
                       for role, b in backends.items() if isinstance(b, dict)])

    audit = card.get("audit") or {}
    out += [f"{h} Human audit", ""]
    if audit.get("audited"):
        kappa = audit.get("kappa")
        out += [f"{audit['audited']} audited trajectories: reviewers agree with the verifiers' verdicts on "
                f"{audit.get('agree')} ({_pct(audit.get('agreement'))}), Cohen's kappa "
                f"{'undefined' if kappa is None else kappa}.", ""]
        if audit.get("disagreements"):
            out += ["Disagreements:", ""]
            out += [f"- trajectory #{d['id']} ({d['mode']}): verifiers {d['verdict']}, reviewer {d['decision']}"
                    + (f" ({d['url']})" if d.get("url") else "") for d in audit["disagreements"]]
            out.append("")
    else:
        out += ["No trajectory audited yet.", ""]
    return out


def data_card_markdown(
    card: dict[str, Any] | Sequence[dict[str, Any]], *, data_file: str = "data.jsonl",
    export: dict[str, Any] | None = None, license: str = "other",
) -> str:
    """The card (or the cards of several iterations) as a Hugging Face dataset card: YAML
    front matter (``license``, ``task_categories``, ``language``, ``size_categories``,
    ``tags``, ``configs`` pointing at ``data_file``) and readable sections.

    ``export`` describes the data file when the card goes with an export: ``format``,
    ``rows`` and ``filters``; without it the card describes the iteration's kept
    trajectories.
    """
    cards = [card] if isinstance(card, dict) else list(card)
    rows = export.get("rows") if export else sum(((c.get("counts") or {}).get("kept") or 0) for c in cards)
    numbers = [str((c.get("iteration") or {}).get("number", "?")) for c in cards]
    title = "InfTool synthetic tool-use data"
    if numbers:
        title += ", iteration" + ("s " if len(numbers) > 1 else " ") + ", ".join(numbers)
    meta = {
        "license": license,
        "pretty_name": title,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "size_categories": [size_category(int(rows or 0))],
        "tags": ["tool-use", "function-calling", "synthetic", "mcp", "multi-agent", "inftool"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_file}]}],
    }
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {meta['pretty_name']}", "",
             "Tool-use (function-calling) conversations synthesized by InfTool's multi-agent role-play "
             "(User Simulator, Tool Agent, MCP Server Simulator), checked by self-reflection and verified by "
             "voting verifiers; each is split easy/hard by its execution-consistency score. "
             "See \"Close the Loop: Synthesizing Infinite Tool-Use Data via Multi-Agent Role-Playing\" (2025).", ""]
    if export:
        lines += ["## This export", "",
                  f"`{data_file}`: {_num(export.get('rows'))} rows in the `{export.get('format')}` format"
                  + (f", filtered by {', '.join(f'{k}={v}' for k, v in export['filters'].items())}"
                     if export.get("filters") else "") + ".", ""]
        lines += [f"Load it with `datasets.load_dataset(\"<this folder>\")` or "
                  f"`datasets.load_dataset(\"json\", data_files=\"{data_file}\")`.", ""]
    lines += ["## License", "",
              "The conversations were generated by the models listed below from tool definitions converted from "
              "public OpenAPI specifications and MCP servers; the terms of those sources apply to what they hold.",
              ""]
    for c in cards:
        it = c.get("iteration") or {}
        if len(cards) > 1:
            lines += [f"## Iteration {it.get('number', '?')}", ""]
            lines += _card_sections(c, level=3)
        else:
            lines += _card_sections(c, level=2)
        lines += [f"_Card built {c.get('built_at', '?')} for iteration {it.get('number', '?')} "
                  f"(id {it.get('id', '?')})._", ""]
    return "\n".join(lines).rstrip() + "\n"
