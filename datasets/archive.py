"""Packing an export folder into a deterministic zip, with SHA256SUMS. Imports no Django.

Equal folders give byte-identical archives: entries sorted by path, a fixed timestamp and
permissions, no extra fields. Files that are compressed already (gzip, PNG, zip) are stored;
the rest is deflated. Contents stream through in chunks, never whole into memory.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

CHUNK = 1 << 20
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_STORED = (".gz", ".png", ".zip", ".jpg", ".jpeg")
# Level 1: DICOM pixel data is mostly noise, which level 6 compresses barely better at a third
# of the speed (bench/export_throughput.py: the DICOM export went from 12 to 30+ MB/s).
DEFLATE_LEVEL = 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(root: Path, name: str = "SHA256SUMS") -> Path:
    """``sha256sum``-format lines for every file under ``root`` except the list itself."""
    lines = [
        f"{file_sha256(path)}  {path.relative_to(root).as_posix()}\n"
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() != name)
    ]
    target = root / name
    target.write_text("".join(lines), encoding="utf-8")
    return target


def pack(root: Path, archive: Path) -> None:
    """Zip every file under ``root`` (paths relative to it) into ``archive``, deterministically."""
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    with zipfile.ZipFile(archive, "w", allowZip64=True) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.create_system = 3  # Unix, whatever the building machine
            info.compress_type = zipfile.ZIP_STORED if path.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
            info._compresslevel = DEFLATE_LEVEL  # type: ignore[attr-defined]  # ZipFile.open ignores its own
            with path.open("rb") as source, zf.open(info, "w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
