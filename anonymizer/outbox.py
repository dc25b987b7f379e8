"""Handing items to the broker: the item row is its own outbox.

An item is committed first and its task published after the commit; the row's
``enqueued_at`` records that the hand-over happened. A process that dies between the two
(the web server killed mid-upload, the broker down for a moment) leaves a RECEIVED item
without the mark, which ``recovery.items_recover_stale`` (on Celery beat) publishes.
A task published twice is harmless: the worker's claim is a compare-and-set.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from anonymizer.models import IngestItem

logger = logging.getLogger(__name__)


def item_enqueue(item_id: str) -> bool:
    """Publish the item's de-identification task, then mark the item as handed over.

    Guarantees: a broker that cannot be reached leaves the item unmarked (logged, not raised),
    so that the sweep sends it later; True once the broker took the message.
    """
    from anonymizer.tasks import item_deidentify

    try:
        item_deidentify.delay(item_id)
    except (OperationalError, OSError) as exc:
        logger.error("item %s: the broker did not take its task (%s); the sweep sends it later", item_id, exc)
        return False
    # .update() leaves updated_at (the claim's clock) alone.
    IngestItem.objects.filter(pk=item_id, enqueued_at__isnull=True).update(enqueued_at=timezone.now())
    return True


def item_enqueue_on_commit(item_id: str) -> None:
    """Publish the item's task once the caller's transaction commits (never before: no worker
    may see an item that is not yet written)."""
    transaction.on_commit(lambda: item_enqueue(item_id))
