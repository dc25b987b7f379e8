"""The keys and the canonical form behind the audit chain's MACs.

Each event's ``hash`` is HMAC-SHA256, under the audit key, of the event's
canonical form: a JSON object with one member per column (sequence number, time,
action, actor id and name, project id and slug, object, details, the previous
event's MAC and the signing key's id), each coerced to one declared type,
serialised with sorted keys, no whitespace and ASCII escapes, and prefixed with
a domain tag so that an event MAC can never be replayed as a checkpoint
signature or the other way round. Without the key nobody can recompute a MAC,
so rewriting a row and re-hashing the rest is detected.

Keys rotate: ``WORKBENCH_AUDIT_KEY`` signs, ``WORKBENCH_AUDIT_KEYS_OLD`` only
verify. Every event names its key by a short fingerprint (``key_id``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT_VERSION = 1
GENESIS = "0" * 64
MIN_KEY_CHARS = 32
_EVENT_TAG = b"workbench-audit-event-v1\n"
_CHECKPOINT_TAG = b"workbench-audit-checkpoint-v1\n"
_KEY_ID_TAG = b"workbench-audit-key-id\n"


@dataclass(frozen=True)
class AuditKey:
    key_id: str
    secret: bytes = b""

    def mac(self, tag: bytes, body: dict[str, Any]) -> str:
        return hmac.new(self.secret, tag + canonical_json(body), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditKeyring:
    """The key that signs now, and every key (current and retired) by id."""

    current: AuditKey
    by_id: dict[str, AuditKey]


def key_id_of(secret: bytes) -> str:
    """A fingerprint that names a key without revealing it (16 hex digits)."""
    return hashlib.sha256(_KEY_ID_TAG + secret).hexdigest()[:16]


def _make_key(raw: str, source: str) -> AuditKey:
    raw = raw.strip()
    if len(raw) < MIN_KEY_CHARS:
        raise ImproperlyConfigured(f"{source}: an audit key needs at least {MIN_KEY_CHARS} characters.")
    secret = raw.encode()
    return AuditKey(key_id=key_id_of(secret), secret=secret)


def _embedded_key(path: Path) -> str:
    """The embedded default's key, created once; safe when web and worker start together."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # atomic publish: the loser of a race keeps the winner's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


@functools.cache
def _keyring(current: str | None, old: tuple[str, ...], key_file: str) -> AuditKeyring:
    key = _make_key(current, "WORKBENCH_AUDIT_KEY") if current else _make_key(_embedded_key(Path(key_file)), key_file)
    by_id = {k.key_id: k for k in (_make_key(raw, "WORKBENCH_AUDIT_KEYS_OLD") for raw in old)}
    by_id[key.key_id] = key
    return AuditKeyring(current=key, by_id=by_id)


def audit_keyring() -> AuditKeyring:
    """The configured keys; raises ImproperlyConfigured for a key that is too short."""
    return _keyring(settings.AUDIT_KEY, tuple(settings.AUDIT_KEYS_OLD), str(settings.AUDIT_KEY_FILE))


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _opt_int(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"expected an integer or null, got {type(value).__name__}")
    return value


def event_body(
    *,
    seq: int,
    at: datetime,
    action: str,
    actor_id: int | None,
    actor_name: str,
    project_id: object | None,
    project_slug: str,
    object_type: str,
    object_id: str,
    details: Any,
    prev_hash: str,
    key_id: str,
) -> dict[str, Any]:
    """Every column of an event, each in one declared type (the input to its MAC)."""
    return {
        "v": FORMAT_VERSION,
        "seq": _opt_int(seq),
        "at": format_time(at),
        "action": _str(action),
        "actor_id": _opt_int(actor_id),
        "actor_name": _str(actor_name),
        # A UUID in its canonical lower-case hyphenated form, whatever the database hands back.
        "project_id": None if project_id is None else str(project_id).lower(),
        "project_slug": _str(project_slug),
        "object_type": _str(object_type),
        "object_id": _str(object_id),
        "details": details,
        "prev": _str(prev_hash),
        "key_id": _str(key_id),
    }


def event_mac(key: AuditKey, body: dict[str, Any]) -> str:
    return key.mac(_EVENT_TAG, body)


def checkpoint_body(*, seq: int, head_hash: str, at: datetime, key_id: str) -> dict[str, Any]:
    return {
        "v": FORMAT_VERSION,
        "seq": _opt_int(seq),
        "hash": _str(head_hash),
        "at": format_time(at),
        "key_id": _str(key_id),
    }


def checkpoint_sign(key: AuditKey, body: dict[str, Any]) -> str:
    return key.mac(_CHECKPOINT_TAG, body)


def macs_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
