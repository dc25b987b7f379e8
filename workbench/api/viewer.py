"""The series viewer's data: ordered instances with their WADO-URIs, and what the page needs to show."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workbench.access import get_series_for_user, roles_for
from workbench.api.wado import wado_url
from workbench.models import Instance, Series, Study
from workbench.models.catalog import spatial_order

THUMBNAIL_SIZE = 96


def series_viewer_data(*, user: Any, series: Series) -> dict[str, Any]:
    """Instances in spatial order; frames, spacing and modality for the viewer."""
    instances = series.instances.select_related("series__study").order_by(*spatial_order())
    project = series.study.project
    return {
        "series": {
            "id": str(series.pk),
            "series_uid": series.series_uid,
            "modality": series.modality,
            "number": series.number,
            "description": series.description,
        },
        "study": {"id": str(series.study_id), "study_uid": series.study.study_uid},
        "project": {"id": str(project.pk), "name": project.name},
        "patient": series.study.patient.pseudo_id,
        "roles": sorted(roles_for(user, project)),
        "instances": [
            {
                "id": str(inst.pk),
                "sop_uid": inst.sop_uid,
                "number": inst.number,
                "frames": inst.frames,
                "rows": inst.rows,
                "columns": inst.columns,
                "pixel_spacing": inst.pixel_spacing,
                "slice_position": inst.slice_position,
                "wado_url": wado_url(inst),
            }
            for inst in instances
        ],
        **_strip_and_priors(series.study),
    }


def patient_other_studies(*, study: Study) -> list[Study]:
    """The same pseudonymous patient's other studies in the study's project, latest first.

    A patient row belongs to one project, so this never reaches outside the project whose
    membership the caller has already checked for ``study``.
    """
    others = Study.objects.filter(project_id=study.project_id, patient_id=study.patient_id).exclude(pk=study.pk)
    return list(others.order_by("-study_date", "-created_at"))


def _strip_and_priors(study: Study) -> dict[str, Any]:
    """The study's series and the patient's other studies, with their series: one query for
    the series and one for their instances, however many studies the patient has."""
    others = patient_other_studies(study=study)
    listed = study_series_lists([study, *others])
    return {
        "study_series": listed[study.pk],
        "other_studies": [
            {
                "id": str(other.pk),
                "study_date": other.study_date,
                "description": other.description,
                "series": listed[other.pk],
            }
            for other in others
        ],
    }


def study_series_lists(studies: list[Study]) -> dict[Any, list[dict[str, Any]]]:
    """study id -> its series for the viewer's strip, each with a PNG thumbnail of its middle slice."""
    by_study: dict[Any, list[Series]] = {one.pk: [] for one in studies}
    for one in Series.objects.filter(study__in=studies).order_by("number", "series_uid"):
        by_study[one.study_id].append(one)
    slices: dict[Any, list[Any]] = {}
    instances = Instance.objects.filter(series__study__in=studies).order_by(*spatial_order())
    for series_id, instance_id in instances.values_list("series_id", "pk"):
        slices.setdefault(series_id, []).append(instance_id)
    out: dict[Any, list[dict[str, Any]]] = {}
    for study_id, series_list in by_study.items():
        rows = []
        for one in series_list:
            ids = slices.get(one.pk, [])
            middle = ids[len(ids) // 2] if ids else None
            rows.append(
                {
                    "id": str(one.pk),
                    "modality": one.modality,
                    "number": one.number,
                    "description": one.description,
                    "instance_count": len(ids),
                    "thumbnail_url": (
                        reverse("api-instance-render", args=[middle]) + f"?size={THUMBNAIL_SIZE}" if middle else None
                    ),
                }
            )
        out[study_id] = rows
    return out


class SeriesViewer(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: str) -> Response:
        """Everything the viewer needs to show a series (any member of its project)."""
        series = get_series_for_user(request.user, series_id)
        return Response(series_viewer_data(user=request.user, series=series))
