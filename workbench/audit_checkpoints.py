"""Signed checkpoints of the audit chain's head, kept outside the database.

Whoever can rewrite the database can delete the last events and roll the head
row back with them; only a record the database cannot reach shows that. After
each committed event (``transaction.on_commit``) one JSON line
``{"v", "seq", "hash", "at", "key_id", "sig"}`` is appended to
``settings.AUDIT_CHECKPOINT_PATH``; ``sig`` is an HMAC under the audit key, so
a line cannot be forged or edited without it. Per event rather than periodic:
an appended line costs well under a millisecond, and a truncation is then
caught down to the last event instead of the last period.

The file must live where the database's users cannot write: a local disk of
the app hosts (``chattr +a`` makes it append-only even for its owner), or a
shared append-only mount when web and workers run on several hosts. For object
storage, point it at a file that a log shipper copies to a bucket with S3
Object Lock (WORM); writing to the bucket directly is not implemented.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from workbench.audit_keys import audit_keyring, checkpoint_body, checkpoint_sign, macs_equal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    line: int
    seq: int
    hash: str
    at: str
    key_id: str


@dataclass(frozen=True)
class CheckpointProblem:
    line: int
    kind: str  # "checkpoint-unreadable", "checkpoint-forged", "checkpoint-unknown-key"
    reason: str


def checkpoint_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH)


def checkpoint_write(*, seq: int, head_hash: str) -> bool:
    """Append one signed checkpoint line. Never raises: a failure is logged and returns False.

    One ``write`` on a file opened with ``O_APPEND`` is atomic on a local file
    system, so lines from concurrent processes never interleave; their order
    may differ from ``seq`` order, which readers allow.
    """
    key = audit_keyring().current
    body = checkpoint_body(seq=seq, head_hash=head_hash, at=timezone.now(), key_id=key.key_id)
    line = json.dumps({**body, "sig": checkpoint_sign(key, body)}, sort_keys=True, separators=(",", ":")) + "\n"
    path = checkpoint_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        # The event is committed already; failing the request now would not undo it.
        log.error("Could not append an audit checkpoint to %s: %s", path, exc.strerror)
        return False
    return True


def checkpoints_read() -> Iterator[Checkpoint | CheckpointProblem]:
    """Every line of the checkpoint file, checked: a valid checkpoint or what is wrong with it."""
    path = checkpoint_path()
    if not path.exists():
        return
    keys = audit_keyring().by_id
    try:
        fh = path.open("rb")
    except OSError as exc:
        yield CheckpointProblem(0, "checkpoint-unreadable", f"cannot read {path}: {exc.strerror}")
        return
    with fh:
        for number, raw in enumerate(fh, start=1):
            try:
                data = json.loads(raw)
                body = checkpoint_body(
                    seq=data["seq"], head_hash=data["hash"], at=_parse(data["at"]), key_id=data["key_id"]
                )
                sig = data["sig"]
            except (ValueError, KeyError, TypeError):
                yield CheckpointProblem(number, "checkpoint-unreadable", "not a checkpoint (edited, or cut by a crash)")
                continue
            key = keys.get(body["key_id"])
            if key is None:
                yield CheckpointProblem(
                    number, "checkpoint-unknown-key", f"signed with unknown key {body['key_id'][:16]!r}"
                )
            elif not isinstance(sig, str) or not macs_equal(checkpoint_sign(key, body), sig):
                yield CheckpointProblem(number, "checkpoint-forged", "signature does not match (the line was edited)")
            else:
                yield Checkpoint(number, body["seq"], body["hash"], body["at"], body["key_id"])


def _parse(value: object) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ValueError("bad time")
    return datetime.fromisoformat(value[:-1] + "+00:00")
