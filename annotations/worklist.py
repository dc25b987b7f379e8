"""The reader's worklist: which of their reads it shows and in what order.

One rule for the worklist page, ``GET /api/assignments/mine/`` and the annotator's "Submit and
open next" (which takes the first open read of the API's order), so the next case is the one the
worklist shows on top:

- every status by default; ``status=open`` keeps only open work (returned, in progress, to do);
- the default order is what a reading room expects: work sent back first, then what was
  started, then new work; within each, the most urgent first, and among equal priority the
  oldest assignment first (first in, first read);
- ``sort`` orders by one column instead (``-`` for descending), ties broken the default way;
  ``score`` is the triage score of the project's newest classifier that scored series
  (inference.triage), likely-abnormal first and unscored series last (``-score``: least likely first).

Imports no view code; the filter is a frozen dataclass so tests can build one directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, F, IntegerField, QuerySet, Value, When

from annotations.models import Assignment, AssignmentStatus, Priority

OPEN = "open"
ALL = "all"
OPEN_STATUSES = (AssignmentStatus.RETURNED, AssignmentStatus.IN_PROGRESS, AssignmentStatus.TODO)
STATUS_CHOICES = (OPEN, ALL, *AssignmentStatus.values)
# sort key -> the model fields it orders by (ascending)
SORTS = {
    "priority": ("priority",),
    "assigned": ("created_at",),
    "updated": ("updated_at",),
    "patient": ("series__study__patient__pseudo_id", "series__number"),
    "project": ("project__name",),
    "modality": ("series__modality",),
    "status": ("status_rank",),
    "score": ("triage_score",),  # ordered descending by default (see worklist_apply)
}
_STATUS_RANK = {status: rank for rank, status in enumerate([*OPEN_STATUSES, "submitted", "accepted"])}


class InvalidWorklistFilter(ValueError):
    """A worklist parameter that does not exist; ``field`` names the query parameter at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class WorklistFilter:
    status: str = ALL
    project: str = ""  # a project id, or every project where the user reads
    modality: str = ""
    min_priority: int | None = None
    sort: str = ""  # a SORTS key, "-" in front for descending; "" is the reading-room order

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> WorklistFilter:
        """Read query parameters; InvalidWorklistFilter says which one is wrong and what it may be."""
        status = params.get("status") or ALL
        if status not in STATUS_CHOICES:
            raise InvalidWorklistFilter(f"status must be one of: {', '.join(STATUS_CHOICES)}.", field="status")
        project = params.get("project") or ""
        if project:
            try:
                project = str(uuid.UUID(str(project)))
            except ValueError:
                raise InvalidWorklistFilter("project must be a project id (a UUID).", field="project") from None
        min_priority = params.get("priority") or None
        if min_priority is not None:
            names = {choice.name.lower(): choice.value for choice in Priority}
            if str(min_priority).lower() not in names:
                raise InvalidWorklistFilter(
                    f"priority must be one of: {', '.join(names)} (that priority or higher).", field="priority"
                )
            min_priority = names[str(min_priority).lower()]
        sort = params.get("sort") or ""
        if sort and sort.lstrip("-") not in SORTS:
            raise InvalidWorklistFilter(
                f"sort must be one of: {', '.join(SORTS)}, each optionally with '-' for descending.", field="sort"
            )
        modality = str(params.get("modality") or "").strip().upper()[:16]
        return cls(status=status, project=project, modality=modality, min_priority=min_priority, sort=sort)

    def as_params(self) -> dict[str, str]:
        """The query parameters that give this filter back (the page's sort links keep the filters)."""
        out = {"status": self.status if self.status != ALL else "", "project": self.project}
        out["modality"] = self.modality
        out["priority"] = Priority(self.min_priority).name.lower() if self.min_priority is not None else ""
        out["sort"] = self.sort
        return {key: value for key, value in out.items() if value}


def worklist_apply(qs: QuerySet[Assignment], filters: WorklistFilter) -> QuerySet[Assignment]:
    """Narrow and order a reader's assignments as ``filters`` says (see the module docstring)."""
    if filters.status == OPEN:
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status != ALL:
        qs = qs.filter(status=filters.status)
    if filters.project:
        qs = qs.filter(project_id=filters.project)
    if filters.modality:
        qs = qs.filter(series__modality=filters.modality)
    if filters.min_priority is not None:
        qs = qs.filter(priority__gte=filters.min_priority)
    rank = Case(
        *(When(status=status, then=Value(r)) for status, r in _STATUS_RANK.items()),
        default=Value(len(_STATUS_RANK)),
        output_field=IntegerField(),
    )
    from inference.triage import triage_score_subquery  # the classifier's scores, for the "score" sort

    qs = qs.annotate(status_rank=rank, triage_score=triage_score_subquery())
    default = ("status_rank", "-priority", "created_at", "id")
    if not filters.sort:
        return qs.order_by(*default)
    descending = filters.sort.startswith("-")
    if filters.sort.lstrip("-") == "score":
        score = F("triage_score")
        return qs.order_by(score.asc(nulls_last=True) if descending else score.desc(nulls_last=True), *default)
    fields = [f"-{name}" if descending else name for name in SORTS[filters.sort.lstrip("-")]]
    return qs.order_by(*fields, *default)
