"""Sealed uploads: recorded by the web process, expanded into items by the worker.

The request that receives a file only seals it (anonymizer.sealed) and records an
``IngestUpload``; ``batch_expand`` (a Celery task) reads it back segment by segment, walks an
archive member by member under the member-count and total-size budgets (anonymizer.intake)
and creates one item per file, each enqueued for de-identification. Memory stays at one
segment plus one member (at most the per-file limit), whatever the archive's size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from anonymizer import sealed, services
from anonymizer.intake import Incoming, incoming_from_upload
from anonymizer.models import IngestBatch, IngestUpload, UploadState
from workbench import crypto
from workbench.heartbeat import heartbeat
from workbench.models import Project

logger = logging.getLogger(__name__)
ORPHAN_AGE = timedelta(hours=1)


class ExpansionTakenOver(Exception):
    """Another worker expanded the entry this one was about to add (this one stalled)."""


def _stale_expansion() -> timedelta:
    """An expansion whose heartbeat stopped this long ago lost its worker (the ingest lease)."""
    return timedelta(seconds=settings.INGEST_CLAIM_LEASE_SECONDS)


def upload_name(upload: IngestUpload) -> str:
    return crypto.decrypt(upload.name_encrypted).decode() if upload.name_encrypted else "upload"


def upload_record_sealed(
    *, batch: IngestBatch, upload_id: Any, name: str, segments: list[sealed.Segment], user: Any
) -> IngestUpload:
    """Record a file the upload handler sealed; it is expanded once the transaction commits."""
    size = sum(int(s[0]) for s in segments)
    return IngestUpload.objects.create(
        id=upload_id,
        project=batch.project,
        batch=batch,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        name_encrypted=crypto.encrypt(name.encode()),
        length=size,
        offset=size,
        segments=segments,
        state=UploadState.STORED,
    )


def batch_expand_enqueue(batch: IngestBatch) -> None:
    """Send the batch's stored uploads to the worker once the caller's transaction commits.

    A broker that cannot be reached is logged, not raised: the uploads are committed by then,
    and ``uploads_sweep`` sends STORED uploads again (as ``outbox.item_enqueue`` does for items).
    """
    from anonymizer.tasks import batch_expand as task

    batch_id = str(batch.pk)

    def send() -> None:
        try:
            task.delay(batch_id)
        except (OperationalError, OSError) as exc:
            logger.error(
                "batch %s: the broker did not take its expansion (%s); the sweep sends it later", batch_id, exc
            )

    transaction.on_commit(send)


def _claim(upload: IngestUpload) -> bool:
    stale = timezone.now() - _stale_expansion()
    claimable = Q(state=UploadState.STORED) | Q(state=UploadState.EXPANDING, updated_at__lt=stale)
    return bool(
        IngestUpload.objects.filter(claimable, pk=upload.pk).update(
            state=UploadState.EXPANDING, updated_at=timezone.now()
        )
    )


def _beat(upload: IngestUpload) -> None:
    IngestUpload.objects.filter(pk=upload.pk, state=UploadState.EXPANDING).update(updated_at=timezone.now())


def batch_expand(*, batch_id: str) -> int:
    """Expand every stored upload of a batch into items. Idempotent and resumable.

    Each upload is claimed with a compare-and-set (a second worker skips it); each item is
    created in the same transaction that advances ``entries_done``, so a worker killed
    mid-archive leaves a count that the redelivered task resumes from: no file is added twice
    and none is lost. The sealed segments are deleted once the upload is expanded. Returns
    the number of items created.
    """
    batch = IngestBatch.objects.select_related("project").get(pk=batch_id)
    created = 0
    for upload in batch.uploads.exclude(state__in=[UploadState.EXPANDED, UploadState.RECEIVING]):
        if _claim(upload):
            upload.refresh_from_db()
            created += _upload_expand(batch, upload)
    return created


def _entries(upload: IngestUpload, fh: IO[bytes]) -> Iterator[Incoming]:
    name = upload_name(upload)
    yield from incoming_from_upload(name, fh, upload.offset, skip=upload.entries_done)


def _upload_expand(batch: IngestBatch, upload: IngestUpload) -> int:
    reader = sealed.SegmentReader(upload.prefix, upload.segments)
    done, created = upload.entries_done, 0
    lease = settings.INGEST_CLAIM_LEASE_SECONDS
    try:
        # updated_at is the claim's heartbeat: a long member does not make the expansion look
        # dead, and a killed worker's expansion is taken over one lease later, not at the end.
        with heartbeat(lambda: _beat(upload), every=lease / 4, name=f"upload {upload.pk}"):
            for entry in _entries(upload, reader):  # type: ignore[arg-type]
                with transaction.atomic():
                    services.batch_add(batch=batch, incoming=[entry])
                    # The fence: the entry counts only if no other worker counted it meanwhile;
                    # else the item just added rolls back with its on-commit hand-over.
                    advanced = IngestUpload.objects.filter(
                        pk=upload.pk, state=UploadState.EXPANDING, entries_done=done
                    ).update(entries_done=done + 1, updated_at=timezone.now())
                    if not advanced:
                        raise ExpansionTakenOver(str(upload.pk))
                done += 1
                created += 1
    except ExpansionTakenOver:
        logger.warning("upload %s: another worker took the expansion over; this one stops", upload.pk)
        return created
    except (ValueError, OSError) as exc:  # a segment missing or altered in the storage
        logger.error("upload %s: sealed segments unreadable (%s)", upload.pk, type(exc).__name__)
        message = "Part of an uploaded file could not be read back from the quarantine; upload it again."
        with transaction.atomic():
            locked = IngestBatch.objects.select_for_update().get(pk=batch.pk)
            locked.errors = [*locked.errors, {"code": "upload_unreadable", "message": message}]
            locked.save(update_fields=["errors"])
    IngestUpload.objects.filter(pk=upload.pk).update(state=UploadState.EXPANDED, updated_at=timezone.now())
    sealed.segments_delete(upload.prefix)
    return created


# --- resumable uploads (tus): the service side of anonymizer.tus ---------------------------------


class UploadConflict(Exception):
    """The client's offset is not the stored one (tus 409), or the upload is finished."""


