"""Read side of label schemas, assignments and annotations. Every list goes through the blinding rule."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from annotations.access import READER_ROLES, REVIEW_ROLES
from annotations.models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    LabelSchema,
)
from annotations.worklist import WorklistFilter, worklist_apply
from workbench.access import roles_for
from workbench.models import Membership, Project, Series

_ASSIGNMENT_RELATED = ("project", "series__study__patient", "reader")


def label_schema_current(*, project: Project) -> LabelSchema | None:
    return LabelSchema.objects.filter(project=project).prefetch_related("labels").order_by("-version").first()


def label_schema_versions(*, project: Project) -> QuerySet[LabelSchema]:
    return LabelSchema.objects.filter(project=project).prefetch_related("labels").order_by("-version")


def _reviewed_projects(user: Any) -> QuerySet[Membership, Any]:
    return Membership.objects.filter(user=user, role__in=REVIEW_ROLES).values("project_id")


def _read_projects(user: Any) -> QuerySet[Membership, Any]:
    """Projects where the user CURRENTLY holds a role that reads: their own assignments there are theirs."""
    return Membership.objects.filter(user=user, role__in=READER_ROLES).values("project_id")


def _with_reader_active(qs: QuerySet[Assignment]) -> QuerySet[Assignment]:
    """Each row's ``reader_active``: is its reader still a member who reads (annotations.access)?

    A removed reader's assignments stay in the reviewers' lists as data, marked, so that an
    admin can give the series to someone else; the reader can no longer act on them.
    """
    reads = Membership.objects.filter(project=OuterRef("project"), user=OuterRef("reader"), role__in=READER_ROLES)
    return qs.annotate(reader_active=Exists(reads))


def reads_of(*, project: Project) -> QuerySet[Assignment]:
    """The project's readers' reads: every list of reads starts here, so no consensus read leaks in."""
    return Assignment.objects.filter(project=project, kind=AssignmentKind.READ)


def assignment_list(*, user: Any, project: Project, status: str = "") -> QuerySet[Assignment]:
    """All of the project's reads (not the consensus reads) for reviewers and admins; a reader's own otherwise."""
    qs = _with_reader_active(reads_of(project=project).select_related(*_ASSIGNMENT_RELATED))
    roles = roles_for(user, project)
    if not roles & REVIEW_ROLES:
        # A member whose role no longer reads keeps no worklist here (annotations.access).
        qs = qs.filter(reader=user) if roles & READER_ROLES else qs.none()
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("series__study__patient__pseudo_id", "series__number", "reader__username")


def assignment_list_mine(*, user: Any, filters: WorklistFilter | None = None) -> QuerySet[Assignment]:
    """The user's worklist across projects where they still read, narrowed and ordered by
    ``filters`` (annotations.worklist: by default every status, open work first, urgent first)."""
    qs = Assignment.objects.filter(reader=user, project__in=_read_projects(user)).select_related(*_ASSIGNMENT_RELATED)
    return _with_reader_active(worklist_apply(qs, filters or WorklistFilter()))


def assignment_list_to_review(*, project: Project) -> QuerySet[Assignment]:
    return _with_reader_active(
        reads_of(project=project)
        .filter(status=AssignmentStatus.SUBMITTED)
        .select_related(*_ASSIGNMENT_RELATED)
        .order_by("submitted_at")
    )


DECISIONS = ("accepted", "returned")


def assignment_list_decided(*, project: Project, decision: str = "") -> QuerySet[Assignment]:
    """Reads a reviewer decided on, latest decision first: accepted ones, and returned ones
    until their reader submits again (then they wait for review once more).

    ``decision`` ("accepted" or "returned") narrows the list; the row keeps who decided and when.
    """
    qs = reads_of(project=project).filter(reviewed_at__isnull=False).exclude(status=AssignmentStatus.SUBMITTED)
    if decision == "accepted":
        qs = qs.filter(status=AssignmentStatus.ACCEPTED)
    elif decision == "returned":
        qs = qs.exclude(status=AssignmentStatus.ACCEPTED)
    return _with_reader_active(qs.select_related(*_ASSIGNMENT_RELATED, "reviewed_by").order_by("-reviewed_at", "pk"))


def series_list_for_assignment(*, project: Project) -> QuerySet[Series]:
    return (
        Series.objects.filter(study__project=project)
        .select_related("study__patient")
        .order_by("study__patient__pseudo_id", "study__study_date", "number")
    )


def annotation_list(
    *,
    user: Any,
    assignment: str = "",
    series: str = "",
    label: str = "",
    sop_instance_uid: str = "",
    include_deleted: bool = False,
) -> QuerySet[Annotation]:
    """Annotations the user may see: of their own assignments, and all of projects they review."""
    own = Q(assignment__reader=user, assignment__project__in=_read_projects(user))
    visible = own | Q(assignment__project__in=_reviewed_projects(user))
    qs = Annotation.objects.filter(visible).select_related("label", "author", "assignment")
    if assignment:
        qs = qs.filter(assignment_id=assignment)
    if series:
        qs = qs.filter(assignment__series_id=series)
    if label:
        qs = qs.filter(label_id=label)
    if sop_instance_uid:
        qs = qs.filter(sop_instance_uid=sop_instance_uid)
    if not include_deleted:
        qs = qs.filter(deleted=False)
    return qs.order_by("created_at", "id")


def annotation_history(*, annotation: Annotation) -> QuerySet[AnnotationRevision]:
    return annotation.revisions.select_related("author").order_by("revision")


def assignment_list_finished(*, project: Project) -> QuerySet[Assignment]:
    finished = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED)
    return reads_of(project=project).filter(status__in=finished).select_related(*_ASSIGNMENT_RELATED)


def annotations_for_agreement(*, project: Project) -> QuerySet[Annotation]:
    """Live annotations of finished reads (submitted or accepted) in series read by two or more readers."""
    finished = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED)
    return (
        Annotation.objects.filter(
            assignment__project=project,
            assignment__kind=AssignmentKind.READ,
            assignment__status__in=finished,
            deleted=False,
        )
        .select_related("label", "assignment__reader")
        .order_by("updated_at", "id")
    )


# --- consensus and adjudication ---------------------------------------------------------------


def consensus_list(*, project: Project, state: str = "") -> QuerySet[Any]:
    """The project's series consensus rows, lowest agreement first; ``state`` narrows them
    (default: those waiting for a person, needs_adjudication and proposed)."""
    from annotations.models import ConsensusState, SeriesConsensus

    qs = SeriesConsensus.objects.filter(project=project).select_related(
        "series__study__patient", "assignment", "decided_by", "source_read__reader"
    )
    if state:
        qs = qs.filter(state=state)
    else:
        qs = qs.filter(state__in=(ConsensusState.NEEDS_ADJUDICATION, ConsensusState.PROPOSED))
    return qs.order_by(F("agreement").asc(nulls_first=True), "computed_at", "pk")


def consensus_of(*, series: Series) -> Any:
    """The series' consensus row (annotations.models.SeriesConsensus), or None before its reads are finished."""
    from annotations.models import SeriesConsensus

    return (
        SeriesConsensus.objects.filter(series=series)
        .select_related("assignment", "decided_by", "source_read__reader")
        .first()
    )


def series_reads(*, series: Series) -> QuerySet[Assignment]:
    """The readers' reads of one series (never its consensus read), by reader."""
    return (
        Assignment.objects.filter(series=series, kind=AssignmentKind.READ)
        .select_related("reader")
        .order_by("reader__username")
    )
