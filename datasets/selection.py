"""Which series and annotations a dataset holds: a validated selection and the queries it makes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Q, QuerySet

from annotations.models import Annotation, AssignmentStatus, Source
from workbench.models import Project, Series

_DATE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")
# Where a label may come from (``Selection.origin``):
#   any       every label of the chosen reads;
#   verified  what a person drew, edited or accepted: drawn labels, accepted model proposals, and
#             fused consensus labels only where an adjudicator decided the consensus (not when it
#             was accepted automatically above the threshold);
#   human     only labels a person drew: no model proposal, even accepted, and no fusion.
ORIGINS = ("any", "verified", "human")


@dataclass(frozen=True)
class Selection:
    """Series of the project that match every filter, plus ``include``, minus ``exclude``.

    ``statuses`` chooses whose work counts (accepted only by default); a series is chosen when at
    least one of its assignments has such a status (and, with ``labels``, carries such a label).
    Dates compare the catalog's study date, which is the shifted or reduced date de-identification left.
    """

    modalities: tuple[str, ...] = ()
    series: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = (AssignmentStatus.ACCEPTED.value,)
    date_from: str = ""
    date_to: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    origin: str = "any"

    @classmethod
    def from_dict(cls, value: Any) -> Selection:
        """Validate an API body; ValueError says what to fix."""
        value = dict(value or {})
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"Unknown selection filter(s): {', '.join(sorted(unknown))}.")
        out: dict[str, Any] = {}
        for name in ("modalities", "labels"):
            out[name] = tuple(sorted({_text(v, name) for v in _list(value.get(name), name)}))
        for name in ("series", "include", "exclude"):
            out[name] = tuple(sorted({_uuid(v, name) for v in _list(value.get(name), name)}))
        statuses = _list(value.get("statuses", [AssignmentStatus.ACCEPTED.value]), "statuses")
        bad = [s for s in statuses if s not in AssignmentStatus.values]
        if bad or not statuses:
            raise ValueError(f"selection.statuses must be some of: {', '.join(AssignmentStatus.values)}.")
        out["statuses"] = tuple(sorted(set(statuses)))
        for name in ("date_from", "date_to"):
            raw = str(value.get(name) or "")
            if raw and not _DATE.match(raw):
                raise ValueError(f"selection.{name} must be a date as YYYY-MM-DD.")
            out[name] = raw.replace("-", "")
        origin = value.get("origin") or "any"
        if origin not in ORIGINS:
            raise ValueError(f"selection.origin must be one of: {', '.join(ORIGINS)}.")
        out["origin"] = origin
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def series_queryset(self, project: Project) -> QuerySet[Series]:
        chosen = Series.objects.filter(
            study__project=project, assignments__kind="read", assignments__status__in=self.statuses
        )
        if self.modalities:
            chosen = chosen.filter(modality__in=self.modalities)
        if self.series:
            chosen = chosen.filter(pk__in=self.series)
        if self.labels:
            chosen = chosen.filter(
                assignments__annotations__label__name__in=self.labels, assignments__annotations__deleted=False
            )
        if self.date_from:
            chosen = chosen.filter(study__study_date__gte=self.date_from)
        if self.date_to:
            chosen = chosen.filter(study__study_date__lte=self.date_to)
        wanted = Q(pk__in=chosen.values("pk")) | Q(pk__in=self.include)
        return (
            Series.objects.filter(wanted, study__project=project)
            .exclude(pk__in=self.exclude)
            .select_related("study__patient")
            .order_by("series_uid")
        )

    def annotations(self, series: Iterable[Series], *, consensus: bool = False) -> QuerySet[Annotation]:
        """Live annotations of the selected reads; with ``consensus``, of decided consensus reads too."""
        status = Q(assignment__status__in=self.statuses)
        if consensus:
            status |= Q(assignment__kind="consensus", assignment__status=AssignmentStatus.ACCEPTED.value)
        found = Annotation.objects.filter(status, assignment__series__in=list(series), deleted=False)
        if self.labels:
            found = found.filter(label__name__in=self.labels)
        if self.origin == "human":
            found = found.filter(source=Source.HUMAN)
        elif self.origin == "verified":
            adjudicated = Q(source=Source.FUSION, assignment__series__consensus__decided_by__isnull=False)
            found = found.filter(Q(source__in=[Source.HUMAN, Source.MODEL]) | adjudicated)
        return found.select_related("label", "author", "assignment__reader", "assignment__reviewed_by").order_by("id")


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f"selection.{name} must be a list.")
    return list(value)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"selection.{name} must hold non-empty strings.")
    return value.strip()


def _uuid(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise ValueError(f"selection.{name} must hold series ids (UUIDs); {value!r} is not one.") from exc
