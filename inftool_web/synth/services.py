"""Writes for personas and trajectories: planning an iteration's trajectories, storing every
step the role-play engine emits the moment it is emitted, and resuming killed runs.

A trajectory's steps land one transaction each, in the raw step log and in the reading
tables (messages, reflections, votes); a re-delivered task replays the stored log, so it
neither repeats a stored step nor leaves a trajectory marked done half-way.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from inftool_web.catalog.models import Tool, TreeNode
from inftool_web.catalog.services import tools_curate
from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_on_commit
from inftool_web.core.outbound import api_key_for, model_host_problem
from inftool_web.loop.models import Iteration
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD

from .models import Message, Persona, Reflection, Trajectory, TrajectoryStep, VerifierVote

log = logging.getLogger(__name__)

TERMINAL = ("done", "rejected", "failed")
# Small models have short contexts: offering a tool whose schema alone fills the prompt
# only produces truncated conversations.
MAX_TOOL_JSON_CHARS = 2500


class IterationCancelled(Exception):
    """The iteration was cancelled; the run stops at the next step."""


# ----------------------------------------------------------------------------- personas


def persona_content_hash(data: Mapping[str, Any]) -> str:
    key = json.dumps({k: data.get(k) for k in ("name", "role", "background")}, sort_keys=True)
    return hashlib.sha256(key.lower().encode()).hexdigest()


def persona_ensure_seed() -> int:
    """Store the hand-written seed personas (idempotent); returns how many are stored."""
    from synthesis.roleplay.personas import SEED_PERSONAS

    rows = [
        Persona(name=p.name[:200], role=p.role[:200], background=p.background, style=p.style, goals=list(p.goals),
                origin=Persona.Origin.SEED, content_hash=persona_content_hash(p.to_dict()))
        for p in SEED_PERSONAS
    ]
    Persona.objects.bulk_create(rows, ignore_conflicts=True)
    return Persona.objects.filter(origin=Persona.Origin.SEED).count()


def persona_store_generated(*, personas: list[Any], domain: TreeNode | None = None) -> int:
    rows = [
        Persona(name=p.name[:200], role=p.role[:200], background=p.background, style=p.style, goals=list(p.goals),
                domain=domain, origin=Persona.Origin.GENERATED, content_hash=persona_content_hash(p.to_dict()))
        for p in personas
    ]
    created = Persona.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


# ----------------------------------------------------------------------------- planning


def _tool_pool(
    *, domains: list[str], seed: int, want: int, min_usability: float = DEFAULT_THRESHOLD,
) -> dict[str, list[tuple[int, dict, int | None, int | None]]]:
    """Canonical tools at or above the usability threshold, grouped so that tools offered
    together belong together: by tree category when a tree exists, else by API source.
    Returns group -> [(id, mcp, domain, category)]."""
    tools_curate(only_missing=True)  # tools stored before curation existed, or by hand
    candidates = Tool.objects.filter(canonical__isnull=True)
    if domains:
        candidates = candidates.filter(domain__name__in=domains)
    qs = candidates.filter(usability_score__gte=min_usability)
    use_tree = qs.filter(category__isnull=False).exists()
    key_field = "category_id" if use_tree else "source_id"
    keys = sorted(set(qs.values_list(key_field, flat=True)) - {None})
    if not keys:
        if candidates.exists():
            raise ValueError(_below_threshold(candidates, min_usability, domains))
        raise ValueError(
            "no tools to synthesize from" + (f" in domains {domains}" if domains else "")
            + ": ingest some first (manage.py ingest_openapi --sample)"
        )
    from synthesis.mcp_tree.tool_check import tool_problem

    rng = random.Random(seed)
    rng.shuffle(keys)
    pool: dict[str, list] = {}
    total = unusable = 0
    for key in keys:
        rows = list(
            qs.filter(**{key_field: key}).order_by("id")
            .values_list("id", "name", "description", "input_schema", "output_schema", "domain_id", "category_id")[:40]
        )
        group = []
        for pk, name, desc, ins, outs, dom, cat in rows:
            mcp = {"name": name, "description": desc, "inputSchema": ins}
            if outs:
                mcp["outputSchema"] = outs
            if len(json.dumps(mcp)) > MAX_TOOL_JSON_CHARS:
                continue
            # Edited since it was scored: a tool whose schema is not usable JSON Schema
            # would fail every trajectory it is drawn into.
            problem = tool_problem(mcp)
            if problem:
                unusable += 1
                log.warning("tool %s (id %s) left out of planning: %s", name, pk, problem)
                continue
            group.append((pk, mcp, dom, cat))
        if group:
            pool[str(key)] = group
            total += len(group)
        if total >= want and len(pool) >= 8:
            break
    if not pool:
        raise ValueError("every candidate tool's schema is too large to offer to a model"
                         + (f" or unusable ({unusable} not valid JSON Schema)" if unusable else ""))
    return pool


def _below_threshold(candidates, threshold: float, domains: list[str]) -> str:
    """Why no tool can be drawn: how many were scored, the best score, the reasons."""
    reasons: Counter[str] = Counter()
    example: dict[str, str] = {}
    best = None
    scored = 0
    for name, score, found in candidates.filter(usability_score__isnull=False).values_list(
            "name", "usability_score", "usability_reasons").iterator(chunk_size=2000):
        scored += 1
        best = score if best is None else max(best, score)
        for r in found or []:
            reasons[r["code"]] += 1
            example.setdefault(r["code"], f"{name}: {r['message']}")
    top = reasons.most_common(4)
    why = "; ".join(f"{code} x{n}" for code, n in top)
    return (
        f"no tool scores at or above the usability threshold {threshold:g}: {scored} tool(s) scored"
        + (f" in domains {domains}" if domains else "")
        + (f", the best {best:g}" if best is not None else "")
        + (f"; dropped for {why} (e.g. {example[top[0][0]]})" if top else "")
        + ". Lower min_usability (synthesize --min-usability) or add better tools; manage.py curate_tools reports all reasons."
    )


def iteration_plan_trajectories(*, iteration: Iteration) -> int:
    """Create the iteration's trajectory rows (idempotent: a re-run creates none twice)."""
    from inftool_web.loop.iteration_config import IterationConfig
    from synthesis.roleplay.config import RoleplayConfig
    from synthesis.roleplay.engine import plan_specs
    from synthesis.roleplay.steps import Persona as PersonaData

    cfg = IterationConfig.from_dict(iteration.config)
    existing = iteration.trajectories.count()
    if existing >= cfg.count:
        return 0
    persona_ensure_seed()
    pool = _tool_pool(domains=cfg.domains, seed=cfg.seed, want=max(60, cfg.count * 3), min_usability=cfg.min_usability)
    by_name: dict[str, tuple[int, int | None, int | None]] = {}
    grouped: dict[str, list[dict]] = {}
    # Irrelevance tasks ask for a tool of another domain: the tree's top level, or without a
    # tree (groups are API sources) another source.
    domain_of: dict[str, str] = {}
    for key, group in pool.items():
        grouped[key] = [mcp for _, mcp, _, _ in group]
        _, _, dom, cat = group[0]
        domain_of[key] = f"domain:{dom}" if cat is not None and dom is not None else f"group:{key}"
        for pk, mcp, dom, cat in group:
            by_name.setdefault(f"{key}:{mcp['name']}", (pk, dom, cat))
    personas = list(Persona.objects.order_by("id"))
    persona_data = [PersonaData.from_dict(p.as_dict()) for p in personas]
    # The mix is exact (largest remainder over the weights), not sampled, so a small
    # iteration still covers every requested mode; the order is shuffled for a live mix.
    specs = []
    for i, (mode, n) in enumerate(sorted(cfg.mode_counts().items())):
        rp = RoleplayConfig(modes={mode: 1.0})
        specs.extend(plan_specs(grouped, n, rp, personas=persona_data, seed=cfg.seed * 1000 + i, id_prefix=mode,
                                domain_of=domain_of))
    random.Random(cfg.seed).shuffle(specs)
    persona_by_name = {p.name: p for p in personas}
    rows = []
    links = []
    for seq, spec in enumerate(specs):
        if seq < existing:
            continue
        ids = [by_name[f"{spec.domain}:{t['name']}"] for t in spec.tools]
        rows.append(Trajectory(
            iteration=iteration, seq=seq, kind=spec.mode, offered_tools=spec.tools,
            persona=persona_by_name.get(spec.persona.name) if spec.persona else None,
            domain_id=ids[0][1], category_id=ids[0][2],
            engine_state={"seed": spec.seed, "group": spec.domain,
                          **({"absent_tool": spec.absent_tool} if spec.absent_tool else {})},
        ))
        links.append([pk for pk, _, _ in ids])
    with transaction.atomic():
        created = Trajectory.objects.bulk_create(rows, ignore_conflicts=True)
        through = Trajectory.tools.through
        saved = {t.seq: t.pk for t in Trajectory.objects.filter(iteration=iteration, seq__in=[r.seq for r in rows])}
        through.objects.bulk_create(
            [through(trajectory_id=saved[r.seq], tool_id=tid) for r, tids in zip(rows, links, strict=True)
             for tid in dict.fromkeys(tids)],
            ignore_conflicts=True,
        )
    return len(created)


