"""Celery tasks for exports: thin wrappers over datasets.services, on the ``export`` queue."""

from __future__ import annotations

from celery import shared_task

from datasets import recovery, services


# The queue comes from CELERY_TASK_ROUTES ("datasets.*" -> export).
@shared_task(name="datasets.export_build", acks_late=True, reject_on_worker_lost=True)
def export_build(export_id: str) -> str | None:
    export = services.export_build(export_id=export_id)
    return export.status if export else None


# On Celery beat (CELERY_BEAT_SCHEDULE), on the "default" queue: a long export does not hold it back.
@shared_task(name="datasets.exports_sweep")
def exports_sweep() -> int:
    """Send again the exports whose worker died (see recovery.exports_recover_stale)."""
    return recovery.exports_recover_stale()
