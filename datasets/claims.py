"""Exactly-once export builds: a numbered claim, a lease kept alive by a heartbeat, and a fence.

An export's task may run twice at once: Redis hands a killed worker's message out again, and the
sweep (``recovery.exports_recover_stale``) sends an export whose claim lapsed although its
worker may only be stalled. So a worker claims the export (``claim`` + 1, as one conditional
UPDATE), refreshes ``heartbeat_at`` every quarter lease while it builds, and records the
archive only while the export is still RUNNING under its own claim number, checked under a row
lock in the transaction that records it. A build legitimately runs for hours; its heartbeat,
not its age, says whether its worker is alive.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from datasets.models import Export, ExportStatus
from workbench.heartbeat import heartbeat

# Claims whose worker was lost before an export ends FAILED (an export that kills its worker
# each time, e.g. out of memory, must not be sent for ever).
MAX_LOST_CLAIMS = 3


class ClaimLost(Exception):
    """Another worker took the export over (this one's heartbeat stopped for longer than the lease)."""


def claim_lease() -> timedelta:
    """How long an export's claim holds without a heartbeat: past it, its worker is taken for dead."""
    return timedelta(seconds=settings.EXPORT_CLAIM_LEASE_SECONDS)


def lapsed(now: datetime) -> Q:
    """RUNNING exports whose claim lapsed (no heartbeat within the lease) at ``now``."""
    silent = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - claim_lease())
    return Q(status=ExportStatus.RUNNING) & silent


def export_claim(export_id: Any) -> int | None:
    """Compare-and-set the export to RUNNING; the claim's number, or None if not claimable.

    Claimable: QUEUED, or RUNNING with a lapsed claim while fewer than MAX_LOST_CLAIMS were lost
    (counted as one more lost; the sweep ends the last one FAILED). Two workers racing: the
    UPDATE matches for one of them only.
    """
    row = Export.objects.filter(pk=export_id).values("claim", "lost_claims").first()
    if row is None:
        return None
    now = timezone.now()
    queued = Q(status=ExportStatus.QUEUED)
    taken_over = lapsed(now) & Q(lost_claims__lt=MAX_LOST_CLAIMS - 1)
    claim = int(row["claim"]) + 1
    mine = Export.objects.filter(pk=export_id, claim=row["claim"])
    if mine.filter(queued).update(status=ExportStatus.RUNNING, claim=claim, **_fresh(now)):
        return claim
    if mine.filter(taken_over).update(
        status=ExportStatus.RUNNING, claim=claim, lost_claims=F("lost_claims") + 1, **_fresh(now)
    ):
        return claim
    return None


def _fresh(now: datetime) -> dict[str, Any]:
    return {"started_at": now, "heartbeat_at": now, "done": 0, "error": ""}


def held(export_id: Any, claim: int) -> QuerySet[Export]:
    """The export, only while it is RUNNING under this claim."""
    return Export.objects.filter(pk=export_id, status=ExportStatus.RUNNING, claim=claim)


def claim_check(export_id: Any, claim: int, *, lock: bool = True) -> None:
    """Raise ClaimLost unless the claim is still ours; inside the outcome's transaction, with
    ``lock``, the row stays locked until it commits."""
    rows = held(export_id, claim)
    if lock:
        rows = rows.select_for_update()
    if not list(rows.values_list("pk", flat=True)):
        raise ClaimLost(export_id)


def claim_heartbeat(export_id: Any, claim: int) -> AbstractContextManager[None]:
    """Refresh the claim every quarter lease (15 s by default) while the build runs."""
    return heartbeat(
        lambda: held(export_id, claim).update(heartbeat_at=timezone.now()),
        every=max(claim_lease().total_seconds() / 4, 0.05),
        name=f"export {export_id}",
    )
