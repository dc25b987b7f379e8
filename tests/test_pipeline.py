"""The de-identification pipeline across files, batches and project options."""

from __future__ import annotations

import base64
import io
from datetime import date

import pydicom
import pytest
from django.core.files.storage import storages

from anonymizer import services
from anonymizer.deid import DeidOptions
from anonymizer.deid.tests.factory import make_ct, make_us
from anonymizer.models import IngestItem, ItemStatus
from tests.helpers import ingest, stored_bytes
from workbench.demo import to_bytes
from workbench.models import Instance, Patient, Study

PLANTED = ["HARRIS", "MARGARET", "MRN0041177", "Wallaby", "555-0134", "Saint Example", "HOUSE", "19280305"]


def _read(instance: Instance) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(stored_bytes(instance.storage_path)))


def _day(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


@pytest.mark.django_db
def test_follow_up_study_lands_on_the_same_patient_with_intervals_kept(project_a, run_tasks) -> None:
    first = make_ct(patient_name="HARRIS^MARGARET", patient_id="MRN0041177", study_date="20240110")
    follow = make_ct(
        patient_name="HARRIS^MARGARET",
        patient_id="MRN0041177",
        study_date="20240305",
        referenced_uid=first.SOPInstanceUID,
    )
    other = make_ct(patient_name="OKAFOR^DANIEL", patient_id="MRN0058213", study_date="20240110")
    with run_tasks():
        ingest(project_a, {"a.dcm": to_bytes(first)})
    with run_tasks():
        ingest(project_a, {"b.dcm": to_bytes(follow), "c.dcm": to_bytes(other)})
    assert Patient.objects.count() == 2
    assert Study.objects.count() == 3
    by_patient: dict[str, list[str]] = {}
    for study in Study.objects.select_related("patient"):
        by_patient.setdefault(study.patient.pseudo_id, []).append(study.study_date)
    two = next(dates for dates in by_patient.values() if len(dates) == 2)
    assert abs((_day(max(two)) - _day(min(two))).days) == 55  # 2024-01-10 -> 2024-03-05
    assert "20240110" not in two
    # The follow-up's reference to the first instance resolves to its pseudonymous UID.
    first_sop = services.project_keys(project_a).uid(first.SOPInstanceUID)
    assert Instance.objects.filter(sop_uid=first_sop).exists()
    follow_sop = services.project_keys(project_a).uid(follow.SOPInstanceUID)
    follow_out = _read(Instance.objects.get(sop_uid=follow_sop))
    refs = [e.value for e in follow_out.iterall() if e.keyword == "ReferencedSOPInstanceUID"]
    assert first_sop in refs


@pytest.mark.django_db
def test_strict_safe_harbor_project_reduces_dates_to_the_year(project_a, run_tasks) -> None:
    project_a.deid_options = DeidOptions.safe_harbor_strict().to_dict()
    project_a.save()
    with run_tasks():
        ingest(project_a, {"a.dcm": to_bytes(make_ct(study_date="20240617"))})
    ds = _read(Instance.objects.get())
    assert ds.StudyDate == "20240101"
    assert ds.SeriesDate == "20240101" and ds.get("StudyTime", "") in ("", None)
    # Reducing precision is a modification of dates in PS3.15's sense (E.3.6).
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


@pytest.mark.django_db
def test_output_has_no_planted_identity_anywhere(project_a, run_tasks) -> None:
    ds = make_ct(patient_name="HARRIS^MARGARET", patient_id="MRN0041177")
    with run_tasks():
        ingest(project_a, {"HARRIS_MARGARET.dcm": to_bytes(ds)})
    instance = Instance.objects.get()
    data = stored_bytes(instance.storage_path).upper()
    for value in PLANTED:
        assert value.upper().encode() not in data, value
        assert value.upper() not in instance.storage_path.upper()
    assert "HARRIS" not in instance.storage_path.upper()


@pytest.mark.django_db
def test_quarantine_holds_raw_bytes_encrypted_only(project_a, run_tasks, settings) -> None:
    settings.QUARANTINE_RETENTION_DAYS = 30  # keep the raw file after success, to look at it
    with run_tasks():
        ingest(project_a, {"a.dcm": to_bytes(make_ct(patient_name="HARRIS^MARGARET"))})
    item = IngestItem.objects.get()
    with storages["quarantine"].open(item.raw_path, "rb") as fh:
        blob = fh.read()
    # A Fernet token (base64 text): four given letters turn up in ~700 kB of base64 one run in
    # twenty-five, so the markers are looked for in the decoded ciphertext, which is random.
    token = base64.urlsafe_b64decode(blob)
    assert token[0] == 0x80  # Fernet version byte: the whole file is one encrypted token
    assert b"HARRIS" not in token and b"DICM" not in token
    assert services.quarantine_purge() == 0
    from datetime import timedelta

    from django.utils import timezone

    assert services.quarantine_purge(now=timezone.now() + timedelta(days=31)) == 1
    assert not storages["quarantine"].exists(item.raw_path)


@pytest.mark.django_db
def test_a_verifier_hit_quarantines_with_a_reason_and_no_value(project_a, run_tasks, monkeypatch) -> None:
    from anonymizer import processing

    real = processing.deidentify

    def leaky(ds, **kwargs):  # type: ignore[no-untyped-def]
        result = real(ds, **kwargs)
        result.dataset.ImageComments = "seen by HARRIS MARGARET"
        return result

    monkeypatch.setattr(processing, "deidentify", leaky)
    with run_tasks():
        ingest(project_a, {"a.dcm": to_bytes(make_ct(patient_name="HARRIS^MARGARET"))})
    item = IngestItem.objects.get()
    assert item.status == ItemStatus.QUARANTINED and item.reason_code == "verifier_leak"
    assert "(0020,4000)" in item.reason and "HARRIS" not in item.reason.upper()
    assert not Instance.objects.exists()


@pytest.mark.django_db
def test_item_task_is_idempotent(project_a, run_tasks) -> None:
    with run_tasks():
        ingest(project_a, {"a.dcm": to_bytes(make_ct())})
    item = IngestItem.objects.get()
    assert services.item_deidentify(item_id=str(item.pk)) is None  # already done: skipped
    assert Instance.objects.count() == 1


@pytest.mark.django_db
def test_burned_in_text_is_removed_through_the_pipeline(project_a, run_tasks) -> None:
    with run_tasks():
        ingest(project_a, {"us.dcm": to_bytes(make_us(text="HARRIS MRN0041177"))})
    instance = Instance.objects.get()
    assert instance.pixel_cleaned
    pixels = _read(instance).pixel_array
    assert pixels[40:70, 40:300].max() == 0  # where the text was drawn
