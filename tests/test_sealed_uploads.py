"""Uploads of any size: sealed on arrival (no plaintext spool), expanded in the worker under budgets."""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from anonymizer import sealed, services, uploads
from anonymizer.models import IngestItem, IngestUpload, ItemStatus, UploadState
from tests.helpers import CT_SMALL, MR_SMALL, identifying_strings


def _post(client: Any, project: Any, name: str, data: bytes) -> Any:
    handle = io.BytesIO(data)
    handle.name = name
    return client.post(reverse("api-batches", args=[project.pk]), {"file": [handle]}, format="multipart")


def _stored_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def spool(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every temp folder Django or Python could spool to points here."""
    folder = tmp_path / "spool"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.django_db
def test_large_upload_is_sealed_on_arrival_and_never_spooled(
    api_as, project_a, run_tasks, spool, tmp_path, monkeypatch
) -> None:
    phi = [v.encode() for v in identifying_strings(CT_SMALL)]
    # Stored, not deflated: the archive's bytes carry the patient's identity as they are.
    archive = _stored_zip({"study/ct.dcm": CT_SMALL.read_bytes(), "study/padding.bin": os.urandom(12 * 1024 * 1024)})
    assert len(archive) > 10 * 1024 * 1024 and all(value in archive for value in phi)
    seen_while_receiving: list[list[Path]] = []
    original = services.batch_create

    def spying(**kwargs: Any) -> Any:  # runs inside the request, once the body is read
        seen_while_receiving.append(_files_under(spool))
        return original(**kwargs)

    monkeypatch.setattr(services, "batch_create", spying)
    response = _post(api_as("alice"), project_a, "ct-of-patient.zip", archive)
    assert response.status_code == 202, response.json()
    assert seen_while_receiving == [[]], "the upload was spooled to a temp file"
    assert _files_under(spool) == []
    segments = _files_under(tmp_path / "quarantine")
    assert segments, "the upload is in the quarantine"
    for path in segments:
        data = path.read_bytes()
        assert all(value not in data for value in phi), f"{path} holds the identity in the clear"
    with run_tasks():
        uploads.batch_expand(batch_id=response.json()["id"])
    detail = api_as("alice").get(response.json()["location"]).json()
    assert detail["state"] == "finished"
    assert sorted(i["status"] for i in detail["items"]) == ["done", "rejected"]
    assert not list((tmp_path / "quarantine").rglob("*.seg")), "expanded uploads leave no segments"
    assert _files_under(spool) == []


@pytest.mark.django_db
def test_refused_request_keeps_nothing(api_as, project_a, tmp_path) -> None:
    for user, code in (("charlie", 404), ("bob", 403)):
        response = _post(api_as(user), project_a, "ct.dcm", CT_SMALL.read_bytes())
        assert response.status_code == code
    assert not list((tmp_path / "quarantine").rglob("*.seg"))
    assert not IngestUpload.objects.exists()


@pytest.mark.django_db
def test_failed_request_keeps_nothing(api_as, project_a, tmp_path, monkeypatch) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(services, "batch_create", broken)
    with pytest.raises(RuntimeError):
        _post(api_as("alice"), project_a, "ct.dcm", CT_SMALL.read_bytes())
    assert not list((tmp_path / "quarantine").rglob("*.seg"))


@pytest.mark.django_db
def test_other_views_drop_file_parts_unread(client, cast, spool, tmp_path, monkeypatch) -> None:
    from django.contrib.auth.forms import AuthenticationForm

    seen: list[list[Path]] = []
    original = AuthenticationForm.clean

    def spying(self: Any) -> Any:  # runs inside the request, once the body is parsed
        seen.append(_files_under(spool))
        return original(self)

    monkeypatch.setattr(AuthenticationForm, "clean", spying)
    handle = io.BytesIO(CT_SMALL.read_bytes() * 300)  # over FILE_UPLOAD_MAX_MEMORY_SIZE
    handle.name = "ct.dcm"
    client.post(reverse("login"), {"username": "alice", "password": "x", "file": handle})
    assert seen == [[]], "a file part sent to another view was spooled in the clear"
    assert not list((tmp_path / "quarantine").rglob("*"))


@pytest.mark.django_db
def test_archive_budget_refuses_members_past_it_and_passes_the_rest(api_as, project_a, run_tasks, settings) -> None:
    settings.MAX_ARCHIVE_EXPANDED_BYTES = 1_000_000
    big = {f"big/{n}.bin": os.urandom(400_000) for n in range(5)}
    archive = _stored_zip({**big, "ct.dcm": CT_SMALL.read_bytes(), "mr.dcm": MR_SMALL.read_bytes()})
    with run_tasks():
        response = _post(api_as("alice"), project_a, "study.zip", archive)
    items = api_as("alice").get(response.json()["location"]).json()["items"]
    codes = sorted(i["reason_code"] for i in items if i["status"] == "rejected")
    assert codes == ["archive_too_large"] * 3 + ["not_dicom"] * 2
    assert sorted(i["status"] for i in items if i["reason_code"] != "archive_too_large") == [
        "done",
        "done",
        "rejected",
        "rejected",
    ]
    refused = next(i for i in items if i["reason_code"] == "archive_too_large")
    assert "limit per archive" in refused["reason"] and refused["reason_text"]


@pytest.mark.django_db
def test_hundred_thousand_member_zip_is_answered_without_walking_it(api_as, project_a, run_tasks, settings) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for n in range(100_000):
            archive.writestr(f"{n}.dcm", b"")
    started = time.monotonic()
    response = _post(api_as("alice"), project_a, "many.zip", buffer.getvalue())
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert elapsed < 5, f"the request took {elapsed:.1f}s"
    assert not IngestItem.objects.exists(), "the request walked the archive"
    assert response.json()["state"] == "processing"
    settings.MAX_ZIP_MEMBERS = 1000
    started = time.monotonic()
    with run_tasks():
        uploads.batch_expand(batch_id=response.json()["id"])
    [item] = IngestItem.objects.all()
    assert item.reason_code == "zip_too_many"
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_interrupted_expansion_resumes_without_duplicates(api_as, project_a, run_tasks, monkeypatch) -> None:
    archive = _stored_zip({"a.dcm": CT_SMALL.read_bytes(), "b.dcm": MR_SMALL.read_bytes(), "c.txt": b"note" * 40})
    response = _post(api_as("alice"), project_a, "study.zip", archive)
    batch_id = response.json()["id"]
    original, calls = services.batch_add, []

    def dying(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return original(**kwargs)

    monkeypatch.setattr(services, "batch_add", dying)
    with pytest.raises(SystemExit), run_tasks():
        uploads.batch_expand(batch_id=batch_id)
    upload = IngestUpload.objects.get()
    assert upload.state == UploadState.EXPANDING and upload.entries_done == 1
    monkeypatch.setattr(services, "batch_add", original)
    uploads.batch_expand(batch_id=batch_id)  # a fresh claim is held: a second worker skips it
    assert IngestItem.objects.count() == 1
    IngestUpload.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    with run_tasks():
        assert uploads.uploads_sweep() == (1, 0)
    assert sorted(IngestItem.objects.values_list("index", flat=True)) == [0, 1, 2]
    assert IngestItem.objects.filter(status=ItemStatus.DONE).count() == 2
    assert IngestUpload.objects.get().state == UploadState.EXPANDED


@pytest.mark.django_db
def test_sweep_deletes_orphan_segments_and_expired_uploads(project_a, tmp_path, settings) -> None:
    writer = sealed.SegmentWriter("uploads/0b0e6b8e-7a40-4b8b-9a3c-1f0f2f7f0a11")
    writer.write(b"raw bytes of a request whose worker died")
    writer.close()
    fresh = uploads.upload_create(project=project_a, user=None, length=10, name="x.dcm", batch=None)
    expired = uploads.upload_create(project=project_a, user=None, length=10, name="y.dcm", batch=None)
    IngestUpload.objects.filter(pk=expired.pk).update(updated_at=timezone.now() - timedelta(hours=25))
    assert uploads.uploads_sweep() == (0, 1)  # the orphan is too young to be taken for one
    later = timezone.now() + timedelta(hours=2)
    assert uploads.uploads_sweep(now=later) == (0, 1)
    assert not list((tmp_path / "quarantine").rglob("*.seg"))
    assert list(IngestUpload.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_segments_are_bound_to_their_place(settings, tmp_path) -> None:
    settings.UPLOAD_SEGMENT_BYTES = 1000
    data = os.urandom(3500)
    writer = sealed.SegmentWriter("uploads/a")
    for start in range(0, len(data), 300):
        writer.write(data[start : start + 300])
    segments = writer.close()
    assert [size for size, _ in segments] == [1000, 1000, 1000, 500]
    reader = sealed.SegmentReader("uploads/a", segments)
    assert reader.read() == data
    reader.seek(1990)
    assert reader.read(20) == data[1990:2010]
    root = tmp_path / "quarantine" / "uploads" / "a"
    first, second = (root / str(segments[0][1])), (root / str(segments[1][1]))
    one, two = first.read_bytes(), second.read_bytes()
    first.write_bytes(two)
    second.write_bytes(one)
    with pytest.raises(ValueError):
        sealed.SegmentReader("uploads/a", segments).read()
    first.write_bytes(one)
    second.write_bytes(two[:-1])  # cut short
    with pytest.raises(ValueError):
        sealed.SegmentReader("uploads/a", segments).read()
    second.write_bytes(two[:5])  # cut inside its header
    with pytest.raises(ValueError):
        sealed.SegmentReader("uploads/a", segments).read()
    second.write_bytes(two[:6] + b"x" * 100 + two[106:])  # the wrapped data key damaged
    with pytest.raises(ValueError):
        sealed.SegmentReader("uploads/a", segments).read()


@pytest.mark.django_db
def test_a_broker_outage_at_upload_keeps_the_sealed_files(
    api_as, project_a, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The uploads are committed before the hand-over: a broker that is down loses nothing (the
    sweep sends the expansion later) and the client is not told to send the files again."""
    from kombu.exceptions import OperationalError

    from anonymizer.tasks import batch_expand

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(batch_expand, "delay", broker_down)
    handle = io.BytesIO(CT_SMALL.read_bytes())
    handle.name = "ct.dcm"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as("alice").post(
            reverse("api-batches", args=[project_a.pk]), {"file": [handle]}, format="multipart"
        )
    assert response.status_code == 202, response.content
    upload = IngestUpload.objects.get()
    assert upload.state == UploadState.STORED
    assert sealed.quarantine_storage().exists(f"{upload.prefix}/{upload.segments[0][1]}")


def test_a_resumed_expansion_does_not_repeat_an_archive_refused_whole(settings) -> None:
    from anonymizer.intake import incoming_from_upload

    settings.MAX_ZIP_MEMBERS = 2
    archive = _stored_zip({"a.dcm": b"a", "b.dcm": b"b", "c.dcm": b"c"})
    first = list(incoming_from_upload("study.zip", io.BytesIO(archive), len(archive)))
    assert [i.error_code for i in first] == ["zip_too_many"]
    assert list(incoming_from_upload("study.zip", io.BytesIO(archive), len(archive), skip=1)) == []
    broken = b"PK\x03\x04" + b"\x00" * 40
    assert [i.error_code for i in incoming_from_upload("x.zip", io.BytesIO(broken), len(broken))] == ["bad_zip"]
    assert list(incoming_from_upload("x.zip", io.BytesIO(broken), len(broken), skip=1)) == []


@pytest.mark.django_db
def test_sweep_deletes_the_segments_an_expanded_upload_left(project_a, tmp_path) -> None:
    """A worker that died between marking an upload EXPANDED and deleting its segments."""
    upload = uploads.upload_create(project=project_a, user=None, length=10, name="x.dcm", batch=None)
    writer = sealed.SegmentWriter(upload.prefix)
    writer.write(b"raw bytes already expanded into items")
    writer.close()
    IngestUpload.objects.filter(pk=upload.pk).update(state=UploadState.EXPANDED)
    uploads.uploads_sweep(now=timezone.now() + timedelta(hours=2))
    assert not list((tmp_path / "quarantine").rglob("*.seg"))
    assert IngestUpload.objects.filter(pk=upload.pk).exists()  # the row stays: items name it
