"""Truncated files are rejected with a reason in every door: upload, listener, folder, offline."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, RTPlanStorage  # type: ignore[attr-defined]

from anonymizer.deid.tests.factory import make_ct
from anonymizer.listener import listener_start, listener_stop
from anonymizer.models import IngestBatch, IngestItem, ItemStatus

RTPLAN_TRUNCATED = Path(get_testdata_file("rtplan_truncated.dcm"))  # type: ignore[arg-type]


def _ct_bytes(**kwargs: str) -> bytes:
    buffer = io.BytesIO()
    make_ct(**kwargs).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _cuts() -> dict[str, bytes]:
    """rtplan_truncated.dcm plus a CT cut mid-header, mid-sequence and mid-pixel-data."""
    whole = _ct_bytes()
    pixels = whole.index(b"\xe0\x7f\x10\x00")
    sequence = whole.index(b"\x08\x00\x12\x21SQ")  # Source Image Sequence (0008,2112)
    return {
        "rtplan_truncated.dcm": RTPLAN_TRUNCATED.read_bytes(),
        "ct_mid_header.dcm": whole[:400],
        "ct_mid_sequence.dcm": whole[: sequence + 60],
        "ct_mid_pixels.dcm": whole[: pixels + 5000],
    }


def _assert_reasons(pairs: list[tuple[str, str, str]]) -> None:
    """Every (status, code, reason) is a rejection as truncated, with words and no values."""
    assert len(pairs) == 4
    for status, code, reason in pairs:
        assert (status, code) == (ItemStatus.REJECTED, "truncated")
        assert "truncated" in reason and "DOE" not in reason and "PID12345" not in reason


@pytest.mark.django_db
def test_rest_upload_rejects_truncated_files(api_as, project_a, run_tasks) -> None:
    files = _cuts()
    payload = {"file": [io.BytesIO(data) for data in files.values()]}
    for handle, name in zip(payload["file"], files, strict=True):
        handle.name = name
    with run_tasks():
        response = api_as("alice").post(reverse("api-batches", args=[project_a.pk]), payload, format="multipart")
    assert response.status_code == 202, response.json()
    items = api_as("alice").get(response.json()["location"]).json()["items"]
    _assert_reasons([(i["status"], i["reason_code"], i["reason"]) for i in items])


@pytest.mark.django_db(transaction=True)
def test_folder_ingest_rejects_truncated_files(tmp_path: Path, project_a) -> None:
    for name, data in _cuts().items():
        (tmp_path / name).write_bytes(data)
    call_command("ingest", str(tmp_path), "--project", project_a.slug)
    batch = IngestBatch.objects.get()
    _assert_reasons(list(batch.items.values_list("status", "reason_code", "reason")))


def test_offline_deidentify_rejects_truncated_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_DEID_SECRET", raising=False)
    (tmp_path / "in").mkdir()
    for name, data in _cuts().items():
        (tmp_path / "in" / name).write_bytes(data)
    (tmp_path / "in" / "whole.dcm").write_bytes(_ct_bytes())
    call_command(
        "deidentify",
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        "--no-progress",
        "--workers",
        "1",
        "--key-file",
        str(tmp_path / "deid.key"),
    )
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1  # only the whole file comes out
    bodies = [json.loads(p.read_text()) for p in (tmp_path / "out-quarantine").glob("*.json")]
    _assert_reasons([(b["status"], b["code"], b["message"]) for b in bodies])  # "rejected" == REJECTED


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener(project_a) -> Iterator[int]:
    port = _free_port()
    server = listener_start(project=project_a, port=port, ae_title="WORKBENCH")
    yield port
    listener_stop(server)


@pytest.mark.listener
@pytest.mark.django_db(transaction=True)
def test_listener_refuses_truncated_files(listener: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pynetdicom._config

    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)  # send file bytes as they are
    ae = AE(ae_title="MODALITY")
    for sop_class in (CTImageStorage, RTPlanStorage):
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    ae.add_requested_context(RTPlanStorage, "1.2.840.10008.1.2")
    assoc = ae.associate("127.0.0.1", listener, ae_title="WORKBENCH")
    assert assoc.is_established
    statuses = []
    for name, data in _cuts().items():
        if name == "ct_mid_header.dcm":
            continue  # cut inside the file meta: the sending side cannot even read it
        path = tmp_path / name
        path.write_bytes(data)
        statuses.append(assoc.send_c_store(path).Status)
    assoc.release()
    assert all(status != 0x0000 for status in statuses), [hex(s) for s in statuses]
    items = list(IngestItem.objects.values_list("status", "reason_code", "reason"))
    assert len(items) == 3
    for status, code, reason in items:
        assert (status, code) == (ItemStatus.REJECTED, "truncated") and "truncated" in reason
