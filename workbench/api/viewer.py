"""The series viewer's data: ordered instances with their WADO-URIs, and what the page needs to show."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workbench.access import get_series_for_user, roles_for
from workbench.api.wado import wado_url
from workbench.models import Series
from workbench.models.catalog import spatial_order


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
                "wado_url": wado_url(inst),
            }
            for inst in instances
        ],
    }


class SeriesViewer(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: str) -> Response:
        """Everything the viewer needs to show a series (any member of its project)."""
        series = get_series_for_user(request.user, series_id)
        return Response(series_viewer_data(user=request.user, series=series))
