"""Exports no worker finished: sent again, or FAILED after several lost claims.

Runs on Celery beat every ``EXPORT_SWEEP_SECONDS`` (task ``datasets.exports_sweep``, beside the
ingest sweep). Redis redelivers a killed worker's message after its visibility timeout, but
nothing guarantees the copy comes (a message lost with its worker, or one that came while the
claim was still fresh and skipped); the sweep finds every RUNNING export whose heartbeat
stopped for longer than the claim lease (see ``datasets.claims``).
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from datasets.claims import MAX_LOST_CLAIMS, lapsed
from datasets.models import Export, ExportStatus
from workbench.audit import audit_record


def exports_recover_stale(*, now: Any = None) -> int:
    """RUNNING exports whose claim lapsed lost their worker: set QUEUED again and sent, or, at
    the MAX_LOST_CLAIMS-th lost claim, FAILED with the reason in words (audited).

    A compare-and-set on the claim and its last heartbeat, so two sweeps at once handle each
    export once, and one whose worker beats again in between is left alone. The old worker,
    should it wake, finds its claim gone and records nothing. Returns how many were sent.
    """
    from datasets.services import export_send

    now = now or timezone.now()
    sent = 0
    for export in Export.objects.filter(lapsed(now)).select_related("version__dataset__project"):
        unchanged = Export.objects.filter(
            pk=export.pk, status=ExportStatus.RUNNING, claim=export.claim, heartbeat_at=export.heartbeat_at
        )
        with transaction.atomic():
            if export.lost_claims + 1 < MAX_LOST_CLAIMS:
                if unchanged.update(status=ExportStatus.QUEUED, lost_claims=F("lost_claims") + 1, done=0):
                    transaction.on_commit(functools.partial(export_send, str(export.pk)))
                    sent += 1
                continue
            lost = export.lost_claims + 1
            message = (
                f"The export was started {lost} times and its worker was lost each time (killed, or out "
                "of memory) before it finished. Ask for it again; if it fails the same way, ask for a "
                "smaller selection or for a worker with more memory."
            )
            if unchanged.update(status=ExportStatus.FAILED, lost_claims=lost, error=message, finished_at=now):
                audit_record(
                    action="export_failed",
                    project=export.version.dataset.project,
                    object_type="export",
                    object_id=export.pk,
                    details={"error": message, "code": "worker_lost", "lost_claims": lost},
                )
    return sent
