"""An export built by a real Celery worker process on the `export` queue (Redis in CI)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from tests.test_worker import pytestmark as worker_marks
from tests.test_worker import worker  # noqa: F401  (the fixture)

pytestmark = worker_marks


@pytest.mark.django_db(transaction=True)
def test_an_export_is_built_by_the_worker_and_downloads(labeled: Any, worker: Any, api_as: Any) -> None:  # noqa: F811
    api = api_as("dave")
    dataset = api.post(f"/api/projects/{labeled['project'].pk}/datasets/", {"name": "lesions"}, format="json").json()
    version = api.post(f"/api/datasets/{dataset['id']}/versions/", {}, format="json").json()["id"]
    asked = api.post(f"/api/versions/{version}/exports/", {"format": "nnunet"}, format="json")
    assert asked.status_code == 202 and asked.json()["status"] == "queued"
    deadline = time.monotonic() + 120
    while (export := api.get(asked["Location"]).json())["status"] in ("queued", "running"):
        assert worker.poll() is None, "the worker process died"
        assert time.monotonic() < deadline, f"the worker did not build the export: {export}"
        time.sleep(0.5)
    assert export["status"] == "done", export["error"]
    data = b"".join(api.get(export["download"]).streaming_content)
    assert hashlib.sha256(data).hexdigest() == export["sha256"]
