"""Exactly-once ingest: items left pending by a dead web server or worker are found and sent
again, and a task delivered twice records its item once (finding 5 of issue 10).

Each crash is simulated in-process here; tests/test_ingest_faults.py kills real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from anonymizer import claims, recovery, services
from anonymizer.deid.tests.factory import make_ct
from anonymizer.models import IngestBatch, IngestItem, ItemStatus
from anonymizer.tasks import item_deidentify as task
from tests.helpers import ingest
from workbench.demo import to_bytes
from workbench.models import AuditEvent, Instance


def _cts(count: int) -> dict[str, bytes]:
    return {f"{n}.dcm": to_bytes(make_ct()) for n in range(count)}


def _statuses(batch: IngestBatch) -> list[str]:
    return list(batch.items.order_by("index").values_list("status", flat=True))


def _after(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


@pytest.fixture
def crashed_upload(project_a: Any, django_capture_on_commit_callbacks: Any) -> IngestBatch:
    """Two items committed by a web process that died before its on-commit hand-over ran."""
    with django_capture_on_commit_callbacks(execute=False):
        return ingest(project_a, _cts(2))


# --- the web side: committed, never handed to the broker -------------------------------------------


@pytest.mark.django_db
def test_an_item_committed_without_its_task_is_sent_by_the_sweep(crashed_upload, run_tasks) -> None:
    assert _statuses(crashed_upload) == [ItemStatus.RECEIVED] * 2
    assert not crashed_upload.items.filter(enqueued_at__isnull=False).exists()
    # Within the grace period the request may still be handing it over: left alone.
    assert recovery.items_recover_stale() == (0, 0)
    with run_tasks():
        found = recovery.items_recover_stale(now=_after(settings.INGEST_ENQUEUE_GRACE_SECONDS + 1))
    assert found == (2, 0)
    assert _statuses(crashed_upload) == [ItemStatus.DONE] * 2
    assert Instance.objects.count() == 2
    assert not crashed_upload.items.filter(enqueued_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_handed_over_item_is_not_sent_twice(project_a, run_tasks, monkeypatch) -> None:
    monkeypatch.setattr(task, "delay", lambda item_id: None)  # the broker holds it; no worker yet
    with run_tasks():
        batch = ingest(project_a, _cts(1))
    assert batch.items.get().enqueued_at is not None
    assert recovery.items_recover_stale(now=_after(settings.INGEST_ENQUEUE_GRACE_SECONDS + 1)) == (0, 0)


@pytest.mark.django_db
def test_a_broker_outage_at_upload_leaves_the_item_for_the_sweep(project_a, run_tasks, monkeypatch) -> None:
    real = task.delay

    def down(item_id: str) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(task, "delay", down)
    with run_tasks():
        batch = ingest(project_a, _cts(1))  # no exception reaches the upload
    item = batch.items.get()
    assert (item.status, item.enqueued_at) == (ItemStatus.RECEIVED, None)
    monkeypatch.setattr(task, "delay", real)
    with run_tasks():
        assert recovery.items_recover_stale(now=_after(settings.INGEST_ENQUEUE_GRACE_SECONDS + 1)) == (1, 0)
    assert _statuses(batch) == [ItemStatus.DONE]


@pytest.mark.django_db
def test_a_lost_message_is_sent_again_only_when_the_queue_is_drained(project_a, run_tasks, monkeypatch) -> None:
    monkeypatch.setattr(task, "delay", lambda item_id: None)  # handed over, then lost by the broker
    with run_tasks():
        batch = ingest(project_a, _cts(1))
    later = _after(settings.INGEST_LOST_MESSAGE_SECONDS + 1)
    monkeypatch.setattr(recovery, "_waiting", lambda queue="deid": 500)  # a backlog: it may be in there
    assert recovery.items_recover_stale(now=later) == (0, 0)
    monkeypatch.undo()  # the broker is back
    monkeypatch.setattr(recovery, "_waiting", lambda queue="deid": 0)  # and nothing waits in it
    with run_tasks():
        assert recovery.items_recover_stale(now=later) == (1, 0)
    assert _statuses(batch) == [ItemStatus.DONE]


# --- the worker side: claims, leases, fences -------------------------------------------------------


@pytest.mark.django_db
def test_a_dead_workers_claim_is_taken_over_after_the_lease(crashed_upload, run_tasks) -> None:
    item = crashed_upload.items.order_by("index").first()
    assert claims.item_claim(item.pk) == 1  # a worker claims it, then is SIGKILLed
    assert services.item_deidentify(item_id=str(item.pk)) is None  # its redelivery: the claim looks alive
    stale = timezone.now() - claims.claim_lease() - timedelta(seconds=1)
    IngestItem.objects.filter(pk=item.pk).update(updated_at=stale)  # no heartbeat since
    assert services.item_deidentify(item_id=str(item.pk)).status == ItemStatus.DONE
    item.refresh_from_db()
    assert item.attempts == 2
    assert claims.claim_lease() <= timedelta(minutes=2)


@pytest.mark.django_db
def test_a_late_redelivery_does_not_take_over_an_item_past_its_claims(crashed_upload) -> None:
    """A file that killed its worker MAX_CLAIMS times is left to the sweep (quarantined as
    worker_lost), not run again by a redelivered copy of its task."""
    item = crashed_upload.items.order_by("index").first()
    stale = timezone.now() - claims.claim_lease() - timedelta(seconds=1)
    IngestItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.PROCESSING, attempts=claims.MAX_CLAIMS, updated_at=stale
    )
    assert claims.item_claim(item.pk) is None


@pytest.mark.django_db
def test_the_sweep_resends_an_item_whose_worker_died_within_minutes(crashed_upload, run_tasks) -> None:
    crashed_upload.items.update(enqueued_at=timezone.now())  # both handed over
    item = crashed_upload.items.order_by("index").first()
    assert claims.item_claim(item.pk) == 1  # its worker is SIGKILLed; the other item waits in the queue
    with run_tasks():
        found = recovery.items_recover_stale(now=_after(claims.claim_lease().total_seconds() + 1))
    assert found == (1, 0)
    assert _statuses(crashed_upload) == [ItemStatus.DONE, ItemStatus.RECEIVED]


@pytest.mark.django_db
def test_a_worker_whose_claim_was_taken_over_records_nothing(crashed_upload, monkeypatch) -> None:
    item = crashed_upload.items.order_by("index").first()
    real = services._item_outcome

    def slow_then_taken_over(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        # Meanwhile this worker's heartbeat stopped and another claimed the item.
        IngestItem.objects.filter(pk=item.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
        return result

    monkeypatch.setattr(services, "_item_outcome", slow_then_taken_over)
    assert services.item_deidentify(item_id=str(item.pk)) is None
    item.refresh_from_db()
    assert (item.status, item.instance_id) == (ItemStatus.PROCESSING, None)
    assert not Instance.objects.exists()
    assert not AuditEvent.objects.filter(action__in=["deidentified", "deidentify_failed"]).exists()


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_task_longer_than_its_lease_claimed(project_a, settings, monkeypatch) -> None:
    settings.INGEST_CLAIM_LEASE_SECONDS = 1
    batch = services.batch_create(project=project_a, source="api")
    monkeypatch.setattr(task, "delay", lambda item_id: None)
    from anonymizer.intake import Incoming

    item = services.batch_add(batch=batch, incoming=[Incoming("a.dcm", to_bytes(make_ct()))])[0]
    real = services._item_outcome
    seen: list[int | None] = []

    def long_task(*args: Any, **kwargs: Any) -> Any:
        time.sleep(2.5)  # longer than the lease (and, in production, than the visibility timeout)
        seen.append(claims.item_claim(item.pk))  # a redelivered copy of the task tries to claim it
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_item_outcome", long_task)
    done = services.item_deidentify(item_id=str(item.pk), detector=None)
    assert seen == [None]
    assert done is not None and done.status == ItemStatus.DONE
    assert IngestItem.objects.get(pk=item.pk).attempts == 1
    assert Instance.objects.count() == 1


# --- configuration: a visibility timeout of minutes, the sweep on beat ------------------------------


def _settings_of(env: dict[str, str], expression: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "workbench.settings", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout.strip()


def test_redis_hands_a_dead_workers_message_out_again_within_minutes(tmp_path: Path) -> None:
    env = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/11", "WORKBENCH_VAR_DIR": str(tmp_path)}
    options = _settings_of(env, "s.CELERY_BROKER_TRANSPORT_OPTIONS")
    value = eval(options)  # a dict literal printed by the settings module
    assert value["visibility_timeout"] <= 600
    assert value["unacked_restore_interval"] * value["unacked_restore_throttle"] <= 60


def test_beat_sends_the_sweep_on_the_embedded_filesystem_broker(tmp_path: Path) -> None:
    """`make run` starts celery beat beside the worker: on the filesystem broker it publishes
    the sweep to the "default" queue, with its schedule file under the var folder."""
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "filesystem://",
        "WORKBENCH_VAR_DIR": str(tmp_path),
        "WORKBENCH_SWEEP_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
    }
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workbench", "beat", "--loglevel", "WARNING"],
        env=env,
        cwd=settings.BASE_DIR,
    )
    queue = tmp_path / "broker" / "queue"
    try:
        deadline = time.monotonic() + 45
        while not any(queue.glob("*")) and time.monotonic() < deadline:
            assert beat.poll() is None, "celery beat exited"
            time.sleep(0.3)
    finally:
        beat.terminate()
        beat.wait(timeout=20)
    sent = [path.read_text() for path in queue.glob("*")]
    assert sent, "beat published nothing in 45 s"
    assert any("anonymizer.items_sweep" in body and '"routing_key": "default"' in body for body in sent), sent[0]
    assert list(tmp_path.glob("celerybeat-schedule*"))
