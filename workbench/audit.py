"""Writing and verifying the keyed, chained audit log.

Every audited action goes through ``audit_record``. Details must never carry a
value read from an incoming file's identifying attributes: ids, counts, codes.

The chain is one for the whole installation (events without a project, such as
logins, belong to it too). Writers serialize on the ``AuditHead`` row: a row
lock (``SELECT ... FOR UPDATE``) on PostgreSQL; on SQLite every transaction
starts with ``BEGIN IMMEDIATE`` (see settings), which already admits one writer
at a time. The lock is held to the end of the caller's transaction, so events
commit in ``seq`` order without gaps. What each event's MAC covers is described
in ``workbench.audit_keys``; the checkpoints outside the database in
``workbench.audit_checkpoints``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from workbench.audit_checkpoints import Checkpoint, CheckpointProblem, checkpoint_write, checkpoints_read
from workbench.audit_keys import (
    GENESIS,
    AuditKey,
    AuditKeyring,
    audit_keyring,
    canonical_json,
    event_body,
    event_mac,
    macs_equal,
)
from workbench.models import AuditEvent, AuditHead, Project

log = logging.getLogger(__name__)

ADOPTED_ACTION = "audit_chain_adopted"
MAX_LISTED_PROBLEMS = 1000
CONTENT_CHANGED = "does not match its MAC: rewritten, or moved to another project or actor"
LINK_BROKEN = "its previous-MAC does not match the event before it (replaced or missing)"


def event_body_of(event: AuditEvent) -> dict[str, Any]:
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


def _head_locked() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # A fresh or flushed database: start from the last event. ignore_conflicts makes
        # two first writers agree on one row (PostgreSQL waits on the unique key).
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS)
        if last[0]:
            log.warning("The audit chain's head row was missing; recreated at seq %d (see verify_audit).", last[0])
        AuditHead.objects.bulk_create([AuditHead(pk=1, seq=last[0], hash=last[1])], ignore_conflicts=True)
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


def _sign_as_stored(event: AuditEvent, key: AuditKey) -> None:
    """Make the MAC cover the details as the database gives them back.

    PostgreSQL's jsonb keeps numbers as decimals: ``1e+20`` comes back as the
    integer ``100000000000000000000``, which serialises differently.
    """
    stored = AuditEvent.objects.values_list("details", flat=True).get(pk=event.seq)
    if canonical_json({"d": stored}) != canonical_json({"d": event.details}):
        event.details = stored
        event.hash = event_mac(key, event_body_of(event))
        AuditEvent.objects.filter(pk=event.seq).update(hash=event.hash)


def audit_record(
    *,
    action: str,
    actor: Any = None,
    project: Project | None = None,
    object_type: str = "",
    object_id: object = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, signed with the current audit key.

    Transactional: the event and the head move together or not at all; safe
    under concurrent writers in any number of processes. A signed checkpoint of
    the new head is appended to the checkpoint file once the transaction commits.
    """
    key = audit_keyring().current
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        head = _head_locked()
        event = AuditEvent(
            seq=head.seq + 1,
            at=timezone.now(),
            action=action,
            actor=user,
            actor_name=user.get_username() if user else (actor if isinstance(actor, str) else "system"),
            project=project,
            project_slug=project.slug if project else "",
            object_type=object_type,
            object_id=str(object_id),
            details=json.loads(json.dumps(details or {}, default=str, allow_nan=False)),
            prev_hash=head.hash,
            key_id=key.key_id,
        )
        event.hash = event_mac(key, event_body_of(event))
        event.save(force_insert=True)
        _sign_as_stored(event, key)
        AuditHead.objects.filter(pk=1).update(seq=event.seq, hash=event.hash)
        transaction.on_commit(partial(checkpoint_write, seq=event.seq, head_hash=event.hash), robust=True)
    return event


@dataclass(frozen=True)
class AuditProblem:
    seq: int | None  # the event's id and position in the chain; None for the head and checkpoints
    kind: str
    reason: str


