"""The DICOM listener: C-ECHO, C-STORE into the pipeline, one batch per association."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification  # type: ignore[attr-defined]

from anonymizer.deid.tests.factory import make_ct
from anonymizer.listener import STATUS_CANNOT_UNDERSTAND, listener_start, listener_stop
from anonymizer.models import IngestBatch, IngestItem, ItemStatus, Source
from workbench import crypto
from workbench.models import Instance

pytestmark = [pytest.mark.listener, pytest.mark.django_db(transaction=True)]
PHI = (b"DOE^JOHN", b"PID12345", b"MRN-998877", b"ACC20240001", b"Saint Example Hospital", b"HOUSE^GREGORY")


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


def _associate(port: int) -> object:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    for sop_class in (CTImageStorage, MRImageStorage):  # one context per transfer syntax: no conversion
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="WORKBENCH")
    assert assoc.is_established
    return assoc


def _names(batch: IngestBatch) -> list[str]:
    return [crypto.decrypt(item.name_encrypted).decode() for item in batch.items.order_by("index")]


def test_echo_and_stores_end_up_deidentified_in_the_catalog(listener: int) -> None:
    planted = make_ct()
    assoc = _associate(listener)
    assert assoc.send_c_echo().Status == 0x0000
    for dataset in (
        pydicom.dcmread(get_testdata_file("CT_small.dcm")),
        pydicom.dcmread(get_testdata_file("MR_small.dcm")),
        planted,
    ):
        assert assoc.send_c_store(dataset).Status == 0x0000
    assoc.release()

    batch = IngestBatch.objects.get()
    assert batch.source == Source.LISTENER
    assert _names(batch) == ["association-1-1.dcm", "association-1-2.dcm", "association-1-3.dcm"]
    assert set(batch.items.values_list("status", flat=True)) == {ItemStatus.DONE}
    assert Instance.objects.count() == 3
    assert not Instance.objects.filter(sop_uid=str(planted.SOPInstanceUID)).exists()
    for instance in Instance.objects.all():
        with default_storage.open(instance.storage_path, "rb") as fh:
            stored = fh.read()
        assert not any(value in stored for value in PHI)
        assert str(planted.SOPInstanceUID).encode() not in stored


def test_echo_alone_creates_no_batch(listener: int) -> None:
    assoc = _associate(listener)
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert not IngestBatch.objects.exists()


def _garbage_file(path: Path) -> Path:
    """Valid file meta followed by bytes that are not a data set."""
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    with path.open("ab") as fh:
        fh.write(b"\x08\x00\x18\x00UI\xff\xffthis is not a data set at all")
    return path


def test_bad_datasets_are_refused_and_the_listener_keeps_serving(
    listener: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pynetdicom._config

    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)  # send file bytes as they are
    no_study = make_ct()
    del no_study.StudyInstanceUID
    assoc = _associate(listener)
    assert assoc.send_c_store(no_study).Status == STATUS_CANNOT_UNDERSTAND
    assert assoc.send_c_store(_garbage_file(tmp_path / "garbage.dcm")).Status == STATUS_CANNOT_UNDERSTAND
    good = tmp_path / "good.dcm"
    make_ct().save_as(good, enforce_file_format=True)
    assert assoc.send_c_store(good).Status == 0x0000
    assoc.release()

    second = _associate(listener)
    assert second.send_c_store(make_ct(patient_id="PID2")).Status == 0x0000
    second.release()

    first_batch, second_batch = IngestBatch.objects.order_by("created_at")
    statuses = list(first_batch.items.order_by("index").values_list("status", "reason_code"))
    assert statuses[0] == (ItemStatus.REJECTED, "missing_uid")
    assert statuses[1][0] == ItemStatus.REJECTED and statuses[2] == (ItemStatus.DONE, "")
    assert _names(second_batch) == ["association-2-1.dcm"]
    assert IngestItem.objects.filter(status=ItemStatus.DONE).count() == 2


def test_values_too_long_are_refused_and_an_unstorable_file_is_out_of_resources(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not stored means a failure status: rejected at parse time (0xC000), or the encrypted
    store failing (0xA700). A file stored and quarantined later was stored: 0x0000."""
    from anonymizer import quarantine
    from anonymizer.listener import STATUS_OUT_OF_RESOURCES

    overlong = make_ct()
    overlong.Modality = "COMPUTEDTOMOGRAPHY"  # 18 characters; CS allows 16
    assoc = _associate(listener)
    assert assoc.send_c_store(overlong).Status == STATUS_CANNOT_UNDERSTAND

    def full_disk(**kwargs: object) -> str:
        raise OSError("No space left on device")

    monkeypatch.setattr(quarantine, "raw_store", full_disk)
    assert assoc.send_c_store(make_ct()).Status == STATUS_OUT_OF_RESOURCES
    monkeypatch.undo()
    assert assoc.send_c_store(make_ct()).Status == 0x0000
    from anonymizer import services
    from anonymizer.processing import QUARANTINED, Outcome

    held = Outcome(QUARANTINED, "verifier_leak", "Verification found identifying content left in 1 place(s).")
    monkeypatch.setattr(services, "process_file", lambda raw, **kwargs: held)
    assert assoc.send_c_store(make_ct()).Status == 0x0000  # stored, then quarantined: it was stored
    assoc.release()

    batch = IngestBatch.objects.get()
    items = list(batch.items.order_by("index").values_list("status", "reason_code"))
    # The refused store left no item behind: only what the peer was told is stored exists.
    assert items == [
        (ItemStatus.REJECTED, "value_too_long"),
        (ItemStatus.DONE, ""),
        (ItemStatus.QUARANTINED, "verifier_leak"),
    ]
