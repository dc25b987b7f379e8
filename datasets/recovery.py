"""Exports no worker finished: queued and sent again (on Celery beat, beside the ingest sweep).

Redis redelivers a killed worker's message after its visibility timeout (minutes), but the
copy finds the export RUNNING with a fresh claim and skips it, so nothing would build it.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction
from django.utils import timezone

from datasets.models import Export, ExportStatus
from datasets.services import STALE_RUN


def exports_recover_stale(*, now: Any = None) -> int:
    """RUNNING exports claimed longer than STALE_RUN ago lost their worker: set QUEUED again and
    sent (a compare-and-set on the claim's time, so two sweeps at once send each once).
    Returns how many were sent."""
    from datasets.tasks import export_build

    now = now or timezone.now()
    sent = 0
    for export in Export.objects.filter(status=ExportStatus.RUNNING, started_at__lt=now - STALE_RUN):
        with transaction.atomic():
            unchanged = Export.objects.filter(pk=export.pk, status=ExportStatus.RUNNING, started_at=export.started_at)
            if unchanged.update(status=ExportStatus.QUEUED, done=0):
                transaction.on_commit(functools.partial(export_build.delay, str(export.pk)))
                sent += 1
    return sent