def iteration_start_synthesis(*, iteration: Iteration) -> list[int]:
    """Mark the iteration synthesizing, plan its trajectories (idempotent) and return the
    ids of those not finished yet.  Raises ValueError when there is nothing to plan from."""
    Iteration.objects.filter(pk=iteration.pk).update(status=Iteration.Status.SYNTHESIZING)
    iteration.status = Iteration.Status.SYNTHESIZING
    iteration_plan_trajectories(iteration=iteration)
    return list(iteration.trajectories.exclude(status__in=TERMINAL).order_by("seq").values_list("pk", flat=True))


# ----------------------------------------------------------------------------- the sink


def _event_of(traj: Trajectory) -> dict[str, Any]:
    return {
        "kind": "trajectory", "id": traj.pk, "iteration": traj.iteration_id, "seq": traj.seq, "mode": traj.kind,
        "status": traj.status, "verdict": traj.verdict, "score": traj.score, "difficulty": traj.difficulty,
    }


class DatabaseSink:
    """Stores each step in its own transaction before the engine goes on (see StepSink)."""

    def __init__(self, trajectories: Mapping[str, Trajectory], *, check_cancel_every: float = 2.0):
        self.trajectories = dict(trajectories)
        self._cancel_checked: dict[int, float] = {}
        self._check_every = check_cancel_every

    def _check_cancelled(self, traj: Trajectory) -> None:
        now = time.monotonic()
        if now - self._cancel_checked.get(traj.iteration_id, 0.0) < self._check_every:
            return
        self._cancel_checked[traj.iteration_id] = now
        status = Iteration.objects.filter(pk=traj.iteration_id).values_list("status", flat=True).first()
        if status == Iteration.Status.CANCELLED:
            raise IterationCancelled(f"iteration {traj.iteration_id} was cancelled")

    def _store(self, step, write) -> None:
        from inftool_web.core.text import storable

        traj = self.trajectories[step.trajectory_id]
        self._check_cancelled(traj)
        # A model may write a NUL or a lone surrogate; PostgreSQL would refuse the whole step.
        step = storable(step)
        data = step.to_dict()
        try:
            with transaction.atomic():
                TrajectoryStep.objects.create(trajectory=traj, index=step.index, kind=step.kind, data=data)
                event = write(traj, step)
        except IntegrityError:
            # Stored by an earlier delivery of the same task: the replay skipped it, or two
            # deliveries raced. Either way the stored one wins and nothing is duplicated.
            stored = TrajectoryStep.objects.filter(trajectory=traj, index=step.index).first()
            if stored is None:
                raise
            return
        if event:
            send_on_commit(iteration_group(traj.iteration_id), event)

    # -- StepSink
    def on_scenario(self, step) -> None:
        def write(traj: Trajectory, step):
            traj.goal = step.goal or step.query
            traj.reference_calls = step.reference_calls
            traj.offered_tools = step.tools or traj.offered_tools
            if traj.status == Trajectory.Status.PENDING:
                traj.status = Trajectory.Status.RUNNING
            traj.save(update_fields=["goal", "reference_calls", "offered_tools", "status", "updated_at"])
            return _event_of(traj)

        self._store(step, write)

    def on_message(self, step) -> None:
        def write(traj: Trajectory, step):
            usage = step.meta.get("usage") or {}
            Message.objects.create(
                trajectory=traj, index=step.index, role=step.role, agent=_agent_of(step),
                content=step.content or "", tool_calls=step.tool_calls or [], tool_call_id=step.tool_call_id or "",
                name=(step.name or "")[:100], mcp=step.mcp,
                tool_results=[step.mcp] if step.role == "tool" and step.mcp is not None else [],
                prompt_tokens=int(usage.get("prompt_tokens", 0) or 0),
                completion_tokens=int(usage.get("completion_tokens", 0) or 0),
            )
            return {
                "kind": "step", "trajectory": traj.pk, "index": step.index, "role": step.role,
                "agent": _agent_of(step), "content": (step.content or "")[:2000], "tool_calls": step.tool_calls or [],
            }

        self._store(step, write)

    def on_reflection(self, step) -> None:
        def write(traj: Trajectory, step):
            codes = sorted({p.get("code", "") for ps in step.problems for p in ps if p.get("code")})
            Reflection.objects.create(
                trajectory=traj, index=step.index, step=max(step.target_index, 0),
                problem=",".join(codes)[:64], detail=step.problem[:4000], action=step.action,
                attempts=step.attempts,
                data={"subject": step.subject, "problems": step.problems, "raw_attempts": step.raw_attempts},
            )
            if step.action == "repaired" and not traj.repaired:
                traj.repaired = True
                traj.save(update_fields=["repaired", "updated_at"])
            return None

        self._store(step, write)

    def on_vote(self, step) -> None:
        def write(traj: Trajectory, step):
            VerifierVote.objects.create(
                trajectory=traj, verifier=step.verifier[:64], round=step.round, vote=step.decision,
                perspective=step.perspective[:200], rationale=step.rationale,
                backend=str(step.meta.get("backend", ""))[:200], abstained=bool(step.meta.get("abstain")),
            )
            if traj.status == Trajectory.Status.RUNNING:
                traj.status = Trajectory.Status.VERIFYING
                traj.save(update_fields=["status", "updated_at"])
            return {"kind": "vote", "trajectory": traj.pk, "verifier": step.verifier, "round": step.round,
                    "vote": step.decision}

        self._store(step, write)

    def on_finish(self, step) -> None:
        def write(traj: Trajectory, step):
            _apply_finish(traj, step)
            return _event_of(traj)

        self._store(step, write)


