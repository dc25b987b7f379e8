"""The dicomseg export: real SEG objects that highdicom reads back, equal to the ground truth, byte-stable."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest

from annotations.geometry import rasterize
from datasets.exporters import get_exporter
from datasets.exporters.base import ExportError, ExportInput, GeometryMismatch, LabelDef, Sample
from datasets.exporters.dicomseg import (
    CONTENT_DATE,
    CONTENT_TIME,
    PRIVATE_SCHEME,
    DicomSegExporter,
    derived_uid,
    segment_description,
)
from datasets.tests.factory import lesion_mask, make_version

SIZE, SLICES = 32, 5


def export(data: ExportInput, out: Path) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    DicomSegExporter().export(data, out, progress=lambda done, total: calls.append((done, total)))
    return calls


def edited(data: ExportInput, edit: Any) -> ExportInput:
    """The same version with its manifest changed by ``edit(manifest)``; files stay where they are."""
    manifest = copy.deepcopy(dict(data.manifest))
    edit(manifest)
    return ExportInput.from_manifest(manifest, version_id=data.version_id, path_of=data.path_of)


def centre_of(sample: Sample) -> tuple[float, float]:
    """The factory's lesion centre for the sample's patient (PSEUDO-000p)."""
    p = int(sample.patient.rsplit("-", 1)[1])
    return (0.35 + 0.1 * (p % 3), 0.45 + 0.05 * (p % 2))


def digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def version(tmp_path: Path) -> ExportInput:
    (tmp_path / "src").mkdir()
    return make_version(tmp_path / "src", slices=SLICES, size=SIZE)


@pytest.fixture
def exported(version: ExportInput, tmp_path: Path) -> Path:
    export(version, tmp_path / "out")
    return tmp_path / "out"


def test_it_is_registered() -> None:
    assert isinstance(get_exporter("dicomseg"), DicomSegExporter)


def test_layout_index_and_progress(version: ExportInput, tmp_path: Path) -> None:
    calls = export(version, tmp_path / "out")
    out = tmp_path / "out"
    assert calls == [(n, len(version.samples)) for n in range(1, len(version.samples) + 1)]
    index = json.loads((out / "index.json").read_text())
    assert list(index) == [f"case_{n:04d}" for n in range(len(version.samples))]
    for case, sample in zip(index.values(), version.samples, strict=True):
        assert case["sample"] == sample.key and case["series_uid"] == sample.series_uid
        assert (case["patient"], case["split"], case["fold"]) == (sample.patient, sample.split, sample.fold)
        assert case["seg"] is not None and (out / case["seg"]).is_file()
        assert case["segments"] == [
            {"number": 1, "label": "Lesion"},
            {"number": 2, "label": "Nodule box"},
            {"number": 3, "label": "Organ"},
        ]
        assert len(case["images"]) == SLICES


def test_copied_images_are_the_manifest_files_in_spatial_order(version: ExportInput, exported: Path) -> None:
    index = json.loads((exported / "index.json").read_text())
    for case, sample in zip(index.values(), version.samples, strict=True):
        for image, instance in zip(case["images"], sample.instances, strict=True):
            path = exported / image
            assert hashlib.sha256(path.read_bytes()).hexdigest() == instance.sha256
            assert pydicom.dcmread(path).SOPInstanceUID == instance.sop_uid


def test_segments_equal_the_ground_truth_per_source_instance(version: ExportInput, exported: Path) -> None:
    index = json.loads((exported / "index.json").read_text())
    for case, sample in zip(index.values(), version.samples, strict=True):
        seg = hd.seg.segread(exported / case["seg"])
        uids = [i.sop_uid for i in sample.instances]
        pixels = seg.get_pixels_by_source_instance(
            uids, segment_numbers=[1, 2, 3], assert_missing_frames_are_empty=True
        )
        assert pixels.shape == (SLICES, SIZE, SIZE, 3)
        truth = np.stack([lesion_mask(SIZE, k, SLICES, centre_of(sample)) for k in range(SLICES)])
        np.testing.assert_array_equal(pixels[..., 0].astype(bool), truth)

        middle = SLICES // 2
        ys, xs = np.nonzero(truth[middle])
        box = np.zeros((SLICES, SIZE, SIZE), dtype=bool)
        box[middle, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
        np.testing.assert_array_equal(pixels[..., 1].astype(bool), box)
        # The box covers the lesion: both segments keep those pixels (a label map could keep only one).
        assert (pixels[middle, ..., 0] & pixels[middle, ..., 1]).sum() == truth[middle].sum() > 0

        (organ,) = [a for a in sample.annotations if a.label == "Organ"]
        diamond = np.zeros((SLICES, SIZE, SIZE), dtype=bool)
        diamond[0] = rasterize("polygon", dict(organ.geometry), SIZE, SIZE)
        np.testing.assert_array_equal(pixels[..., 2].astype(bool), diamond)


def test_seg_references_exactly_the_sample_instances(version: ExportInput, exported: Path) -> None:
    index = json.loads((exported / "index.json").read_text())
    for case, sample in zip(index.values(), version.samples, strict=True):
        seg = hd.seg.segread(exported / case["seg"])
        source = pydicom.dcmread(exported / case["images"][0])
        referenced = seg.get_source_image_uids()
        assert sorted(sop for _, _, sop in referenced) == sorted(i.sop_uid for i in sample.instances)
        assert {(study, series) for study, series, _ in referenced} == {(sample.study_uid, sample.series_uid)}
        assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
        assert seg.StudyInstanceUID == sample.study_uid and seg.PatientID == sample.patient
        per_frame = {
            item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            for item in seg.PerFrameFunctionalGroupsSequence
        }
        assert per_frame <= {i.sop_uid for i in sample.instances}


def test_segment_labels_codes_and_equipment(version: ExportInput, exported: Path) -> None:
    seg = hd.seg.segread(exported / "case_0000" / "seg.dcm")
    assert seg.SegmentationType == "BINARY" and seg.Manufacturer == "Workbench"
    assert (seg.ContentDate, seg.ContentTime) == (CONTENT_DATE, CONTENT_TIME)
    assert seg.SeriesInstanceUID == derived_uid(version.version_id, version.samples[0].key, "seg-series")
    assert seg.SOPInstanceUID == derived_uid(version.version_id, version.samples[0].key, "seg")
    lesion, box, organ = (seg.get_segment_description(n) for n in (1, 2, 3))
    assert [d.segment_label for d in (lesion, box, organ)] == ["Lesion", "Nodule box", "Organ"]
    assert all(d.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.MANUAL for d in (lesion, box, organ))
    # A plain lesion word gets SNOMED CT; other names the private scheme, code value = label index.
    assert (lesion.segmented_property_category.value, lesion.segmented_property_category.scheme_designator) == (
        "49755003",
        "SCT",
    )
    assert (lesion.segmented_property_type.value, lesion.segmented_property_type.scheme_designator) == (
        "52988006",
        "SCT",
    )
    for description, index, name in ((box, "2", "Nodule box"), (organ, "3", "Organ")):
        code = description.segmented_property_type
        assert (code.value, code.scheme_designator, code.meaning) == (index, PRIVATE_SCHEME, name)
        assert description.segmented_property_category.scheme_designator == PRIVATE_SCHEME
    assert [item.CodingSchemeDesignator for item in seg.CodingSchemeIdentificationSequence] == [PRIVATE_SCHEME]
    red = hd.color.CIELabColor.from_rgb(255, 0, 0).value
    assert list(seg.SegmentSequence[0].RecommendedDisplayCIELabValue) == list(red)


def test_export_is_byte_for_byte_deterministic(version: ExportInput, tmp_path: Path) -> None:
    export(version, tmp_path / "one")
    time.sleep(0.01)  # highdicom stamps times with microseconds; a second run must not differ
    export(version, tmp_path / "two")
    first, second = digests(tmp_path / "one"), digests(tmp_path / "two")
    assert first == second
    assert sum(name.endswith("seg.dcm") for name in first) == len(version.samples)
    seg = pydicom.dcmread(tmp_path / "one" / "case_0000" / "seg.dcm")
    assert "InstanceCreationDate" not in seg and "InstanceCreationTime" not in seg


def test_another_version_gets_other_seg_uids(version: ExportInput, tmp_path: Path) -> None:
    other = ExportInput.from_manifest(version.manifest, version_id="1" * 64, path_of=version.path_of)
    export(version, tmp_path / "one")
    export(other, tmp_path / "two")
    one = pydicom.dcmread(tmp_path / "one" / "case_0000" / "seg.dcm")
    two = pydicom.dcmread(tmp_path / "two" / "case_0000" / "seg.dcm")
    assert one.SOPInstanceUID != two.SOPInstanceUID and one.SeriesInstanceUID != two.SeriesInstanceUID


def test_derived_uids_are_valid_uuid_derived_uids() -> None:
    uids = {derived_uid("v", "s", purpose) for purpose in ("seg", "seg-series", "seg-dimension-organization")}
    assert len(uids) == 3
    for uid in uids:
        assert uid.startswith("2.25.") and len(uid) <= 64
        assert pydicom.uid.UID(uid).is_valid
        assert int(uid.removeprefix("2.25.")) < 2**128


def test_a_sample_without_area_annotations_gets_images_and_no_seg(version: ExportInput, tmp_path: Path) -> None:
    bare = version.samples[1].key

    def drop_areas(manifest: dict[str, Any]) -> None:
        for sample in manifest["samples"]:
            if sample["key"] == bare:
                sample["annotations"] = [a for a in sample["annotations"] if a["label"] == "Normal"]

    export(edited(version, drop_areas), tmp_path / "out")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["case_0001"]["sample"] == bare
    assert index["case_0001"]["seg"] is None and index["case_0001"]["segments"] == []
    assert not (tmp_path / "out" / "case_0001" / "seg.dcm").exists()
    assert all((tmp_path / "out" / image).is_file() for image in index["case_0001"]["images"])
    assert index["case_0000"]["seg"] == "case_0000/seg.dcm"


def test_only_labels_with_pixels_become_segments(version: ExportInput, tmp_path: Path) -> None:
    def drop_box(manifest: dict[str, Any]) -> None:
        for sample in manifest["samples"]:
            sample["annotations"] = [a for a in sample["annotations"] if a["label"] != "Nodule box"]

    export(edited(version, drop_box), tmp_path / "out")
    seg = hd.seg.segread(tmp_path / "out" / "case_0000" / "seg.dcm")
    assert seg.segment_numbers == [1, 2]
    assert [seg.get_segment_description(n).segment_label for n in (1, 2)] == ["Lesion", "Organ"]


def test_a_mask_of_the_wrong_size_fails_naming_the_sample(version: ExportInput, tmp_path: Path) -> None:
    target = version.samples[2].key

    def grow(manifest: dict[str, Any]) -> None:
        for sample in manifest["samples"]:
            if sample["key"] == target:
                mask = next(a for a in sample["annotations"] if a["label"] == "Lesion")
                mask["geometry"] = {**mask["geometry"], "rows": SIZE + 1}

    with pytest.raises(GeometryMismatch) as caught:
        export(edited(version, grow), tmp_path / "out")
    assert caught.value.sample == target and target in str(caught.value)


def test_sources_of_different_sizes_fail_naming_the_sample(version: ExportInput, tmp_path: Path) -> None:
    def shrink(ds: pydicom.Dataset) -> None:
        ds.Rows = ds.Columns = SIZE // 2
        ds.PixelData = np.zeros((SIZE // 2, SIZE // 2), dtype=np.int16).tobytes()

    with pytest.raises(GeometryMismatch) as caught:
        export(rewrite_source(version, 3, shrink), tmp_path / "out")
    assert caught.value.sample == version.samples[0].key and "Rows" in str(caught.value)


def rewrite_source(version: ExportInput, number: int, change: Any) -> ExportInput:
    """Change instance ``number`` of the first sample on disk, and freeze the new checksum into the manifest."""
    sop_uid = version.samples[0].instances[number].sop_uid
    path = version.path_of(sop_uid)
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def rehash(manifest: dict[str, Any]) -> None:
        for instance in manifest["samples"][0]["instances"]:
            if instance["sop_uid"] == sop_uid:
                instance["sha256"] = digest

    return edited(version, rehash)


@pytest.mark.parametrize(("tilt", "fails"), [(1e-6, False), (0.05, True)])
def test_orientation_is_compared_within_rounding(
    version: ExportInput, tmp_path: Path, tilt: float, fails: bool
) -> None:
    def rotate(ds: pydicom.Dataset) -> None:
        ds.ImageOrientationPatient = [1 - tilt, tilt, 0, 0, 1, 0]

    data = rewrite_source(version, 1, rotate)
    if fails:
        with pytest.raises(GeometryMismatch, match="ImageOrientationPatient"):
            export(data, tmp_path / "out")
    else:
        export(data, tmp_path / "out")
        assert (tmp_path / "out" / "case_0000" / "seg.dcm").is_file()


def test_an_annotation_on_an_image_outside_the_series_fails(version: ExportInput, tmp_path: Path) -> None:
    def stray(manifest: dict[str, Any]) -> None:
        mask = next(a for a in manifest["samples"][0]["annotations"] if a["label"] == "Lesion")
        mask["sop_uid"] = "2.25.1"

    with pytest.raises(ExportError, match="does not hold"):
        export(edited(version, stray), tmp_path / "out")


def test_a_tampered_source_file_fails(version: ExportInput, tmp_path: Path) -> None:
    sample = version.samples[1]
    instance = sample.instances[2]
    path = version.path_of(instance.sop_uid)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ExportError) as caught:
        export(version, tmp_path / "out")
    assert not isinstance(caught.value, GeometryMismatch)
    assert caught.value.sample == sample.key and instance.sop_uid in str(caught.value)


def test_long_or_backslashed_label_names_fit_in_lo() -> None:
    label = LabelDef(index=7, name="Left\\right " + "x" * 90, color="not a colour", kind="polygon")
    description = segment_description(1, label)
    assert description.segment_label == ("Left/right " + "x" * 90)[:64]
    assert description.segmented_property_type.meaning == description.segment_label
    assert description.segmented_property_type.value == "7"
    assert "RecommendedDisplayCIELabValue" not in description
