"""Adopt the unkeyed sha256 chain of an existing install into the keyed chain.

Events written before the keyed chain carry an unkeyed sha256 that anyone can
recompute. This migration first checks that old chain as the old code did,
then signs every old event with the current audit key (in seq order, each
linked to the previous MAC), and appends one ``audit_chain_adopted`` event that
records how many legacy events there were, the old head hash and whether the
old chain was intact. From then on ``verify_audit`` verifies those events like
any other, and reports the adoption and its finding. Rewrites before this point
cannot be told apart from the original any more; that is why the marker keeps
the old verdict. Old ``seq`` values came from an autoincrement and may have
gaps (rolled-back transactions); ``verify_audit`` allows gaps before the marker
and checks the legacy count instead.
"""

from __future__ import annotations

import hashlib
import json

from django.db import migrations
from django.utils import timezone

GENESIS = "0" * 64
BATCH = 2000


def _legacy_hash(event) -> str:
    """The pre-keyed canonical form, frozen here as it was (workbench/audit.py before the keyed chain)."""
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
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _batches(model):
    last = 0
    while True:
        batch = list(model.objects.filter(seq__gt=last).order_by("seq")[:BATCH])
        if not batch:
            return
        yield from batch
        last = batch[-1].seq


def _body(event):
    # The v1 canonical form; a later format version gets its own migration.
    from workbench.audit_keys import event_body

    return event_body(
        seq=event.seq,
        at=event.at,
        action=event.action,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        project_id=event.project_id,
        project_slug=event.project_slug,
        object_type=event.object_type,
        object_id=event.object_id,
        details=event.details,
        prev_hash=event.prev_hash,
        key_id=event.key_id,
    )


def adopt_legacy_chain(apps, schema_editor) -> None:
    from workbench.audit_keys import audit_keyring, event_mac

    AuditEvent = apps.get_model("workbench", "AuditEvent")
    AuditHead = apps.get_model("workbench", "AuditHead")
    if not AuditEvent.objects.exists():
        AuditHead.objects.update_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS})
        return
    key = audit_keyring().current
    legacy_prev, first_problem, count, mac, last_seq = GENESIS, None, 0, GENESIS, 0
    for event in _batches(AuditEvent):
        count += 1
        if first_problem is None and (event.prev_hash != legacy_prev or _legacy_hash(event) != event.hash):
            first_problem = event.seq
        legacy_prev = event.hash
        event.prev_hash, event.key_id = mac, key.key_id
        event.hash = event_mac(key, _body(event))
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=event.prev_hash, hash=event.hash, key_id=key.key_id)
        mac, last_seq = event.hash, event.seq
    marker = AuditEvent(
        seq=last_seq + 1,
        at=timezone.now(),
        action="audit_chain_adopted",
        actor_name="system",
        object_type="audit_chain",
        details={
            "legacy_events": count,
            "legacy_head_hash": legacy_prev,
            "legacy_chain_intact": first_problem is None,
            "legacy_first_problem_seq": first_problem,
        },
        prev_hash=mac,
        key_id=key.key_id,
    )
    marker.hash = event_mac(key, _body(marker))
    marker.save(force_insert=True)
    AuditHead.objects.update_or_create(pk=1, defaults={"seq": marker.seq, "hash": marker.hash})


def restore_legacy_chain(apps, schema_editor) -> None:
    """Going back: re-hash every event the unkeyed way, so that the old code verifies it."""
    AuditEvent = apps.get_model("workbench", "AuditEvent")
    prev = GENESIS
    for event in _batches(AuditEvent):
        event.prev_hash = prev
        event.hash = _legacy_hash(event)
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=event.prev_hash, hash=event.hash)
        prev = event.hash


class Migration(migrations.Migration):
    dependencies = [("workbench", "0003_audit_keyed_chain")]

    operations = [migrations.RunPython(adopt_legacy_chain, restore_legacy_chain)]
