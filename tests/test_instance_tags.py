"""The tag browser's API: the de-identified header of the stored file, nothing from the raw one."""

from __future__ import annotations

import json

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.helpers import CT_SMALL, ingest
from workbench.dicom_tags import header_tags
from workbench.models import Instance


@pytest.fixture
def ingested(project_a, cast, run_tasks) -> Instance:  # type: ignore[no-untyped-def]
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    return Instance.objects.get()


def _flat(rows: list[dict]) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in rows:
        out.setdefault(row["keyword"], row["value"])
        for item in row.get("items", []):
            for k, v in _flat(item).items():
                out.setdefault(k, v)
    return out


@pytest.mark.django_db
def test_tags_come_from_the_deidentified_file_only(api_as, ingested) -> None:
    raw = pydicom.dcmread(CT_SMALL)
    with default_storage.open(ingested.storage_path, "rb") as fh:
        stored = pydicom.dcmread(fh)
    response = api_as("bob").get(reverse("api-instance-tags", args=[ingested.pk]))
    assert response.status_code == 200
    body = response.json()
    tags = _flat(body["tags"])
    assert tags["PatientID"] == str(stored.PatientID)
    assert tags["StudyInstanceUID"] == str(stored.StudyInstanceUID)
    assert tags["PixelData"] == f"<{len(stored.PixelData)} bytes>"
    text = json.dumps(body)
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID", "PatientBirthDate"):
        value = str(raw.get(keyword, "") or "")
        if value and value != str(stored.get(keyword, "")):
            assert value not in text, f"the raw {keyword} leaked"
    assert str(raw.PatientID) not in text


@pytest.mark.django_db
def test_outsider_gets_404(api_as, ingested) -> None:
    response = api_as("charlie").get(reverse("api-instance-tags", args=[ingested.pk]))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_sequences_nest_and_bulk_data_is_a_length() -> None:
    ds = Dataset()
    ds.PatientID = "ANON1"
    item = Dataset()
    item.CodeValue = "T-D3000"
    ds.AnatomicRegionSequence = Sequence([item])
    ds.add_new(0x7FE00010, "OW", b"\x00" * 32)
    rows = header_tags(ds)
    by = {r["keyword"]: r for r in rows}
    assert by["PatientID"] == {"tag": "(0010,0020)", "keyword": "PatientID", "vr": "LO", "value": "ANON1"}
    assert by["AnatomicRegionSequence"]["value"] == "1 item"
    assert by["AnatomicRegionSequence"]["items"][0][0]["value"] == "T-D3000"
    assert by["PixelData"]["value"] == "<32 bytes>"
