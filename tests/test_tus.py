"""Resumable uploads (tus 1.0.0): creation, resume after a cut, termination, access, cleanup."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from anonymizer import uploads
from anonymizer.models import IngestItem, IngestUpload, ItemStatus, UploadState
from anonymizer.tus import CHUNK_TYPE
from tests.helpers import CT_SMALL, MR_SMALL, identifying_strings, zip_bytes

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _create(client: Any, project: Any, length: int, name: str = "study.zip", **extra: str) -> Any:
    headers = {"HTTP_UPLOAD_LENGTH": str(length), "HTTP_UPLOAD_METADATA": f"filename {_b64(name)}", **TUS, **extra}
    return client.post(reverse("api-uploads", args=[project.pk]), **headers)


def _patch(client: Any, url: str, offset: int, data: bytes) -> Any:
    return client.patch(url, data=data, content_type=CHUNK_TYPE, HTTP_UPLOAD_OFFSET=str(offset), **TUS)


@pytest.mark.django_db
def test_chunked_upload_ends_as_a_processed_batch(api_as, project_a, run_tasks, tmp_path, settings) -> None:
    settings.UPLOAD_SEGMENT_BYTES = 4096
    archive = zip_bytes({"ct.dcm": CT_SMALL.read_bytes(), "mr.dcm": MR_SMALL.read_bytes()})
    client = api_as("alice")
    created = _create(client, project_a, len(archive))
    assert created.status_code == 201, created.json()
    url = created["Location"]
    assert created["Tus-Resumable"] == "1.0.0" and created["Workbench-Batch"] == created.json()["batch"]
    offset = 0
    with run_tasks():
        while offset < len(archive):
            response = _patch(client, url, offset, archive[offset : offset + 10_000])
            assert response.status_code == 204, response.content
            offset = int(response["Upload-Offset"])
    assert offset == len(archive)
    detail = client.get(reverse("api-batch-detail", args=[created.json()["batch"]])).json()
    assert detail["state"] == "finished"
    assert [i["status"] for i in detail["items"]] == ["done", "done"]
    assert not list((tmp_path / "quarantine").rglob("*.seg"))


@pytest.mark.django_db
def test_cut_off_chunk_keeps_what_arrived_and_resumes(api_as, project_a, run_tasks, tmp_path, settings) -> None:
    settings.UPLOAD_SEGMENT_BYTES = 4096
    data = CT_SMALL.read_bytes()
    client = api_as("alice")
    url = _create(client, project_a, len(data), name="ct.dcm")["Location"]
    upload = IngestUpload.objects.get()

    class Dropping(io.BytesIO):
        def read(self, n: int = -1) -> bytes:
            if self.tell() >= 10_000:
                raise OSError("connection reset by peer")
            return super().read(min(n, 10_000 - self.tell()))

    with pytest.raises(OSError):
        uploads.upload_append(upload=upload, offset=0, body=Dropping(data), size=len(data))
    head = client.head(url, **TUS)
    assert head.status_code == 200 and head["Cache-Control"] == "no-store"
    offset = int(head["Upload-Offset"])
    assert offset == 10_000 and head["Upload-Length"] == str(len(data))
    for path in (tmp_path / "quarantine").rglob("*.seg"):
        assert all(v.encode() not in path.read_bytes() for v in identifying_strings(CT_SMALL))
    stale = _patch(client, url, 0, data)
    assert stale.status_code == 409 and "offset 10000" in stale.json()["message"]
    with run_tasks():
        assert _patch(client, url, offset, data[offset:]).status_code == 204
    assert IngestItem.objects.get().status == ItemStatus.DONE


@pytest.mark.django_db
def test_protocol_errors_are_json_with_a_message(api_as, project_a) -> None:
    client = api_as("alice")
    url = reverse("api-uploads", args=[project_a.pk])
    no_version = client.post(url, HTTP_UPLOAD_LENGTH="10")
    assert no_version.status_code == 412 and no_version["Tus-Version"] == "1.0.0"
    assert "Tus-Resumable" in no_version.json()["message"]
    assert client.post(url, **TUS).status_code == 400
    assert client.post(url, HTTP_UPLOAD_LENGTH="-1", **TUS).json()["error"] == "bad_header"
    huge = client.post(url, HTTP_UPLOAD_LENGTH=str(10**15), **TUS)
    assert huge.status_code == 413 and huge.json()["message"]
    bad_meta = client.post(url, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA="filename %%%", **TUS)
    assert bad_meta.status_code == 400 and bad_meta.json()["error"] == "bad_metadata"
    upload_url = _create(client, project_a, 10)["Location"]
    wrong_type = client.patch(upload_url, data=b"x", content_type="text/plain", HTTP_UPLOAD_OFFSET="0", **TUS)
    assert wrong_type.status_code == 415 and wrong_type.json()["message"]
    too_long = _patch(client, upload_url, 0, b"x" * 11)
    assert too_long.status_code == 409 and "declared length" in too_long.json()["message"]
    options = client.options(url)
    assert options.status_code == 204 and "termination" in options["Tus-Extension"]


@pytest.mark.django_db
def test_termination_deletes_the_upload(api_as, project_a, tmp_path) -> None:
    client = api_as("alice")
    url = _create(client, project_a, 100_000)["Location"]
    assert _patch(client, url, 0, os.urandom(50_000)).status_code == 204
    assert list((tmp_path / "quarantine").rglob("*.seg"))
    assert client.delete(url, **TUS).status_code == 204
    assert not IngestUpload.objects.exists()
    assert not list((tmp_path / "quarantine").rglob("*.seg"))
    assert client.head(url, **TUS).status_code == 404


@pytest.mark.django_db
def test_a_complete_upload_cannot_be_terminated(api_as, project_a, tmp_path) -> None:
    """Its file is the batch's now (expanded, or waiting for the worker): DELETE would drop it."""
    client = api_as("alice")
    url = _create(client, project_a, 10)["Location"]
    assert _patch(client, url, 0, b"0123456789").status_code == 204
    refused = client.delete(url, **TUS)
    assert refused.status_code == 409 and refused.json()["error"] == "upload_complete"
    assert IngestUpload.objects.exists()


