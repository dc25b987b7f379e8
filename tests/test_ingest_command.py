"""``manage.py ingest PATH --project SLUG``: a folder tree through the ingest pipeline."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from pydicom.data import get_testdata_file

from anonymizer.deid.tests.factory import make_ct
from anonymizer.models import IngestBatch, IngestItem, ItemStatus, Source
from workbench.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit tasks run as each file commits


def _dicom_bytes(**kwargs: str) -> bytes:
    buffer = io.BytesIO()
    make_ct(**kwargs).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _tree(root: Path) -> None:
    """2 good CTs, a text file, a truncated CT, a DICOMDIR, a zip with one good and one ../ member."""
    (root / "DOE_JOHN" / "series1").mkdir(parents=True)
    (root / "DOE_JOHN" / "series1" / "1.dcm").write_bytes(_dicom_bytes(patient_id="PID1"))
    (root / "DOE_JOHN" / "series1" / "2.dcm").write_bytes(_dicom_bytes(patient_id="PID1"))
    (root / "readme.txt").write_text("not dicom")
    whole = _dicom_bytes(patient_id="PID2")
    (root / "truncated.dcm").write_bytes(whole[: len(whole) - 1000])
    (root / "DICOMDIR").write_bytes(Path(get_testdata_file("DICOMDIR")).read_bytes())
    (root / ".DS_Store").write_bytes(b"hidden junk")
    with zipfile.ZipFile(root / "bundle.zip", "w") as archive:
        archive.writestr("inner/3.dcm", _dicom_bytes(patient_id="PID3"))
        archive.writestr("../escape.dcm", _dicom_bytes(patient_id="PID4"))


def _statuses(batch: IngestBatch) -> dict[str, str]:
    return {item.reason_code or "ok": item.status for item in batch.items.all()}


def test_folder_counts_per_status(tmp_path: Path, project_a, capsys: pytest.CaptureFixture[str]) -> None:
    _tree(tmp_path / "in")
    call_command("ingest", str(tmp_path / "in"), "--project", project_a.slug)

    batch = IngestBatch.objects.get()
    assert batch.source == Source.FOLDER and batch.project == project_a and batch.created_by is None
    assert _statuses(batch) == {
        "ok": ItemStatus.DONE,
        "not_dicom": ItemStatus.REJECTED,
        "truncated": ItemStatus.REJECTED,
        "dicomdir": ItemStatus.REJECTED,
        "unsafe_zip_member": ItemStatus.REJECTED,
    }
    assert batch.items.filter(status=ItemStatus.DONE).count() == 3
    assert batch.items.count() == 7 and Instance.objects.count() == 3
    out = capsys.readouterr().out
    assert f"batch {batch.pk}" in out
    assert "finished: total=7 done=3 rejected=4" in out
    assert "DOE_JOHN" not in out and "readme" not in out


def test_single_file_and_user(tmp_path: Path, cast, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.dcm"
    path.write_bytes(_dicom_bytes())
    call_command("ingest", str(path), "--project", "alpha", "--user", "alice", "--wait", "--interval", "0.1")

    item = IngestItem.objects.get()
    assert item.status == ItemStatus.DONE and item.batch.created_by == cast["alice"]
    assert "finished: total=1 done=1" in capsys.readouterr().out


def test_same_folder_twice_gives_duplicates(tmp_path: Path, project_a, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.dcm").write_bytes(_dicom_bytes())
    call_command("ingest", str(tmp_path / "in"), "--project", "alpha")
    call_command("ingest", str(tmp_path / "in"), "--project", "alpha")
    assert "finished: total=1 duplicate=1" in capsys.readouterr().out.splitlines()[-1]


def test_unknown_project_user_or_path(tmp_path: Path, project_a) -> None:
    with pytest.raises(CommandError, match="project"):
        call_command("ingest", str(tmp_path), "--project", "nope")
    with pytest.raises(CommandError, match="user"):
        call_command("ingest", str(tmp_path), "--project", "alpha", "--user", "nobody")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("ingest", str(tmp_path / "missing"), "--project", "alpha")
    assert not IngestBatch.objects.exists()