def _agent_of(step) -> str:
    if step.role == "user":
        return "user_simulator"
    if step.role == "assistant":
        return "tool_agent"
    if step.role == "tool":
        return "server_simulator"
    return ""


def _apply_finish(traj: Trajectory, step) -> None:
    """Turn the engine's finish step into the trajectory's final status, score and verdict."""
    stats = step.stats or {}
    if step.status == "failed":
        traj.status = Trajectory.Status.FAILED
        traj.error = step.reason[:4000] or "failed"
        traj.verdict = ""
    elif step.status == "accepted":
        traj.status = Trajectory.Status.DONE
        traj.verdict = Trajectory.Verdict.ACCEPTED
    elif step.verdict == "reject":
        traj.status = Trajectory.Status.DONE
        traj.verdict = Trajectory.Verdict.REJECTED
    else:  # rejected by self-reflection before any verifier saw it
        traj.status = Trajectory.Status.REJECTED
        traj.verdict = Trajectory.Verdict.REJECTED
        traj.error = step.reason[:4000]
    traj.score = None if step.score is None else max(0.0, min(1.0, float(step.score)))
    traj.difficulty = step.split or ""
    traj.score_detail = {"components": step.score_components, "reason": step.reason}
    traj.num_turns = int(stats.get("user_turns", 0) or 0)
    traj.prompt_tokens, traj.completion_tokens = _conversation_tokens(traj)
    traj.finished_at = timezone.now()
    traj.save()


