"""Celery tasks of the de-identification pipeline: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from anonymizer import services


@shared_task(name="anonymizer.item_deidentify", queue="deid", acks_late=True, reject_on_worker_lost=True)
def item_deidentify(item_id: str) -> str | None:
    item = services.item_deidentify(item_id=item_id)
    return item.status if item else None
