"""Turning uploads (files, folders, zip archives) into ingest items, safely.

Zip archives are expanded member by member with limits on member count, size
and compression ratio, so that a zip bomb or a ``../`` path is reported as an
error of its own and the rest of the batch goes through.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Incoming:
    name: str
    data: bytes | None
    error_code: str = ""
    error: str = ""


def _read_limited(fh: IO[bytes], limit: int) -> bytes | None:
    chunks, total = [], 0
    while chunk := fh.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(name: str) -> Incoming:
    limit_mb = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
    return Incoming(name, None, "too_large", f"The file is larger than the {limit_mb} MB limit per file.")


def _unsafe_member(info: zipfile.ZipInfo) -> str:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or ".." in name.split("/") or ":" in name.split("/")[0]:
        return "The archive member's path leaves the archive (absolute path or '..'); it was skipped."
    if info.flag_bits & 0x1:
        return "The archive member is encrypted; upload it unencrypted."
    if info.compress_size and info.file_size / max(info.compress_size, 1) > settings.MAX_ZIP_RATIO:
        return "The archive member expands far more than real DICOM does (zip bomb?); it was skipped."
    if info.file_size > settings.MAX_UPLOAD_BYTES:
        return "The archive member is larger than the per-file limit."
    return ""


def expand_zip(name: str, fh: IO[bytes]) -> Iterator[Incoming]:
    try:
        archive = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError):
        yield Incoming(name, None, "bad_zip", "The archive could not be opened (not a zip, or damaged).")
        return
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > settings.MAX_ZIP_MEMBERS:
        yield Incoming(name, None, "zip_too_many", f"The archive holds more than {settings.MAX_ZIP_MEMBERS} files.")
        return
    for info in members:
        if info.filename.rsplit("/", 1)[-1].startswith(".") or info.filename.startswith("__MACOSX/"):
            continue
        problem = _unsafe_member(info)
        if problem:
            yield Incoming(info.filename, None, "unsafe_zip_member", problem)
            continue
        try:
            with archive.open(info) as member:
                # The declared size can lie: enforce the limit on what actually comes out.
                limit = min(settings.MAX_UPLOAD_BYTES, max(info.compress_size, 1) * settings.MAX_ZIP_RATIO)
                data = _read_limited(member, limit)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
            yield Incoming(info.filename, None, "bad_zip_member", "The archive member could not be extracted.")
            continue
        if data is None:
            yield Incoming(
                info.filename, None, "zip_bomb", "The archive member expands beyond the allowed ratio or size."
            )
            continue
        yield Incoming(info.filename, data)


def incoming_from_upload(name: str, fh: IO[bytes], size: int | None = None) -> Iterator[Incoming]:
    """Yield one Incoming per file in an upload (a DICOM file, or a zip of them)."""
    if size is not None and size > settings.MAX_UPLOAD_BYTES and not name.lower().endswith(".zip"):
        yield _too_large(name)
        return
    head = fh.read(4)
    fh.seek(0)
    if head == b"PK\x03\x04":
        yield from expand_zip(name, fh)
        return
    data = _read_limited(fh, settings.MAX_UPLOAD_BYTES)
    yield _too_large(name) if data is None else Incoming(name, data)
