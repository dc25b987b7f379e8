"""The dicom export: the de-identified files byte for byte, checked against the manifest, with annotations.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pydicom
import pytest

from datasets.exporters import get_exporter
from datasets.exporters.base import ExportError, ExportInput, GeometryMismatch
from datasets.exporters.dicom import DicomExporter
from datasets.tests.factory import make_version

SLICES = 4


def export(data: ExportInput, out: Path) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    DicomExporter().export(data, out, progress=lambda done, total: calls.append((done, total)))
    return calls


def digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def version(tmp_path: Path) -> ExportInput:
    (tmp_path / "src").mkdir()
    return make_version(tmp_path / "src", patients=4, slices=SLICES)


def test_it_is_registered() -> None:
    assert isinstance(get_exporter("dicom"), DicomExporter)


def test_files_are_the_manifest_files_in_spatial_order(version: ExportInput, tmp_path: Path) -> None:
    out = tmp_path / "out"
    calls = export(version, out)
    assert calls == [(n, len(version.samples)) for n in range(1, len(version.samples) + 1)]
    assert {s.split for s in version.samples} == {"train", "validation", "test"}
    expected = {"annotations.json"}
    for sample in version.samples:
        folder = out / sample.split / sample.patient / sample.study_uid / sample.series_uid
        for number, instance in enumerate(sample.instances):
            path = folder / f"{number:04d}.dcm"
            expected.add(path.relative_to(out).as_posix())
            assert hashlib.sha256(path.read_bytes()).hexdigest() == instance.sha256
            assert path.read_bytes() == version.path_of(instance.sop_uid).read_bytes()
            ds = pydicom.dcmread(path)
            assert ds.SOPInstanceUID == instance.sop_uid and ds.SeriesInstanceUID == sample.series_uid
        positions = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in sorted(folder.glob("*.dcm"))]
        assert positions == [i.position for i in sample.instances]
    assert set(digests(out)) == expected  # nothing else is written


def test_annotations_travel_with_the_images(version: ExportInput, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(version, out)
    document = json.loads((out / "annotations.json").read_text())
    assert document["version"] == version.version_id
    assert [label["name"] for label in document["labels"]] == ["Lesion", "Nodule box", "Organ", "Normal"]
    assert [s["key"] for s in document["samples"]] == [s.key for s in version.samples]
    frozen = {s["key"]: s for s in version.manifest["samples"]}
    for described in document["samples"]:
        source = frozen[described["key"]]
        assert described["instances"] == [
            {
                "sop_uid": i["sop_uid"],
                "file": f"{source['split']}/{source['patient']}/{source['study_uid']}/{source['series_uid']}/"
                f"{n:04d}.dcm",
            }
            for n, i in enumerate(source["instances"])
        ]
        assert len(described["annotations"]) == len(source["annotations"])
        for written, original in zip(described["annotations"], source["annotations"], strict=True):
            for field in ("id", "label", "sop_uid", "frame", "geometry", "attributes", "revision", "reader"):
                assert written[field] == original[field]
            if original["sop_uid"]:
                assert pydicom.dcmread(out / written["file"]).SOPInstanceUID == original["sop_uid"]
            else:  # the series classification has no image
                assert written["file"] is None


def test_export_is_byte_for_byte_deterministic(version: ExportInput, tmp_path: Path) -> None:
    export(version, tmp_path / "one")
    export(version, tmp_path / "two")
    assert digests(tmp_path / "one") == digests(tmp_path / "two")


def test_a_tampered_source_file_fails_naming_sample_and_instance(version: ExportInput, tmp_path: Path) -> None:
    sample = version.samples[2]
    instance = sample.instances[1]
    path = version.path_of(instance.sop_uid)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    pydicom.dcmread(path)  # still a readable DICOM file: only the checksum can tell
    with pytest.raises(ExportError) as caught:
        export(version, tmp_path / "out")
    assert not isinstance(caught.value, GeometryMismatch)
    assert caught.value.sample == sample.key
    assert sample.key in str(caught.value) and instance.sop_uid in str(caught.value)
