"""manage.py purge_quarantine deletes raw files past the retention period, and only those."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.utils import timezone

from anonymizer.models import IngestItem
from tests.helpers import CT_SMALL, ingest


@pytest.mark.django_db
def test_purge_command_respects_retention(project_a, run_tasks, settings) -> None:
    settings.QUARANTINE_RETENTION_DAYS = 7
    with run_tasks():
        ingest(project_a, {"a.dcm": CT_SMALL.read_bytes()})
    item = IngestItem.objects.get()
    out = io.StringIO()
    call_command("purge_quarantine", stdout=out)
    assert storages["quarantine"].exists(item.raw_path)
    IngestItem.objects.filter(pk=item.pk).update(processed_at=timezone.now() - timedelta(days=8))
    call_command("purge_quarantine", stdout=out)
    assert not storages["quarantine"].exists(item.raw_path)
    assert "1" in out.getvalue()
