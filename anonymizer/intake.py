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


def _hidden(info: zipfile.ZipInfo) -> bool:
    return info.filename.rsplit("/", 1)[-1].startswith(".") or info.filename.startswith("__MACOSX/")


def _declared_members(fh: IO[bytes]) -> int | None:
    """The member count the end-of-central-directory record declares, read without parsing
    the directory, so a zip of a million members is refused before a million ZipInfos exist."""
    try:
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # stable since Python 2
    except OSError:
        return None
    fh.seek(0)
    return int(end[zipfile._ECD_ENTRIES_TOTAL]) if end else None  # type: ignore[attr-defined]


def _over_budget(info: zipfile.ZipInfo) -> Incoming:
    limit_mb = settings.MAX_ARCHIVE_EXPANDED_BYTES // (1024 * 1024)
    message = (
        f"The archive expands to more than the {limit_mb} MB limit per archive; this member was not "
        "extracted. Upload it in another archive."
    )
    return Incoming(info.filename, None, "archive_too_large", message)


def expand_zip(name: str, fh: IO[bytes], *, skip: int = 0) -> Iterator[Incoming]:
    """Yield the archive's members one at a time, each read up to the per-file limit.

    ``fh`` must be seekable (a sealed upload is). Budgets: MAX_ZIP_MEMBERS members (checked
    on the declared count before the directory is read), MAX_ARCHIVE_EXPANDED_BYTES in all
    (members past it become ``archive_too_large`` items) and the per-member size and ratio.
    The first ``skip`` entries are passed over unread (a resumed expansion).
    """
    declared = _declared_members(fh)
    # An archive refused as a whole is one entry: a resumed expansion (skip >= 1) has made it.
    too_many = Incoming(name, None, "zip_too_many", f"The archive holds more than {settings.MAX_ZIP_MEMBERS} files.")
    if declared is not None and declared > settings.MAX_ZIP_MEMBERS:
        yield from [too_many][skip:]
        return
    try:
        archive = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError):
        bad = Incoming(name, None, "bad_zip", "The archive could not be opened (not a zip, or damaged).")
        yield from [bad][skip:]
        return
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > settings.MAX_ZIP_MEMBERS:
        yield from [too_many][skip:]
        return
    members = [m for m in members if not _hidden(m)]
    expanded = 0
    for position, info in enumerate(members):
        if position < skip:  # counted as the first pass counted it
            if not _unsafe_member(info) and info.file_size <= settings.MAX_ARCHIVE_EXPANDED_BYTES - expanded:
                expanded += info.file_size
            continue
        problem = _unsafe_member(info)
        if problem:
            yield Incoming(info.filename, None, "unsafe_zip_member", problem)
            continue
        budget = settings.MAX_ARCHIVE_EXPANDED_BYTES - expanded
        if info.file_size > budget:
            yield _over_budget(info)
            continue
        try:
            with archive.open(info) as member:
                # The declared size can lie: enforce the limits on what actually comes out.
                limit = min(settings.MAX_UPLOAD_BYTES, max(info.compress_size, 1) * settings.MAX_ZIP_RATIO, budget)
                data = _read_limited(member, limit)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError):
            yield Incoming(info.filename, None, "bad_zip_member", "The archive member could not be extracted.")
            continue
        if data is None:
            yield Incoming(
                info.filename, None, "zip_bomb", "The archive member expands beyond the allowed ratio or size."
            )
            continue
        expanded += len(data)
        yield Incoming(info.filename, data)


def incoming_from_upload(name: str, fh: IO[bytes], size: int | None = None, *, skip: int = 0) -> Iterator[Incoming]:
    """Yield one Incoming per file in an upload (a DICOM file, or a zip of them), skipping the
    first ``skip`` (already turned into items by an expansion that was interrupted)."""
    if size is not None and size > settings.MAX_UPLOAD_BYTES and not name.lower().endswith(".zip"):
        if not skip:
            yield _too_large(name)
        return
    head = fh.read(4)
    fh.seek(0)
    if head == b"PK\x03\x04":
        yield from expand_zip(name, fh, skip=skip)
        return
    if skip:
        return
    data = _read_limited(fh, settings.MAX_UPLOAD_BYTES)
    yield _too_large(name) if data is None else Incoming(name, data)
