"""Raw uploads sealed as they arrive: encrypted segments in the quarantine storage.

An upload is a sequence of segments under one storage prefix. Each segment holds at most
``UPLOAD_SEGMENT_BYTES`` of plaintext, sealed with AES-256-GCM under a fresh data key; the
data key is wrapped with the vault's Fernet keys (so key rotation works as for the rest of
the quarantine). The additional data binds each segment to its upload and position, so a
segment cannot be moved to another upload or place. The plaintext sizes of the segments are
kept in the database with their file names (``IngestUpload.segments``): a missing or
truncated segment fails to decrypt instead of reading short. Each writer names its segments
with a random tag, so two requests writing the same upload at once never overwrite each
other's files (the database's compare-and-set on the offset decides which one counts).

Writing is push-based (an upload handler or a tus PATCH hands over chunks as they arrive)
and holds at most one segment in memory; reading is a seekable file, so ``zipfile`` can walk
an archive of any size while holding one segment.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from workbench import crypto

MAGIC = b"WBS1"
_NONCE = 12


def quarantine_storage() -> Storage:
    return storages["quarantine"]


# One recorded segment: [plaintext size, file name under the upload's prefix].
Segment = list[int | str]


def seal(plaintext: bytes, *, aad: bytes) -> bytes:
    """One sealed segment: magic, wrapped data key, nonce, AES-GCM ciphertext."""
    key = AESGCM.generate_key(bit_length=256)
    wrapped = crypto.encrypt(key)
    nonce = os.urandom(_NONCE)
    body = AESGCM(key).encrypt(nonce, plaintext, aad)
    return MAGIC + struct.pack(">H", len(wrapped)) + wrapped + nonce + body


def unseal(blob: bytes, *, aad: bytes) -> bytes:
    """The plaintext of one segment; raises ValueError when it was altered or misplaced."""
    if blob[:4] != MAGIC:
        raise ValueError("not a sealed segment")
    try:
        (length,) = struct.unpack(">H", blob[4:6])
        key = crypto.decrypt(blob[6 : 6 + length])  # InvalidToken: a damaged header or a retired key
        nonce = blob[6 + length : 6 + length + _NONCE]
        return AESGCM(key).decrypt(nonce, blob[6 + length + _NONCE :], aad)
    except Exception as exc:  # InvalidTag: altered, truncated or misplaced; struct.error: cut short
        raise ValueError("sealed segment failed authentication") from exc


def _aad(prefix: str, index: int) -> bytes:
    return f"{prefix}#{index}".encode()


class SegmentWriter:
    """Push plaintext in; sealed segments go out to the quarantine storage.

    ``on_segment(index, segment)`` runs after each segment is durably saved, so a caller can
    record progress (a tus upload's offset) that a crash never overstates; it may raise to
    stop the writer. Memory: one segment of plaintext at most.
    """

    def __init__(
        self,
        prefix: str,
        *,
        start_index: int = 0,
        on_segment: Callable[[int, Segment], None] | None = None,
        segment_bytes: int | None = None,
    ) -> None:
        self.prefix = prefix
        self.index = start_index
        self.segments: list[Segment] = []
        self.size = 0
        self._tag = secrets.token_hex(4)
        self._buffer = bytearray()
        self._on_segment = on_segment
        self._limit = segment_bytes or settings.UPLOAD_SEGMENT_BYTES

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._limit:
            chunk = bytes(self._buffer[: self._limit])
            del self._buffer[: self._limit]
            self._flush(chunk)

    def close(self) -> list[Segment]:
        """Seal what is buffered; returns the segments written ([size, file name] each)."""
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            self._flush(chunk)
        return self.segments

    def _flush(self, chunk: bytes) -> None:
        name = f"{self.index:08d}-{self._tag}.seg"
        saved = quarantine_storage().save(
            f"{self.prefix}/{name}", ContentFile(seal(chunk, aad=_aad(self.prefix, self.index)))
        )
        if saved != f"{self.prefix}/{name}":
            raise OSError("the quarantine storage renamed a segment")
        segment: Segment = [len(chunk), name]
        self.segments.append(segment)
        self.size += len(chunk)
        if self._on_segment:
            self._on_segment(self.index, segment)
        self.index += 1


class SegmentReader(io.RawIOBase):
    """A seekable, read-only file over an upload's sealed segments (one segment in memory)."""

    def __init__(self, prefix: str, segments: list[Segment]) -> None:
        super().__init__()
        self.prefix = prefix
        self.sizes = [int(size) for size, _ in segments]
        self.names = [str(name) for _, name in segments]
        self.starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.length = sum(self.sizes)
        self.pos = 0
        self._index = -1
        self._plain = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _load(self, index: int) -> None:
        if index != self._index:
            with quarantine_storage().open(f"{self.prefix}/{self.names[index]}", "rb") as fh:
                self._plain = unseal(fh.read(), aad=_aad(self.prefix, index))
            if len(self._plain) != self.sizes[index]:
                raise ValueError("sealed segment has the wrong size")
            self._index = index

    def _segment_at(self, pos: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:  # the last segment starting at or before pos
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.length - self.pos
        out = bytearray()
        while size > 0 and self.pos < self.length:
            index = self._segment_at(self.pos)
            self._load(index)
            start = self.pos - self.starts[index]
            piece = self._plain[start : start + size]
            out += piece
            self.pos += len(piece)
            size -= len(piece)
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def segments_delete(prefix: str) -> None:
    """Delete every segment under an upload's prefix, recorded or not (idempotent)."""
    storage = quarantine_storage()
    try:
        _, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{prefix}/{name}")
    try:  # a local folder would stay behind empty; object stores have no folders
        os.rmdir(storage.path(prefix))
    except (NotImplementedError, OSError):
        pass
