"""How a model file reaches the web process: in memory, up to artifacts.MAX_BYTES (API and page)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import MemoryFileUploadHandler

from inference.handlers.artifacts import MAX_BYTES


class ModelUploadHandler(MemoryFileUploadHandler):
    """Model files are held in memory (up to artifacts.MAX_BYTES), never spooled to disk.

    The project-wide default drops file parts (settings.FILE_UPLOAD_HANDLERS); a model is no
    DICOM and needs no sealing, but a half-written temporary file is still not wanted. Set it
    on ``request.upload_handlers`` before anything (the CSRF check included) reads the body.
    """

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        self.activated = True

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > MAX_BYTES:
            raise RequestDataTooBig(f"A model file may be at most {MAX_BYTES // 2**20} MiB.")
        return super().receive_data_chunk(raw_data, start)