_TOKENIZER_LOCK = threading.Lock()


def _tokenizer():
    # transformers' lazy imports are not thread-safe on first use: a thread pool worker
    # finishing two trajectories at once must not import it twice concurrently.
    with _TOKENIZER_LOCK:
        return _load_tokenizer()


@functools.lru_cache(maxsize=1)
def _load_tokenizer():
    from transformers import AutoTokenizer

    from synthesis.llm.embedded import ensure_embedded_checkpoint

    return AutoTokenizer.from_pretrained(str(ensure_embedded_checkpoint()), local_files_only=True)


def _conversation_tokens(traj: Trajectory) -> tuple[int, int]:
    """Tokens of the stored conversation (SmolLM2 tokenizer): (context, assistant).

    Context counts the offered tools, user turns and tool results; assistant counts what the
    Tool Agent wrote, calls included: the figures the dataset statistics report.
    """
    tok = _tokenizer()
    context = len(tok.encode(json.dumps(traj.offered_tools, ensure_ascii=False)))
    assistant = 0
    for role, content, calls, mcp in traj.messages.values_list("role", "content", "tool_calls", "mcp"):
        n = len(tok.encode(content)) if content else 0
        if calls:
            n += len(tok.encode(json.dumps(calls, ensure_ascii=False)))
        if role == "tool" and mcp is not None and not content:
            n += len(tok.encode(json.dumps(mcp, ensure_ascii=False)))
        if role == "assistant":
            assistant += n
        else:
            context += n
    return context, assistant


