"""Fault test on PostgreSQL + Redis: real Celery worker and beat processes, killed mid-batch.

Every file of a batch must end in the catalog exactly once, within a bounded time, whether
the worker is SIGKILLed mid-batch (its process group: the prefork children die with it) or
the web process dies between an item's commit and its task's hand-over; and no plaintext
is left under the var or temp folders. Runs in CI's PostgreSQL pass (DATABASE_URL on
PostgreSQL, CELERY_BROKER_URL on Redis); the leases and timeouts are shortened to seconds
through the environment so that the test takes well under two minutes.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from anonymizer.deid.tests.factory import make_ct
from anonymizer.models import DeidReport, IngestBatch, IngestItem, ItemStatus, UploadState
from anonymizer.tasks import batch_expand
from tests.helpers import zip_bytes
from workbench.celery import app as celery_app
from workbench.demo import to_bytes
from workbench.models import AuditEvent, Instance

BROKER = os.environ.get("CELERY_BROKER_URL", "")
pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(not BROKER.startswith("redis://"), reason="needs CELERY_BROKER_URL on Redis (CI sets it)"),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs DATABASE_URL on PostgreSQL, shared with the worker processes (CI sets it)",
    ),
]

FILES = 16
WEB_PORT = 8000 + os.getpid() % 1000 + 700  # a port of this run's own
END_STATES = {ItemStatus.DONE, ItemStatus.DUPLICATE, ItemStatus.QUARANTINED, ItemStatus.REJECTED}
FAST = {  # seconds, so that the whole test stays under two minutes
    "CELERY_VISIBILITY_TIMEOUT": "8",
    "WORKBENCH_CLAIM_LEASE_SECONDS": "4",
    "WORKBENCH_ENQUEUE_GRACE_SECONDS": "2",
    "WORKBENCH_SWEEP_SECONDS": "2",
    "WORKBENCH_LOST_MESSAGE_SECONDS": "15",
}


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _vault_key() -> str:
    from workbench import crypto

    crypto.encrypt(b"")  # makes the embedded key file when this test runs first
    return settings.VAULT_KEY or Path(settings.VAULT_KEY_FILE).read_text().strip()


class Cluster:
    """A Celery worker (prefork, two children) and beat, sharing the test database and storage."""

    def __init__(self, var: Path) -> None:
        self.var, self.tmp = var, var / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **FAST,
            "DATABASE_URL": _database_url(),
            "WORKBENCH_VAR_DIR": str(var),
            "WORKBENCH_VAULT_KEY": _vault_key(),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "TMPDIR": str(self.tmp),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        celery = [sys.executable, "-m", "celery", "-A", "workbench"]
        command = {
            "worker": [*celery, "worker", "-Q", "deid,export,default", "--pool", "prefork", "--concurrency", "2"],
            "beat": [*celery, "beat", "--schedule", str(self.var / "beat-schedule")],
            "web": [sys.executable, "-m", "gunicorn", "workbench.wsgi", "--bind", f"127.0.0.1:{WEB_PORT}"],
        }[name]
        self.procs[name] = subprocess.Popen(
            [*command, "--log-level" if name == "web" else "--loglevel", "warning"],
            env=self.env,
            cwd=settings.BASE_DIR,
            start_new_session=True,  # its own process group: killed as a whole, children included
        )

    def kill(self, name: str) -> None:
        """A pulled plug: SIGKILL to the whole process group, nothing runs its shutdown."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)

    def kill_children(self, name: str) -> list[int]:
        """The out-of-memory killer: SIGKILL to the pool's children, the main process survives."""
        parent, children = self.procs[name].pid, []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "(comm)": state, ppid
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if ppid == parent:
                children.append(int(stat.parent.name))
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        return children

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"the {name} process died on its own"


@pytest.fixture
def cluster(tmp_path: Path, settings: Any) -> Iterator[Cluster]:
    import redis

    redis.Redis.from_url(BROKER).flushdb()  # this test's own broker database: no leftovers
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")  # the web side's spool, scanned below
    celery_app.conf.task_always_eager = False
    group = Cluster(tmp_path)
    try:
        yield group
    finally:
        group.stop()
        celery_app.conf.task_always_eager = True


def _patients(count: int, tag: str) -> dict[str, bytes]:
    files = {}
    for n in range(count):
        ds = make_ct(patient_name=f"FAULT^{tag}{n:03d}", patient_id=f"FLT{tag}{n:04d}")
        files[f"{n:03d}.dcm"] = to_bytes(ds)
    return files


def _upload(client: Any, project: Any, files: dict[str, bytes]) -> IngestBatch:
    archive = io.BytesIO(zip_bytes(files))
    archive.name = "study.zip"
    response = client.post(reverse("api-batches", args=[project.pk]), {"file": [archive]}, format="multipart")
    assert response.status_code == 202, response.content
    return IngestBatch.objects.get(pk=response.json()["id"])