@dataclass
class AuditReport:
    """What ``audit_verify_report`` found; ``problems`` lists the first MAX_LISTED_PROBLEMS."""

    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    checkpoint: Checkpoint | None = None
    problem_count: int = 0
    problems: list[AuditProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, seq: int | None, kind: str, reason: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(AuditProblem(seq, kind, reason))

    @property
    def first_broken(self) -> AuditProblem | None:
        in_chain = [p for p in self.problems if p.seq is not None]
        if in_chain:
            return min(in_chain, key=lambda p: p.seq or 0)
        return self.problems[0] if self.problems else None


def _mac_ok(keyring: AuditKeyring, event: AuditEvent) -> bool | None:
    """True or False; None when the event names a key that is not configured."""
    key = keyring.by_id.get(event.key_id)
    if key is None:
        return None
    try:
        return macs_equal(event_mac(key, event_body_of(event)), event.hash)
    except (TypeError, ValueError):
        return False


def _adoption(keyring: AuditKeyring, report: AuditReport) -> int:
    """The seq of a genuine legacy-adoption marker (gaps before it are the old autoincrement's), or 0."""
    marker = AuditEvent.objects.filter(action=ADOPTED_ACTION).order_by("seq").first()
    if marker is None or not _mac_ok(keyring, marker):
        return 0
    legacy = marker.details.get("legacy_events", 0)
    first = marker.details.get("legacy_first_problem_seq")
    intact = "yes" if marker.details.get("legacy_chain_intact") else f"NO, already broken at seq {first} before"
    report.notes.append(f"Legacy chain of {legacy} unkeyed events adopted at seq {marker.seq} (intact: {intact}).")
    present = AuditEvent.objects.filter(seq__lt=marker.seq).count()
    if present < legacy:
        report.add(
            None, "deleted", f"{legacy - present} of the {legacy} legacy events before seq {marker.seq} are gone"
        )
    return marker.seq


def _walk(keyring: AuditKeyring, report: AuditReport) -> None:
    adopted_at = _adoption(keyring, report)
    expected, previous, current_seen = 1, GENESIS, False
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        report.events += 1
        gap = event.seq != expected and event.seq > adopted_at
        if gap:
            missing = f"{expected}" if event.seq == expected + 1 else f"{expected}..{event.seq - 1}"
            report.add(event.seq, "deleted", f"events {missing} before it are missing (deleted from the chain)")
        ok = _mac_ok(keyring, event)
        if ok is None:
            report.add(event.seq, "unknown-key", f"signed with key {event.key_id!r}, which is not configured")
        elif not ok:
            report.add(event.seq, "content-changed", CONTENT_CHANGED)
        elif event.prev_hash != previous and not gap:
            report.add(event.seq, "link-broken", LINK_BROKEN)
        if event.key_id == keyring.current.key_id:
            current_seen = True
        elif current_seen and ok:
            report.add(event.seq, "retired-key", f"signed with retired key {event.key_id!r} after the current key")
        previous, expected = event.hash, event.seq + 1
        report.head_seq, report.head_hash = event.seq, event.hash


def _check_head(report: AuditReport) -> None:
    head = AuditHead.objects.filter(pk=1).first()
    if head is None:
        if report.events:
            report.add(None, "truncated", "the chain-head row is missing")
    elif head.seq > report.head_seq:
        report.add(
            None,
            "truncated",
            f"the head row records seq {head.seq}, the last event is {report.head_seq}: "
            f"events {report.head_seq + 1}..{head.seq} were deleted from the end",
        )
    elif head.seq < report.head_seq or head.hash != report.head_hash:
        report.add(
            None,
            "inserted",
            f"the head row records seq {head.seq} but the last event is {report.head_seq}: "
            "events were written around audit_record",
        )


def _check_checkpoints(report: AuditReport) -> None:
    """Every checkpoint, not only the last, must match the event at its seq: a chain cut and
    written again past the last checkpoint's seq differs from some earlier one."""
    checkpoints: list[Checkpoint] = []
    for item in checkpoints_read():
        if isinstance(item, CheckpointProblem):
            report.add(None, item.kind, f"checkpoint file line {item.line}: {item.reason}")
        else:
            checkpoints.append(item)
            if report.checkpoint is None or item.seq > report.checkpoint.seq:
                report.checkpoint = item
    cp = report.checkpoint
    if cp is None:
        return
    if cp.seq > report.head_seq:
        report.add(
            None,
            "truncated",
            f"the checkpoint of {cp.at} records event {cp.seq}, but the chain ends at "
            f"{report.head_seq}: events were deleted from the end",
        )
        return
    by_seq: dict[int, list[Checkpoint]] = {}
    for item in checkpoints:
        by_seq.setdefault(item.seq, []).append(item)
    seqs = sorted(by_seq, reverse=True)  # the newest mismatch: the chain is rewritten up to there
    for start in range(0, len(seqs), 1000):
        batch = seqs[start : start + 1000]
        stored = dict(AuditEvent.objects.filter(seq__in=batch).values_list("seq", "hash"))
        for seq in batch:
            wrong = [c for c in by_seq[seq] if seq in stored and not macs_equal(stored[seq], c.hash)]
            if wrong:
                report.add(
                    seq,
                    "checkpoint-mismatch",
                    f"differs from its checkpoint of {wrong[0].at}: the chain up to here "
                    "was rewritten with the audit key, or cut and written again",
                )
                return


def audit_verify_report() -> AuditReport:
    """Check every event's MAC and link, the head row and the checkpoint file. Read-only."""
    keyring = audit_keyring()
    report = AuditReport()
    _walk(keyring, report)
    _check_head(report)
    _check_checkpoints(report)
    return report


def audit_verify() -> Iterator[AuditProblem]:
    """Yield every place where the log does not match its MACs, its head or its checkpoints."""
    yield from audit_verify_report().problems
