"""Writing and verifying the hash-chained audit log.

Every audited action goes through ``audit_record``. Details must never carry a
value read from an incoming file's identifying attributes: ids, counts, codes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from workbench.models import AuditEvent, Project

GENESIS = "0" * 64
_LOCK_ID = 0x5742_4155  # "WBAU": one advisory lock serializes the chain on PostgreSQL


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "at": event.at.isoformat(),
        "action": event.action,
        "actor": event.actor_name,
        "project": event.project_slug,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": event.details,
        "prev": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def audit_record(
    *,
    action: str,
    actor: Any = None,
    project: Project | None = None,
    object_type: str = "",
    object_id: object = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Transactional; safe under concurrent writers."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        last = AuditEvent.objects.order_by("-seq").values_list("hash", flat=True).first()
        user = actor if getattr(actor, "is_authenticated", False) else None
        event = AuditEvent(
            at=timezone.now(),
            action=action,
            actor=user,
            actor_name=user.get_username() if user else (actor if isinstance(actor, str) else "system"),
            project=project,
            project_slug=project.slug if project else "",
            object_type=object_type,
            object_id=str(object_id),
            # Round-trip through JSON so that the hash sees what the database stores.
            details=json.loads(json.dumps(details or {}, default=str)),
            prev_hash=last or GENESIS,
        )
        event.hash = _hash(event)
        event.save()
        return event


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    reason: str


def audit_verify() -> Iterator[AuditProblem]:
    """Yield every place where the stored chain does not match its content."""
    previous = GENESIS
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.prev_hash != previous:
            yield AuditProblem(event.seq, "previous-hash link broken (an event was removed or reordered)")
        elif _hash(event) != event.hash:
            yield AuditProblem(event.seq, "content does not match its hash (the event was modified)")
        previous = event.hash
