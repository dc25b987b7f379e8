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
from workbench.models import Series, Study
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
        "study_series": study_series_list(study=series.study),
        "other_studies": [
            {
                "id": str(other.pk),
                "study_date": other.study_date,
                "description": other.description,
                "series": study_series_list(study=other),
            }
            for other in patient_other_studies(study=series.study)
        ],
    }


def patient_other_studies(*, study: Study) -> list[Study]:
    """The same pseudonymous patient's other studies in the study's project, latest first.

    A patient row belongs to one project, so this never reaches outside the project whose
    membership the caller has already checked for ``study``.
    """
    others = Study.objects.filter(project_id=study.project_id, patient_id=study.patient_id).exclude(pk=study.pk)
    return list(others.order_by("-study_date", "-created_at"))


def study_series_list(*, study: Study) -> list[dict[str, Any]]:
    """The study's series for the viewer's strip: a PNG thumbnail of each series' middle slice."""
    rows = []
    for series in study.series.order_by("number", "series_uid"):
        instances = list(series.instances.order_by(*spatial_order()).values_list("pk", flat=True))
        middle = instances[len(instances) // 2] if instances else None
        rows.append(
            {
                "id": str(series.pk),
                "modality": series.modality,
                "number": series.number,
                "description": series.description,
                "instance_count": len(instances),
                "thumbnail_url": (
                    reverse("api-instance-render", args=[middle]) + f"?size={THUMBNAIL_SIZE}" if middle else None
                ),
            }
        )
    return rows


class SeriesViewer(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: str) -> Response:
        """Everything the viewer needs to show a series (any member of its project)."""
        series = get_series_for_user(request.user, series_id)
        return Response(series_viewer_data(user=request.user, series=series))