def _wait(condition: Callable[[], bool], *, within: float, cluster: Cluster, what: Callable[[], Any]) -> None:
    deadline = time.monotonic() + within
    while not condition():
        cluster.alive()
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what()}"
        time.sleep(0.2)


def _broker_state() -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(BROKER)
    return {
        "keys": sorted(k.decode() for k in client.keys("*")),
        "unacked": client.hlen("unacked"),
        "index": client.zrange("unacked_index", 0, -1, withscores=True),
        "now": time.time(),
        "deid": client.llen("deid"),
    }


def _counts(batch: IngestBatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in batch.items.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def _finished(batch: IngestBatch) -> bool:
    """Every file of the upload has its item (the worker expands the archive) in an end state."""
    expanded = not batch.uploads.exclude(state=UploadState.EXPANDED).exists()
    return expanded and batch.items.count() >= FILES and not batch.items.exclude(status__in=END_STATES).exists()


def _assert_exactly_once(batch: IngestBatch) -> None:
    items = list(batch.items.all())
    assert len(items) == FILES
    assert {item.status for item in items} == {ItemStatus.DONE}, _counts(batch)
    instances = Instance.objects.filter(series__study__project=batch.project, pk__in=[i.instance_id for i in items])
    assert instances.count() == FILES  # one instance per file, none shared
    sops = list(Instance.objects.filter(series__study__project=batch.project).values_list("sop_uid", flat=True))
    assert len(sops) == len(set(sops))  # and no second copy of any
    assert DeidReport.objects.filter(instance__in=instances).count() == FILES
    audited = AuditEvent.objects.filter(action="deidentified", details__item__in=[str(i.pk) for i in items])
    assert audited.count() == FILES  # each outcome recorded once


def _assert_no_plaintext(root: Path, identities: list[bytes]) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for identity in identities:
                assert identity not in data, f"{identity!r} in the clear in {path}"


def _identities(files: dict[str, bytes], tag: str) -> list[bytes]:
    return [f"FAULT^{tag}{n:03d}".encode() for n in range(len(files))] + [f"FLT{tag}".encode()]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(cluster, api_as, project_a) -> None:
    cluster.start("worker")
    cluster.start("beat")
    files = _patients(FILES, "W")
    started = time.monotonic()
    batch = _upload(api_as("alice"), project_a, files)

    def some_done() -> bool:
        return batch.items.filter(status=ItemStatus.DONE).count() >= 3

    _wait(some_done, within=60, cluster=cluster, what=lambda: _counts(batch))
    cluster.kill("worker")  # mid-batch: items in flight, some prefetched, the rest queued
    in_flight = batch.items.filter(status=ItemStatus.PROCESSING).count()
    assert batch.items.exclude(status__in=END_STATES).exists(), "the batch finished before the kill"
    cluster.start("worker")

    def finished() -> bool:
        return _finished(batch)

    _wait(finished, within=90, cluster=cluster, what=lambda: (_counts(batch), _broker_state()))
    elapsed = time.monotonic() - started
    _assert_exactly_once(batch)
    assert IngestItem.objects.filter(batch=batch, attempts__gt=1).count() >= in_flight  # taken over, not lost
    _assert_no_plaintext(cluster.var, _identities(files, "W"))
    print(f"worker killed with {in_flight} item(s) in flight; batch of {FILES} done in {elapsed:.1f} s")


@pytest.mark.django_db(transaction=True)
def test_a_pool_child_killed_mid_task_is_taken_over_after_the_lease(cluster, api_as, project_a) -> None:
    """With reject_on_worker_lost the worker requeues the task at once; the copy finds the claim
    still fresh and skips; the sweep sends the item again once the claim's lease ran out."""
    cluster.start("worker")
    cluster.start("beat")
    files = _patients(FILES, "C")
    batch = _upload(api_as("alice"), project_a, files)

    def in_flight() -> bool:
        return (
            batch.items.filter(status=ItemStatus.DONE).count() >= 2
            and batch.items.filter(status=ItemStatus.PROCESSING).exists()
        )

    _wait(in_flight, within=60, cluster=cluster, what=lambda: _counts(batch))
    assert cluster.kill_children("worker"), "the prefork worker has no children"

    def finished() -> bool:
        return _finished(batch)

    _wait(finished, within=60, cluster=cluster, what=lambda: _counts(batch))
    _assert_exactly_once(batch)
    _assert_no_plaintext(cluster.var, _identities(files, "C"))


@pytest.mark.django_db(transaction=True)
def test_items_a_dead_web_process_committed_without_their_task_are_sent(
    cluster, api_as, project_a, monkeypatch
) -> None:
    cluster.start("worker")
    cluster.start("beat")
    files = _patients(FILES, "H")
    # The web process dies after the upload's commit, before its on-commit hand-over to Redis:
    # the sealed upload is stored, and no worker was told to expand it.
    monkeypatch.setattr(batch_expand, "delay", lambda *args, **kwargs: None)
    started = time.monotonic()
    batch = _upload(api_as("alice"), project_a, files)
    assert batch.uploads.get().state == UploadState.STORED and not batch.items.exists()

    def finished() -> bool:
        return _finished(batch)

    _wait(finished, within=60, cluster=cluster, what=lambda: _counts(batch))
    elapsed = time.monotonic() - started
    _assert_exactly_once(batch)
    assert not batch.items.filter(enqueued_at__isnull=True).exists()  # and each item was handed over
    _assert_no_plaintext(cluster.var, _identities(files, "H"))
    print(f"an upload never handed over by the web side, sent by the sweep; {FILES} files done in {elapsed:.1f} s")


# --- the web server killed mid-upload, and the upload retried ---------------------------------------


def _small_studies(count: int, tag: str) -> dict[str, bytes]:
    """Many small files (a 64x64 MR each): a zip large enough to send slowly and cut halfway."""
    import pydicom
    from pydicom.uid import generate_uid

    from tests.helpers import MR_SMALL

    files = {}
    for n in range(count):
        ds = pydicom.dcmread(MR_SMALL)
        ds.PatientName, ds.PatientID = f"FAULT^{tag}{n:03d}", f"FLT{tag}{n:04d}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer)
        files[f"{n:03d}.dcm"] = buffer.getvalue()
    return files


def _post_zip(token: str, project: Any, archive: bytes, *, half_sent: Any = None) -> int:
    """POST the zip as a multipart upload; with ``half_sent``, slowly, setting it halfway."""
    import http.client

    boundary = "----workbench-fault-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="study.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + archive
        + f"\r\n--{boundary}--\r\n".encode()
    )
    web = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=60)
    web.putrequest("POST", reverse("api-batches", args=[project.pk]))
    web.putheader("Authorization", f"Token {token}")
    web.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    web.putheader("Content-Length", str(len(body)))
    web.endheaders()
    step = 64 * 1024 if half_sent is not None else len(body)
    for offset in range(0, len(body), step):
        web.send(body[offset : offset + step])
        if half_sent is not None:
            if offset >= len(body) // 2:
                half_sent.set()
            time.sleep(0.05)
    return web.getresponse().status


