"""Nothing stuck: every failure, wherever it happens, ends the item with its reason.

Corrupt file meta, values longer than their VR or column allows, exceptions in the engine and
in the catalog write: the item ends REJECTED or QUARANTINED with a reason in words, nothing
half-written stays in the catalog, and the batch finishes. The catalog checks are explicit
(SQLite does not enforce column lengths); the PostgreSQL-only test shows the rollback when
the database itself refuses a row.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from django.core.files.storage import default_storage, storages
from django.db import DataError, connection

from anonymizer import claims, processing, quarantine, recovery, review, selectors, services
from anonymizer.deid import DeidOptions, PseudonymKeys
from anonymizer.deid.tests.factory import make_ct
from anonymizer.models import IngestBatch, IngestItem, ItemStatus
from anonymizer.processing import QUARANTINED, REJECTED, corrupt_meta_element, process_file, read_checked
from anonymizer.reasons import REASONS, reason_text
from tests.helpers import ingest
from workbench.demo import to_bytes
from workbench.models import AuditEvent, Instance, Patient, Series, Study

KEYS = PseudonymKeys(secret=b"k" * 32)


def _with_meta_vr(raw: bytes, tag: bytes, vr: bytes) -> bytes:
    at = raw.index(tag, 132)
    return raw[: at + 4] + vr + raw[at + 6 :]


MSC = b"\x02\x00\x02\x00"  # (0002,0002) Media Storage SOP Class UID
TSUID = b"\x02\x00\x10\x00"  # (0002,0010) Transfer Syntax UID


def _finished(batch: IngestBatch) -> bool:
    return selectors.batch_state(selectors.batch_counts(batch)) == "finished"


def _stored_files(folder: str = "") -> list[str]:
    if not default_storage.exists(folder or "."):
        return []
    folders, files = default_storage.listdir(folder)
    found = [f"{folder}/{name}" for name in files]
    for sub in folders:
        found += _stored_files(f"{folder}/{sub}".lstrip("/"))
    return found


def _ct(**attributes: Any) -> bytes:
    ds = make_ct()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return to_bytes(ds)


# --- reading: only InputError, with the element named ---------------------------------------------


@pytest.mark.parametrize(
    ("tag", "vr", "named"),
    [(MSC, b"ZZ", "(0002,0002)"), (TSUID, b"ZZ", "(0002,0010)"), (TSUID, b"ui", "(0002,0010)")],
)
def test_corrupt_file_meta_vr_is_rejected_naming_the_element(tag: bytes, vr: bytes, named: str) -> None:
    raw = _with_meta_vr(to_bytes(make_ct()), tag, vr)
    assert corrupt_meta_element(raw) == named
    outcome = process_file(raw, options=DeidOptions(), keys=KEYS, detector=None)
    assert (outcome.status, outcome.code) == (REJECTED, "bad_file_meta")
    assert named in outcome.message


def test_file_meta_cut_inside_an_element_is_named() -> None:
    raw = to_bytes(make_ct())
    at = raw.index(MSC, 132)
    assert corrupt_meta_element(raw[: at + 12]) == "(0002,0002)"  # its value runs past the end
    assert corrupt_meta_element(raw) == ""
    outcome = process_file(raw[: at + 12], options=DeidOptions(), keys=KEYS, detector=None)
    assert outcome.status == REJECTED and outcome.code in ("bad_file_meta", "truncated")


def test_a_sound_file_meta_is_not_blamed() -> None:
    no_uid = make_ct()
    del no_uid.SOPInstanceUID
    with pytest.raises(processing.InputError) as caught:
        read_checked(to_bytes(no_uid))
    assert caught.value.code == "missing_uid"


@pytest.mark.parametrize(
    ("keyword", "value", "limit"),
    [("Modality", "ULTRASOUNDWITHDOPPLER", 16), ("SOPClassUID", "1.2." + "3" * 70, 64)],
)
def test_values_longer_than_their_vr_are_rejected_at_read(keyword: str, value: str, limit: int) -> None:
    with pytest.raises(processing.InputError) as caught:
        read_checked(_ct(**{keyword: value}))
    assert caught.value.code == "value_too_long"
    assert keyword in caught.value.message and f"at most {limit}" in caught.value.message
    assert value not in caught.value.message


def test_every_reason_code_the_pipeline_writes_has_words() -> None:
    codes = {"bad_file_meta", "value_too_long", "catalog_error", "store_error", "internal_error", "raw_unreadable"}
    codes |= {"verify_error", "verifier_leak", "no_text_detector", "pixel_decode_error", "truncated", "not_dicom"}
    assert codes <= set(REASONS)
    assert reason_text("no_such_code")  # an unknown code still reads as a sentence


# --- the pipeline: every item ends, with its reason -----------------------------------------------


@pytest.mark.django_db
def test_corrupt_file_meta_ends_rejected_and_the_batch_finishes(project_a, run_tasks) -> None:
    with run_tasks():
        batch = ingest(project_a, {"a.dcm": _with_meta_vr(to_bytes(make_ct()), MSC, b"ZZ"), "b.dcm": _ct()})
    bad, good = batch.items.order_by("index")
    assert (bad.status, bad.reason_code) == (ItemStatus.REJECTED, "bad_file_meta")
    assert "(0002,0002)" in bad.reason
    assert not storages["quarantine"].exists(bad.raw_path)  # rejected input keeps no bytes
    assert good.status == ItemStatus.DONE
    assert _finished(batch)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("keyword", "value"), [("Modality", "M" * 17), ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2." + "9" * 40)]
)
def test_overlong_catalog_values_end_rejected_with_reason(project_a, run_tasks, keyword: str, value: str) -> None:
    with run_tasks():
        batch = ingest(project_a, {"a.dcm": _ct(**{keyword: value})})
    item = batch.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.REJECTED, "value_too_long")
    assert keyword in item.reason and value not in item.reason
    assert not Instance.objects.exists()
    assert _finished(batch)


@pytest.mark.django_db
def test_the_catalog_checks_lengths_itself_when_the_read_did_not(project_a, run_tasks, monkeypatch) -> None:
    """Defence in depth: the column lengths are checked before the database sees them."""
    monkeypatch.setattr(processing, "_check_value_lengths", lambda ds: None)
    with run_tasks():
        batch = ingest(project_a, {"a.dcm": _ct(Modality="M" * 17)})
    item = batch.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.REJECTED, "value_too_long")
    assert "Modality (0008,0060)" in item.reason
    assert not Patient.objects.exists() and not Study.objects.exists()  # nothing half-written
    assert _stored_files() == []  # the de-identified file written before the catalog was deleted
    assert _finished(batch)


@pytest.mark.django_db
def test_values_that_can_be_shortened_are_and_the_file_is_stored(project_a, run_tasks) -> None:
    description = "AX T1 5MM POST CONTRAST " * 5  # over the column's 64 characters
    with run_tasks():
        ingest(project_a, {"a.dcm": _ct(SeriesDescription=description, InstanceNumber="99999999999")})
    item = IngestItem.objects.get()
    assert item.status == ItemStatus.DONE, item.reason
    series = Series.objects.get()
    assert 0 < len(series.description) <= Series._meta.get_field("description").max_length
    assert Instance.objects.get().number is None  # beyond the integer column: not kept in the catalog


@pytest.mark.django_db
def test_an_exception_in_the_catalog_write_quarantines_and_rolls_back(project_a, run_tasks, monkeypatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise DataError("value too long for type character varying(16)")

    monkeypatch.setattr(services, "_report_save", refuse)
    with run_tasks():
        batch = ingest(project_a, {"a.dcm": _ct()})
    item = batch.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.QUARANTINED, "catalog_error")
    assert "DataError" in item.reason
    assert not Instance.objects.exists() and not Series.objects.exists() and not Patient.objects.exists()
    assert item.instance_id is None
    assert storages["quarantine"].exists(item.raw_path)  # kept for the compliance officer
    assert _finished(batch)
    assert AuditEvent.objects.filter(action="deidentify_failed", object_id=str(item.pk)).exists()
    assert not AuditEvent.objects.filter(action="deidentified").exists()
    # Once the cause is gone, re-processing stores it.
    monkeypatch.undo()
    with run_tasks():
        review.item_reprocess(item=item, user=None)
    item.refresh_from_db()
    assert item.status == ItemStatus.DONE and Instance.objects.count() == 1


@pytest.mark.django_db
def test_a_failure_after_the_catalog_write_keeps_the_raw_file(project_a, run_tasks, monkeypatch, settings) -> None:
    settings.QUARANTINE_RETENTION_DAYS = 0  # a stored item's raw file is deleted... only on commit
    real = services.audit_record

    def audit(**kwargs: Any) -> Any:
        if kwargs["action"] == "deidentified":
            raise RuntimeError("audit storage unavailable")
        return real(**kwargs)

    monkeypatch.setattr(services, "audit_record", audit)
    with run_tasks():
        batch = ingest(project_a, {"a.dcm": _ct()})
    item = batch.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.QUARANTINED, "store_error")
    assert not Instance.objects.exists()
    assert storages["quarantine"].exists(item.raw_path)
    assert _finished(batch)


@pytest.mark.django_db
def test_an_unexpected_engine_exception_quarantines(project_a, run_tasks, monkeypatch, caplog) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise KeyError("PLANTED-VALUE-IN-EXCEPTION")

    monkeypatch.setattr(services, "process_file", explode)
    with caplog.at_level(logging.ERROR), run_tasks():
        batch = ingest(project_a, {"a.dcm": _ct()})
    item = batch.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.QUARANTINED, "internal_error")
    assert "KeyError" in item.reason and "PLANTED" not in item.reason
    assert "PLANTED" not in caplog.text  # exception type names only
    assert _finished(batch)


@pytest.mark.django_db
def test_a_lost_raw_file_quarantines_instead_of_raising(project_a, run_tasks, monkeypatch) -> None:
    monkeypatch.setattr(services, "_detector", lambda: None)
    batch = ingest(project_a, {"a.dcm": _ct()})  # enqueued, not yet processed
    item = batch.items.get()
    quarantine.raw_delete(item.raw_path)
    services.item_deidentify(item_id=str(item.pk))
    item.refresh_from_db()
    assert (item.status, item.reason_code) == (ItemStatus.QUARANTINED, "raw_unreadable")
    discarded = review.item_discard(item=item, user=None)  # and the officer can still clear it
    assert discarded.status == ItemStatus.DISCARDED


@pytest.mark.django_db(transaction=True)
def test_postgresql_refusing_a_row_is_rolled_back_and_quarantined(project_a, monkeypatch) -> None:
    """Without the explicit checks, PostgreSQL refuses the row: the item still ends quarantined."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL enforces column lengths (CI runs this on PostgreSQL)")
    from anonymizer import catalog_fit

    real = catalog_fit.catalog_fields

    def unchecked(result: Any) -> Any:
        fields = real(result)
        fields.series["modality"] = "M" * 40  # what the database would have seen without the check
        return fields

    monkeypatch.setattr(services, "catalog_fields", unchecked)
    batch = ingest(project_a, {"a.dcm": _ct()})  # autocommit: the task ran on commit
    item = batch.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.QUARANTINED, "catalog_error")
    assert not Patient.objects.exists() and not Instance.objects.exists()
    assert _finished(batch)


