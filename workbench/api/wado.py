"""WADO-URI (DICOM PS3.18 chapter 9) for the browser viewer.

``GET /wado/?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..&contentType=application/dicom``
answers the de-identified Part 10 file. The instance is looked up by its pseudonymous SOP
Instance UID among the projects the user is a member of (workbench.access), so an unknown
UID and another project's UID get the same 404.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import quote_etag
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from workbench.access import projects_for_user
from workbench.models import Instance

DICOM = "application/dicom"
# Private: the file is only for members; a day is long enough for a reading session,
# and the ETag (the file's SHA-256) revalidates cheaply after that.
CACHE_CONTROL = "private, max-age=86400"


class _IgnoreAccept(BaseContentNegotiation):
    """The answer is always a DICOM file or a JSON error, whatever the loader's Accept says."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


def instance_for_wado(*, user: Any, object_uid: str, series_uid: str = "", study_uid: str = "") -> Instance:
    """The instance with this pseudonymous SOP UID in one of the user's projects, or NotFound."""
    qs: QuerySet[Instance] = Instance.objects.filter(
        sop_uid=object_uid, series__study__project__in=projects_for_user(user)
    )
    if series_uid:
        qs = qs.filter(series__series_uid=series_uid)
    if study_uid:
        qs = qs.filter(series__study__study_uid=study_uid)
    instance = qs.order_by("created_at").first()
    if instance is None:
        raise NotFound()
    return instance


class Wado(APIView):
    content_negotiation_class = _IgnoreAccept

    @extend_schema(
        parameters=[
            OpenApiParameter("requestType", str, required=True, enum=["WADO"]),
            OpenApiParameter("studyUID", str),
            OpenApiParameter("seriesUID", str),
            OpenApiParameter("objectUID", {"type": "string", "minLength": 1}, required=True),
            OpenApiParameter("contentType", str, enum=[DICOM]),
        ],
        responses={(200, DICOM): bytes},
    )
    def get(self, request: Request) -> HttpResponseBase:
        """The de-identified DICOM file of one instance (WADO-URI)."""
        params = request.query_params
        if params.get("requestType") != "WADO":
            raise ValidationError({"requestType": "Must be WADO."})
        object_uid = params.get("objectUID", "")
        if not object_uid:
            raise ValidationError({"objectUID": "Required."})
        content_type = params.get("contentType") or DICOM
        if DICOM not in content_type.split(",") and content_type != "*/*":
            raise ValidationError({"contentType": f"Only {DICOM} is served."})
        instance = instance_for_wado(
            user=request.user,
            object_uid=object_uid,
            series_uid=params.get("seriesUID", ""),
            study_uid=params.get("studyUID", ""),
        )
        etag = quote_etag(instance.sha256)
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            response: HttpResponseBase = HttpResponse(status=304)
        else:
            response = FileResponse(default_storage.open(instance.storage_path, "rb"), content_type=DICOM)
            response["Content-Length"] = str(instance.size)
        response["ETag"] = etag
        response["Cache-Control"] = CACHE_CONTROL
        return response


def wado_url(instance: Instance) -> str:
    """The WADO-URI of an instance (what the viewer puts after ``wadouri:``)."""
    from urllib.parse import urlencode

    from django.urls import reverse

    query = urlencode(
        {
            "requestType": "WADO",
            "studyUID": instance.series.study.study_uid,
            "seriesUID": instance.series.series_uid,
            "objectUID": instance.sop_uid,
            "contentType": DICOM,
        }
    )
    return f"{reverse('wado')}?{query}"
