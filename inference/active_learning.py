"""Active learning: rank unlabelled series by the model's uncertainty and serve them in that order.

- ``uncertainty_rank_create`` queues the scoring (admins and ML engineers); an ``inference`` worker
  runs ``uncertainty_rank_run``, which scores every series with test-time-augmentation entropy
  (inference.handlers.uncertainty) and stores one UncertaintyScore per model and series.
- ``next_best_case`` serves a reader the most uncertain case that nobody reads or holds: it gives
  them the read and a reservation. While the reservation holds, nobody else is served that case;
  a served read not started when it expires is withdrawn and the case goes back to the pool, so a
  reader who walks away does not keep it. Two readers asking at once get two different cases.
- ``worklists_fill`` lets an admin give the N most uncertain unread cases to readers, round robin.

Expiry is checked whenever cases are served, filled or listed, so it needs no scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from annotations.access import READER_ROLES
from annotations.models import Assignment, AssignmentKind, AssignmentStatus, Priority
from annotations.services import assignment_create
from inference.models import CaseReservation, ModelVersion, UncertaintyScore
from inference.runs import instance_slices, unlabelled_series_qs
from workbench.audit import audit_record
from workbench.models import Membership, Project, Series


class NothingToServe(Exception):
    """Every ranked case is read, being read or held by someone."""


class InvalidActiveLearning(ValueError):
    """A request that cannot be served; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def reservation_minutes() -> int:
    return int(getattr(settings, "WORKBENCH_CASE_RESERVATION_MINUTES", 30))


def _unread(qs: QuerySet[Any], series_field: str) -> QuerySet[Any]:
    """Rows whose series nobody has been given to read yet."""
    reads = Assignment.objects.filter(series=OuterRef(series_field), kind=AssignmentKind.READ)
    return qs.exclude(Exists(reads))


def _modality_filter(model: ModelVersion) -> str:
    modality = str(model.input_spec.get("modality") or "")
    return "" if "," in modality else modality


def uncertainty_rank_create(*, project: Project, model: ModelVersion, user: Any) -> int:
    """Queue the scoring of every unlabelled series of the model's modality; how many series it scores.

    The caller has checked that ``user`` is a project admin or ML engineer. Audited; the task is
    sent after the commit.
    """
    if model.project_id != project.pk:
        raise InvalidActiveLearning("This model belongs to another project.", field="model")
    series = unlabelled_series_qs(project=project)
    if modality := _modality_filter(model):
        series = series.filter(modality=modality)
    ids = [str(pk) for pk in series.values_list("pk", flat=True)]
    audit_record(
        action="uncertainty_rank_queued",
        actor=user,
        project=project,
        object_type="model_version",
        object_id=model.pk,
        details={"series": len(ids)},
    )
    from inference import tasks

    transaction.on_commit(lambda: tasks.uncertainty_rank_run.delay(model.pk, ids))
    return len(ids)


def uncertainty_rank_run(*, model_id: str, series_ids: list[str], batch_size: int = 16) -> int:
    """Score each series (worker side; imports torch). Idempotent: a series' score is replaced."""
    from inference.handlers import handler_class
    from inference.handlers.uncertainty import series_score, slice_scores
    from inference.services import model_weights

    model = ModelVersion.objects.get(pk=model_id)
    handler = handler_class(model.kind)(model_weights(model), model.config)
    done = 0
    for series in Series.objects.filter(pk__in=series_ids):
        by_shape: dict[tuple[int, ...], list[Any]] = {}
        for instance in series.instances.order_by("number", "sop_uid"):
            for one in instance_slices(instance):
                by_shape.setdefault(one.pixels.shape, []).append(one.pixels)
        scores = [s for images in by_shape.values() for s in slice_scores(handler, images, batch_size=batch_size)]
        UncertaintyScore.objects.update_or_create(
            model=model, series=series, defaults={"score": series_score(scores), "slices": len(scores)}
        )
        done += 1
    return done


def latest_ranked_model(*, project: Project) -> ModelVersion | None:
    """The newest model version of the project that has scored series."""
    return (
        ModelVersion.objects.filter(project=project, uncertainty_scores__isnull=False)
        .order_by("-created_at")
        .distinct()
        .first()
    )


def _model_or_latest(project: Project, model: ModelVersion | None) -> ModelVersion:
    chosen = model or latest_ranked_model(project=project)
    if chosen is None:
        raise InvalidActiveLearning("No model has ranked this project's series yet: rank them first.", field="model")
    if chosen.project_id != project.pk:
        raise InvalidActiveLearning("This model belongs to another project.", field="model")
    return chosen


@dataclass(frozen=True)
class RankedCase:
    score: UncertaintyScore
    reservation: CaseReservation | None
    readers: tuple[str, ...]


def ranked_cases(*, project: Project, model: ModelVersion | None = None) -> list[RankedCase]:
    """Unlabelled series by falling uncertainty, with who reads or holds each."""
    chosen = _model_or_latest(project, model)
    reservations_expire(project=project)
    scores = (
        UncertaintyScore.objects.filter(model=chosen, series__in=unlabelled_series_qs(project=project))
        .select_related("series__study__patient")
        .order_by("-score", "series_id")
    )
    held = {r.series_id: r for r in _active(project).select_related("reader")}
    readers: dict[Any, list[str]] = {}
    reads = Assignment.objects.filter(project=project, kind=AssignmentKind.READ, series__in=scores.values("series"))
    for series_id, username in reads.values_list("series_id", "reader__username"):
        readers.setdefault(series_id, []).append(username)
    return [RankedCase(s, held.get(s.series_id), tuple(sorted(readers.get(s.series_id, [])))) for s in scores]


