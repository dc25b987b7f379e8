"""Celery tasks for exports: thin wrappers over datasets.services, on the ``export`` queue."""

from __future__ import annotations

from celery import shared_task

from datasets import services


# The queue comes from CELERY_TASK_ROUTES ("datasets.*" -> export).
@shared_task(name="datasets.export_build", acks_late=True, reject_on_worker_lost=True)
def export_build(export_id: str) -> str | None:
    export = services.export_build(export_id=export_id)
    return export.status if export else None
