"""Resumable uploads over the tus protocol 1.0.0 (core, creation, termination).

A large study goes up as many short PATCH requests instead of one that holds a web worker
for minutes; a dropped connection costs one chunk: the client asks HEAD for the offset and
goes on from there. Each chunk is sealed into the quarantine as it arrives (the same
segments as the multipart upload, anonymizer.sealed); the complete upload is expanded by
the worker into its batch (anonymizer.uploads).

    POST   /api/projects/<project>/uploads/   Upload-Length, Upload-Metadata -> 201 Location
    HEAD   /api/uploads/<upload>/             -> Upload-Offset, Upload-Length
    PATCH  /api/uploads/<upload>/             Upload-Offset, application/offset+octet-stream
    DELETE /api/uploads/<upload>/             -> 204 (termination)

Access: ingest roles of the upload's project, checked on every request through the
chokepoints (an upload of another project is a 404). Errors are JSON like the rest of the API.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anonymizer import uploads
from anonymizer.access import get_batch_for_user, get_upload_for_user
from anonymizer.models import UploadState
from workbench.access import INGEST_ROLES, get_project_for_user

TUS_VERSION = "1.0.0"
CHUNK_TYPE = "application/offset+octet-stream"


class TusChunkParser(BaseParser):
    """Accepts a PATCH body without reading it: the view streams it into sealed segments."""

    media_type = CHUNK_TYPE

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> dict[str, Any]:
        return {}


class TusError(exceptions.APIException):
    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.status_code = status_code
        self.default_code = code
        super().__init__(message, code)


def _tus_headers(response: Response, **extra: str) -> Response:
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    for name, value in extra.items():
        response[name.replace("_", "-")] = value
    return response


def _int_header(request: Request, name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit() or len(raw) > 18:
        raise TusError(400, "bad_header", f"Send the {name} header as a whole number of bytes.")
    return int(raw)


def _metadata(request: Request) -> dict[str, str]:
    """Upload-Metadata: ``key base64,key base64``; values that are not UTF-8 are refused."""
    out: dict[str, str] = {}
    for pair in request.headers.get("Upload-Metadata", "").split(","):
        if not pair.strip():
            continue
        key, _, value = pair.strip().partition(" ")
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TusError(400, "bad_metadata", f"Upload-Metadata '{key[:40]}' is not base64 of UTF-8 text.") from exc
    return out


def _require_version(request: Request) -> None:
    """The protocol check, made after the access check: an outsider learns nothing from a 412."""
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusError(412, "tus_version", f"Send 'Tus-Resumable: {TUS_VERSION}'; no other version is served.")


class TusMixin:
    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Tus-Resumable"] = TUS_VERSION
        if response.status_code == 412:
            response["Tus-Version"] = TUS_VERSION
        return response


class UploadCreate(TusMixin, APIView):
    @extend_schema(
        request=None,
        responses={201: OpenApiResponse(description="Created; the upload's URL is in Location.")},
        description="Open a resumable (tus) upload: headers Upload-Length and Upload-Metadata "
        "(filename, and batch to add the file to an open batch of the project).",
    )
    def post(self, request: Request, project_id: str) -> Response:
        project = get_project_for_user(request.user, project_id, INGEST_ROLES)
        _require_version(request)
        length = _int_header(request, "Upload-Length")
        if length > settings.MAX_UPLOAD_LENGTH:
            raise TusError(413, "too_large", f"An upload may hold at most {settings.MAX_UPLOAD_LENGTH} bytes.")
        meta = _metadata(request)
        batch = None
        if meta.get("batch"):
            batch = get_batch_for_user(request.user, meta["batch"])
            if batch.project_id != project.pk:
                raise exceptions.NotFound()
        upload = uploads.upload_create(
            project=project, user=request.user, length=length, name=meta.get("filename") or "upload", batch=batch
        )
        location = request.build_absolute_uri(reverse("api-upload", args=[upload.pk]))
        body = {"id": str(upload.pk), "batch": str(upload.batch_id), "location": location}
        return _tus_headers(
            Response(body, status=status.HTTP_201_CREATED),
            Location=location,
            Upload_Offset="0",
            Workbench_Batch=str(upload.batch_id),
        )

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]  # DRF passes its Request
        get_project_for_user(request.user, kwargs["project_id"], INGEST_ROLES)
        return _tus_headers(
            Response(status=status.HTTP_204_NO_CONTENT),
            Tus_Version=TUS_VERSION,
            Tus_Extension="creation,termination",
            Tus_Max_Size=str(settings.MAX_UPLOAD_LENGTH),
        )


class UploadDetail(TusMixin, APIView):
    parser_classes = [TusChunkParser]

    @extend_schema(responses={200: OpenApiResponse(description="Upload-Offset and Upload-Length headers.")})
    def head(self, request: Request, upload_id: str) -> Response:
        upload = get_upload_for_user(request.user, upload_id)
        _require_version(request)
        return _tus_headers(
            Response(status=status.HTTP_200_OK), Upload_Offset=str(upload.offset), Upload_Length=str(upload.length)
        )

    @extend_schema(
        request=None, responses={204: OpenApiResponse(description="Stored; Upload-Offset is the new offset.")}
    )
    def patch(self, request: Request, upload_id: str) -> Response:
        upload = get_upload_for_user(request.user, upload_id)
        _require_version(request)
        if request.content_type.split(";")[0].strip() != CHUNK_TYPE:
            raise TusError(415, "unsupported_media_type", f"Send the chunk as Content-Type: {CHUNK_TYPE}.")
        offset = _int_header(request, "Upload-Offset")
        size = _int_header(request, "Content-Length") if request.META.get("CONTENT_LENGTH") else 0
        try:
            upload = uploads.upload_append(upload=upload, offset=offset, body=request._request, size=size)  # type: ignore[arg-type]  # HttpRequest.read streams the body
        except uploads.UploadConflict as exc:
            raise TusError(409, "offset_conflict", str(exc)) from exc
        except OSError as exc:  # the connection dropped: what arrived is kept, HEAD tells how much
            raise TusError(
                400, "connection_lost", "The chunk was cut off; ask HEAD for the offset and resume."
            ) from exc
        return _tus_headers(Response(status=status.HTTP_204_NO_CONTENT), Upload_Offset=str(upload.offset))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, upload_id: str) -> Response:
        upload = get_upload_for_user(request.user, upload_id)
        _require_version(request)
        if upload.state != UploadState.RECEIVING:  # complete: its file belongs to its batch now
            raise TusError(
                409, "upload_complete", "This upload is complete and is part of its batch; it cannot be terminated."
            )
        uploads.upload_terminate(upload=upload)
        return _tus_headers(Response(status=status.HTTP_204_NO_CONTENT))
