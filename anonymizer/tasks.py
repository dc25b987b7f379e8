"""Celery tasks of the de-identification pipeline: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from anonymizer import recovery, services


# The queue comes from CELERY_TASK_ROUTES (Celery 5.7 deprecates the task's queue attribute).
@shared_task(name="anonymizer.item_deidentify", acks_late=True, reject_on_worker_lost=True)
def item_deidentify(item_id: str) -> str | None:
    item = services.item_deidentify(item_id=item_id)
    return item.status if item else None


# On Celery beat (CELERY_BEAT_SCHEDULE), routed to the "default" queue so that a deid backlog
# does not hold it back.
@shared_task(name="anonymizer.items_sweep")
def items_sweep() -> tuple[int, int]:
    """Send again the items a dead process left pending (see recovery.items_recover_stale)."""
    return recovery.items_recover_stale()


@shared_task(name="anonymizer.batch_expand", acks_late=True, reject_on_worker_lost=True)
def batch_expand(batch_id: str) -> int:
    """Expand a batch's sealed uploads into items (anonymizer.uploads; helper "upload")."""
    from anonymizer import uploads

    return uploads.batch_expand(batch_id=batch_id)


@shared_task(name="anonymizer.uploads_sweep", acks_late=True)
def uploads_sweep() -> tuple[int, int]:
    """Re-enqueue unexpanded uploads; delete expired and orphan ones (for Celery beat)."""
    from anonymizer import uploads

    return uploads.uploads_sweep()