# ----------------------------------------------------------------------------- running


def _resume_state(traj: Trajectory):
    from synthesis.roleplay.steps import ResumeState

    rows = list(traj.steps.order_by("index").values_list("data", flat=True))
    return ResumeState.from_steps(rows) if rows else None


def _specs_for(trajectories: list[Trajectory]):
    from synthesis.roleplay.steps import Persona as PersonaData
    from synthesis.roleplay.steps import TrajectorySpec

    specs = []
    for traj in trajectories:
        specs.append(TrajectorySpec(
            id=str(traj.pk), mode=traj.kind, tools=traj.offered_tools,
            persona=PersonaData.from_dict(traj.persona.as_dict()) if traj.persona else None,
            seed=int(traj.engine_state.get("seed", traj.seq)), domain=str(traj.engine_state.get("group", "")),
            resume_from=_resume_state(traj), absent_tool=traj.engine_state.get("absent_tool"),
        ))
    return specs


def roleplay_config_for(iteration: Iteration):
    from inftool_web.loop.iteration_config import IterationConfig
    from synthesis.roleplay.config import RoleplayConfig

    cfg = IterationConfig.from_dict(iteration.config)
    return RoleplayConfig(
        modes={m: float(w) for m, w in cfg.modes.items() if w > 0},
        max_turns=cfg.max_turns,
        verifier_count=cfg.verifiers,
        negotiation_rounds=cfg.negotiation_rounds,
        hard_threshold=cfg.hard_threshold,
    )


def role_backend_specs(iteration: Iteration) -> dict[str, dict[str, Any]]:
    """The backend spec of every role (``{"backend", **options}``, API key included):
    settings defaults, overridden by the iteration's config.  The Tool Agent runs the
    iteration's input checkpoint (the loop's latest model)."""
    from django.conf import settings

    def spec_from(d: Mapping[str, Any]) -> dict[str, Any]:
        backend = d.get("backend") or "embedded"
        spec: dict[str, Any] = {"backend": backend}
        if backend == "openai":
            spec["base_url"] = d.get("base_url")
            # Checked when the config was made; checked again for a config edited since.
            problem = model_host_problem(spec["base_url"] or "")
            if problem:
                raise ValueError(problem)
            for key in ("timeout", "max_retries", "backoff"):
                if d.get(key) is not None:
                    spec[key] = d[key]
            if d.get("model"):
                spec["model"] = d["model"]
            # A key goes only to the host it was configured for; "" sends none (and keeps the
            # backend from falling back to $OPENAI_API_KEY).
            spec["api_key"] = api_key_for(base_url=spec["base_url"] or "", api_key_env=d.get("api_key_env"))
        elif backend in ("embedded", "vllm") and d.get("model"):
            # both backends load a local checkpoint folder: VLLMOptions names it model_path too
            spec["model_path"] = d["model"]
        return spec

    specs = {role: spec_from(d) for role, d in settings.INFTOOL_ROLE_BACKENDS.items()}
    for role, d in (iteration.config.get("backends") or {}).items():
        specs[role] = spec_from(d)
    ckpt = iteration.input_checkpoint
    agent = specs.get("agent", {})
    if ckpt and ckpt.kind != "base" and agent.get("backend") in ("embedded", "vllm") and "model_path" not in agent:
        agent["model_path"] = ckpt.path
    return specs


def backends_for_iteration(iteration: Iteration) -> dict[str, Any]:
    """The backend of every role (:func:`role_backend_specs`), built or reused."""
    from synthesis.llm.roles import backends_for_roles

    backends = backends_for_roles(role_backend_specs(iteration))
    backends["scenario"] = backends["user"]
    backends["default"] = backends["agent"]
    return backends


