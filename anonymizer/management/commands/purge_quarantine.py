"""``manage.py purge_quarantine``: delete raw files of finished items past the retention period,
and send again (or quarantine, after several tries) items no worker finished. Run it from cron."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from anonymizer import recovery, services, uploads


class Command(BaseCommand):
    help = (
        "Delete the encrypted raw files of de-identified items older than the retention period; "
        "re-queue or quarantine items no worker finished."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        count = services.quarantine_purge()
        days = settings.QUARANTINE_RETENTION_DAYS
        self.stdout.write(f"Purged {count} raw file(s) older than {days} day(s).")
        requeued, stopped = recovery.items_recover_stale()
        if requeued or stopped:
            self.stdout.write(f"Re-queued {requeued} unfinished item(s); quarantined {stopped} that never finished.")
        expanding, deleted = uploads.uploads_sweep()
        if expanding or deleted:
            self.stdout.write(
                f"Re-queued {expanding} batch(es) to expand; deleted {deleted} expired or orphan upload(s)."
            )
