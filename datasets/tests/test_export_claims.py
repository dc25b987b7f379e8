"""Exactly-once exports under crashes: a build's claim is kept alive by a heartbeat, a lapsed
one is sent again by the sweep within the lease, a stalled worker that finishes after the
takeover writes nothing, and an export whose worker is lost each time ends FAILED (finding 5
of issue 10).
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.utils import timezone

from datasets import claims, recovery, services
from datasets.models import DatasetVersion, Export, ExportStatus
from datasets.tasks import export_build as task
from workbench.models import AuditEvent


def _version(labeled: dict[str, Any], cast: dict[str, Any]) -> DatasetVersion:
    dataset = services.dataset_create(project=labeled["project"], user=cast["dave"], name="lesions", selection={})
    return services.version_freeze(dataset=dataset, user=cast["dave"])[0]


def _queued(version: DatasetVersion, cast: dict[str, Any], monkeypatch: Any) -> Export:
    """An export asked for, its task not run (the test plays the workers)."""
    monkeypatch.setattr(task, "delay", lambda export_id: None)
    return services.export_request(version=version, user=cast["dave"], export_format="nifti")[0]


def _after_lease(seconds: float = 1) -> Any:
    return timezone.now() + claims.claim_lease() + timedelta(seconds=seconds)


def _archives(version: DatasetVersion) -> list[str]:
    folder = f"datasets/exports/{version.pk}"
    return default_storage.listdir(folder)[1] if default_storage.exists(folder) else []


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_long_builds_claim_fresh(labeled, cast, settings, monkeypatch) -> None:
    settings.EXPORT_CLAIM_LEASE_SECONDS = 1
    export = _queued(_version(labeled, cast), cast, monkeypatch)
    real = services.build_archive
    seen: list[Any] = []

    def long_build(*args: Any, **kwargs: Any) -> Any:
        time.sleep(2.5)  # longer than the lease: only the heartbeat keeps the claim
        seen.append(claims.export_claim(export.pk))  # a redelivered copy of the task
        seen.append(recovery.exports_recover_stale())  # the sweep on beat
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "build_archive", long_build)
    done = services.export_build(export_id=str(export.pk))
    assert seen == [None, 0]
    assert done is not None and done.status == ExportStatus.DONE
    assert (done.claim, done.lost_claims) == (1, 0)


@pytest.mark.django_db
def test_a_lapsed_claim_is_sent_again_by_the_sweep_within_the_lease(labeled, cast, run_tasks, monkeypatch) -> None:
    export = _queued(_version(labeled, cast), cast, monkeypatch)
    assert claims.export_claim(export.pk) == 1  # a worker claims it, then is SIGKILLed
    assert services.export_build(export_id=str(export.pk)) is None  # its redelivery: the claim looks alive
    assert recovery.exports_recover_stale(now=_after_lease(-5)) == 0  # not yet lapsed
    monkeypatch.undo()  # the real task again
    with run_tasks():
        assert recovery.exports_recover_stale(now=_after_lease()) == 1
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE and export.archive_path
    assert (export.claim, export.lost_claims) == (2, 1)
    assert recovery.exports_recover_stale(now=_after_lease()) == 0
    # A killed worker's export is built again within about two minutes, not hours.
    assert claims.claim_lease() <= timedelta(minutes=2)
    assert settings.CELERY_BEAT_SCHEDULE["exports-sweep"]["schedule"] <= 60


@pytest.mark.django_db
def test_a_stalled_worker_finishing_after_the_takeover_writes_nothing(labeled, cast, monkeypatch) -> None:
    version = _version(labeled, cast)
    export = _queued(version, cast, monkeypatch)
    real = services.build_archive
    calls: list[int] = []

    def stall_then_taken_over(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        sha256 = real(*args, **kwargs)
        if len(calls) == 1:
            # This worker stalls past the lease; the sweep sends the export again and a new
            # worker builds and records it before this one wakes up.
            long_ago = timezone.now() - claims.claim_lease() - timedelta(hours=3)
            Export.objects.filter(pk=export.pk).update(heartbeat_at=long_ago, started_at=long_ago)
            assert recovery.exports_recover_stale() == 1
            assert services.export_build(export_id=str(export.pk)).status == ExportStatus.DONE
        return sha256

    monkeypatch.setattr(services, "build_archive", stall_then_taken_over)
    assert services.export_build(export_id=str(export.pk)) is None
    export.refresh_from_db()
    assert (export.status, export.claim) == (ExportStatus.DONE, 2)
    assert _archives(version) == [export.archive_path.rsplit("/", 1)[1]]  # one archive, the new worker's
    with default_storage.open(export.archive_path, "rb") as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == export.sha256  # whole, not overwritten
    assert AuditEvent.objects.filter(action="export_built", object_id=str(export.pk)).count() == 1


@pytest.mark.django_db
def test_a_worker_losing_its_claim_while_storing_deletes_its_archive(labeled, cast, monkeypatch) -> None:
    version = _version(labeled, cast)
    export = _queued(version, cast, monkeypatch)
    real = Storage.save

    def save_then_taken_over(storage: Storage, name: str, content: Any, *args: Any, **kwargs: Any) -> str:
        saved = real(storage, name, content, *args, **kwargs)
        # Meanwhile the claim lapsed and the sweep took the export back.
        Export.objects.filter(pk=export.pk).update(status=ExportStatus.QUEUED, lost_claims=1, done=0)
        return saved

    monkeypatch.setattr(Storage, "save", save_then_taken_over)
    assert services.export_build(export_id=str(export.pk)) is None
    export.refresh_from_db()
    assert (export.status, export.archive_path, export.done) == (ExportStatus.QUEUED, "", 0)
    assert _archives(version) == []
    assert not AuditEvent.objects.filter(action__in=["export_built", "export_failed"], object_id=str(export.pk))


@pytest.mark.django_db
def test_an_export_whose_worker_is_lost_each_time_ends_failed(
    labeled, cast, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    version = _version(labeled, cast)
    export = _queued(version, cast, monkeypatch)
    sent: list[str] = []
    monkeypatch.setattr(task, "delay", sent.append)  # the sweep's sends, not run
    for lost in range(1, claims.MAX_LOST_CLAIMS):
        assert claims.export_claim(export.pk) == lost  # claimed, then its worker is killed
        with django_capture_on_commit_callbacks(execute=True):
            assert recovery.exports_recover_stale(now=_after_lease()) == 1
        assert sent == [str(export.pk)] * lost
        assert Export.objects.get(pk=export.pk).status == ExportStatus.QUEUED
    assert claims.export_claim(export.pk) == claims.MAX_LOST_CLAIMS  # the last try
    # A redelivered message does not take the last lapsed claim over: the sweep ends it.
    Export.objects.filter(pk=export.pk).update(heartbeat_at=timezone.now() - claims.claim_lease() * 2)
    assert claims.export_claim(export.pk) is None
    with django_capture_on_commit_callbacks(execute=True):
        assert recovery.exports_recover_stale(now=_after_lease()) == 0
    assert len(sent) == claims.MAX_LOST_CLAIMS - 1  # not sent again
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and export.finished_at
    assert f"started {claims.MAX_LOST_CLAIMS} times" in export.error and "Ask for it again" in export.error
    failed = AuditEvent.objects.get(action="export_failed", object_id=str(export.pk))
    assert failed.details["code"] == "worker_lost"
    assert recovery.exports_recover_stale(now=_after_lease()) == 0
    # Asked for again, it gets a fresh set of tries; its claim numbers keep counting (the fence).
    again, queued = services.export_request(version=version, user=cast["dave"], export_format="nifti")
    assert queued and (again.status, again.lost_claims) == (ExportStatus.QUEUED, 0)
    assert claims.export_claim(export.pk) == claims.MAX_LOST_CLAIMS + 1


@pytest.mark.django_db
def test_a_broker_outage_at_request_leaves_an_export_asking_again_sends(
    labeled, cast, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The request does not fail after its commit, and the QUEUED export is not stuck: asking
    for it again, once the broker is back, sends it."""
    from kombu.exceptions import OperationalError

    version = _version(labeled, cast)

    def down(export_id: str) -> None:
        raise OperationalError("connection refused")

    sent: list[str] = []
    monkeypatch.setattr(task, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = services.export_request(version=version, user=cast["dave"], export_format="nifti")
    assert Export.objects.get(pk=export.pk).status == ExportStatus.QUEUED
    monkeypatch.setattr(task, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        again, _ = services.export_request(version=version, user=cast["dave"], export_format="nifti")
    assert again.pk == export.pk and sent == [str(export.pk)]
