"""Access chokepoints for ingest batches and items, built on workbench.access.

Same contract as there: 404 for a missing object or an outsider, 403 for a
member whose role does not allow it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import Http404

from anonymizer.models import IngestBatch, IngestItem, IngestUpload
from workbench.access import COMPLIANCE_ROLES, INGEST_ROLES, as_uuid, get_project_for_user


def get_batch_for_user(user: Any, batch_id: object, roles: Iterable[str] = INGEST_ROLES) -> IngestBatch:
    try:
        batch = IngestBatch.objects.select_related("project").get(pk=as_uuid(batch_id))
    except IngestBatch.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    get_project_for_user(user, batch.project_id, roles)
    return batch


def get_item_for_user(user: Any, item_id: object, roles: Iterable[str] = COMPLIANCE_ROLES) -> IngestItem:
    try:
        item = IngestItem.objects.select_related("batch__project").get(pk=as_uuid(item_id))
    except IngestItem.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    get_project_for_user(user, item.batch.project_id, roles)
    return item


def get_upload_for_user(user: Any, upload_id: object, roles: Iterable[str] = INGEST_ROLES) -> IngestUpload:
    """A resumable upload, for the ingest roles of its project (404 to outsiders)."""
    try:
        upload = IngestUpload.objects.select_related("batch").get(pk=as_uuid(upload_id))
    except IngestUpload.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    get_project_for_user(user, upload.project_id, roles)
    return upload
