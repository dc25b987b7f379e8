"""Items no worker finished: sent again, or quarantined after several tries (run from cron).

With ``acks_late`` a task redelivered after a worker crash finds its claim still fresh and
skips it, and nothing sends it again; a lost task message leaves an item RECEIVED. This
sweep makes sure no item stays pending for ever.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from anonymizer.models import PENDING_STATUSES, IngestItem, ItemStatus
from anonymizer.services import STALE_CLAIM
from workbench.audit import audit_record

MAX_CLAIMS = 3


def items_recover_stale(*, now: Any = None) -> tuple[int, int]:
    """Pending items no worker finished: re-enqueued, or quarantined after MAX_CLAIMS claims.

    A PROCESSING item older than STALE_CLAIM lost its worker (a crash or an out-of-memory kill:
    the redelivered task found the claim still fresh and skipped it); a RECEIVED one lost its
    task message. Each is sent again; one claimed MAX_CLAIMS times ends QUARANTINED with code
    ``worker_lost``, so that no item stays pending for ever. Returns (re-enqueued, quarantined).
    """
    from anonymizer.tasks import item_deidentify as task

    now = now or timezone.now()
    stale = IngestItem.objects.filter(status__in=PENDING_STATUSES, updated_at__lt=now - STALE_CLAIM)
    requeued = stopped = 0
    for item in stale.select_related("batch__project"):
        unchanged = IngestItem.objects.filter(pk=item.pk, status=item.status, updated_at=item.updated_at)
        with transaction.atomic():
            if item.attempts < MAX_CLAIMS:
                if unchanged.update(status=ItemStatus.RECEIVED, updated_at=now):
                    task.delay_on_commit(str(item.pk))
                    requeued += 1
                continue
            message = f"Processing was started {item.attempts} times and never finished."
            end = {"reason_code": "worker_lost", "reason": message, "processed_at": now, "updated_at": now}
            if unchanged.update(status=ItemStatus.QUARANTINED, **end):
                stopped += 1
                audit_record(
                    action="deidentify_failed",
                    project=item.batch.project,
                    object_type="item",
                    object_id=item.pk,
                    details={"status": ItemStatus.QUARANTINED, "code": "worker_lost", "attempts": item.attempts},
                )
    return requeued, stopped
