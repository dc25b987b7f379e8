"""Write side of consensus and adjudication (docs/decisions/0012).

When every read of a series read by two or more readers is submitted or accepted,
``series_consensus_update`` measures the readers' agreement (annotations.fusion), writes the
fused labels into the series' consensus read (an Assignment of kind consensus, through
annotations.services, so every fused label has revisions) and routes it: below the project's
threshold it needs adjudication; at or above it, it is proposed, or accepted at once when the
project says so. ``consensus_decide`` is the adjudicator's decision. Both are audited.

A decided consensus stays decided while its reads hold what they held when it was computed. A
finished read is locked, so a read changes only by being returned, edited and finished again,
which runs the update again: if a read's content (labels, images, geometry, attributes) then
differs, the consensus is reopened (audited, kept in its ``history`` with the reason and the
decision it replaces), recomputed and routed to a person again, never accepted automatically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from annotations import fusion, services
from annotations import geometry as geo
from annotations.metrics import Shape
from annotations.models import (
    DECIDED_STATES,
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    ConsensusSettings,
    ConsensusState,
    DecisionSource,
    Label,
    SeriesConsensus,
    Source,
)
from workbench.audit import audit_record
from workbench.models import Instance, Project, Series
from workbench.models.catalog import spatial_order

FINISHED = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED)
OPEN_STATES = (ConsensusState.NEEDS_ADJUDICATION, ConsensusState.PROPOSED)


class InvalidDecision(ValueError):
    """The decision cannot be taken as asked; ``field`` is the request field at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# --- settings ---------------------------------------------------------------------------------


def consensus_settings_of(project: Project) -> ConsensusSettings:
    """The project's adjudication settings; the defaults (unsaved) when it never set any."""
    found = ConsensusSettings.objects.filter(project=project).first()
    return found or ConsensusSettings(project=project)


def consensus_settings_update(
    *, project: Project, user: Any, agreement_threshold: float, auto_accept: bool, surface_tolerance_mm: float
) -> ConsensusSettings:
    """Set the project's threshold (0..1), auto-accept and surface tolerance (mm, > 0). Project admins
    (checked by the caller). InvalidDecision names a bad field. Audited (consensus_settings_updated)."""
    if not 0.0 <= agreement_threshold <= 1.0:
        raise InvalidDecision("agreement_threshold must be between 0 and 1.", field="agreement_threshold")
    if not 0.0 < surface_tolerance_mm <= 100.0:
        raise InvalidDecision("surface_tolerance_mm must be above 0 and at most 100.", field="surface_tolerance_mm")
    values = {
        "agreement_threshold": float(agreement_threshold),
        "auto_accept": bool(auto_accept),
        "surface_tolerance_mm": float(surface_tolerance_mm),
    }
    with transaction.atomic():
        row, _ = ConsensusSettings.objects.update_or_create(project=project, defaults=values)
        audit_record(
            action="consensus_settings_updated",
            actor=user,
            project=project,
            object_type="project",
            object_id=project.pk,
            details=values,
        )
    return row


# --- computing and routing --------------------------------------------------------------------


def _shape(annotation: Annotation) -> Shape:
    return Shape(
        label=str(annotation.label_id),
        kind=annotation.label.kind,
        sop_instance_uid=annotation.sop_instance_uid,
        frame=annotation.frame,
        geometry=annotation.geometry,
        attributes=annotation.attributes,
    )


def _first_read(reads: list[Assignment]) -> int:
    """Index of the read kinds without a fusion are carried from: the first accepted, else first submitted."""

    def key(pair: tuple[int, Assignment]) -> tuple[int, Any, str]:
        read = pair[1]
        if read.status == AssignmentStatus.ACCEPTED and read.reviewed_at:
            return (0, read.reviewed_at, str(read.pk))
        return (1, read.submitted_at or read.created_at, str(read.pk))

    return min(enumerate(reads), key=key)[0]


def _slices(series: Series) -> list[fusion.SliceInfo]:
    out = []
    for instance in Instance.objects.filter(series=series).order_by(*spatial_order()):
        for frame in range(max(instance.frames, 1)):
            out.append(fusion.SliceInfo(instance.sop_uid, frame, instance.rows or 0, instance.columns or 0))
    return out


