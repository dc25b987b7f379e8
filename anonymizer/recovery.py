"""Items no worker finished: sent again, or quarantined after several tries.

Runs on Celery beat every ``INGEST_SWEEP_SECONDS`` (task ``anonymizer.items_sweep``) and from
``manage.py purge_quarantine``. Three ways an item is left pending, each found here:

- committed, but the process died before handing its task to the broker (RECEIVED without
  ``enqueued_at``, older than ``INGEST_ENQUEUE_GRACE_SECONDS``: see ``anonymizer.outbox``);
- claimed by a worker that died (PROCESSING, heartbeat older than the claim lease: see
  ``anonymizer.claims``); its redelivered message, if any, found the claim still fresh;
- handed over, but its message was lost (RECEIVED, handed over more than
  ``INGEST_LOST_MESSAGE_SECONDS`` ago while nothing waits in the ``deid`` queue, so that a
  backlog is not sent twice): Redis loses a message whose worker is killed between taking it
  from the queue and recording it as unacknowledged.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from amqp.exceptions import ChannelError
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from anonymizer import outbox
from anonymizer.claims import MAX_CLAIMS, claim_lease
from anonymizer.models import IngestItem, ItemStatus
from workbench.audit import audit_record

logger = logging.getLogger(__name__)


def _waiting(queue: str = "deid") -> int | None:
    """Messages waiting in the broker's queue (a queue never declared has none); None if unknown."""
    from workbench.celery import app

    try:
        with app.connection_for_write() as conn:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:
        return 0
    except Exception as exc:  # the broker unreachable: nothing can be sent now anyway
        logger.warning("sweep: the %s queue could not be measured (%s)", queue, type(exc).__name__)
        return None


def items_recover_stale(*, now: Any = None) -> tuple[int, int]:
    """Pending items no worker finished: re-enqueued, or quarantined after MAX_CLAIMS claims.

    Each found item is sent again (its task published after a compare-and-set on the row, so
    two sweeps at once send it once); a PROCESSING one claimed MAX_CLAIMS times ends
    QUARANTINED with code ``worker_lost`` (a file that kills its worker each time), so that no
    item stays pending for ever. Returns (re-enqueued, quarantined).
    """
    now = now or timezone.now()
    grace = timedelta(seconds=settings.INGEST_ENQUEUE_GRACE_SECONDS)
    found = Q(status=ItemStatus.RECEIVED, enqueued_at__isnull=True, updated_at__lt=now - grace) | Q(
        status=ItemStatus.PROCESSING, updated_at__lt=now - claim_lease()
    )
    lost = Q(status=ItemStatus.RECEIVED, enqueued_at__lt=now - timedelta(seconds=settings.INGEST_LOST_MESSAGE_SECONDS))
    if IngestItem.objects.filter(lost).exists() and _waiting() == 0:
        found |= lost
    stale = IngestItem.objects.filter(found)
    requeued = stopped = 0
    for item in stale.select_related("batch__project"):
        unchanged = IngestItem.objects.filter(pk=item.pk, status=item.status, updated_at=item.updated_at)
        with transaction.atomic():
            if item.status == ItemStatus.RECEIVED or item.attempts < MAX_CLAIMS:
                if unchanged.update(status=ItemStatus.RECEIVED, enqueued_at=None, updated_at=now):
                    outbox.item_enqueue_on_commit(str(item.pk))
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