def test_process_file_quarantines_when_verification_cannot_run(monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(processing, "verify", broken)
    outcome = process_file(_ct(), options=DeidOptions(), keys=KEYS, detector=None)
    assert (outcome.status, outcome.code) == (QUARANTINED, "verify_error")


# --- items no worker finished ---------------------------------------------------------------------


@pytest.mark.django_db
def test_items_a_worker_lost_are_sent_again_then_quarantined(project_a, run_tasks) -> None:
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    batch = ingest(project_a, {"a.dcm": _ct(), "b.dcm": _ct()})  # enqueued; the "worker" dies
    first, second = batch.items.order_by("index")
    long_ago = timezone.now() - claims.claim_lease() - timedelta(minutes=1)
    IngestItem.objects.filter(pk=first.pk).update(status=ItemStatus.PROCESSING, attempts=1, updated_at=long_ago)
    IngestItem.objects.filter(pk=second.pk).update(
        status=ItemStatus.PROCESSING, attempts=recovery.MAX_CLAIMS, updated_at=long_ago
    )
    assert not _finished(batch)
    out = io.StringIO()
    with run_tasks():
        call_command("purge_quarantine", stdout=out)  # the sweep (cron) sends it again
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == ItemStatus.DONE
    assert (second.status, second.reason_code) == (ItemStatus.QUARANTINED, "worker_lost")
    assert "Re-queued 1" in out.getvalue()
    assert _finished(batch)
    assert recovery.items_recover_stale() == (0, 0)  # finished items are left alone


def test_the_offline_door_quarantines_a_file_the_engine_chokes_on(tmp_path, monkeypatch) -> None:
    import json

    from django.core.management import call_command

    from anonymizer import offline

    real = offline.process_file

    def choke_on_second(raw: bytes, **kwargs: Any) -> Any:
        if b"SECOND" in raw:
            raise MemoryError
        return real(raw, **kwargs)

    monkeypatch.setattr(offline, "process_file", choke_on_second)
    monkeypatch.setenv("WORKBENCH_DEID_SECRET", "ab" * 32)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.dcm").write_bytes(_ct(SeriesDescription="FIRST"))
    (tmp_path / "in" / "b.dcm").write_bytes(_ct(SeriesDescription="SECOND"))
    call_command("deidentify", str(tmp_path / "in"), str(tmp_path / "out"), "--workers", "1", "--no-progress")
    assert len([p for p in (tmp_path / "out").rglob("*.dcm")]) == 1
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "out-quarantine").glob("*.json")]
    assert (record["status"], record["code"]) == ("quarantined", "internal_error")
