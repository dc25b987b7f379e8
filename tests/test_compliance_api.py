"""Quarantine, identity vault, audit log and de-identification reports over the API."""

from __future__ import annotations

import pytest
from django.urls import reverse

from anonymizer.models import IngestItem, ItemStatus
from tests.helpers import CT_SMALL, ingest
from workbench.audit import audit_verify
from workbench.models import AuditEvent, Instance, Patient


@pytest.fixture
def ingested(project_a, cast, run_tasks) -> Instance:  # type: ignore[no-untyped-def]
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    return Instance.objects.get()


@pytest.fixture
def quarantined(project_a, cast, run_tasks, monkeypatch) -> IngestItem:  # type: ignore[no-untyped-def]
    """An item the pipeline could not clean: at-risk pixels and no text detector."""
    from anonymizer import services

    monkeypatch.setattr(services, "_detector", lambda: None)
    from anonymizer.deid.tests.factory import make_us
    from workbench.demo import to_bytes

    with run_tasks():
        ingest(project_a, {"us.dcm": to_bytes(make_us())}, user=cast["alice"])
    item = IngestItem.objects.get()
    assert item.status == ItemStatus.QUARANTINED, item.reason
    return item


@pytest.mark.django_db
def test_vault_lookup_needs_compliance_and_a_reason(api_as, ingested, project_a) -> None:
    url = reverse("api-vault-lookup", args=[project_a.pk])
    pseudonym = Patient.objects.get().pseudo_id
    assert api_as("bob").post(url, {"pseudonym": pseudonym, "reason": "curious about it"}).status_code == 403
    assert api_as("alice").post(url, {"pseudonym": pseudonym, "reason": "curious about it"}).status_code == 403
    assert api_as("charlie").post(url, {"pseudonym": pseudonym, "reason": "curious about it"}).status_code == 404
    short = api_as("carol").post(url, {"pseudonym": pseudonym, "reason": "x"})
    assert short.status_code == 400 and "reason" in short.json()["message"]
    ok = api_as("carol").post(url, {"pseudonym": pseudonym, "reason": "Incidental finding, IRB 2026-14"})
    assert ok.status_code == 200
    assert ok.json()["patient"]["patient_id"] == "1CT1"
    events = AuditEvent.objects.filter(action="vault_lookup")
    assert events.count() == 1  # the look-up without a reason never reached the vault
    assert events.last().details["reason"] == "Incidental finding, IRB 2026-14"


@pytest.mark.django_db
def test_vault_is_encrypted_at_rest(ingested) -> None:
    from anonymizer.models import VaultEntry

    for entry in VaultEntry.objects.all():
        assert b"1CT1" not in bytes(entry.identity_encrypted)
        assert b"CompressedSamples" not in bytes(entry.identity_encrypted)


@pytest.mark.django_db
def test_quarantine_list_reprocess_and_discard(api_as, quarantined, project_a, monkeypatch, run_tasks) -> None:
    listing = api_as("carol").get(reverse("api-quarantine", args=[project_a.pk])).json()
    [row] = listing["results"]
    assert row["reason_code"] == "no_text_detector" or "detector" in row["reason"]
    assert api_as("bob").get(reverse("api-quarantine", args=[project_a.pk])).status_code == 403
    assert api_as("charlie").get(reverse("api-quarantine", args=[project_a.pk])).status_code == 404
    # Only compliance officers act on the quarantine.
    assert api_as("alice").post(reverse("api-quarantine-discard", args=[row["id"]])).status_code == 403
    with run_tasks():
        again = api_as("carol").post(reverse("api-quarantine-reprocess", args=[row["id"]]))
    assert again.status_code == 200
    quarantined.refresh_from_db()
    assert quarantined.status == ItemStatus.QUARANTINED and quarantined.attempts == 2
    gone = api_as("carol").post(reverse("api-quarantine-discard", args=[row["id"]]))
    assert gone.status_code == 200 and gone.json()["status"] == "discarded"
    twice = api_as("carol").post(reverse("api-quarantine-discard", args=[row["id"]]))
    assert twice.status_code == 400 and "quarantined" in twice.json()["message"]


