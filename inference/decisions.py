"""A reader's decisions on proposals: accept (as is, or edited), reject, accept all above a score.

A proposal becomes an annotation only here, through annotations.services.annotation_create
(so the annotation has its revisions and its audit event like any other), with source=model,
its model version and proposal id. The decision row keeps the voxel-level provenance: what
the reader changed against the proposal, pixel by pixel, and how long it took.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery, UUIDField
from django.utils import timezone

from annotations import geometry as geo
from annotations import services as annotation_services
from annotations.access import can_write_assignment
from annotations.models import LOCKED_STATUSES, Annotation, Assignment, Source
from inference.models import DecisionStatus, ModelVersion, Proposal, ProposalDecision
from workbench.audit import audit_record
from workbench.models import Instance

# The namespace of the client ids of accepted proposals: one proposal, one read, one annotation,
# however often the accept is retried.
_ACCEPT_NAMESPACE = uuid.UUID("0b7f5a52-8a4c-4c38-9d0e-3f1f4c1f6a11")


class AlreadyDecided(Exception):
    """The read decided on this proposal already in a way that cannot change (an accepted one)."""

    def __init__(self, decision: ProposalDecision) -> None:
        super().__init__(
            "This proposal was accepted already"
            + (f" as annotation {decision.annotation_id}" if decision.annotation_id else "")
            + "; edit or delete that annotation instead."
        )
        self.decision = decision


# --- selectors --------------------------------------------------------------------------------------


def proposal_list_for_assignment(
    *, assignment: Assignment, sop_instance_uid: str = "", decision: str = ""
) -> QuerySet[Proposal]:
    """The proposals on the assignment's series, each annotated with this read's decision and annotation.

    ``decision_status`` is None for a pending proposal. The caller got the assignment through
    annotations.access (so the user may see it).
    """
    decisions = ProposalDecision.objects.filter(proposal=OuterRef("pk"), assignment=assignment)
    qs = (
        Proposal.objects.filter(series_id=assignment.series_id, run__project_id=assignment.project_id)
        .select_related("label")
        .annotate(
            decision_status=Subquery(decisions.values("status")[:1]),
            decision_annotation=Subquery(decisions.values("annotation_id")[:1], output_field=UUIDField()),
        )
    )
    if sop_instance_uid:
        qs = qs.filter(sop_instance_uid=sop_instance_uid)
    if decision == "pending":
        qs = qs.filter(decision_status__isnull=True)
    elif decision:
        qs = qs.filter(decision_status=decision)
    return qs.order_by("sop_instance_uid", "frame", "-score", "id")


def proposal_for_assignment(*, assignment: Assignment, proposal_id: Any) -> Proposal | None:
    """The proposal if it lies on the assignment's series (None otherwise: the caller answers 404)."""
    return (
        proposal_list_for_assignment(assignment=assignment)
        .select_related("run", "model")
        .filter(pk=proposal_id)
        .first()
    )


def provenance_for_annotation(*, annotation: Annotation) -> dict[str, Any] | None:
    """The provenance recorded when ``annotation`` was accepted from a proposal; None for any other."""
    if annotation.proposal is None:
        return None
    decision = ProposalDecision.objects.filter(annotation=annotation, status=DecisionStatus.ACCEPTED).first()
    return dict(decision.provenance) if decision else None


# --- provenance (pure) ------------------------------------------------------------------------------


def mask_changes(
    kind: str, proposed: dict[str, Any], final: dict[str, Any], *, rows: int, columns: int
) -> dict[str, Any]:
    """Pixels the reader added and removed against the proposal, and the Dice between the two."""
    rows = rows or geo.extent(kind, proposed)[0]
    columns = columns or geo.extent(kind, proposed)[1]
    before = geo.rasterize(kind, proposed, rows, columns)
    after = geo.rasterize(kind, final, rows, columns)
    dice = geo.dice(before, after)
    return {
        "added": int((after & ~before).sum()),
        "removed": int((before & ~after).sum()),
        "dice": 1.0 if dice is None else round(float(dice), 4),
    }


