"""Writes made from the pages."""

from __future__ import annotations

from django.db import transaction

from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_on_commit
from inftool_web.core.roles import has_role
from inftool_web.synth.models import AuditDecision, Trajectory


class AuditError(ValueError):
    pass


@transaction.atomic
def audit_record(*, trajectory: Trajectory, reviewer, decision: str, note: str = "") -> AuditDecision:
    """Store a reviewer's decision and make it the trajectory's override of the verifiers."""
    if decision not in AuditDecision.Decision.values:
        raise AuditError(f"unknown decision {decision!r}; valid: {', '.join(AuditDecision.Decision.values)}")
    if not has_role(reviewer, "reviewer"):
        raise AuditError("only reviewers and operators may audit")
    locked = Trajectory.objects.select_for_update().get(pk=trajectory.pk)
    audit = AuditDecision.objects.create(trajectory=locked, reviewer=reviewer, decision=decision, note=note[:5000])
    locked.audit_decision = decision
    locked.save(update_fields=["audit_decision", "updated_at"])
    trajectory.audit_decision = decision
    event = {
        "kind": "trajectory", "id": locked.pk, "iteration": locked.iteration_id, "seq": locked.seq,
        "mode": locked.kind, "status": locked.status, "verdict": locked.effective_verdict,
        "score": locked.score, "difficulty": locked.difficulty,
    }
    send_on_commit(iteration_group(locked.iteration_id), event)
    send_on_commit(DASHBOARD_GROUP, event)
    return audit
