"""Write side of annotations: saves with revision compare-and-set, and the review workflow.

Every annotation write runs in one transaction that first locks the assignment
row (``select_for_update``; on SQLite the IMMEDIATE transaction mode takes the
write lock at BEGIN instead) and then changes the annotation with
``UPDATE ... WHERE revision = n``, checking that exactly one row changed. Two
writers holding the same revision therefore get exactly one success and one
``Conflict``; no save is lost or silently overwritten, and every accepted save is
one row in AnnotationRevision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from annotations import geometry as geo
from annotations.access import READER_ROLES
from annotations.models import (
    LOCKED_STATUSES,
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Label,
    Priority,
    RevisionAction,
    Source,
)
from annotations.schemas import label_schema_create, label_schema_default
from workbench.audit import audit_record
from workbench.models import Instance, Membership, Series

__all__ = [
    "Conflict",
    "InvalidAnnotation",
    "InvalidAssignment",
    "InvalidTransition",
    "Locked",
    "annotation_create",
    "annotation_delete",
    "annotation_snapshot",
    "annotation_update",
    "assignment_accept",
    "assignment_create",
    "assignment_return",
    "assignment_submit",
    "label_schema_create",
    "label_schema_default",
]

T = TypeVar("T")
UNSET: Any = object()
_SQLITE_RETRIES = 100
_WRITABLE = (AssignmentStatus.TODO, AssignmentStatus.IN_PROGRESS, AssignmentStatus.RETURNED)


class Conflict(Exception):
    """The revision the client held is not the current one; ``current`` is the row as stored."""

    def __init__(self, current: Annotation) -> None:
        super().__init__(f"The annotation is at revision {current.revision}.")
        self.current = current


class Locked(Exception):
    """The assignment was submitted or accepted; its annotations no longer change."""


class InvalidTransition(Exception):
    """The assignment is not in a status that allows this step."""


class InvalidAssignment(ValueError):
    """A reader cannot be given this series; the message says why."""


class InvalidAnnotation(ValueError):
    """The annotation does not fit its label, series or image; the message says why.

    ``field`` is the request field at fault (geometry, attributes, sop_instance_uid, frame, label).
    """

    def __init__(self, message: str, *, field: str = "geometry") -> None:
        super().__init__(message)
        self.field = field


def annotation_snapshot(annotation: Annotation) -> dict[str, Any]:
    """The state kept in each revision: what a reader drew, not who or when."""
    return {
        "label": str(annotation.label_id),
        "kind": annotation.label.kind,
        "sop_instance_uid": annotation.sop_instance_uid,
        "frame": annotation.frame,
        "geometry": annotation.geometry,
        "attributes": annotation.attributes,
        "deleted": annotation.deleted,
        "source": annotation.source,
        "model_version": annotation.model_version,
        "proposal": str(annotation.proposal) if annotation.proposal else None,
    }


def _clean(
    *, assignment: Assignment, label: Label, sop_instance_uid: str, frame: int, geometry: Any, attributes: Any
) -> tuple[str, int, dict[str, Any], dict[str, Any]]:
    """Validate against the label's kind and attributes and the assignment's series; recompute measurements."""
    if label.schema.project_id != assignment.project_id:
        raise InvalidAnnotation("The label belongs to another project.", field="label")
    try:
        clean_geometry = geo.validate_geometry(label.kind, geometry)
    except geo.GeometryError as exc:
        raise InvalidAnnotation(str(exc)) from exc
    try:
        clean_attributes = geo.validate_attributes(
            label.attributes, attributes, require_value=label.kind in geo.CLASS_KINDS
        )
    except geo.GeometryError as exc:
        raise InvalidAnnotation(str(exc), field="attributes") from exc
    if label.kind == "classification_series":
        return "", 0, clean_geometry, clean_attributes
    instance = Instance.objects.filter(series_id=assignment.series_id, sop_uid=sop_instance_uid).first()
    if instance is None:
        raise InvalidAnnotation(
            "sop_instance_uid is not an image of the assignment's series.", field="sop_instance_uid"
        )
    if not 0 <= frame < max(instance.frames, 1):
        raise InvalidAnnotation(f"frame must be between 0 and {max(instance.frames, 1) - 1}.", field="frame")
    try:
        geo.check_bounds(label.kind, clean_geometry, rows=instance.rows or 0, columns=instance.columns or 0)
    except geo.GeometryError as exc:
        raise InvalidAnnotation(str(exc), field=exc.field) from exc
    clean_geometry = geo.with_measurements(label.kind, clean_geometry, instance.pixel_spacing)
    return sop_instance_uid, frame, clean_geometry, clean_attributes


def _with_sqlite_retry(work: Callable[[], T]) -> T:
    """Run a whole transaction, again if SQLite answered "locked" instead of waiting.

    A file database waits for the lock (IMMEDIATE transactions with a timeout), but
    SQLite's shared-cache mode, which the test database uses, answers SQLITE_LOCKED at
    once. Re-running the transaction is safe: it re-reads the revision and conflicts.
    """
    for attempt in range(_SQLITE_RETRIES):
        try:
            return work()
        except OperationalError as exc:
            retryable = connection.vendor == "sqlite" and "locked" in str(exc) and not connection.in_atomic_block
            if not retryable or attempt == _SQLITE_RETRIES - 1:
                raise
            time.sleep(0.002 * (attempt + 1))
    raise AssertionError("unreachable")


def _lock_writable(assignment: Assignment) -> Assignment:
    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if locked.status in LOCKED_STATUSES:
        raise Locked(f"The assignment is {locked.status}; it can no longer be edited.")
    return locked


def _mark_in_progress(assignment: Assignment) -> None:
    if assignment.status != AssignmentStatus.IN_PROGRESS:
        Assignment.objects.filter(pk=assignment.pk, status__in=_WRITABLE).update(
            status=AssignmentStatus.IN_PROGRESS, updated_at=timezone.now()
        )


def _record(annotation: Annotation, *, user: Any, action: str, changes: list[str]) -> None:
    AnnotationRevision.objects.create(
        annotation=annotation,
        revision=annotation.revision,
        author=user,
        at=annotation.updated_at,
        action=action,
        changes=changes,
        data=annotation_snapshot(annotation),
    )


def _audit_annotation(annotation: Annotation, assignment: Assignment, user: Any, action: str, **extra: Any) -> None:
    """One audit event per accepted save: ids, kind and revision only, never label text or attribute values."""
    audit_record(
        action=action,
        actor=user,
        project=assignment.project,
        object_type="annotation",
        object_id=annotation.pk,
        details={
            "assignment": str(assignment.pk),
            "series": str(assignment.series_id),
            "label": str(annotation.label_id),
            "kind": annotation.label.kind,
            "revision": annotation.revision,
            "source": annotation.source,
            **extra,
        },
    )


def annotation_create(
    *,
    assignment: Assignment,
    user: Any,
    label: Label,
    sop_instance_uid: str = "",
    frame: int = 0,
    geometry: Any = None,
    attributes: Any = None,
    client_id: Any = None,
    source: str = Source.HUMAN,
    model_version: str | None = None,
    proposal: Any = None,
) -> tuple[Annotation, bool]:
    """Create an annotation at revision 1 and its first revision row; returns (annotation, created).

    Idempotent on ``client_id``: a retried create returns the annotation the first
    one made, with created=False. Transactional. Raises Locked when the assignment
    was submitted or accepted, InvalidAnnotation for a bad shape. The caller has
    checked that ``user`` may write (annotations.access). Audited (annotation_created).
    """
    sop, frame, clean_geometry, clean_attributes = _clean(
        assignment=assignment,
        label=label,
        sop_instance_uid=sop_instance_uid,
        frame=frame,
        geometry={} if geometry is None else geometry,
        attributes={} if attributes is None else attributes,
    )

    @transaction.atomic
    def work() -> tuple[Annotation, bool]:
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if client_id is not None:
            existing = Annotation.objects.filter(assignment=locked, client_id=client_id).select_related("label").first()
            if existing is not None:
                return existing, False
        if locked.status in LOCKED_STATUSES:
            raise Locked(f"The assignment is {locked.status}; it can no longer be edited.")
        annotation = Annotation.objects.create(
            assignment=locked,
            label=label,
            sop_instance_uid=sop,
            frame=frame,
            geometry=clean_geometry,
            attributes=clean_attributes,
            author=user,
            updated_at=timezone.now(),
            source=source,
            model_version=model_version,
            proposal=proposal,
            client_id=client_id,
        )
        _record(annotation, user=user, action=RevisionAction.CREATE, changes=["label", "geometry", "attributes"])
        _mark_in_progress(locked)
        _audit_annotation(annotation, assignment, user, "annotation_created")
        return annotation, True

    return _with_sqlite_retry(work)


def _compare_and_set(annotation: Annotation, revision: int, user: Any, action: str, **fields: Any) -> Annotation:
    """Inside a transaction: move the row from ``revision`` to ``revision + 1`` or raise Conflict."""
    # of=("self",): lock the annotation row only, not the label and author rows joined in.
    current = Annotation.objects.select_for_update(of=("self",)).select_related("label", "author").get(pk=annotation.pk)
    if current.deleted or current.revision != revision:
        raise Conflict(current)
    changes = [name for name, value in fields.items() if getattr(current, name) != value]
    if not changes and action == RevisionAction.UPDATE:
        # Saving what is stored (a page that re-sent what it loaded) is no write: no revision.
        return current
    now = timezone.now()
    updated = Annotation.objects.filter(pk=annotation.pk, revision=revision, deleted=False).update(
        revision=F("revision") + 1, updated_at=now, **fields
    )
    if updated != 1:
        raise Conflict(Annotation.objects.select_related("label", "author").get(pk=annotation.pk))
    for name, value in fields.items():
        setattr(current, name, value)
    current.revision, current.updated_at = revision + 1, now
    _record(current, user=user, action=action, changes=changes)
    return current


def annotation_update(
    *,
    annotation: Annotation,
    user: Any,
    revision: int,
    geometry: Any = UNSET,
    attributes: Any = UNSET,
    label: Label | None = None,
) -> Annotation:
    """Save a new state if ``revision`` is still current; otherwise raise Conflict with the stored state.

    Transactional compare-and-set: of concurrent updates holding the same revision
    exactly one succeeds. The new state is kept as revision n+1 with who, when and
    which fields changed. A save that changes nothing writes nothing (no revision, the
    assignment's status stays, no audit event) and returns the annotation as stored. Raises
    Locked and InvalidAnnotation like annotation_create. Audited (annotation_updated, with
    the names of the changed fields).
    """
    new_label = label or annotation.label
    sop, frame, clean_geometry, clean_attributes = _clean(
        assignment=annotation.assignment,
        label=new_label,
        sop_instance_uid=annotation.sop_instance_uid,
        frame=annotation.frame,
        geometry=annotation.geometry if geometry is UNSET else geometry,
        attributes=annotation.attributes if attributes is UNSET else attributes,
    )

    @transaction.atomic
    def work() -> Annotation:
        locked = _lock_writable(annotation.assignment)
        saved = _compare_and_set(
            annotation,
            revision,
            user,
            RevisionAction.UPDATE,
            label=new_label,
            geometry=clean_geometry,
            attributes=clean_attributes,
        )
        if saved.revision != revision:  # a real change, not a save of what was stored
            _mark_in_progress(locked)
            changes = saved.revisions.get(revision=saved.revision).changes
            _audit_annotation(saved, annotation.assignment, user, "annotation_updated", changes=changes)
        return saved

    return _with_sqlite_retry(work)


def annotation_delete(*, annotation: Annotation, user: Any, revision: int) -> Annotation:
    """Soft-delete at ``revision`` (compare-and-set as in annotation_update); the history keeps every state.

    Audited (annotation_deleted).
    """

    @transaction.atomic
    def work() -> Annotation:
        locked = _lock_writable(annotation.assignment)
        saved = _compare_and_set(annotation, revision, user, RevisionAction.DELETE, deleted=True)
        _mark_in_progress(locked)
        _audit_annotation(saved, annotation.assignment, user, "annotation_deleted")
        return saved

    return _with_sqlite_retry(work)


# --- assignments ----------------------------------------------------------------------------------


def assignment_create(
    *, series: Series, readers: list[Any], user: Any, priority: int = Priority.ROUTINE
) -> list[Assignment]:
    """Give ``series`` to each reader at ``priority``; idempotent (an existing reader's assignment
    is returned as is, its priority unchanged: assignment_set_priority changes it).

    Raises InvalidAssignment unless each reader is a member who may read
    (annotations.access.READER_ROLES). The caller has checked that ``user`` is a
    project admin. Audited.
    """
    project = series.study.project
    allowed = set(
        Membership.objects.filter(project=project, role__in=READER_ROLES, user__in=readers).values_list(
            "user_id", flat=True
        )
    )
    if any(reader.pk not in allowed for reader in readers):
        raise InvalidAssignment("Every reader must be a project member who may read (not compliance only).")
    out = []
    with transaction.atomic():
        for reader in readers:
            assignment, created = Assignment.objects.get_or_create(
                series=series, reader=reader, defaults={"project": project, "created_by": user, "priority": priority}
            )
            out.append(assignment)
            if created:
                audit_record(
                    action="assignment_created",
                    actor=user,
                    project=project,
                    object_type="assignment",
                    object_id=assignment.pk,
                    details={
                        "series": str(series.pk),
                        "reader": reader.get_username(),
                        "priority": Priority(priority).name.lower(),
                    },
                )
    return out


def assignment_set_priority(*, assignment: Assignment, priority: int, user: Any) -> Assignment:
    """Change how soon a read is wanted (the caller has checked that ``user`` is a project admin).

    Any status may change priority (a returned read can become urgent). Writes and audits only
    when the priority really changes; ``updated_at`` is left alone, so the reader's "last
    change" column keeps meaning their own work.
    """
    priority = Priority(priority)
    with transaction.atomic():
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if locked.priority == priority:
            return locked
        before = Priority(locked.priority).name.lower()
        Assignment.objects.filter(pk=locked.pk).update(priority=priority)
        locked.priority = priority
        audit_record(
            action="assignment_priority_changed",
            actor=user,
            project=locked.project,
            object_type="assignment",
            object_id=locked.pk,
            details={"from": before, "to": priority.name.lower()},
        )
    return locked


def _transition(assignment: Assignment, *, allowed: tuple[str, ...], to: str, **fields: Any) -> Assignment:
    with transaction.atomic():
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if locked.status not in allowed:
            raise InvalidTransition(f"The assignment is {locked.status}; it cannot become {to}.")
        for name, value in {"status": to, **fields}.items():
            setattr(locked, name, value)
        locked.save()
    return locked


def _consensus_after_commit(assignment: Assignment, user: Any) -> None:
    """Once the transaction commits, queue the series' consensus update (annotations.adjudication)."""
    from annotations import tasks  # the task module imports the services

    tasks.series_consensus_update.delay_on_commit(str(assignment.series_id), user.pk)


def retraining_after_commit(project_id: Any) -> None:
    """Once the transaction commits, let the project's retraining rule count the newly accepted
    labels (inference.retraining; nothing happens for a project without an enabled rule)."""
    from inference import tasks as inference_tasks  # inference imports the annotation models

    inference_tasks.retraining_check.delay_on_commit(str(project_id))


def _not_consensus(assignment: Assignment) -> None:
    if assignment.kind == AssignmentKind.CONSENSUS:
        raise InvalidTransition("A consensus read is decided on the adjudication page, not submitted or reviewed.")


def assignment_submit(*, assignment: Assignment, user: Any) -> Assignment:
    """The reader hands the series in; from then on its annotations are locked. Only the reader.

    When this finishes the series' last open read, its consensus is computed after commit.
    """
    _not_consensus(assignment)
    if assignment.reader_id != user.pk:
        raise PermissionDenied("Only the assigned reader submits.")
    done = _transition(
        assignment, allowed=_WRITABLE, to=AssignmentStatus.SUBMITTED, submitted_at=timezone.now(), comment=""
    )
    _audit(done, user, "assignment_submitted")
    _consensus_after_commit(done, user)
    return done


def assignment_accept(*, assignment: Assignment, user: Any) -> Assignment:
    """A reviewer (checked by the caller), not the reader, accepts a submitted assignment.

    The series' consensus is brought up to date after commit (annotations.adjudication), and
    the project's retraining rule counts the accepted labels (inference.retraining).
    """
    _not_consensus(assignment)
    if assignment.reader_id == user.pk:
        raise PermissionDenied("A reader does not review their own assignment.")
    done = _transition(
        assignment,
        allowed=(AssignmentStatus.SUBMITTED,),
        to=AssignmentStatus.ACCEPTED,
        reviewed_by=user,
        reviewed_at=timezone.now(),
    )
    _audit(done, user, "assignment_accepted")
    _consensus_after_commit(done, user)
    retraining_after_commit(done.project_id)
    return done


def assignment_return(*, assignment: Assignment, user: Any, comment: str) -> Assignment:
    """A reviewer returns a submitted assignment with a comment; the reader can edit again."""
    _not_consensus(assignment)
    if assignment.reader_id == user.pk:
        raise PermissionDenied("A reader does not review their own assignment.")
    if not comment.strip():
        raise InvalidAnnotation("A comment is required to return an assignment.", field="comment")
    done = _transition(
        assignment,
        allowed=(AssignmentStatus.SUBMITTED,),
        to=AssignmentStatus.RETURNED,
        comment=comment.strip(),
        reviewed_by=user,
        reviewed_at=timezone.now(),
    )
    _audit(done, user, "assignment_returned")
    return done


def _audit(assignment: Assignment, user: Any, action: str) -> None:
    audit_record(
        action=action, actor=user, project=assignment.project, object_type="assignment", object_id=assignment.pk
    )