def _active(project: Project, now: datetime | None = None) -> QuerySet[CaseReservation]:
    return CaseReservation.objects.filter(
        project=project, released_at__isnull=True, claimed_at__isnull=True, expires_at__gt=now or timezone.now()
    )


def _started(assignment: Assignment) -> bool:
    return assignment.status != AssignmentStatus.TODO or assignment.annotations.exists()


def reservations_expire(*, project: Project, now: datetime | None = None) -> int:
    """Settle the project's lapsed reservations; how many reads were withdrawn.

    A lapsed reservation whose read was started becomes claimed (the read stays); one whose read
    is still untouched (to do, no annotation ever) is released and the read is deleted, audited.
    Reservations still holding are claimed early when their read has started.
    """
    now = now or timezone.now()
    withdrawn = 0
    pending = CaseReservation.objects.filter(project=project, released_at__isnull=True, claimed_at__isnull=True)
    for reservation in pending.select_related("assignment", "reader"):
        assignment = reservation.assignment
        if assignment is not None and _started(assignment):
            CaseReservation.objects.filter(pk=reservation.pk).update(claimed_at=now)
        elif reservation.expires_at <= now:
            with transaction.atomic():
                if assignment is not None:
                    audit_record(
                        action="assignment_withdrawn",
                        actor=None,
                        project=project,
                        object_type="assignment",
                        object_id=assignment.pk,
                        details={"reason": "served case not started before its reservation expired"},
                    )
                    assignment.delete()
                    withdrawn += 1
                CaseReservation.objects.filter(pk=reservation.pk).update(released_at=now)
    return withdrawn


def _lock_project(project: Project) -> None:
    """Serialise serving within a project: a row write takes the lock on PostgreSQL and on SQLite."""
    Project.objects.filter(pk=project.pk).update(name=F("name"))


def _candidates(project: Project, model: ModelVersion, now: datetime) -> QuerySet[UncertaintyScore]:
    held = _active(project, now).filter(series=OuterRef("series"))
    scores = UncertaintyScore.objects.filter(model=model, series__in=unlabelled_series_qs(project=project))
    return _unread(scores, "series").exclude(Exists(held)).order_by("-score", "series_id")


def next_best_case(
    *, project: Project, reader: Any, model: ModelVersion | None = None, now: datetime | None = None
) -> CaseReservation:
    """Serve ``reader`` the most uncertain case nobody reads or holds; the same one again if asked twice.

    Gives them the read (priority high) and a reservation of ``reservation_minutes()``. The caller
    has checked that ``reader`` may read in the project. Raises NothingToServe when no case is left,
    InvalidActiveLearning when no model has ranked the project. Transactional; audited.
    """
    now = now or timezone.now()
    chosen = _model_or_latest(project, model)
    with transaction.atomic():
        _lock_project(project)
        reservations_expire(project=project, now=now)
        mine = _active(project, now).filter(reader=reader, assignment__isnull=False).first()
        if mine is not None:
            return mine
        best = _candidates(project, chosen, now).select_related("series").first()
        if best is None:
            raise NothingToServe("Every ranked case is read or held by a reader; rank again after new data arrives.")
        (assignment,) = assignment_create(series=best.series, readers=[reader], user=reader, priority=Priority.HIGH)
        reservation = CaseReservation.objects.create(
            project=project,
            series=best.series,
            reader=reader,
            model=chosen,
            assignment=assignment,
            score=best.score,
            expires_at=now + timedelta(minutes=reservation_minutes()),
        )
        audit_record(
            action="case_served",
            actor=reader,
            project=project,
            object_type="assignment",
            object_id=assignment.pk,
            details={"series": str(best.series_id), "model": chosen.pk, "score": round(best.score, 4)},
        )
    return reservation


def worklists_fill(
    *, project: Project, readers: list[Any], count: int, user: Any, model: ModelVersion | None = None
) -> list[Assignment]:
    """Give the ``count`` most uncertain unread, unheld cases to ``readers`` in turn (priority high).

    The caller has checked that ``user`` is a project admin. Readers must be members who may read.
    These reads are assigned work, not served cases: they carry no reservation. Transactional.
    """
    if not readers:
        raise InvalidActiveLearning("Name at least one reader.", field="readers")
    allowed = set(
        Membership.objects.filter(project=project, role__in=READER_ROLES, user__in=readers).values_list(
            "user_id", flat=True
        )
    )
    if any(reader.pk not in allowed for reader in readers):
        raise InvalidActiveLearning("Every reader must be a project member who may read.", field="readers")
    chosen = _model_or_latest(project, model)
    now = timezone.now()
    out: list[Assignment] = []
    with transaction.atomic():
        _lock_project(project)
        reservations_expire(project=project, now=now)
        for index, score in enumerate(_candidates(project, chosen, now).select_related("series")[:count]):
            reader = readers[index % len(readers)]
            out += assignment_create(series=score.series, readers=[reader], user=user, priority=Priority.HIGH)
    return out


def projects_serving(*, user: Any) -> list[tuple[Any, str, int]]:
    """(project id, name, cases waiting) where ``user`` may read and a ranking has cases to serve."""
    out = []
    memberships = Membership.objects.filter(user=user, role__in=READER_ROLES).select_related("project")
    for project in sorted({m.project for m in memberships}, key=lambda p: p.name):
        model = latest_ranked_model(project=project)
        if model is not None:
            waiting = _candidates(project, model, timezone.now()).count()
            if waiting:
                out.append((project.pk, project.name, waiting))
    return out
