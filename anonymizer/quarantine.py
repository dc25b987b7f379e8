"""Raw input at rest: encrypted before it touches the quarantine storage."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import storages

from workbench import crypto


def _storage():  # type: ignore[no-untyped-def]
    return storages["quarantine"]


def raw_store(*, path: str, data: bytes) -> str:
    """Encrypt and store raw bytes; returns the storage path (built from ids only)."""
    storage = _storage()
    if storage.exists(path):
        storage.delete(path)
    return storage.save(path, ContentFile(crypto.encrypt(data)))


def raw_read(path: str) -> bytes:
    with _storage().open(path, "rb") as fh:
        return crypto.decrypt(fh.read())


def raw_delete(path: str) -> None:
    if path and _storage().exists(path):
        _storage().delete(path)
