"""REST API for datasets, frozen versions and export jobs.

Thin: objects come through datasets.access (404 to outsiders, 403 to wrong roles), writes
through datasets.services. Only ML engineers and admins create datasets, freeze and export;
reviewers and compliance officers may read. Errors follow workbench.api.errors.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets import selectors, services
from datasets.access import (
    EXPORT_ROLES,
    VIEW_ROLES,
    get_dataset_for_user,
    get_export_for_user,
    get_version_for_user,
)
from datasets.download import archive_response
from datasets.manifest import manifest_load
from datasets.serializers import DatasetIn, DatasetOut, ExportIn, ExportOut, FreezeIn, VersionBrief, VersionOut
from workbench.access import get_project_for_user
from workbench.api.pagination import PaginatedList
from workbench.audit import audit_record


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class DatasetListCreate(PaginatedList, APIView):
    @extend_schema(responses=DatasetOut(many=True))
    def get(self, request: Request, project_id: str) -> Response:
        project = get_project_for_user(request.user, project_id, VIEW_ROLES)
        return self.paginated(request, selectors.datasets_of(project), DatasetOut)

    @extend_schema(request=DatasetIn, responses={201: DatasetOut})
    def post(self, request: Request, project_id: str) -> Response:
        """Create a dataset: a named selection (modalities, series, labels, statuses, dates, include, exclude)."""
        project = get_project_for_user(request.user, project_id, EXPORT_ROLES)
        data = _valid(DatasetIn, request.data)
        try:
            dataset = services.dataset_create(project=project, user=request.user, **data)
        except services.InvalidDataset as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetail(APIView):
    @extend_schema(responses=DatasetOut)
    def get(self, request: Request, dataset_id: str) -> Response:
        return Response(DatasetOut(get_dataset_for_user(request.user, dataset_id)).data)


class VersionListFreeze(PaginatedList, APIView):
    @extend_schema(responses=VersionBrief(many=True))
    def get(self, request: Request, dataset_id: str) -> Response:
        dataset = get_dataset_for_user(request.user, dataset_id)
        return self.paginated(request, selectors.versions_of(dataset), VersionBrief)

    @extend_schema(request=FreezeIn, responses={201: VersionOut, 200: VersionOut})
    def post(self, request: Request, dataset_id: str) -> Response:
        """Freeze what the dataset selects now; 200 with the latest version when nothing changed."""
        dataset = get_dataset_for_user(request.user, dataset_id, EXPORT_ROLES)
        data = _valid(FreezeIn, request.data)
        try:
            version, created = services.version_freeze(dataset=dataset, user=request.user, **data)
        except services.InvalidDataset as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(VersionOut(version).data, status=code)


class VersionDetail(APIView):
    @extend_schema(responses=VersionOut)
    def get(self, request: Request, version_id: str) -> Response:
        return Response(VersionOut(get_version_for_user(request.user, version_id)).data)


class VersionManifest(APIView):
    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request: Request, version_id: str) -> HttpResponse:
        """The frozen manifest, byte for byte (its sha256 is the version's id)."""
        version = get_version_for_user(request.user, version_id)
        manifest_load(version.pk, version.manifest_path)  # proves the bytes still hash to the id
        with default_storage.open(version.manifest_path, "rb") as stream:
            return HttpResponse(stream.read(), content_type="application/json")


class VersionCompare(APIView):
    @extend_schema(parameters=[OpenApiParameter("with", str, required=True)], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, version_id: str) -> Response:
        """What changed from version ``with`` (older) to this one: added, removed, relabeled, moved."""
        new = get_version_for_user(request.user, version_id)
        other = request.query_params.get("with")
        if not other:
            raise ValidationError({"with": "Name the version to compare with: ?with=<version id>."})
        old = get_version_for_user(request.user, other)
        if old.dataset.project_id != new.dataset.project_id:
            raise ValidationError({"with": "Versions of different projects cannot be compared."})
        diff = selectors.version_compare(
            manifest_load(old.pk, old.manifest_path), manifest_load(new.pk, new.manifest_path)
        )
        return Response({"from": old.pk, "to": new.pk, **diff})


class ExportListCreate(PaginatedList, APIView):
    @extend_schema(responses=ExportOut(many=True))
    def get(self, request: Request, version_id: str) -> Response:
        version = get_version_for_user(request.user, version_id)
        return self.paginated(request, selectors.exports_of(version), ExportOut)

    @extend_schema(request=ExportIn, responses={202: ExportOut})
    def post(self, request: Request, version_id: str) -> Response:
        """Ask for an archive (ML engineers and admins): 202 with the job's location to poll.

        The same version, format and options always name the same job and archive, so asking
        again is cheap: the answer then says ``done`` with the download link.
        """
        version = get_version_for_user(request.user, version_id, EXPORT_ROLES)
        data = _valid(ExportIn, request.data)
        try:
            export, _ = services.export_request(
                version=version, user=request.user, export_format=data["format"], options=data["options"]
            )
        except services.InvalidDataset as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        response = Response(ExportOut(export).data, status=status.HTTP_202_ACCEPTED)
        response["Location"] = reverse("api-export-detail", args=[export.pk])
        return response


class ExportDetail(APIView):
    @extend_schema(responses=ExportOut)
    def get(self, request: Request, export_id: str) -> Response:
        """The job: status (queued, running, done, failed), progress, and when done the download link."""
        return Response(ExportOut(get_export_for_user(request.user, export_id)).data)


class ExportDownload(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("Range", str, location=OpenApiParameter.HEADER, required=False)],
        responses={(200, "application/zip"): bytes, (206, "application/zip"): bytes},
    )
    def get(self, request: Request, export_id: str) -> HttpResponseBase:
        """The archive. Send ``Range: bytes=N-`` to resume; large archives stream."""
        export = get_export_for_user(request.user, export_id)
        if export.status != "done":
            poll = reverse("api-export-detail", args=[export.pk])
            message = f"The export is {export.status}; poll {poll} until it is done, then download."
            return Response({"error": "not_ready", "message": message}, status=status.HTTP_409_CONFLICT)
        range_header = request.headers.get("Range")
        audit_record(
            action="export_downloaded",
            actor=request.user,
            project=export.version.dataset.project,
            object_type="export",
            object_id=export.pk,
            details={"sha256": export.sha256, "range": range_header or ""},
        )
        name = f"{export.version.dataset.name}-{export.version_id[:12]}-{export.format}.zip"
        return archive_response(
            export.archive_path,
            size=export.size or 0,
            sha256=export.sha256,
            filename="".join(c if c.isalnum() or c in "-_." else "_" for c in name),
            range_header=range_header,
            if_range=request.headers.get("If-Range"),
        )
