"""Encryption at rest for the quarantine and the identity vault (Fernet)."""

from __future__ import annotations

import functools
import os

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@functools.cache
def _fernet() -> MultiFernet:
    keys = settings.VAULT_KEY
    if not keys:
        path = settings.VAULT_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created once for the embedded default; production sets WORKBENCH_VAULT_KEY.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        keys = path.read_text().strip()
    # A comma-separated list allows key rotation: the first key encrypts, all decrypt.
    return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])


def encrypt(data: bytes) -> bytes:
    return _fernet().encrypt(data)


def decrypt(token: bytes) -> bytes:
    return _fernet().decrypt(bytes(token))
