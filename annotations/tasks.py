"""Celery tasks of the annotations app: thin wrappers over its services."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from annotations import adjudication
from workbench.models import Series


@shared_task(name="annotations.series_consensus_update", acks_late=True, reject_on_worker_lost=True)
def series_consensus_update(series_id: str, user_id: int | None = None) -> str | None:
    """Idempotent (annotations.adjudication.series_consensus_update skips unchanged reads)."""
    series = Series.objects.select_related("study__project").filter(pk=series_id).first()
    if series is None:
        return None
    user = get_user_model().objects.filter(pk=user_id).first() if user_id is not None else None
    row = adjudication.series_consensus_update(series=series, user=user)
    return row.state if row else None