@pytest.mark.django_db
def test_audit_log_filters_and_chain(api_as, ingested, project_a) -> None:
    url = reverse("api-audit", args=[project_a.pk])
    everything = api_as("carol").get(url).json()
    actions = {e["action"] for e in everything["results"]}
    assert {"ingest_batch_created", "deidentified"} <= actions
    only = api_as("carol").get(url, {"action": "deidentified"}).json()["results"]
    assert only and {e["action"] for e in only} == {"deidentified"}
    detail = only[0]["details"]
    assert detail["verifier"] == "pass" and len(detail["recipe"]) == 64 and detail["actions"]
    assert api_as("carol").get(url, {"since": "2999-01-01"}).json()["count"] == 0
    assert api_as("carol").get(url, {"since": "yesterday"}).status_code == 400
    # The 400 names the parameter that was wrong, not "since/until".
    assert list(api_as("carol").get(url, {"since": "yesterday"}).json()["fields"]) == ["since"]
    assert list(api_as("carol").get(url, {"since": "2026-01-01", "until": "soon"}).json()["fields"]) == ["until"]
    assert api_as("bob").get(url).status_code == 403
    assert list(audit_verify()) == []


@pytest.mark.django_db
def test_study_and_project_reports(api_as, ingested, project_a) -> None:
    study_id = ingested.series.study_id
    report = api_as("carol").get(reverse("api-study-deid-report", args=[study_id])).json()
    actions = {a for row in report["attributes"] for a in row["actions"]}
    assert "X" in actions or "Z" in actions
    assert "1CT1" not in str(report) and "CompressedSamples" not in str(report)
    assert api_as("bob").get(reverse("api-study-deid-report", args=[study_id])).status_code == 403
    csv = api_as("carol").get(reverse("api-deid-report", args=[project_a.pk]), {"format": "csv"})
    assert csv.status_code == 200 and csv["Content-Type"] == "text/csv"
    assert ingested.sop_uid in csv.content.decode()
    js = api_as("carol").get(reverse("api-deid-report", args=[project_a.pk]), {"format": "json"}).json()
    assert js["instances"][0]["sop_uid"] == ingested.sop_uid
    bad = api_as("carol").get(reverse("api-deid-report", args=[project_a.pk]), {"format": "xml"})
    assert bad.status_code == 400
    assert AuditEvent.objects.filter(action="report_downloaded").count() == 2


@pytest.mark.django_db
def test_login_is_audited(client, cast) -> None:
    from conftest import PASSWORD

    client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    client.post(reverse("login"), {"username": "bob", "password": "wrong"})
    assert AuditEvent.objects.filter(action="login", actor_name="bob").exists()
    assert AuditEvent.objects.filter(action="login_failed").exists()


@pytest.mark.django_db
def test_discard_deletes_the_file_only_once_committed(quarantined, cast, django_capture_on_commit_callbacks) -> None:
    from django.core.files.storage import storages
    from django.db import transaction

    from anonymizer.review import item_discard

    path = quarantined.raw_path
    with pytest.raises(RuntimeError), transaction.atomic():
        item_discard(item=quarantined, user=cast["carol"])
        raise RuntimeError("the request failed after the discard")
    quarantined.refresh_from_db()
    assert quarantined.status == ItemStatus.QUARANTINED and storages["quarantine"].exists(path)
    with django_capture_on_commit_callbacks(execute=True):
        item_discard(item=quarantined, user=cast["carol"])
    assert not storages["quarantine"].exists(path)


@pytest.mark.django_db
def test_a_discard_and_a_reprocess_of_one_item_do_not_both_succeed(quarantined, cast) -> None:
    """Each acts on the row, not on the copy its caller read: the second is refused."""
    from anonymizer.review import item_discard, item_reprocess

    stale = IngestItem.objects.get(pk=quarantined.pk)  # read by the second request before the first acts
    item_discard(item=quarantined, user=cast["carol"])
    with pytest.raises(ValueError):
        item_reprocess(item=stale, user=cast["carol"])
    assert IngestItem.objects.get(pk=quarantined.pk).status == ItemStatus.DISCARDED
    assert AuditEvent.objects.filter(action="quarantine_reprocess").count() == 0