def _web_up(cluster: Cluster) -> None:
    import socket

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", WEB_PORT)) == 0

    _wait(listening, within=30, cluster=cluster, what=lambda: "gunicorn is not listening")


@pytest.mark.django_db(transaction=True)
def test_a_web_server_killed_mid_upload_then_retried_stores_every_file_once(cluster, api_as, project_a) -> None:
    import threading

    from rest_framework.authtoken.models import Token

    api_as("alice")
    token = Token.objects.get(user__username="alice").key
    count = 200
    files = _small_studies(count, "G")
    archive = zip_bytes(files)
    for name in ("worker", "beat", "web"):
        cluster.start(name)
    _web_up(cluster)
    items = IngestItem.objects.filter(batch__project=project_a)
    half_sent = threading.Event()
    first = threading.Thread(
        target=lambda: _try(lambda: _post_zip(token, project_a, archive, half_sent=half_sent)), daemon=True
    )
    first.start()
    _wait(half_sent.is_set, within=60, cluster=cluster, what=lambda: "the upload did not get halfway")
    cluster.kill("web")  # mid-request: half the body sealed as it arrived, the rest never read
    first.join(timeout=30)
    stored_before_the_kill = items.count()
    assert not IngestBatch.objects.filter(project=project_a).exists(), "the upload finished before the kill"
    cluster.start("web")
    _web_up(cluster)
    assert _post_zip(token, project_a, archive) == 202  # the person uploads it again

    def finished() -> bool:
        return items.count() >= count and not items.exclude(status__in=END_STATES).exists()

    _wait(finished, within=90, cluster=cluster, what=lambda: _counts_of(items))
    sops = list(Instance.objects.filter(series__study__project=project_a).values_list("sop_uid", flat=True))
    assert len(sops) == len(set(sops)) == count  # every file once, none twice
    retried = IngestBatch.objects.filter(project=project_a).order_by("-created_at").first()
    assert retried.items.count() == count
    assert set(retried.items.values_list("status", flat=True)) <= {ItemStatus.DONE, ItemStatus.DUPLICATE}
    assert retried.items.exclude(instance__isnull=False).count() == 0
    _assert_no_plaintext(cluster.var, _identities(files, "G"))
    print(f"web killed halfway through the upload ({stored_before_the_kill} items); retried, {count} instances")


def _try(call: Callable[[], Any]) -> None:
    try:
        call()
    except OSError:  # the server died under the request
        pass


def _counts_of(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in items.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts
