"""Read-only API over the catalog of de-identified data."""

from __future__ import annotations

from typing import Any

import pydicom
from django.core.files.storage import default_storage
from django.db.models import Count, QuerySet
from django.http import FileResponse, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workbench.access import (
    get_instance_for_user,
    get_project_for_user,
    get_series_for_user,
    get_study_for_user,
    projects_for_user,
    roles_for,
)
from workbench.dicom_tags import header_tags
from workbench.models import Instance, Project, Series, Study
from workbench.render import MAX_SIZE, RenderError, frame_png

MAX_FRAME = 2**31 - 1  # DICOM's Number of Frames is an IS: a frame index never exceeds it


class ProjectOut(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "created_at", "roles"]

    def get_roles(self, obj: Project) -> list[str]:
        return sorted(roles_for(self.context["request"].user, obj))


class SeriesOut(serializers.ModelSerializer):
    instance_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Series
        fields = ["id", "series_uid", "modality", "number", "description", "instance_count"]


class StudyOut(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.pseudo_id")
    series_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Study
        fields = [
            "id",
            "project",
            "patient",
            "study_uid",
            "study_date",
            "accession_pseudonym",
            "description",
            "series_count",
        ]


class InstanceOut(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = [
            "id",
            "sop_uid",
            "sop_class_uid",
            "number",
            "rows",
            "columns",
            "frames",
            "pixel_spacing",
            "slice_thickness",
            "sha256",
            "size",
            "pixel_cleaned",
        ]


class StudyDetailOut(StudyOut):
    series = serializers.SerializerMethodField()

    class Meta(StudyOut.Meta):
        fields = [*StudyOut.Meta.fields, "series"]

    def get_series(self, obj: Study) -> list[dict[str, Any]]:
        qs = obj.series.annotate(instance_count=Count("instances"))
        return SeriesOut(qs, many=True).data  # type: ignore[return-value]


class SeriesDetailOut(SeriesOut):
    study = serializers.UUIDField(source="study.id")
    instances = InstanceOut(many=True, read_only=True)

    class Meta(SeriesOut.Meta):
        fields = [*SeriesOut.Meta.fields, "study", "instances"]


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectOut

    def get_queryset(self) -> QuerySet[Project]:
        return projects_for_user(self.request.user)


class ProjectDetail(generics.RetrieveAPIView):
    serializer_class = ProjectOut

    def get_object(self) -> Project:
        return get_project_for_user(self.request.user, self.kwargs["project_id"])


class StudyList(generics.ListAPIView):
    serializer_class = StudyOut

    def get_queryset(self) -> QuerySet[Study]:
        project = get_project_for_user(self.request.user, self.kwargs["project_id"])
        # The model's ordering, made explicit (the count's GROUP BY drops it) and total, so pages are stable.
        studies = project.studies.select_related("patient").annotate(series_count=Count("series"))
        return studies.order_by("patient__pseudo_id", "study_date", "pk")


class StudyDetail(generics.RetrieveAPIView):
    serializer_class = StudyDetailOut

    def get_object(self) -> Study:
        study = get_study_for_user(self.request.user, self.kwargs["study_id"])
        study.series_count = study.series.count()  # type: ignore[attr-defined]
        return study


class SeriesDetail(generics.RetrieveAPIView):
    serializer_class = SeriesDetailOut

    def get_object(self) -> Series:
        series = get_series_for_user(self.request.user, self.kwargs["series_id"])
        series.instance_count = series.instances.count()  # type: ignore[attr-defined]
        return series


class InstanceDetail(generics.RetrieveAPIView):
    serializer_class = InstanceOut

    def get_object(self) -> Instance:
        return get_instance_for_user(self.request.user, self.kwargs["instance_id"])


class InstanceFile(APIView):
    @extend_schema(responses={(200, "application/dicom"): bytes})
    def get(self, request: Request, instance_id: str) -> FileResponse:
        """The de-identified DICOM file (Part 10)."""
        instance = get_instance_for_user(request.user, instance_id)
        return FileResponse(
            default_storage.open(instance.storage_path, "rb"),
            content_type="application/dicom",
            as_attachment=True,
            filename=f"{instance.sop_uid}.dcm",
        )


class Unrenderable(APIException):
    status_code = 422
    default_code = "unrenderable"
    default_detail = "The image has no frame that can be drawn."


class InstanceRender(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "frame", {"type": "integer", "minimum": 0, "maximum": MAX_FRAME}, description="0-based frame index."
            ),
            OpenApiParameter(
                "size", {"type": "integer", "minimum": 1, "maximum": MAX_SIZE}, description="Fit in this square."
            ),
        ],
        responses={(200, "image/png"): bytes},
    )
    def get(self, request: Request, instance_id: str) -> HttpResponse:
        """An 8-bit PNG of one frame, windowed with the file's own VOI (for previews)."""
        instance = get_instance_for_user(request.user, instance_id)
        frame = _int_param(request, "frame", 0, minimum=0, maximum=MAX_FRAME)
        size = _int_param(request, "size", 0, minimum=1, maximum=MAX_SIZE) or None
        with default_storage.open(instance.storage_path, "rb") as fh:
            try:
                png = frame_png(fh, frame=frame, size=size)
            except IndexError as exc:
                raise ValidationError({"frame": str(exc)}) from exc
            except RenderError as exc:
                raise Unrenderable(str(exc)) from exc
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


def _int_param(request: Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    """The query parameter as an integer in minimum..maximum; 400 naming it otherwise."""
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({name: "Must be an integer."}) from exc
    if not minimum <= value <= maximum:
        raise ValidationError({name: f"Must be from {minimum} to {maximum}."})
    return value


# --- tag browser (workbench.dicom_tags) ---
class InstanceTags(APIView):
    @extend_schema(
        responses={
            200: {
                "type": "object",
                "properties": {"sop_uid": {"type": "string"}, "tags": {"type": "array", "items": {"type": "object"}}},
            }
        }
    )
    def get(self, request: Request, instance_id: str) -> Response:
        """The de-identified header of the stored file: tag, keyword, VR, value; sequences nested,
        bulk data (PixelData and the like) as its length only."""
        instance = get_instance_for_user(request.user, instance_id)
        with default_storage.open(instance.storage_path, "rb") as fh:
            ds = pydicom.dcmread(fh, force=True)
        return Response({"sop_uid": instance.sop_uid, "tags": header_tags(ds)})
