"""Uploading through the REST API: batch ids, per-file results, idempotency, bad input."""

from __future__ import annotations

import io

import pydicom
import pytest
from django.urls import reverse

from anonymizer.models import IngestItem, ItemStatus
from tests.helpers import CT_SMALL, MR_SMALL, identifying_strings, stored_bytes, zip_bytes
from workbench.models import AuditEvent, Instance


def _upload(client, project, *files):  # type: ignore[no-untyped-def]
    payload = {"file": [io.BytesIO(data) for _, data in files]}
    for handle, (name, _) in zip(payload["file"], files, strict=True):
        handle.name = name
    return client.post(reverse("api-batches", args=[project.pk]), payload, format="multipart")


@pytest.mark.django_db
def test_upload_one_file_is_deidentified(api_as, project_a, run_tasks) -> None:
    with run_tasks():
        response = _upload(api_as("alice"), project_a, ("ct.dcm", CT_SMALL.read_bytes()))
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == body["location"]
    detail = api_as("alice").get(body["location"]).json()
    assert detail["state"] == "finished"
    assert detail["counts"]["done"] == 1
    [item] = detail["items"]
    assert item["status"] == "done" and item["instance"]
    instance = Instance.objects.get(pk=item["instance"])
    data = stored_bytes(instance.storage_path)
    for value in identifying_strings(CT_SMALL):
        assert value.encode() not in data
        assert value not in instance.storage_path
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.SOPInstanceUID.startswith("2.25.")
    assert AuditEvent.objects.filter(action="deidentified", object_id=str(instance.pk)).exists()


@pytest.mark.django_db
def test_same_file_twice_is_stored_once(api_as, project_a, run_tasks) -> None:
    with run_tasks():
        _upload(api_as("alice"), project_a, ("a.dcm", CT_SMALL.read_bytes()))
        second = _upload(api_as("carol"), project_a, ("b.dcm", CT_SMALL.read_bytes()))
    assert Instance.objects.filter(series__study__project=project_a).count() == 1
    detail = api_as("alice").get(second.json()["location"]).json()
    assert detail["items"][0]["status"] == "duplicate"


@pytest.mark.django_db
def test_zip_with_bad_members_reports_each_and_passes_the_rest(api_as, project_a, run_tasks) -> None:
    truncated = CT_SMALL.read_bytes()[:3000]
    archive = zip_bytes(
        {
            "good/ct.dcm": CT_SMALL.read_bytes(),
            "good/mr.dcm": MR_SMALL.read_bytes(),
            "notes.txt": b"this is not dicom at all, just a note" * 10,
            "cut.dcm": truncated,
            "../../etc/evil.dcm": CT_SMALL.read_bytes(),
        }
    )
    with run_tasks():
        response = _upload(api_as("alice"), project_a, ("study.zip", archive))
    detail = api_as("alice").get(response.json()["location"]).json()
    by_status: dict[str, list[str]] = {}
    for item in detail["items"]:
        by_status.setdefault(item["status"], []).append(item["reason_code"])
    assert len(by_status["done"]) == 2
    assert sorted(by_status["rejected"]) == ["not_dicom", "truncated", "unsafe_zip_member"]
    for item in detail["items"]:
        if item["status"] == "rejected":
            assert item["reason"], "every rejected file says why"


@pytest.mark.django_db
def test_zip_bomb_is_rejected(api_as, project_a, run_tasks, settings) -> None:
    settings.MAX_ZIP_RATIO = 50
    with run_tasks():
        response = _upload(api_as("alice"), project_a, ("bomb.zip", zip_bytes({"zeros.dcm": b"\0" * 5_000_000})))
    [item] = api_as("alice").get(response.json()["location"]).json()["items"]
    assert item["status"] == "rejected" and item["reason_code"] in {"unsafe_zip_member", "zip_bomb"}


@pytest.mark.django_db
def test_file_over_the_size_limit_is_rejected(api_as, project_a, run_tasks, settings) -> None:
    settings.MAX_UPLOAD_BYTES = 1000
    with run_tasks():
        response = _upload(api_as("alice"), project_a, ("ct.dcm", CT_SMALL.read_bytes()))
    [item] = api_as("alice").get(response.json()["location"]).json()["items"]
    assert item["status"] == "rejected" and item["reason_code"] == "too_large"


@pytest.mark.django_db
def test_dicomdir_and_no_meta_are_rejected_with_reasons(api_as, project_a, run_tasks) -> None:
    from pydicom.data import get_testdata_file

    dicomdir = open(get_testdata_file("DICOMDIR"), "rb").read()  # noqa: SIM115
    no_meta = open(get_testdata_file("no_meta.dcm"), "rb").read()  # noqa: SIM115
    with run_tasks():
        response = _upload(api_as("alice"), project_a, ("DICOMDIR", dicomdir), ("x.dcm", no_meta))
    items = api_as("alice").get(response.json()["location"]).json()["items"]
    assert {i["reason_code"] for i in items} <= {"dicomdir", "no_file_meta", "not_dicom"}
    assert all(i["status"] == "rejected" for i in items)


@pytest.mark.django_db
def test_upload_needs_a_file(api_as, project_a) -> None:
    response = api_as("alice").post(reverse("api-batches", args=[project_a.pk]), {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["message"]


@pytest.mark.django_db
def test_upload_roles(api_as, project_a) -> None:
    url = reverse("api-batches", args=[project_a.pk])
    assert api_as("bob").post(url, {}, format="multipart").status_code == 403
    assert api_as("charlie").post(url, {}, format="multipart").status_code == 404
    response = api_as("charlie").get(url)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_rejected_raw_file_is_not_kept(api_as, project_a, run_tasks) -> None:
    with run_tasks():
        _upload(api_as("alice"), project_a, ("notes.txt", b"plain text" * 50))
    item = IngestItem.objects.get()
    assert item.status == ItemStatus.REJECTED
    from django.core.files.storage import storages

    assert not item.raw_path or not storages["quarantine"].exists(item.raw_path)
