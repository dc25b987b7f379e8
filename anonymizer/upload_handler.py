"""Multipart upload handlers that never spool a file in the clear.

Django's default handlers keep a file part in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE and
then spool it to ``/tmp/tmp*.upload``, in the clear, where a dying worker leaves it. Here:

- ``SealedUploadHandler`` (installed by the batch upload view) seals each file part into the
  quarantine storage as it arrives (anonymizer.sealed), one segment in memory at most, and
  hands the view a ``SealedUploadedFile`` that names the sealed upload;
- ``DiscardFileUploadHandler`` (the project-wide default, FILE_UPLOAD_HANDLERS) reads file
  parts sent to any other view and drops them, so nothing is written anywhere.

Segments of a request that fails (authentication, a broken body) are deleted by the view; a
killed worker's are found by ``uploads.uploads_sweep`` (a prefix with no upload row).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers

from anonymizer import sealed


class SealedUploadedFile(UploadedFile):
    """A file part already sealed in the quarantine: its upload id and segments, no bytes."""

    def __init__(
        self, *, upload_id: uuid.UUID, name: str, segments: list[sealed.Segment], content_type: str | None
    ) -> None:
        super().__init__(file=None, name=name, content_type=content_type, size=sum(int(s[0]) for s in segments))
        self.upload_id = upload_id
        self.segments = segments
        self.recorded = False  # set once an upload row owns the sealed segments

    @property
    def prefix(self) -> str:
        return f"uploads/{self.upload_id}"

    def discard(self) -> None:
        sealed.segments_delete(self.prefix)

    def open(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # no plaintext to open
        raise OSError("a sealed upload is read through anonymizer.sealed.SegmentReader")

    def close(self) -> None:
        """Nothing is open: Django closes every uploaded file when a parse fails or a request ends.

        The sealed segments stay; a refused request's parts are deleted by the view, and
        parts no upload row owns by the orphan sweep.
        """


class SealedUploadHandler(FileUploadHandler):
    """Seals every file part of a multipart body into the quarantine as it arrives."""

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.sealed_files: list[SealedUploadedFile] = []
        self._writer: sealed.SegmentWriter | None = None
        self._upload_id: uuid.UUID | None = None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._upload_id = uuid.uuid4()
        self._writer = sealed.SegmentWriter(f"uploads/{self._upload_id}")
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        assert self._writer is not None
        self._writer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> SealedUploadedFile | None:
        assert self._writer is not None and self._upload_id is not None
        segments = self._writer.close()
        upload = SealedUploadedFile(
            upload_id=self._upload_id,
            name=self.file_name or "upload",
            segments=segments,
            content_type=self.content_type,
        )
        self.sealed_files.append(upload)
        self._writer = None
        return upload

    def upload_interrupted(self) -> None:
        if self._upload_id is not None:
            sealed.segments_delete(f"uploads/{self._upload_id}")
        for upload in self.sealed_files:
            upload.discard()


class DiscardFileUploadHandler(FileUploadHandler):
    """Drops file parts sent to views that take no files: nothing is spooled or kept."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        return None

    def file_complete(self, file_size: int) -> None:
        return None
