"""``manage.py deidentify``: offline de-identification of a folder tree."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pydicom
import pytest
from django.core.management import CommandError, call_command

from anonymizer import services
from anonymizer.deid.tests.factory import make_ct

PHI_NAMES = ("DOE_JOHN_PID12345", "scan-001")  # planted in input folder and file names
PHI_VALUES = (
    "DOE",
    "JOHN",
    "ROE^RICHARD",
    "PID12345",
    "PID777",
    "MRN-998877",
    "ACC20240001",
    "19280305",
    "Wallaby",
    "555-0134-777",
    "Saint Example Hospital",
    "HOUSE^GREGORY",
    "CTSTATION01",
    "SN-4455-XYZ",
)


def _corpus(root: Path) -> dict[str, list[str]]:
    """Three CTs of two patients, one non-DICOM file, one truncated CT; returns original UIDs."""
    patient_dir = root / PHI_NAMES[0]
    patient_dir.mkdir(parents=True)
    uids: dict[str, list[str]] = {"sop": [], "study": [], "series": []}
    for number, (name, pid) in enumerate([("DOE^JOHN", "PID12345")] * 2 + [("ROE^RICHARD", "PID777")]):
        ds = make_ct(patient_name=name, patient_id=pid)
        ds.save_as(patient_dir / f"scan-00{number + 1}.dcm", enforce_file_format=True)
        uids["sop"].append(str(ds.SOPInstanceUID))
        uids["study"].append(str(ds.StudyInstanceUID))
        uids["series"].append(str(ds.SeriesInstanceUID))
    (root / "notes DOE JOHN.txt").write_text("not an image")
    whole = (patient_dir / "scan-001.dcm").read_bytes()
    (root / "truncated.dcm").write_bytes(whole[: len(whole) // 2])
    return uids


def _run(in_dir: Path, out_dir: Path, *args: str) -> None:
    call_command("deidentify", str(in_dir), str(out_dir), "--no-progress", *args)


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("WORKBENCH_DEID_SECRET", raising=False)
    return tmp_path / "keys" / "deid.key"


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_outputs_are_pseudonymous_dcm_files_only(tmp_path: Path, key_file: Path) -> None:
    uids = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    _run(tmp_path / "in", out, "--workers", "1", "--key-file", str(key_file))

    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 3 and all(p.suffix == ".dcm" for p in files)
    names = " ".join(str(p.relative_to(out)) for p in out.rglob("*"))
    for value in (*PHI_NAMES, "DOE", "notes", "truncated", *uids["sop"], *uids["study"], *uids["series"]):
        assert value not in names
    content = _all_bytes(out)
    for value in (*PHI_VALUES, *uids["sop"], *uids["study"], *uids["series"]):
        assert value.encode() not in content, value
    for path in files:
        ds = pydicom.dcmread(path)
        patient, study, series, sop = path.relative_to(out).with_suffix("").parts
        assert (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == (
            patient,
            study,
            series,
            sop,
        )
    assert len({p.parts[-4] for p in files}) == 2  # two patients


def test_failures_are_quarantined_outside_out_dir_with_reasons(tmp_path: Path, key_file: Path) -> None:
    _corpus(tmp_path / "in")
    _run(tmp_path / "in", tmp_path / "out", "--workers", "1", "--key-file", str(key_file))

    quarantine = tmp_path / "out-quarantine"
    reasons = {json.loads(p.read_text())["code"] for p in quarantine.glob("*.json")}
    assert reasons == {"not_dicom", "truncated"}
    assert sorted(p.suffix for p in quarantine.iterdir()) == [".bin", ".bin", ".json", ".json"]
    for meta in quarantine.glob("*.json"):
        body = json.loads(meta.read_text())
        raw = (quarantine / f"{body['index']}.bin").read_bytes()
        assert hashlib.sha256(raw).hexdigest() == body["sha256"] and body["message"]


def test_report_lies_beside_out_dir_and_names_no_input(tmp_path: Path, key_file: Path) -> None:
    _corpus(tmp_path / "in")
    _run(tmp_path / "in", tmp_path / "out", "--workers", "1", "--key-file", str(key_file))

    text = (tmp_path / "out-report.json").read_text()
    report = json.loads(text)
    assert report["counts"] == {"total": 5, "ok": 3, "duplicate": 0, "rejected": 2, "quarantined": 0}
    assert report["verifier_leaks"] == 0 and len(report["recipe_sha256"]) == 64
    assert report["options"]["clean_pixel_data"] is True and str(key_file) in report["key"]["source"]
    assert [f["index"] for f in report["files"]] == [0, 1, 2, 3, 4]
    assert {f["status"] for f in report["files"]} == {"ok", "rejected"}
    assert all((tmp_path / "out" / f["output"]).is_file() for f in report["files"] if f["status"] == "ok")
    for value in (*PHI_NAMES, "notes", "truncated.dcm", "PID12345"):
        assert value not in text


def test_same_key_gives_same_names_other_key_other_names(tmp_path: Path, key_file: Path) -> None:
    _corpus(tmp_path / "in")
    for out in ("a", "b"):
        _run(tmp_path / "in", tmp_path / out, "--workers", "1", "--key-file", str(key_file))
    _run(tmp_path / "in", tmp_path / "c", "--workers", "1", "--key-file", str(tmp_path / "other.key"))

    def names(out: str) -> set[str]:
        return {str(p.relative_to(tmp_path / out)) for p in (tmp_path / out).rglob("*.dcm")}

    assert names("a") == names("b") and len(names("a")) == 3
    assert not names("a") & names("c")


def test_duplicates_are_written_once_with_a_worker_pool(tmp_path: Path, key_file: Path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    make_ct().save_as(in_dir / "a.dcm", enforce_file_format=True)
    shutil.copy(in_dir / "a.dcm", in_dir / "b.dcm")
    make_ct(patient_id="PID9").save_as(in_dir / "c.dcm", enforce_file_format=True)
    _run(in_dir, tmp_path / "out", "--workers", "2", "--key-file", str(key_file))

    report = json.loads((tmp_path / "out-report.json").read_text())
    assert report["counts"]["ok"] == 2 and report["counts"]["duplicate"] == 1 and report["workers"] == 2
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]


def test_refuses_quarantine_or_report_inside_out_dir(tmp_path: Path, key_file: Path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(CommandError, match="quarantine"):
        _run(tmp_path / "in", tmp_path / "out", "--quarantine", str(tmp_path / "out" / "q"))
    with pytest.raises(CommandError, match="report"):
        _run(tmp_path / "in", tmp_path / "out", "--report", str(tmp_path / "out" / "r.json"))
    with pytest.raises(CommandError, match="IN_DIR"):
        _run(tmp_path / "in", tmp_path / "in" / "out")
    assert not (tmp_path / "out").exists()


def test_key_file_is_created_once_and_env_secret_wins(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anonymizer.offline import load_secret

    secret, source = load_secret(key_file)
    assert len(secret) == 32 and str(key_file) in source and key_file.stat().st_mode & 0o077 == 0
    assert load_secret(key_file)[0] == secret
    monkeypatch.setenv("WORKBENCH_DEID_SECRET", "ab" * 20)
    assert load_secret(key_file) == (b"\xab" * 20, "environment variable WORKBENCH_DEID_SECRET")


@pytest.mark.django_db
def test_project_options_and_secret(tmp_path: Path, project_a, key_file: Path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    make_ct(patient_id="PID12345").save_as(in_dir / "x.dcm", enforce_file_format=True)
    _run(in_dir, tmp_path / "out", "--workers", "1", "--project", project_a.slug)

    [output] = (tmp_path / "out").rglob("*.dcm")
    assert output.relative_to(tmp_path / "out").parts[0] == services.project_keys(project_a).patient_id("PID12345")
    report = json.loads((tmp_path / "out-report.json").read_text())
    assert report["key"]["source"] == f"project {project_a.slug}" and not key_file.exists()