@pytest.mark.django_db
def test_upload_access(api_as, project_a, project_b) -> None:
    url = _create(api_as("alice"), project_a, 100)["Location"]
    create = reverse("api-uploads", args=[project_a.pk])
    assert _create(api_as("carol"), project_a, 100).status_code == 201  # compliance officers ingest too
    for user, code in (("bob", 403), ("dave", 403), ("charlie", 404)):
        assert _create(api_as(user), project_a, 100).status_code == code, user
        assert api_as(user).head(url, **TUS).status_code == code, user
        assert _patch(api_as(user), url, 0, b"x" * 100).status_code == code, user
        assert api_as(user).delete(url, **TUS).status_code == code, user
        assert api_as(user).options(create).status_code == code, user
    from rest_framework.test import APIClient

    assert APIClient().head(url, **TUS).status_code in (401, 403)
    assert IngestUpload.objects.get(pk=url.rstrip("/").rsplit("/", 1)[-1]).offset == 0
    # A batch of another project cannot be named in the metadata.
    from anonymizer import services

    batch_b = services.batch_create(project=project_b, source="api")
    meta = f"filename {_b64('x.dcm')},batch {_b64(str(batch_b.pk))}"
    response = _create(api_as("alice"), project_a, 100, HTTP_UPLOAD_METADATA=meta)
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_tuspy_client_uploads_through_a_live_server(live_server, cast, project_a, settings) -> None:
    from tusclient import client as tus_client

    settings.UPLOAD_SEGMENT_BYTES = 8192
    archive = zip_bytes({"ct.dcm": CT_SMALL.read_bytes(), "mr.dcm": MR_SMALL.read_bytes()})
    token, _ = Token.objects.get_or_create(user=cast["alice"])
    endpoint = live_server.url + reverse("api-uploads", args=[project_a.pk])
    tus = tus_client.TusClient(endpoint, headers={"Authorization": f"Token {token.key}"})
    uploader = tus.uploader(file_stream=io.BytesIO(archive), chunk_size=16_384, metadata={"filename": "study.zip"})
    uploader.upload()
    upload = IngestUpload.objects.get()
    assert upload.offset == len(archive) and upload.state == UploadState.EXPANDED
    assert sorted(IngestItem.objects.values_list("status", flat=True)) == ["done", "done"]


@pytest.mark.django_db
def test_purge_command_deletes_expired_uploads(api_as, project_a, tmp_path) -> None:
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    url = _create(api_as("alice"), project_a, 100_000)["Location"]
    assert _patch(api_as("alice"), url, 0, os.urandom(5000)).status_code == 204
    IngestUpload.objects.update(updated_at=timezone.now() - timedelta(hours=25))
    out = io.StringIO()
    call_command("purge_quarantine", stdout=out)
    assert "deleted 1 expired" in out.getvalue()
    assert not IngestUpload.objects.exists() and not list((tmp_path / "quarantine").rglob("*.seg"))


@pytest.mark.django_db
def test_empty_file_is_complete_on_creation(api_as, project_a, run_tasks) -> None:
    with run_tasks():
        created = _create(api_as("alice"), project_a, 0, name="empty.dcm")
    assert created.status_code == 201
    [item] = IngestItem.objects.all()
    assert item.status == ItemStatus.REJECTED and IngestUpload.objects.get().state == UploadState.EXPANDED


@pytest.mark.django_db
def test_two_appends_at_the_same_offset_do_not_both_land(api_as, project_a, settings) -> None:
    settings.UPLOAD_SEGMENT_BYTES = 1000
    client = api_as("alice")
    _create(client, project_a, 4000)
    upload = IngestUpload.objects.get()
    stale = IngestUpload.objects.get()  # what a second request read before the first wrote

    class Racing(io.BytesIO):
        def read(self, n: int = -1) -> bytes:
            if self.tell() == 0:  # the other request lands first
                uploads.upload_append(upload=stale, offset=0, body=io.BytesIO(b"b" * 2000), size=2000)
            return super().read(n)

    with pytest.raises(uploads.UploadConflict):
        uploads.upload_append(upload=upload, offset=0, body=Racing(b"a" * 2000), size=2000)
    upload.refresh_from_db()
    assert upload.offset == 2000 and len(upload.segments) == 2
    from anonymizer import sealed

    assert sealed.SegmentReader(upload.prefix, upload.segments).read() == b"b" * 2000
    _, names = sealed.quarantine_storage().listdir(upload.prefix)
    assert sorted(names) == sorted(str(s[1]) for s in upload.segments), "the loser's segments are gone"
