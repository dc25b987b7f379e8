"""Every response that shows identity says Cache-Control: no-store and Pragma: no-cache.

The finding: the vault API had no Cache-Control, so a browser or a proxy could keep a
patient's identity on disk. Each identity response is checked here, its error answers
too (a refused vault look-up carries the pseudonym asked for).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from anonymizer import services
from anonymizer.deid.tests.factory import make_us
from anonymizer.intake import Incoming
from anonymizer.models import IngestItem, Source
from tests.helpers import CT_SMALL, ingest
from workbench.demo import to_bytes
from workbench.models import Patient

pytestmark = pytest.mark.django_db


def assert_no_store(response: Any) -> None:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert {"no-store", "private"} <= directives, response.get("Cache-Control")
    assert response.get("Pragma") == "no-cache"


@pytest.fixture
def held(project_a: Any, cast: dict[str, Any], run_tasks: Any, monkeypatch: Any) -> IngestItem:
    """A quarantined ultrasound (no text detector), whose original name the officer sees."""
    monkeypatch.setattr(services, "_detector", lambda: None)
    with run_tasks():
        batch = services.batch_create(project=project_a, source=Source.UPLOAD, user=cast["alice"])
        services.batch_add(batch=batch, incoming=[Incoming("HARRIS_us.dcm", to_bytes(make_us(text="HARRIS")))])
    return IngestItem.objects.get()


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_vault_api_answer_and_refusal_are_not_stored(
    api_as: Any, project_a: Any, cast: dict[str, Any], run_tasks: Any
) -> None:
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    url = reverse("api-vault-lookup", args=[project_a.pk])
    ok = api_as("carol").post(url, {"pseudonym": Patient.objects.get().pseudo_id, "reason": "IRB 2026-14 recall"})
    assert ok.status_code == 200
    assert_no_store(ok)
    unknown = api_as("carol").post(url, {"pseudonym": "NOT-A-PSEUDONYM", "reason": "IRB 2026-14 recall"})
    assert unknown.status_code == 400
    assert_no_store(unknown)


def test_vault_page_is_not_stored(project_a: Any, cast: dict[str, Any], run_tasks: Any) -> None:
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    url = reverse("vault", args=[project_a.pk])
    carol = _client(cast["carol"])
    assert_no_store(carol.get(url))
    answer = carol.post(url, {"pseudonym": Patient.objects.get().pseudo_id, "reason": "IRB 2026-14 recall"})
    assert answer.status_code == 200 and "vault-result" in answer.content.decode()
    assert_no_store(answer)


def test_quarantine_api_with_original_names_is_not_stored(held: IngestItem, api_as: Any, project_a: Any) -> None:
    response = api_as("carol").get(reverse("api-quarantine", args=[project_a.pk]))
    assert response.json()["results"][0]["original_name"] == "HARRIS_us.dcm"
    assert_no_store(response)


def test_quarantine_page_with_original_names_is_not_stored(
    held: IngestItem, cast: dict[str, Any], project_a: Any
) -> None:
    response = _client(cast["carol"]).get(reverse("quarantine", args=[project_a.pk]))
    assert "HARRIS_us.dcm" in response.content.decode()
    assert_no_store(response)


def test_redaction_previews_are_not_stored(
    held: IngestItem, cast: dict[str, Any], api_as: Any, monkeypatch: Any
) -> None:
    from tests.test_quarantine_review import BoxDetector

    monkeypatch.setattr(services, "_detector", lambda: BoxDetector())
    page = _client(cast["carol"]).get(reverse("quarantine-preview", args=[held.pk]))
    api = api_as("carol").get(reverse("api-quarantine-preview", args=[held.pk]))
    for response in (page, api):
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert_no_store(response)
