"""Read side of ingest, quarantine, audit and de-identification reports."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from anonymizer.models import PENDING_STATUSES, DeidReport, IngestBatch, IngestItem, ItemStatus, UploadState
from anonymizer.text_removals import removal_rows, removal_summary
from workbench.models import AuditEvent, Membership, Project, Study


def batch_counts(batch: IngestBatch) -> dict[str, int]:
    counts = dict(batch.items.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    total = sum(counts.values())
    # Uploads the worker has not yet expanded into items (anonymizer.uploads) keep the batch open.
    expanding = batch.uploads.exclude(state=UploadState.EXPANDED).count()
    return {"total": total, **{status: counts.get(status, 0) for status in ItemStatus.values}, "expanding": expanding}


def batch_state(counts: dict[str, int]) -> str:
    pending = sum(counts.get(s, 0) for s in PENDING_STATUSES)
    if counts.get("expanding"):
        return "processing"
    if counts["total"] == 0:
        return "empty"
    return "processing" if pending else "finished"


def batches_for_project(project: Project) -> QuerySet[IngestBatch]:
    pending = Q(items__status__in=PENDING_STATUSES)
    return project.batches.annotate(
        total=Count("items"),
        done=Count("items", filter=Q(items__status=ItemStatus.DONE)),
        duplicate=Count("items", filter=Q(items__status=ItemStatus.DUPLICATE)),
        quarantined=Count("items", filter=Q(items__status=ItemStatus.QUARANTINED)),
        rejected=Count("items", filter=Q(items__status=ItemStatus.REJECTED)),
        pending=Count("items", filter=pending),
    ).select_related("created_by")


def quarantine_for_project(project: Project) -> QuerySet[IngestItem]:
    return IngestItem.objects.filter(batch__project=project, status=ItemStatus.QUARANTINED).select_related("batch")


MEMBER_EVENTS = ("login", "login_failed")


def project_events(project: Project) -> Q:
    """The events a project's compliance officers see: the project's own, and its members' logins.

    Logins belong to no project (one person may work in several), so they are attributed to
    every project the person is a member of now: ``login`` by its actor, ``login_failed`` by
    the username tried. Other projects' events never match, nor do other people's logins.
    """
    members = Membership.objects.filter(project=project)
    logins = Q(action="login", actor_id__in=members.values("user_id"))
    failed = Q(action="login_failed", details__username__in=list(members.values_list("user__username", flat=True)))
    return Q(project=project) | (Q(project__isnull=True, project_slug="") & (logins | failed))


class InvalidFilter(ValueError):
    """A filter value that cannot be used; ``field`` names the parameter."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _when(value: str, field: str, *, end_of_day: bool = False) -> datetime:
    try:
        return _parse_when(value, end_of_day=end_of_day)
    except ValueError as exc:
        raise InvalidFilter(str(exc), field=field) from exc


def audit_events(
    *, project: Project, action: str = "", actor: str = "", since: str = "", until: str = ""
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(project_events(project))
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor_name=actor)
    if since:
        qs = qs.filter(at__gte=_when(since, "since"))
    if until:
        qs = qs.filter(at__lte=_when(until, "until", end_of_day=True))
    return qs.order_by("-seq")


def _parse_when(value: str, end_of_day: bool = False) -> datetime:
    """A plain day means the whole UTC day; a date-time without offset is taken as UTC."""
    from datetime import time

    day = parse_date(value) if len(value) == 10 else None
    if day is not None:
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"Use a date like 2026-01-31 or an ISO date-time, not {value[:40]!r}.")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def study_deid_report(study: Study) -> dict[str, Any]:
    """Which attributes were removed, replaced, kept across a study; never the original values."""
    reports = DeidReport.objects.filter(instance__series__study=study).select_related("instance__series")
    per_attribute: dict[tuple[str, str], Counter[str]] = {}
    totals: Counter[str] = Counter()
    instances = []
    for report in reports:
        totals.update(report.action_counts)
        for path, keyword, action in report.attributes:
            tag = path.rsplit(".", 1)[-1] if "[" in path else path
            per_attribute.setdefault((tag, keyword), Counter())[action] += 1
        instances.append(
            {
                "instance": str(report.instance_id),
                "series": str(report.instance.series_id),
                "pixel_cleaned": report.pixel_cleaned,
                "text_regions": report.text_regions,
                "verifier_leaks": report.verifier_leaks,
                "recipe_sha256": report.recipe_sha256,
            }
        )
    first = reports.first()
    return {
        "study": str(study.pk),
        "patient": study.patient.pseudo_id,
        "profile": first.profile if first else "",
        "options": first.options if first else {},
        "action_totals": dict(totals),
        "attributes": [
            {"tag": tag, "keyword": kw, "actions": dict(c)} for (tag, kw), c in sorted(per_attribute.items())
        ],
        "instances": instances,
        "text_removals": removal_rows(report.text_removals for report in reports),
    }


def project_deid_rows(project: Project) -> list[dict[str, Any]]:
    """One row per de-identified instance, for the CSV/JSON report download."""
    reports = DeidReport.objects.filter(instance__series__study__project=project).select_related(
        "instance__series__study__patient"
    )
    rows = []
    for report in reports.order_by("created_at"):
        instance = report.instance
        rows.append(
            {
                "patient": instance.series.study.patient.pseudo_id,
                "study_uid": instance.series.study.study_uid,
                "series_uid": instance.series.series_uid,
                "sop_uid": instance.sop_uid,
                "modality": instance.series.modality,
                "profile": report.profile,
                "recipe_sha256": report.recipe_sha256,
                "removed": report.action_counts.get("X", 0),
                "emptied": report.action_counts.get("Z", 0),
                "replaced": report.action_counts.get("D", 0) + report.action_counts.get("U", 0),
                "cleaned": report.action_counts.get("C", 0),
                "kept": report.action_counts.get("K", 0),
                "pixel_cleaned": report.pixel_cleaned,
                "verifier_leaks": report.verifier_leaks,
                "text_removed": removal_summary(report.text_removals),
                "at": report.created_at.isoformat(),
            }
        )
    return rows
