"""API for ingest, the quarantine, the identity vault, audit and de-identification reports."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anonymizer import review, selectors, services, uploads
from anonymizer.access import get_batch_for_user, get_item_for_user
from anonymizer.models import IngestBatch, IngestItem, Source
from anonymizer.preview import PreviewUnavailable
from anonymizer.reasons import reason_text
from anonymizer.upload_handler import SealedUploadHandler
from workbench.access import (
    COMPLIANCE_ROLES,
    INGEST_ROLES,
    VAULT_ROLES,
    get_project_for_user,
    get_study_for_user,
    require_role,
    roles_for,
)
from workbench.api.pagination import PaginatedList
from workbench.api.parsers import UploadMultiPartParser
from workbench.models import AuditEvent, Role
from workbench.nostore import NoStoreMixin, no_store


class ItemOut(serializers.ModelSerializer):
    instance = serializers.UUIDField(source="instance_id", allow_null=True)
    reason_text = serializers.SerializerMethodField(help_text="The reason code in words, with what to do.")

    class Meta:
        model = IngestItem
        fields = [
            "id",
            "index",
            "sha256",
            "size",
            "status",
            "reason_code",
            "reason_text",
            "reason",
            "instance",
            "attempts",
            "processed_at",
        ]

    def get_reason_text(self, obj: IngestItem) -> str:
        return reason_text(obj.reason_code) if obj.reason_code else ""


class QuarantineItemOut(ItemOut):
    original_name = serializers.SerializerMethodField(
        help_text="The name the file arrived with: compliance officers only, null for everyone else."
    )
    preview = serializers.SerializerMethodField(help_text="URL of the before/after redaction preview, or null.")

    class Meta(ItemOut.Meta):
        fields = [*ItemOut.Meta.fields, "pixel_flagged", "options_override", "original_name", "preview"]

    def get_original_name(self, obj: IngestItem) -> str | None:
        return review.item_original_name(obj) if self.context.get("show_names") else None

    def get_preview(self, obj: IngestItem) -> str | None:
        if not (self.context.get("show_names") and obj.pixel_flagged and obj.raw_path):
            return None
        return reverse("api-quarantine-preview", args=[obj.pk])


class BatchOut(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()

    class Meta:
        model = IngestBatch
        fields = ["id", "project", "source", "created_at", "state", "counts", "errors", "items"]

    def get_counts(self, obj: IngestBatch) -> dict[str, int]:
        if not hasattr(obj, "_counts"):
            obj._counts = selectors.batch_counts(obj)  # type: ignore[attr-defined]
        return obj._counts  # type: ignore[attr-defined, no-any-return]

    def get_state(self, obj: IngestBatch) -> str:
        return selectors.batch_state(self.get_counts(obj))

    def get_items(self, obj: IngestBatch) -> list[dict[str, Any]]:
        if not self.context.get("with_items", True):
            return []
        return ItemOut(obj.items.all(), many=True).data  # type: ignore[return-value]


class BatchListCreate(PaginatedList, APIView):
    parser_classes = [UploadMultiPartParser, FormParser]

    @extend_schema(responses=BatchOut(many=True))
    def get(self, request: Request, project_id: str) -> Response:
        project = get_project_for_user(request.user, project_id, INGEST_ROLES)
        batches = project.batches.order_by("-created_at", "pk")
        return self.paginated(request, batches, BatchOut, context={"with_items": False})

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # Before anything reads the body (authentication's CSRF check parses it): file parts
        # are sealed into the quarantine as they arrive, never spooled in the clear.
        sealing = SealedUploadHandler(request)
        request.upload_handlers = [sealing]
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:  # sealed parts no upload row took (refused or failed request) go at once
            for sealed_file in sealing.sealed_files:
                if not sealed_file.recorded:
                    sealed_file.discard()

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "Upload",
                {
                    "file": serializers.ListField(
                        child=serializers.FileField(), help_text="One or more DICOM files or zip archives."
                    )
                },
            )
        },
        responses={202: BatchOut},
    )
    def post(self, request: Request, project_id: str) -> Response:
        """Upload DICOM files or zip archives; answers 202 with the batch to poll.

        The request only seals and records the files; the worker expands archives and
        creates the items, so the answer comes in seconds whatever the archive holds.
        """
        project = get_project_for_user(request.user, project_id, INGEST_ROLES)
        files = request.FILES.getlist("file")
        if not files:
            raise ValidationError({"file": "Attach one or more files in the multipart field 'file'."})
        source = Source.UPLOAD if request.data.get("source") == "upload" else Source.API
        with transaction.atomic():
            batch = services.batch_create(project=project, source=source, user=request.user)
            for upload in files:
                uploads.upload_record_sealed(
                    batch=batch,
                    upload_id=upload.upload_id,
                    name=upload.name,
                    segments=upload.segments,
                    user=request.user,
                )
            uploads.batch_expand_enqueue(batch)
        for upload in files:
            upload.recorded = True  # committed: the worker owns the segments now
        location = reverse("api-batch-detail", args=[batch.pk])
        data = BatchOut(batch, context={"with_items": False}).data
        return Response({**data, "location": location}, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class BatchDetail(generics.RetrieveAPIView):
    serializer_class = BatchOut

    def get_object(self) -> IngestBatch:
        return get_batch_for_user(self.request.user, self.kwargs["batch_id"])


class QuarantineList(NoStoreMixin, generics.ListAPIView):
    serializer_class = QuarantineItemOut

    def get_queryset(self):  # type: ignore[no-untyped-def]
        self.project = get_project_for_user(self.request.user, self.kwargs["project_id"], COMPLIANCE_ROLES)
        return selectors.quarantine_for_project(self.project)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        project = getattr(self, "project", None)
        context["show_names"] = project is not None and Role.COMPLIANCE in roles_for(self.request.user, project)
        return context


class QuarantineAction(APIView):
    @extend_schema(request=None, responses=ItemOut)
    def post(self, request: Request, item_id: str) -> Response:
        item = get_item_for_user(request.user, item_id)
        require_role(request.user, item.batch.project, {"compliance"})
        try:
            item = self.act(item, request)
        except ValueError as exc:
            raise ValidationError({"status": str(exc)}) from exc
        return Response(ItemOut(item).data)

    def act(self, item: IngestItem, request: Request) -> IngestItem:
        return review.item_discard(item=item, user=request.user)


class ReprocessIn(serializers.Serializer):
    options = serializers.DictField(
        child=serializers.BooleanField(),
        required=False,
        help_text="On/off de-identification options for this item only (names as in the project's "
        "deid_options); they replace the item's earlier overrides. Omit to keep them.",
    )


class QuarantineReprocess(QuarantineAction):
    @extend_schema(request=ReprocessIn, responses=ItemOut)
    def post(self, request: Request, item_id: str) -> Response:
        """Send a quarantined item through de-identification again, optionally with changed options."""
        return super().post(request, item_id)

    def act(self, item: IngestItem, request: Request) -> IngestItem:
        data = ReprocessIn(data=request.data)
        data.is_valid(raise_exception=True)
        options = data.validated_data.get("options")
        return review.item_reprocess(item=item, user=request.user, options=options)


class QuarantinePreview(NoStoreMixin, APIView):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request: Request, item_id: str) -> HttpResponse:
        """Before/after PNG of the pixel redaction (compliance officers; audited; never cached)."""
        item = get_item_for_user(request.user, item_id)
        require_role(request.user, item.batch.project, {"compliance"})
        return preview_response(item, request.user)


def preview_response(item: IngestItem, user: Any) -> HttpResponse:
    """The preview as a response that no cache keeps; 409 with the reason when there is none."""
    try:
        png = review.item_redaction_preview(item=item, user=user)
        response = HttpResponse(png, content_type="image/png")
    except PreviewUnavailable as exc:
        response = JsonResponse({"error": "preview_unavailable", "message": str(exc)}, status=409)
    return no_store(response)


class VaultLookupIn(serializers.Serializer):
    pseudonym = serializers.CharField(max_length=64)
    reason = serializers.CharField(max_length=2000)


class VaultLookup(NoStoreMixin, APIView):
    throttle_scope = "vault"

    @extend_schema(
        request=VaultLookupIn,
        responses=inline_serializer("Identity", {"patient": serializers.DictField(), "study": serializers.DictField()}),
    )
    def post(self, request: Request, project_id: str) -> Response:
        """Reveal the identity behind a pseudonym (compliance officers; reason required; audited)."""
        project = get_project_for_user(request.user, project_id, VAULT_ROLES)
        data = VaultLookupIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            identity = services.vault_lookup(project=project, user=request.user, **data.validated_data)
        except services.VaultError as exc:
            raise ValidationError({"pseudonym": str(exc)}) from exc
        return Response(identity)


class AuditOut(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["seq", "at", "action", "actor_name", "object_type", "object_id", "details", "hash"]


class AuditList(generics.ListAPIView):
    serializer_class = AuditOut

    @extend_schema(parameters=[OpenApiParameter(n, str) for n in ("action", "actor", "since", "until")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        project = get_project_for_user(self.request.user, self.kwargs["project_id"], COMPLIANCE_ROLES)
        params = self.request.query_params
        try:
            return selectors.audit_events(
                project=project, **{k: params.get(k, "") for k in ("action", "actor", "since", "until")}
            )
        except selectors.InvalidFilter as exc:
            raise ValidationError({exc.field: str(exc)}) from exc


class StudyDeidReport(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, study_id: str) -> Response:
        """Per-study de-identification report: attributes and actions, never original values."""
        study = get_study_for_user(request.user, study_id, COMPLIANCE_ROLES)
        return Response(selectors.study_deid_report(study))


class ProjectDeidReport(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request, project_id: str) -> HttpResponse:
        """Download the project's de-identification report as CSV or JSON (audited)."""
        project = get_project_for_user(request.user, project_id, COMPLIANCE_ROLES)
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ValidationError({"format": "Use format=json or format=csv."})
        rows = services.deid_report_rows_for_download(project=project, user=request.user, fmt=fmt)
        return deid_report_response(project.slug, rows, fmt)


def deid_report_response(slug: str, rows: list[dict[str, Any]], fmt: str) -> HttpResponse:
    if fmt == "csv":
        buffer = io.StringIO()
        fields = list(rows[0]) if rows else ["patient", "study_uid", "series_uid", "sop_uid"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    else:
        response = HttpResponse(
            json.dumps({"project": slug, "instances": rows}, indent=1), content_type="application/json"
        )
    response["Content-Disposition"] = f'attachment; filename="deid-report-{slug}.{fmt}"'
    return response