def upload_create(*, project: Project, user: Any, length: int, name: str, batch: IngestBatch | None) -> IngestUpload:
    """Open a resumable upload of ``length`` bytes; a batch is opened for it unless given."""
    if batch is None:
        batch = services.batch_create(project=project, source="upload", user=user)
    upload = IngestUpload.objects.create(
        project=project,
        batch=batch,
        created_by=user,
        name_encrypted=crypto.encrypt(name.encode()),
        length=length,
        # An empty file is complete as it is created: no PATCH will ever finish it.
        state=UploadState.STORED if length == 0 else UploadState.RECEIVING,
    )
    if length == 0:
        batch_expand_enqueue(batch)
    return upload


def upload_append(*, upload: IngestUpload, offset: int, body: IO[bytes], size: int) -> IngestUpload:
    """Seal ``size`` bytes read from ``body`` onto the upload at ``offset`` (a tus PATCH).

    Each segment's size is recorded as soon as it is stored, so a request cut off mid-way
    leaves an offset the client resumes from (tus HEAD) and never one past what is stored.
    Each segment is recorded with a compare-and-set on the offset: of two PATCHes at the same
    offset one lands, the other gets a conflict (its segments are deleted).
    Completing the upload (offset == length) enqueues the batch's expansion.
    """
    with transaction.atomic():
        upload = IngestUpload.objects.select_for_update().get(pk=upload.pk)
        if upload.state != UploadState.RECEIVING:
            raise UploadConflict("This upload is complete; it takes no more data.")
        if offset != upload.offset:
            raise UploadConflict(f"The upload is at offset {upload.offset}, not {offset}; resume from there.")
        assert upload.length is not None
        if offset + size > upload.length:
            raise UploadConflict(f"The chunk goes past the declared length of {upload.length} bytes.")

    def record(index: int, segment: sealed.Segment) -> None:
        # Compare-and-set on the offset: of two requests appending at once, one counts.
        before = upload.offset
        recorded = IngestUpload.objects.filter(pk=upload.pk, state=UploadState.RECEIVING, offset=before).update(
            segments=[*upload.segments, segment], offset=before + int(segment[0]), updated_at=timezone.now()
        )
        if not recorded:
            sealed.quarantine_storage().delete(f"{upload.prefix}/{segment[1]}")
            raise UploadConflict("Another request is appending to this upload; ask HEAD for the offset.")
        upload.segments = [*upload.segments, segment]
        upload.offset = before + int(segment[0])

    # The segment size is a request's chunk at most: each PATCH ends on a segment boundary.
    writer = sealed.SegmentWriter(upload.prefix, start_index=len(upload.segments), on_segment=record)
    remaining = size
    try:
        while remaining > 0:
            chunk = body.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            writer.write(chunk)
            remaining -= len(chunk)
    except OSError:
        writer.close()  # what arrived before a dropped connection is kept: the client resumes after it
        raise
    writer.close()
    if upload.offset == upload.length:
        with transaction.atomic():
            if IngestUpload.objects.filter(pk=upload.pk, state=UploadState.RECEIVING).update(
                state=UploadState.STORED, updated_at=timezone.now()
            ):
                upload.state = UploadState.STORED
                assert upload.batch is not None
                batch_expand_enqueue(upload.batch)
    return upload


