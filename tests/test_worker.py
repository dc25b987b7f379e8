"""End to end with a real Celery worker process on the configured broker (Redis in CI).

Runs only when CELERY_BROKER_URL points at a real broker: the worker is a
separate process that shares the test database, storage and vault key.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from tests.helpers import CT_SMALL, MR_SMALL, identifying_strings, stored_bytes, zip_bytes
from workbench.audit_keys import audit_keyring
from workbench.celery import app as celery_app
from workbench.models import Instance

BROKER = os.environ.get("CELERY_BROKER_URL", "")
pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        not BROKER.startswith(("redis://", "amqp://")),
        reason="needs CELERY_BROKER_URL on Redis or RabbitMQ (CI sets it)",
    ),
]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _vault_key() -> str:
    return settings.VAULT_KEY or Path(settings.VAULT_KEY_FILE).read_text().strip()


@pytest.fixture
def worker(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "WORKBENCH_VAR_DIR": str(tmp_path),
        "WORKBENCH_VAULT_KEY": _vault_key(),
        # The worker signs audit events with the test's key, so the chain stays verifiable.
        "WORKBENCH_AUDIT_KEY": audit_keyring().current.secret.decode(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    celery_app.conf.task_always_eager = False
    # Start from an empty queue: leftovers of an earlier run would point at other databases.
    celery_app.control.purge()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workbench",
            "worker",
            "-Q",
            "deid,export,default",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )
    yield proc
    celery_app.conf.task_always_eager = True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.django_db(transaction=True)
def test_api_upload_is_deidentified_by_a_real_worker(worker, api_as, project_a) -> None:
    archive = zip_bytes(
        {"a/ct.dcm": CT_SMALL.read_bytes(), "b/mr.dcm": MR_SMALL.read_bytes(), "c/readme.txt": b"not dicom" * 40}
    )
    upload = io.BytesIO(archive)
    upload.name = "studies.zip"
    response = api_as("alice").post(reverse("api-batches", args=[project_a.pk]), {"file": [upload]}, format="multipart")
    assert response.status_code == 202
    deadline = time.monotonic() + 120
    while True:
        detail = api_as("alice").get(response.json()["location"]).json()
        if detail["state"] == "finished":
            break
        assert worker.poll() is None, "the worker process died"
        assert time.monotonic() < deadline, f"the worker did not finish the batch: {detail['counts']}"
        time.sleep(0.5)
    assert detail["counts"]["done"] == 2 and detail["counts"]["rejected"] == 1
    for instance in Instance.objects.filter(series__study__project=project_a):
        data = stored_bytes(instance.storage_path)
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.PatientIdentityRemoved == "YES"
        for source in (CT_SMALL, MR_SMALL):
            for value in identifying_strings(source):
                assert value.encode() not in data