def _provenance(
    proposal: Proposal, annotation: Annotation, opened_at: datetime | None, now: datetime
) -> dict[str, Any]:
    instance = Instance.objects.filter(series_id=proposal.series_id, sop_uid=proposal.sop_instance_uid).values(
        "rows", "columns"
    ).first() or {"rows": 0, "columns": 0}
    change = mask_changes(
        proposal.kind,
        proposal.geometry,
        annotation.geometry,
        rows=instance["rows"] or 0,
        columns=instance["columns"] or 0,
    )
    seconds = None if opened_at is None else max(0.0, round((now - opened_at).total_seconds(), 3))
    return {
        "model_version": proposal.model_id,
        "proposal": str(proposal.pk),
        "run": str(proposal.run_id),
        "score": proposal.score,
        "edited": bool(change["added"] or change["removed"]),
        "slices": {
            f"{proposal.sop_instance_uid}:{proposal.frame}": {"added": change["added"], "removed": change["removed"]}
        },
        "dice": change["dice"],
        "seconds_to_accept": seconds,
    }


# --- services ---------------------------------------------------------------------------------------


def _check(proposal: Proposal, assignment: Assignment, user: Any) -> None:
    if proposal.series_id != assignment.series_id:
        raise PermissionDenied("The proposal is not on this assignment's series.")
    if not can_write_assignment(user, assignment):
        raise PermissionDenied("Only the assigned reader and reviewers decide on its proposals.")
    _writable(assignment)


def _writable(assignment: Assignment) -> None:
    if assignment.status in LOCKED_STATUSES:
        raise annotation_services.Locked(f"The assignment is {assignment.status}; it can no longer be edited.")


def _lock(assignment: Assignment) -> None:
    """Inside a transaction: serialize decisions on one read (the same row annotation writes lock)."""
    _writable(Assignment.objects.select_for_update().get(pk=assignment.pk))


def _audit(decision: ProposalDecision, assignment: Assignment, user: Any, action: str) -> None:
    audit_record(
        action=action,
        actor=user,
        project=assignment.project,
        object_type="proposal",
        object_id=decision.proposal_id,
        details={
            "assignment": str(assignment.pk),
            "annotation": str(decision.annotation_id) if decision.annotation_id else None,
            "edited": decision.provenance.get("edited"),
        },
    )


def proposal_accept(
    *,
    proposal: Proposal,
    assignment: Assignment,
    user: Any,
    geometry: dict[str, Any] | None = None,
    opened_at: datetime | None = None,
) -> tuple[Annotation, ProposalDecision]:
    """Accept the proposal into the read: a new annotation (source=model) and the decision with provenance.

    ``geometry``, when given, is the reader's edit, validated like any annotation's. A rejected
    proposal may still be accepted; an accepted one raises AlreadyDecided. Raises Locked for a
    submitted or accepted assignment, PermissionDenied unless ``user`` may write the read (its
    reader, or a reviewer), InvalidAnnotation for a bad geometry. Transactional; existing
    annotations are never touched. Audited (annotation_created, proposal_accepted).
    """
    _check(proposal, assignment, user)
    with transaction.atomic():
        _lock(assignment)
        existing = ProposalDecision.objects.filter(proposal=proposal, assignment=assignment).first()
        if existing is not None and existing.status == DecisionStatus.ACCEPTED:
            raise AlreadyDecided(existing)
        annotation, _ = annotation_services.annotation_create(
            assignment=assignment,
            user=user,
            label=proposal.label,
            sop_instance_uid=proposal.sop_instance_uid,
            frame=proposal.frame,
            geometry=proposal.geometry if geometry is None else geometry,
            client_id=uuid.uuid5(_ACCEPT_NAMESPACE, f"{proposal.pk}:{assignment.pk}"),
            source=Source.MODEL,
            model_version=proposal.model_id,
            proposal=proposal.pk,
        )
        now = timezone.now()
        fields = {
            "status": DecisionStatus.ACCEPTED,
            "annotation": annotation,
            "decided_by": user,
            "decided_at": now,
            "provenance": _provenance(proposal, annotation, opened_at, now),
        }
        decision, _ = ProposalDecision.objects.update_or_create(
            proposal=proposal, assignment=assignment, defaults=fields
        )
        _audit(decision, assignment, user, "proposal_accepted")
    return annotation, decision