def trajectories_run(*, trajectory_ids: list[int], backends: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Synthesize (or resume) these trajectories together, storing every step as it comes.

    Finished trajectories are skipped, so a re-delivered task is harmless.  Returns counts
    by final status.
    """
    trajs = list(
        Trajectory.objects.select_related("iteration", "iteration__input_checkpoint", "persona")
        .filter(pk__in=trajectory_ids).exclude(status__in=TERMINAL).order_by("seq")
    )
    if not trajs:
        return {}
    by_iteration: dict[int, list[Trajectory]] = defaultdict(list)
    for t in trajs:
        by_iteration[t.iteration_id].append(t)
    counts: dict[str, int] = defaultdict(int)
    with _trajectory_locks([t.pk for t in trajs]) as held:
        for group in by_iteration.values():
            group = [t for t in group if t.pk in held]
            if group:
                _run_group(group, backends, counts)
    return dict(counts)


_LOCK_NAMESPACE = 0x1F7001  # advisory-lock keyspace of trajectories


def _lock_key(pk: int) -> int:
    return (_LOCK_NAMESPACE << 40) | pk


@contextlib.contextmanager
def _trajectory_locks(ids: list[int]):
    """Session advisory locks: one runner per trajectory at a time, across every worker.

    A second delivery of the same task (say, after a visibility timeout) skips the
    trajectories another worker is still running; a killed worker's connection closes and
    its locks go with it.
    """
    from django.db import connection

    held: set[int] = set()
    try:
        with connection.cursor() as cur:
            for pk in ids:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(pk)])
                if cur.fetchone()[0]:
                    held.add(pk)
        yield held
    finally:
        if held and connection.connection is not None:
            with connection.cursor() as cur:
                for pk in held:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(pk)])


def _run_group(group, backends, counts) -> None:
    from synthesis.roleplay.engine import run_trajectories

    iteration = group[0].iteration
    if iteration.status == Iteration.Status.CANCELLED:
        return
    sink = DatabaseSink({str(t.pk): t for t in group})
    be = backends or backends_for_iteration(iteration)
    Trajectory.objects.filter(pk__in=[t.pk for t in group], status="pending").update(status="running")
    try:
        results = run_trajectories(_specs_for(group), be, sink, roleplay_config_for(iteration))
    except Exception as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        if isinstance(cause, IterationCancelled):
            return
        raise
    for result in results:
        # A finish the engine could not store (stored steps that no longer fit the code):
        # record it, or the trajectory would look running forever.
        if result.finish.index < 0:
            trajectory_mark_failed(trajectory_id=int(result.id), error=result.finish.reason or "failed")
    for t in Trajectory.objects.filter(pk__in=[t.pk for t in group]):
        counts[t.status] += 1


def trajectory_mark_failed(*, trajectory_id: int, error: str) -> None:
    """Record a trajectory that cannot finish (its task gave up); keeps what was stored."""
    with transaction.atomic():
        traj = Trajectory.objects.select_for_update().get(pk=trajectory_id)
        if traj.status in TERMINAL:
            return
        traj.status = Trajectory.Status.FAILED
        traj.error = error[:4000]
        traj.finished_at = timezone.now()
        traj.save(update_fields=["status", "error", "finished_at", "updated_at"])
        send_on_commit(iteration_group(traj.iteration_id), _event_of(traj))


def iteration_synthesis_counts(iteration_id: int) -> dict[str, int]:
    from django.db.models import Count

    rows = Trajectory.objects.filter(iteration_id=iteration_id).values("status").annotate(n=Count("id"))
    return {r["status"]: r["n"] for r in rows}


def iteration_synthesis_finished(iteration_id: int) -> bool:
    return not Trajectory.objects.filter(iteration_id=iteration_id).exclude(status__in=TERMINAL).exists()


def iteration_publish_progress(iteration_id: int) -> dict[str, int]:
    counts = iteration_synthesis_counts(iteration_id)
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in TERMINAL)
    progress = {"stage": "synthesis", "trajectories": total, "finished": finished, "done": finished, "total": total,
                **{f"status_{k}": v for k, v in counts.items()}}
    with transaction.atomic():
        Iteration.objects.filter(pk=iteration_id).update(progress=progress)
        event = {"kind": "iteration", "id": iteration_id, "progress": progress}
        send_on_commit(iteration_group(iteration_id), event)
        send_on_commit(DASHBOARD_GROUP, event)
    return progress


__all__ = [
    "DatabaseSink", "IterationCancelled", "iteration_plan_trajectories", "trajectories_run",
    "trajectory_mark_failed", "persona_ensure_seed", "persona_store_generated", "backends_for_iteration",

]