def _fingerprint(reads: list[Assignment], live: dict[Any, list[Annotation]], rules: ConsensusSettings) -> str:
    parts = [f"{rules.agreement_threshold}:{rules.auto_accept}"]
    for read in reads:
        revisions = ",".join(f"{a.pk}@{a.revision}" for a in sorted(live[read.pk], key=lambda a: str(a.pk)))
        parts.append(f"{read.pk}:{revisions}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _content_fingerprint(annotations: list[Annotation]) -> str:
    """What a read holds, independent of revision numbers and ids: a read edited back to what it
    was, or its labels deleted and drawn again the same, has the same fingerprint."""
    items = sorted(
        json.dumps([str(a.label_id), a.sop_instance_uid, a.frame, a.geometry, a.attributes], sort_keys=True)
        for a in annotations
    )
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def _read_fingerprints(reads: list[Assignment], live: dict[Any, list[Annotation]]) -> dict[str, str]:
    return {str(read.pk): _content_fingerprint(live[read.pk]) for read in reads}


def _changed_reads(before: dict[str, str], reads: list[Assignment], now: dict[str, str]) -> list[str]:
    """Names of the readers whose read differs from ``before`` (or was added since)."""
    return [read.reader_name for read in reads if before.get(str(read.pk)) != now[str(read.pk)]]


def reopen_reason(readers: Sequence[str]) -> str:
    """The reason kept when a decided consensus is reopened, e.g. "reader bob's read changed after the decision"."""
    return "; ".join(f"reader {name}'s read changed after the decision" for name in readers)


def reopened_of(row: SeriesConsensus) -> dict[str, Any] | None:
    """The reopening the consensus waits on (its last history entry), or None when it is not reopened."""
    last = row.history[-1] if row.history else None
    if last and last.get("event") == "reopened" and row.state in OPEN_STATES:
        return dict(last)
    return None


def _decision_entry(row: SeriesConsensus) -> dict[str, Any]:
    return {
        "state": row.state,
        "decided_by": row.decided_by.get_username() if row.decided_by else None,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "source": row.decision_source,
        "reader": row.source_read.reader_name if row.source_read else None,
        "reason": row.reason,
        "agreement": row.agreement,
    }


def _consensus_read(series: Series, user: Any) -> Assignment:
    read, created = Assignment.objects.get_or_create(
        series=series,
        kind=AssignmentKind.CONSENSUS,
        defaults={"project_id": series.study.project_id, "reader": None, "created_by": user},
    )
    return read


def _replace_labels(consensus: Assignment, shapes: Sequence[tuple[Label, Shape, str]], user: Any) -> None:
    """Delete the consensus read's live labels and write ``shapes`` instead, all through the services."""
    for annotation in Annotation.objects.filter(assignment=consensus, deleted=False).select_related("label"):
        services.annotation_delete(annotation=annotation, user=user, revision=annotation.revision)
    for label, shape, source in shapes:
        services.annotation_create(
            assignment=consensus,
            user=user,
            label=label,
            sop_instance_uid=shape.sop_instance_uid,
            frame=shape.frame,
            geometry=dict(shape.geometry),
            attributes=dict(shape.attributes),
            source=source,
        )


def _audit(row: SeriesConsensus, user: Any, action: str, **details: Any) -> None:
    audit_record(
        action=action,
        actor=user,
        project=row.project,
        object_type="series",
        object_id=row.series_id,
        details={"consensus": str(row.assignment_id), "state": row.state, "agreement": row.agreement, **details},
    )


def series_consensus_update(*, series: Series, user: Any = None) -> SeriesConsensus | None:
    """Measure, fuse and route the consensus of ``series`` once all its reads are finished.

    Does nothing (returns the row as it is, or None) while fewer than two readers read the series,
    while a read is still open, once the consensus was decided and no read's content changed
    since, and when neither the reads nor the project's rules changed since the last run
    (idempotent: the reads' fingerprints). A decided consensus whose reads changed is reopened
    (history and audit keep "reader X's read changed after the decision" and the decision it
    replaces), recomputed and routed to a person (proposed or needs adjudication, never accepted
    automatically). The fused labels are written by ``user`` (whose submit or accept finished the
    reads). Transactional. Audited: consensus_reopened (when so), consensus_computed, then
    consensus_needs_adjudication, consensus_proposed or consensus_auto_accepted. An automatic
    accept lets the project's retraining rule count its labels after commit (inference.retraining).
    """
    reads = list(
        Assignment.objects.filter(series=series, kind=AssignmentKind.READ).select_related("reader").order_by("pk")
    )
    if len(reads) < 2 or any(read.status not in FINISHED for read in reads):
        return None
    existing = SeriesConsensus.objects.filter(series=series).select_related("decided_by", "source_read__reader").first()
    rules = consensus_settings_of(series.study.project)
    live: dict[Any, list[Annotation]] = {read.pk: [] for read in reads}
    for annotation in Annotation.objects.filter(assignment__in=reads, deleted=False).select_related("label"):
        live[annotation.assignment_id].append(annotation)
    fingerprints = _read_fingerprints(reads, live)
    changed: list[str] = []
    if existing is not None and existing.state in DECIDED_STATES:
        if not existing.read_inputs:
            # Decided before reads were fingerprinted: what they hold now is what was decided on.
            SeriesConsensus.objects.filter(pk=existing.pk).update(read_inputs=fingerprints)
            return existing
        changed = _changed_reads(existing.read_inputs, reads, fingerprints)
        if not changed:
            return existing
    inputs = _fingerprint(reads, live, rules)
    if existing is not None and not changed and existing.inputs == inputs:
        return existing
    labels = {str(a.label_id): a.label for group in live.values() for a in group}
    kinds = {key: label.kind for key, label in sorted(labels.items(), key=lambda kv: (kv[1].order, kv[1].name))}
    shapes = [[_shape(a) for a in sorted(live[read.pk], key=lambda a: (a.updated_at, str(a.pk)))] for read in reads]
    fused = fusion.series_fuse(shapes, kinds, _slices(series), fallback=_first_read(reads))
    with transaction.atomic():
        history = list(existing.history) if existing is not None else []
        if changed:
            assert existing is not None  # only a decided consensus is reopened
            locked = SeriesConsensus.objects.select_for_update().get(pk=existing.pk)
            if locked.state not in DECIDED_STATES or locked.read_inputs != existing.read_inputs:
                return locked  # reopened (or decided anew) meanwhile by another run
            reopened = {
                "event": "reopened",
                "at": timezone.now().isoformat(),
                "reason": reopen_reason(changed),
                "readers": changed,
                "previous": _decision_entry(existing),
            }
            history.append(reopened)
            _audit(
                existing,
                user,
                "consensus_reopened",
                reason=reopened["reason"],
                readers=changed,
                previous=reopened["previous"],
            )
        consensus = _consensus_read(series, user)
        if changed:  # a decided consensus read is locked (accepted); its labels are replaced below
            Assignment.objects.filter(pk=consensus.pk).update(status=AssignmentStatus.IN_PROGRESS)
        actor = user or reads[0].reader
        written = [
            (
                labels[s.label],
                s,
                Source.HUMAN if kinds[s.label] in geo.POINT_KINDS else Source.FUSION,
            )
            for s in fused.shapes
        ]
        _replace_labels(consensus, written, actor)
        if not fused.labels or (fused.agreement is not None and fused.agreement >= rules.agreement_threshold):
            # A reopened consensus overturned a person's decision: a person decides it again.
            auto = rules.auto_accept and not any(h.get("event") == "reopened" for h in history)
            state = ConsensusState.ACCEPTED if auto else ConsensusState.PROPOSED
        else:
            state = ConsensusState.NEEDS_ADJUDICATION
        now = timezone.now()
        details = {key: {**value, "name": labels[key].name} for key, value in fused.details().items()}
        decided = state == ConsensusState.ACCEPTED
        agreement = None if fused.agreement is None else round(fused.agreement, 4)
        if decided:
            history.append({"event": "auto_accepted", "at": now.isoformat(), "agreement": agreement})
        row, _ = SeriesConsensus.objects.update_or_create(
            series=series,
            defaults={
                "project_id": series.study.project_id,
                "assignment": consensus,
                "state": state,
                "agreement": agreement,
                "threshold": rules.agreement_threshold,
                "details": details,
                "inputs": inputs,
                "computed_at": now,
                "decided_by": None,
                "decided_at": now if decided else None,
                "reason": "Accepted automatically: agreement at or above the project's threshold." if decided else "",
                "decision_source": DecisionSource.FUSED if decided else "",
                "source_read": None,
                "read_inputs": fingerprints,
                "history": history,
            },
        )
        Assignment.objects.filter(pk=consensus.pk).update(
            status=AssignmentStatus.ACCEPTED if decided else AssignmentStatus.IN_PROGRESS, updated_at=now
        )
        _audit(row, user, "consensus_computed", threshold=rules.agreement_threshold, readers=len(reads))
        action = {
            ConsensusState.NEEDS_ADJUDICATION: "consensus_needs_adjudication",
            ConsensusState.PROPOSED: "consensus_proposed",
            ConsensusState.ACCEPTED: "consensus_auto_accepted",
        }[state]
        _audit(row, user, action, threshold=rules.agreement_threshold)
    if state == ConsensusState.ACCEPTED:
        services.retraining_after_commit(row.project_id)
    return row


# --- the adjudicator's decision ---------------------------------------------------------------


def consensus_decide(
    *, consensus: SeriesConsensus, user: Any, source: str, reason: str, read: Assignment | None = None
) -> SeriesConsensus:
    """Make the final read of a series: one reader's read (``source`` "reader", copied into the
    consensus read), or the consensus read as it stands ("consensus": fused, or as edited in the
    annotator). A reason is required; a reader of the series does not adjudicate it. Reviewers and
    admins (checked by the caller). Locks the consensus read. Transactional; audited
    (consensus_decided: who, the source and the read, the reason). After commit, the project's
    retraining rule counts the decided labels (inference.retraining).
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidDecision("Give a reason for the decision.", field="reason")
    if Assignment.objects.filter(series_id=consensus.series_id, kind=AssignmentKind.READ, reader=user).exists():
        raise PermissionDenied("A reader of this series does not adjudicate it.")
    if source not in ("reader", "consensus"):
        raise InvalidDecision("source must be 'reader' or 'consensus'.", field="source")
    if read is not None:
        read = Assignment.objects.select_related("reader").filter(pk=read.pk).first()  # as stored now
    if source == "reader" and (
        read is None
        or read.series_id != consensus.series_id
        or read.kind != AssignmentKind.READ
        or read.status not in FINISHED
    ):
        raise InvalidDecision("read must be a finished read of this series.", field="read")
    with transaction.atomic():
        row = SeriesConsensus.objects.select_for_update().get(pk=consensus.pk)
        if row.state not in OPEN_STATES:
            raise services.InvalidTransition(f"The consensus is {row.state}; it was decided already.")
        target = Assignment.objects.get(pk=row.assignment_id)
        if source == "reader":
            assert read is not None  # checked above
            copies = Annotation.objects.filter(assignment=read, deleted=False).select_related("label")
            _replace_labels(target, [(a.label, _shape(a), a.source) for a in copies.order_by("created_at")], user)
            decision = DecisionSource.READER
        else:
            edited = AnnotationRevision.objects.filter(annotation__assignment=target, at__gt=row.computed_at).exists()
            decision = DecisionSource.EDITED if edited else DecisionSource.FUSED
        now = timezone.now()
        row.state, row.decided_by, row.decided_at = ConsensusState.ADJUDICATED, user, now
        row.reason, row.decision_source, row.source_read = reason, decision, read if source == "reader" else None
        row.history = [
            *row.history,
            {
                "event": "decided",
                "at": now.isoformat(),
                "by": user.get_username(),
                "source": decision,
                "reader": read.reader_name if read is not None and source == "reader" else None,
                "reason": reason,
            },
        ]
        row.save()
        Assignment.objects.filter(pk=target.pk).update(
            status=AssignmentStatus.ACCEPTED, reviewed_by=user, reviewed_at=now, updated_at=now
        )
        _audit(
            row,
            user,
            "consensus_decided",
            source=decision,
            read=str(read.pk) if read is not None and source == "reader" else None,
            reader=read.reader_name if read is not None and source == "reader" else None,
            reason=reason,
        )
    services.retraining_after_commit(row.project_id)
    return row