def proposal_reject(*, proposal: Proposal, assignment: Assignment, user: Any) -> ProposalDecision:
    """Reject the proposal in this read; nothing else changes. Idempotent for a rejected one.

    An accepted proposal raises AlreadyDecided (delete its annotation instead). Locked and
    PermissionDenied as proposal_accept. Audited (proposal_rejected).
    """
    _check(proposal, assignment, user)
    with transaction.atomic():
        _lock(assignment)
        existing = ProposalDecision.objects.filter(proposal=proposal, assignment=assignment).first()
        if existing is not None:
            if existing.status == DecisionStatus.ACCEPTED:
                raise AlreadyDecided(existing)
            return existing
        decision = ProposalDecision.objects.create(
            proposal=proposal,
            assignment=assignment,
            status=DecisionStatus.REJECTED,
            decided_by=user,
            decided_at=timezone.now(),
        )
        _audit(decision, assignment, user, "proposal_rejected")
    return decision


def proposals_accept_above(*, assignment: Assignment, score: float, user: Any) -> int:
    """Accept, unchanged, every pending proposal of the read whose score is at least ``score``.

    All or nothing (one transaction); rejected proposals stay rejected. Returns how many were
    accepted. Locked and PermissionDenied as proposal_accept.
    """
    if not can_write_assignment(user, assignment):
        raise PermissionDenied("Only the assigned reader and reviewers decide on its proposals.")
    _writable(assignment)
    with transaction.atomic():
        _lock(assignment)
        pending = list(
            proposal_list_for_assignment(assignment=assignment, decision="pending")
            .select_related("run", "model")
            .filter(score__gte=score)
        )
        for proposal in pending:
            proposal_accept(proposal=proposal, assignment=assignment, user=user)
    return len(pending)


def model_acceptance(*, project: Any) -> list[dict[str, Any]]:
    """Per model version of the project, over its decided proposals: how many were accepted unchanged,
    edited or rejected, the mean Dice between proposal and final label, and the mean seconds to accept.

    For the quality page (reviewers and admins; the caller checked the role). Two queries.
    """
    rows: dict[str, dict[str, Any]] = {}
    decided = ProposalDecision.objects.filter(proposal__run__project=project).values_list(
        "proposal__model_id", "status", "provenance"
    )
    for model_id, decision, provenance in decided:
        row = rows.setdefault(
            model_id,
            {"model_version": model_id, "accepted_unchanged": 0, "edited": 0, "rejected": 0, "_d": [], "_s": []},
        )
        if decision == DecisionStatus.REJECTED:
            row["rejected"] += 1
            continue
        row["edited" if provenance.get("edited") else "accepted_unchanged"] += 1
        row["_d"].append(provenance.get("dice", 1.0))
        if provenance.get("seconds_to_accept") is not None:
            row["_s"].append(provenance["seconds_to_accept"])
    names = dict(ModelVersion.objects.filter(pk__in=rows).values_list("pk", "name"))
    out = []
    for model_id, row in sorted(rows.items()):
        dices, seconds = row.pop("_d"), row.pop("_s")
        decided_count = row["accepted_unchanged"] + row["edited"] + row["rejected"]
        out.append(
            {
                **row,
                "name": names.get(model_id, ""),
                "share_accepted_unchanged": row["accepted_unchanged"] / decided_count,
                "mean_dice": sum(dices) / len(dices) if dices else None,
                "mean_seconds_to_accept": sum(seconds) / len(seconds) if seconds else None,
            }
        )
    return out
