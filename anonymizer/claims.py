"""Exactly-once claims on ingest items: a compare-and-set, a lease, a heartbeat and a fence.

A task may be delivered twice: Redis hands an unacknowledged message out again after its
visibility timeout (while the first run may still be going), a worker killed before its ack
gets its message back, and the sweep (``recovery.items_recover_stale``) sends items again.
So a worker first claims the item (RECEIVED -> PROCESSING, ``attempts`` + 1, as one
conditional UPDATE), refreshes ``updated_at`` while it works, and records its outcome only
while the item is still PROCESSING under its own claim number, checked under a row lock in
the transaction that records it. A claim whose heartbeat stopped for longer than the lease
belongs to a dead worker and may be taken over.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from anonymizer.models import IngestItem, ItemStatus
from workbench.heartbeat import heartbeat

# Claims an item may have: past it a worker death is taken as the file's doing (it quarantines
# as worker_lost in the sweep) and no late redelivery takes the item over again.
MAX_CLAIMS = 3


def claim_lease() -> timedelta:
    """How long a claim holds without a heartbeat: past it, its worker is taken for dead."""
    return timedelta(seconds=settings.INGEST_CLAIM_LEASE_SECONDS)


class ClaimLost(Exception):
    """Another worker took the item over (this one's heartbeat stopped for longer than the lease)."""


def item_claim(item_id: Any) -> int | None:
    """Compare-and-set the item to PROCESSING; the claim's number (its new ``attempts``), or None.

    Claimable: RECEIVED, or PROCESSING with a heartbeat older than the lease (its worker died).
    Two workers racing for the same item: the UPDATE matches for one of them only.
    """
    row = IngestItem.objects.filter(pk=item_id).values("attempts").first()
    if row is None:
        return None
    now = timezone.now()
    claimable = Q(status=ItemStatus.RECEIVED) | Q(
        status=ItemStatus.PROCESSING, updated_at__lt=now - claim_lease(), attempts__lt=MAX_CLAIMS
    )
    claim = int(row["attempts"]) + 1
    taken = IngestItem.objects.filter(claimable, pk=item_id, attempts=row["attempts"]).update(
        status=ItemStatus.PROCESSING, attempts=claim, updated_at=now
    )
    return claim if taken else None


def _held(item_id: Any, claim: int) -> QuerySet[IngestItem]:
    return IngestItem.objects.filter(pk=item_id, status=ItemStatus.PROCESSING, attempts=claim)


def claim_check(item_id: Any, claim: int | None) -> None:
    """Inside the outcome's transaction: lock the item, and raise ClaimLost unless the claim is
    still ours (None: the caller holds no claim, nothing to check)."""
    if claim is not None and not list(_held(item_id, claim).select_for_update().values_list("pk", flat=True)):
        raise ClaimLost(item_id)


def claim_heartbeat(item_id: Any, claim: int) -> AbstractContextManager[None]:
    """Refresh the claim every quarter lease while the block runs, from a thread of its own.

    So a task that outlives the lease, or the broker's visibility timeout (which redelivers its
    message while it runs), keeps its item: the redelivered task finds the claim alive and skips.
    Not when the caller holds a transaction (see ``workbench.heartbeat``).
    """
    return heartbeat(
        lambda: _held(item_id, claim).update(updated_at=timezone.now()),
        every=max(claim_lease().total_seconds() / 4, 0.05),
        name=f"item {item_id}",
    )