def upload_terminate(*, upload: IngestUpload) -> None:
    """Delete an upload and its sealed segments (tus termination); items already made stay."""
    IngestUpload.objects.filter(pk=upload.pk).delete()
    sealed.segments_delete(upload.prefix)


def uploads_sweep(*, now: Any = None) -> tuple[int, int]:
    """What a crash left behind, made right (run by purge_quarantine and Celery beat).

    Re-enqueues stored uploads no worker expanded (a lost task message, a killed worker);
    deletes resumable uploads untouched for UPLOAD_EXPIRY_HOURS and sealed segments no upload
    row owns (the web worker died before recording them). Returns (re-enqueued, deleted).
    """
    now = now or timezone.now()
    waiting = Q(state=UploadState.STORED, updated_at__lt=now - timedelta(seconds=settings.INGEST_ENQUEUE_GRACE_SECONDS))
    stale = Q(state=UploadState.EXPANDING, updated_at__lt=now - _stale_expansion())
    batches = set(IngestUpload.objects.filter(waiting | stale).values_list("batch_id", flat=True))
    for batch in IngestBatch.objects.filter(pk__in=batches):
        with transaction.atomic():
            batch_expand_enqueue(batch)
    expired = IngestUpload.objects.filter(
        state=UploadState.RECEIVING, updated_at__lt=now - timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)
    )
    deleted = 0
    for upload in expired:
        upload_terminate(upload=upload)
        deleted += 1
    return len(batches), deleted + _orphans_delete(now)


def _orphans_delete(now: Any) -> int:
    storage = sealed.quarantine_storage()
    try:
        prefixes, _ = storage.listdir("uploads")
    except FileNotFoundError:
        return 0
    # An EXPANDED upload's segments are done with: a worker that died between marking it and
    # deleting them would otherwise leave them for good.
    rows = IngestUpload.objects.filter(pk__in=_uuids(prefixes)).exclude(state=UploadState.EXPANDED)
    known = {str(pk) for pk in rows.values_list("pk", flat=True)}
    deleted = 0
    for prefix in prefixes:
        if prefix in known:
            continue
        _, names = storage.listdir(f"uploads/{prefix}")
        times = [storage.get_modified_time(f"uploads/{prefix}/{n}") for n in names]
        if not times or max(times) < now - ORPHAN_AGE:
            sealed.segments_delete(f"uploads/{prefix}")
            deleted += 1
    return deleted


def _uuids(values: list[str]) -> list[str]:
    import uuid

    out = []
    for value in values:
        try:
            out.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return out
