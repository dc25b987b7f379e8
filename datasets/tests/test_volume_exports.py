"""The volume formats (nnU-Net v2, NIfTI + MONAI datalist): read back with nibabel, in the right place, byte-stable."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from nibabel.affines import apply_affine

from annotations.geometry import rasterize, rle_encode
from datasets.augment import copy_seed, make_augmenter
from datasets.exporters import get_exporter
from datasets.exporters.base import ExportError, ExportInput, GeometryMismatch, Sample
from datasets.exporters.nifti import NiftiExporter
from datasets.exporters.nnunet import NnUNetExporter
from datasets.tests.factory import lesion_mask, make_version

SIZE, SLICES = 32, 5
NNUNET = "Dataset001_SyntheticLesions"
FLIP_X = {"seed": 5, "materialize": True, "copies": 2, "transforms": [{"name": "flip", "spatial_axes": [0], "prob": 1}]}
# Drawn angles and noise: copies differ from run to run unless their seeds are derived deterministically.
RANDOM = {
    "seed": 11,
    "materialize": True,
    "copies": 2,
    "transforms": [
        {"name": "rotate", "range_degrees": 20, "prob": 1},
        {"name": "gaussian_noise", "std": 20, "prob": 1},
    ],
}


# --- helpers ------------------------------------------------------------------------------------------


def export(fmt: str, data: ExportInput, out: Path) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    get_exporter(fmt).export(data, out, progress=lambda done, total: calls.append((done, total)))
    return calls


def edited(data: ExportInput, edit: Callable[[dict[str, Any]], None]) -> ExportInput:
    """The same version with its manifest changed by ``edit(manifest)``; files, options and augmenter kept."""
    manifest = copy.deepcopy(dict(data.manifest))
    edit(manifest)
    return ExportInput.from_manifest(
        manifest, version_id=data.version_id, path_of=data.path_of, options=data.options, augment=data.augment
    )


def rewrite_sources(data: ExportInput, index: int, change: Callable[[pydicom.Dataset, int], None]) -> ExportInput:
    """Change sample ``index``'s files on disk (``change(ds, slice)``) and freeze what changed into the manifest."""
    frozen: dict[str, dict[str, Any]] = {}
    for k, instance in enumerate(data.samples[index].instances):
        path = data.path_of(instance.sop_uid)
        ds = pydicom.dcmread(path)
        change(ds, k)
        ds.save_as(path, enforce_file_format=True)
        raw = path.read_bytes()
        frozen[instance.sop_uid] = {
            "sha256": hashlib.sha256(raw).hexdigest(),
            "size": len(raw),
            "rows": int(ds.Rows),
            "columns": int(ds.Columns),
            "pixel_spacing": [float(v) for v in ds.PixelSpacing],
        }

    def refreeze(manifest: dict[str, Any]) -> None:
        for sample in manifest["samples"]:
            for instance in sample["instances"]:
                instance.update(frozen.get(instance["sop_uid"], {}))

    return edited(data, refreeze)


def digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    return np.asarray(image.dataobj), image.affine


def truth(sample: Sample) -> np.ndarray:
    """The factory's label map, ``(x, y, z)`` like NIfTI: lesion 1, box 2 over it, diamond 3 (later labels win)."""
    p = int(sample.patient.rsplit("-", 1)[1])
    centre = (0.35 + 0.1 * (p % 3), 0.45 + 0.05 * (p % 2))
    zyx = np.zeros((SLICES, SIZE, SIZE), dtype=np.uint8)
    for k in range(SLICES):
        zyx[k][lesion_mask(SIZE, k, SLICES, centre)] = 1
    for label, value in (("Nodule box", 2), ("Organ", 3)):
        (one,) = [a for a in sample.annotations if a.label == label]
        k = [i.sop_uid for i in sample.instances].index(one.sop_uid)
        kind = "box" if label == "Nodule box" else "polygon"
        zyx[k][rasterize(kind, dict(one.geometry), SIZE, SIZE)] = value
    return zyx.transpose(2, 1, 0)


def hounsfield(data: ExportInput, sample: Sample) -> np.ndarray:
    """The DICOM pixels in modality units, ``(x, y, z)``, read straight from the files."""
    planes = []
    for instance in sample.instances:
        ds = pydicom.dcmread(data.path_of(instance.sop_uid))
        planes.append(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    return np.stack(planes).transpose(2, 1, 0)


def with_test_sample(data: ExportInput) -> ExportInput:
    """A k-fold version with its first sample held out as test (as a test share beside the folds gives)."""

    def hold_out(manifest: dict[str, Any]) -> None:
        manifest["samples"][0] |= {"split": "test", "fold": None}

    return edited(data, hold_out)


@pytest.fixture
def version(tmp_path: Path) -> ExportInput:
    (tmp_path / "src").mkdir()
    return make_version(tmp_path / "src", patients=4, slices=SLICES, size=SIZE)


@pytest.fixture
def folded(tmp_path: Path) -> ExportInput:
    (tmp_path / "folded").mkdir()
    return with_test_sample(make_version(tmp_path / "folded", patients=7, slices=SLICES, size=SIZE, folds=3))


# --- nnU-Net ------------------------------------------------------------------------------------------


def test_they_are_registered() -> None:
    assert isinstance(get_exporter("nnunet"), NnUNetExporter)
    assert isinstance(get_exporter("nifti"), NiftiExporter)


def test_nnunet_layout_and_dataset_json(version: ExportInput, tmp_path: Path) -> None:
    calls = export("nnunet", version, tmp_path / "out")
    assert calls == [(n, len(version.samples)) for n in range(1, len(version.samples) + 1)]
    root = tmp_path / "out" / NNUNET
    expected = {"dataset.json", "splits_final.json", "cases.json"}
    for n, sample in enumerate(version.samples):
        images, labels = ("imagesTs", "labelsTs") if sample.split == "test" else ("imagesTr", "labelsTr")
        expected |= {f"{images}/case_{n:04d}_0000.nii.gz", f"{labels}/case_{n:04d}.nii.gz"}
    assert set(digests(tmp_path / "out")) == {f"{NNUNET}/{name}" for name in expected}

    dataset = json.loads((root / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "CT"}
    assert dataset["labels"] == {"background": 0, "Lesion": 1, "Nodule box": 2, "Organ": 3}
    assert dataset["file_ending"] == ".nii.gz"
    assert dataset["numTraining"] == sum(s.split != "test" for s in version.samples) == 3
    assert f"nnUNet_preprocessed/{NNUNET}/" in dataset["description"]

    cases = json.loads((root / "cases.json").read_text())
    assert list(cases) == [f"case_{n:04d}" for n in range(len(version.samples))]
    for row, sample in zip(cases.values(), version.samples, strict=True):
        assert row == {
            "sample": sample.key,
            "patient": sample.patient,
            "split": sample.split,
            "fold": None,
            "augments": None,
        }


def test_nnunet_images_and_labels_read_back(version: ExportInput, tmp_path: Path) -> None:
    export("nnunet", version, tmp_path / "out")
    root = tmp_path / "out" / NNUNET
    for n, sample in enumerate(version.samples):
        suffix = "Ts" if sample.split == "test" else "Tr"
        image, image_affine = read(root / f"images{suffix}" / f"case_{n:04d}_0000.nii.gz")
        label, label_affine = read(root / f"labels{suffix}" / f"case_{n:04d}.nii.gz")
        assert image.shape == label.shape == (SIZE, SIZE, SLICES)
        assert image.dtype == np.int16 and label.dtype == np.uint8
        np.testing.assert_array_equal(image_affine, label_affine)
        np.testing.assert_array_equal(image, hounsfield(version, sample))
        expected = truth(sample)
        np.testing.assert_array_equal(label, expected)
        for value in (1, 2, 3):  # every class is there, with exactly its voxels
            assert np.count_nonzero(label == value) == np.count_nonzero(expected == value) > 0


def test_nnunet_split_is_train_versus_validation(version: ExportInput, tmp_path: Path) -> None:
    export("nnunet", version, tmp_path / "out")
    root = tmp_path / "out" / NNUNET
    splits = json.loads((root / "splits_final.json").read_text())
    cases = json.loads((root / "cases.json").read_text())
    by_split = {s: [c for c, row in cases.items() if row["split"] == s] for s in ("train", "validation", "test")}
    assert splits == [{"train": by_split["train"], "val": by_split["validation"]}]
    assert len(by_split["train"]) == 2 and len(by_split["validation"]) == 1
    assert not {cases[c]["patient"] for c in splits[0]["train"]} & {cases[c]["patient"] for c in splits[0]["val"]}


def test_nnunet_folds_keep_each_patient_on_one_side(folded: ExportInput, tmp_path: Path) -> None:
    export("nnunet", folded, tmp_path / "out")
    root = tmp_path / "out" / NNUNET
    splits = json.loads((root / "splits_final.json").read_text())
    cases = json.loads((root / "cases.json").read_text())
    trainable = {c for c, row in cases.items() if row["split"] == "train"}
    assert len(splits) == 3 and len(trainable) == 6
    for fold, one in enumerate(splits):
        assert one["val"] == [c for c in sorted(trainable) if cases[c]["fold"] == fold] != []
        assert set(one["train"]) | set(one["val"]) == trainable
        assert not {cases[c]["patient"] for c in one["train"]} & {cases[c]["patient"] for c in one["val"]}
    assert (root / "imagesTs" / "case_0000_0000.nii.gz").is_file() and cases["case_0000"]["split"] == "test"
    assert all("case_0000" not in one["train"] + one["val"] for one in splits)
    assert json.loads((root / "dataset.json").read_text())["numTraining"] == 6


def test_nnunet_without_validation_says_to_train_fold_all(version: ExportInput, tmp_path: Path) -> None:
    def no_validation(manifest: dict[str, Any]) -> None:
        for sample in manifest["samples"]:
            sample["split"] = "test" if sample["split"] == "test" else "train"

    export("nnunet", edited(version, no_validation), tmp_path / "out")
    root = tmp_path / "out" / NNUNET
    assert json.loads((root / "splits_final.json").read_text())[0]["val"] == []
    assert "fold 'all'" in json.loads((root / "dataset.json").read_text())["description"]


def test_nnunet_options_name_the_folder(version: ExportInput, tmp_path: Path) -> None:
    export("nnunet", dataclasses.replace(version, options={"dataset_id": 42, "name": "Lungs"}), tmp_path / "out")
    assert json.loads((tmp_path / "out" / "Dataset042_Lungs" / "dataset.json").read_text())["name"] == (
        "Dataset042_Lungs"
    )


@pytest.mark.parametrize(
    "options", [{"dataset_id": 0}, {"dataset_id": "7"}, {"dataset_id": True}, {"name": "a_b"}, {"name": ""}]
)
def test_nnunet_rejects_bad_options(version: ExportInput, tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ExportError):
        export("nnunet", dataclasses.replace(version, options=options), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written


def values(paths: list[Path]) -> set[int]:
    """The label values found in any of the label maps (which case is a test case depends on its UIDs)."""
    assert paths
    return {int(v) for path in paths for v in np.unique(read(path)[0])}


def test_label_indices_with_gaps(version: ExportInput, tmp_path: Path) -> None:
    """nnU-Net classes have no gaps (Organ 7 -> 3); the NIfTI label maps keep the schema's index."""

    def renumber(manifest: dict[str, Any]) -> None:
        manifest["labels"]["labels"][2]["index"] = 7

    data = edited(version, renumber)
    export("nnunet", data, tmp_path / "nnunet")
    export("nifti", data, tmp_path / "nifti")
    dataset = json.loads((tmp_path / "nnunet" / NNUNET / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "Lesion": 1, "Nodule box": 2, "Organ": 3}
    assert values(sorted((tmp_path / "nnunet" / NNUNET).glob("labelsT[rs]/*.nii.gz"))) == {0, 1, 2, 3}
    assert values(sorted((tmp_path / "nifti" / "labels").glob("*.nii.gz"))) == {0, 1, 2, 7}
    datalist = json.loads((tmp_path / "nifti" / "datalist.json").read_text())
    assert datalist["labels"] == {"0": "background", "1": "Lesion", "2": "Nodule box", "7": "Organ"}


@pytest.mark.parametrize("fmt", ["nnunet", "nifti"])
def test_mixed_modalities_fail(version: ExportInput, tmp_path: Path, fmt: str) -> None:
    def mix(manifest: dict[str, Any]) -> None:
        manifest["samples"][1]["modality"] = "MR"

    with pytest.raises(ExportError, match="different modalities"):
        export(fmt, edited(version, mix), tmp_path / "out")


# --- NIfTI + MONAI datalist ---------------------------------------------------------------------------


def test_nifti_datalist_loads_in_monai(version: ExportInput, tmp_path: Path) -> None:
    from monai.data import load_decathlon_datalist

    out = tmp_path / "out"
    export("nifti", version, out)
    datalist = json.loads((out / "datalist.json").read_text())
    assert datalist["modality"] == {"0": "CT"} and datalist["tensorImageSize"] == "3D"
    assert datalist["labels"] == {"0": "background", "1": "Lesion", "2": "Nodule box", "3": "Organ"}
    for key, split in (("training", "train"), ("validation", "validation"), ("test", "test")):
        expected = [n for n, s in enumerate(version.samples) if s.split == split]
        assert datalist[key] == [
            {"image": f"images/case_{n:04d}.nii.gz", "label": f"labels/case_{n:04d}.nii.gz"} for n in expected
        ]
        loaded = load_decathlon_datalist(out / "datalist.json", data_list_key=key, base_dir=out)
        assert [item["image"] for item in loaded] == [str(out / "images" / f"case_{n:04d}.nii.gz") for n in expected]
        for item, n in zip(loaded, expected, strict=True):
            label, affine = read(Path(item["label"]))
            np.testing.assert_array_equal(label, truth(version.samples[n]))
            np.testing.assert_array_equal(affine, read(Path(item["image"]))[1])
    assert (datalist["numTraining"], datalist["numTest"]) == (2, 1)


def test_nifti_training_items_carry_their_fold(folded: ExportInput, tmp_path: Path) -> None:
    export("nifti", folded, tmp_path / "out")
    datalist = json.loads((tmp_path / "out" / "datalist.json").read_text())
    folds = {f"images/case_{n:04d}.nii.gz": s.fold for n, s in enumerate(folded.samples) if s.split == "train"}
    assert {item["image"]: item["fold"] for item in datalist["training"]} == folds
    assert sorted(set(folds.values())) == [0, 1, 2]
    assert datalist["validation"] == [] and [item["image"] for item in datalist["test"]] == ["images/case_0000.nii.gz"]
    assert "training_augmented" not in datalist


# --- orientation --------------------------------------------------------------------------------------


def test_axial_dicom_reads_as_left_posterior_inferior(version: ExportInput, tmp_path: Path) -> None:
    """The factory's axial slices: x to the patient's left, y posterior, slices going down (feet)."""
    export("nifti", version, tmp_path / "out")
    image = nib.load(tmp_path / "out" / "images" / "case_0000.nii.gz")
    assert nib.aff2axcodes(image.affine) == ("L", "P", "I")
    assert image.header.get_zooms() == pytest.approx((0.7, 0.7, 2.5))
    assert int(image.header["qform_code"]) == int(image.header["sform_code"]) == 1
    np.testing.assert_allclose(image.get_qform(), image.get_sform(), atol=1e-5)


@pytest.mark.parametrize("step", [2.0, -2.0])  # slices along the normal, and against it
def test_a_mask_lands_where_its_dicom_pixel_is_in_ras(version: ExportInput, tmp_path: Path, step: float) -> None:
    """An oblique series with non-square pixels and rows != columns: each labelled voxel's RAS
    coordinate (nibabel's affine) is the DICOM patient position (LPS) of its pixel with x and y negated."""
    rows, columns = SIZE, SIZE - 8
    row_axis, column_axis = np.array([0.6, 0.8, 0.0]), np.array([0.0, 0.0, -1.0])
    normal = np.cross(row_axis, column_axis)

    def oblique(ds: pydicom.Dataset, k: int) -> None:
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[:, :columns]).tobytes()
        ds.Rows, ds.Columns = rows, columns
        ds.PixelSpacing = [0.5, 0.9]  # 0.5 mm between rows, 0.9 mm between columns
        ds.ImageOrientationPatient = [*row_axis, *column_axis]
        ds.ImagePositionPatient = [round(float(v), 4) for v in np.array([10.0, -20.0, 30.0]) + k * step * normal]

    data = rewrite_sources(version, 0, oblique)
    sample = data.samples[0]
    top_left = np.zeros((rows, columns), dtype=bool)
    top_left[0:2, 0:3] = True
    corner = {"x0": columns - 2.0, "y0": rows - 1.0, "x1": columns - 1.0, "y1": rows - 1.0}
    placed = [("Lesion", 1, {"rows": rows, "columns": columns, "rle": rle_encode(top_left)}), ("Nodule box", 3, corner)]

    def annotate(manifest: dict[str, Any]) -> None:
        manifest["samples"][0]["annotations"] = [
            {"id": f"a{k}", "revision": 1, "label": label, "sop_uid": sample.instances[k].sop_uid, "frame": 0}
            | {"geometry": geometry, "attributes": {}, "reader": "r"}
            for label, k, geometry in placed
        ]

    export("nifti", edited(data, annotate), tmp_path / "out")
    label = nib.load(tmp_path / "out" / "labels" / "case_0000.nii.gz")
    array = np.asarray(label.dataobj)
    assert array.shape == (columns, rows, SLICES)
    for value, (name, k, geometry) in enumerate(placed, 1):
        pixels = rasterize("mask" if name == "Lesion" else "box", geometry, rows, columns)
        voxels = np.argwhere(array == value)
        assert sorted(map(tuple, voxels.tolist())) == sorted((c, r, k) for r, c in np.argwhere(pixels).tolist())
        ds = pydicom.dcmread(data.path_of(sample.instances[k].sop_uid))
        x_axis, y_axis = np.array(ds.ImageOrientationPatient[:3]), np.array(ds.ImageOrientationPatient[3:])
        row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
        for i, j, _ in voxels:
            lps = np.array(ds.ImagePositionPatient, dtype=float) + i * col_mm * x_axis + j * row_mm * y_axis
            np.testing.assert_allclose(apply_affine(label.affine, [i, j, k]), lps * [-1, -1, 1], atol=1e-3)
    image, image_affine = read(tmp_path / "out" / "images" / "case_0000.nii.gz")
    np.testing.assert_array_equal(image, hounsfield(data, sample))
    np.testing.assert_array_equal(image_affine, label.affine)


# --- geometry checks ----------------------------------------------------------------------------------


def _shrink(ds: pydicom.Dataset, k: int) -> None:
    if k == 2:
        ds.Rows = ds.Columns = SIZE // 2
        ds.PixelData = np.zeros((SIZE // 2, SIZE // 2), dtype=np.int16).tobytes()


def _respace(ds: pydicom.Dataset, k: int) -> None:
    if k == 2:
        ds.PixelSpacing = [0.8, 0.8]


def _tilt(ds: pydicom.Dataset, k: int) -> None:
    if k == 1:
        ds.ImageOrientationPatient = [0.95, 0.05, 0, 0, 1, 0]


def _uneven(ds: pydicom.Dataset, k: int) -> None:
    if k == 3:
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) + 1.0]


def _repeat(ds: pydicom.Dataset, k: int) -> None:
    if k == 3:
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], -2.5 * 2]


@pytest.mark.parametrize(
    ("change", "message", "fmt"),
    [
        (_shrink, r"slice 3 of 5 is 16 x 16 \(width x height\) but slice 1 is 32 x 32", "nnunet"),
        (_respace, "slice 3 of 5 has PixelSpacing 0.8", "nifti"),
        (_tilt, "slice 2 of 5 has a different ImageOrientationPatient", "nnunet"),
        (_uneven, "not evenly spaced", "nifti"),
        (_repeat, "same position", "nnunet"),
    ],
)
def test_a_slice_that_does_not_fit_the_stack_fails_naming_the_sample(
    version: ExportInput, tmp_path: Path, change: Callable[[pydicom.Dataset, int], None], message: str, fmt: str
) -> None:
    data = rewrite_sources(version, 2, change)
    key = data.samples[2].key
    with pytest.raises(GeometryMismatch, match=message) as caught:
        export(fmt, data, tmp_path / "out")
    assert caught.value.sample == key and key in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # 33 rows: the size reads width (32) by height (33).
        ("rows", SIZE + 1, r"is 32 x 32 \(width x height\) with 1 frame\(s\) but the manifest says 32 x 33 "),
        ("pixel_spacing", [0.75, 0.7], "manifest says 0.75"),
    ],
)
def test_a_file_that_disagrees_with_the_manifest_fails(
    version: ExportInput, tmp_path: Path, field: str, value: Any, message: str
) -> None:
    def change(manifest: dict[str, Any]) -> None:
        manifest["samples"][1]["instances"][3][field] = value

    data = edited(version, change)
    with pytest.raises(GeometryMismatch, match=message) as caught:
        export("nifti", data, tmp_path / "out")
    assert caught.value.sample == data.samples[1].key and data.samples[1].key in str(caught.value)


def test_a_mask_of_the_wrong_size_fails(version: ExportInput, tmp_path: Path) -> None:
    def grow(manifest: dict[str, Any]) -> None:
        mask = next(a for a in manifest["samples"][3]["annotations"] if a["label"] == "Lesion")
        mask["geometry"] = {**mask["geometry"], "columns": SIZE + 2}

    data = edited(version, grow)
    with pytest.raises(GeometryMismatch) as caught:
        export("nnunet", data, tmp_path / "out")
    assert caught.value.sample == data.samples[3].key


def test_an_annotation_on_an_image_outside_the_series_fails(version: ExportInput, tmp_path: Path) -> None:
    def stray(manifest: dict[str, Any]) -> None:
        next(a for a in manifest["samples"][0]["annotations"] if a["label"] == "Organ")["sop_uid"] = "2.25.1"

    with pytest.raises(GeometryMismatch, match="not a slice of the series"):
        export("nifti", edited(version, stray), tmp_path / "out")


# --- determinism --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["nnunet", "nifti"])
def test_export_is_byte_for_byte_deterministic(version: ExportInput, tmp_path: Path, fmt: str) -> None:
    data = dataclasses.replace(version, augment=make_augmenter(RANDOM))
    export(fmt, data, tmp_path / "one")
    export(fmt, data, tmp_path / "two")
    first = digests(tmp_path / "one")
    assert first == digests(tmp_path / "two")
    volumes = [name for name in first if name.endswith(".nii.gz")]
    assert len(volumes) == 2 * (len(version.samples) + 2 * 2)  # image and label per case and per copy
    for name in volumes:
        header = (tmp_path / "one" / name).read_bytes()[:10]
        assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\0\0\0\0"  # gzip, mtime 0


# --- materialized augmentation ------------------------------------------------------------------------


def test_nnunet_augmented_copies_of_train_samples(version: ExportInput, tmp_path: Path) -> None:
    export("nnunet", dataclasses.replace(version, augment=make_augmenter(FLIP_X)), tmp_path / "out")
    root = tmp_path / "out" / NNUNET
    cases = json.loads((root / "cases.json").read_text())
    record = json.loads((root / "augmentations.json").read_text())
    train = [n for n, s in enumerate(version.samples) if s.split == "train"]
    copies = [f"case_{n:04d}_aug{c:02d}" for n in train for c in (1, 2)]
    assert sorted(record["copies"]) == copies and record["version"] == version.version_id
    for n in train:
        source, sample = f"case_{n:04d}", version.samples[n]
        image, affine = read(root / "imagesTr" / f"{source}_0000.nii.gz")
        label = read(root / "labelsTr" / f"{source}.nii.gz")[0]
        for c in (1, 2):
            copy_id = f"{source}_aug{c:02d}"
            assert cases[copy_id] == cases[source] | {"augments": source}
            assert cases[copy_id]["patient"] == sample.patient and cases[copy_id]["split"] == "train"
            assert record["copies"][copy_id] == {
                "case": source,
                "sample": sample.key,
                "suffix": f"aug{c:02d}",
                "params": {
                    "copy": c,
                    "seed": copy_seed(5, sample.key, c),
                    "transforms": [{"name": "flip", "applied": True, "axes": [0]}],
                },
            }
            copy_image, copy_affine = read(root / "imagesTr" / f"{copy_id}_0000.nii.gz")
            copy_label = read(root / "labelsTr" / f"{copy_id}.nii.gz")[0]
            np.testing.assert_array_equal(copy_image, image[::-1])  # flipped along x, image and label together
            np.testing.assert_array_equal(copy_label, label[::-1])
            np.testing.assert_array_equal(copy_affine, affine)
    assert not [name for name in (root / "imagesTs").iterdir() if "aug" in name.name]
    splits = json.loads((root / "splits_final.json").read_text())
    assert set(copies) <= set(splits[0]["train"]) and not set(copies) & set(splits[0]["val"])
    assert json.loads((root / "dataset.json").read_text())["numTraining"] == 3 + len(copies)


def test_nnunet_copies_train_only_where_their_source_trains(folded: ExportInput, tmp_path: Path) -> None:
    export("nnunet", dataclasses.replace(folded, augment=make_augmenter(FLIP_X)), tmp_path / "out")
    root = tmp_path / "out" / NNUNET
    cases = json.loads((root / "cases.json").read_text())
    splits = json.loads((root / "splits_final.json").read_text())
    for fold, one in enumerate(splits):
        for case in one["val"]:
            assert cases[case]["augments"] is None
        for case, row in cases.items():
            if row["augments"] is not None:
                assert (case in one["train"]) == (row["fold"] != fold)
        assert not {cases[c]["patient"] for c in one["train"]} & {cases[c]["patient"] for c in one["val"]}


@pytest.mark.parametrize("folds", [False, True])
def test_nifti_datalist_lists_copies(version: ExportInput, folded: ExportInput, tmp_path: Path, folds: bool) -> None:
    data = dataclasses.replace(folded if folds else version, augment=make_augmenter(FLIP_X))
    export("nifti", data, tmp_path / "out")
    datalist = json.loads((tmp_path / "out" / "datalist.json").read_text())
    train = [n for n, s in enumerate(data.samples) if s.split == "train"]
    copies = [f"images/case_{n:04d}_aug{c:02d}.nii.gz" for n in train for c in (1, 2)]
    if folds:  # a copy of a fold-k case may not join fold k's validation set: listed apart, with its fold
        assert [item["image"] for item in datalist["training_augmented"]] == copies
        assert [item["fold"] for item in datalist["training_augmented"]] == [
            data.samples[n].fold for n in train for _ in (1, 2)
        ]
        assert not [item for item in datalist["training"] if "aug" in item["image"]]
    else:
        assert [item["image"] for item in datalist["training"] if "aug" in item["image"]] == copies
        assert "training_augmented" not in datalist
    assert all((tmp_path / "out" / image).is_file() for image in copies)
    assert json.loads((tmp_path / "out" / "augmentations.json").read_text())["copies"].keys() == {
        Path(image).name.removesuffix(".nii.gz") for image in copies
    }


def test_the_augmenter_sees_train_samples_only(version: ExportInput, tmp_path: Path) -> None:
    seen: list[tuple[str, tuple[int, ...]]] = []

    def spy(sample: Sample, image: np.ndarray, label: np.ndarray) -> list[Any]:
        seen.append((sample.split, image.shape))
        assert image.shape == label.shape
        return []

    export("nifti", dataclasses.replace(version, augment=spy), tmp_path / "out")
    assert seen == [("train", (SIZE, SIZE, SLICES))] * 2
    assert json.loads((tmp_path / "out" / "augmentations.json").read_text())["copies"] == {}


@pytest.mark.parametrize(
    ("result", "error", "message"),
    [
        (lambda i, lab: ("a/b", i, lab, {}), ExportError, "suffix"),
        (lambda i, lab: ("blur", i, lab * 0.5, {}), ExportError, "not classes"),
        (lambda i, lab: ("crop", i, lab[:-1], {}), GeometryMismatch, "same 3-D shape"),
        (lambda i, lab: ("odd", i, lab, {"when": object()}), ExportError, "cannot be written as JSON"),
    ],
)
def test_a_bad_copy_fails_instead_of_being_written(
    version: ExportInput, tmp_path: Path, result: Callable[..., Any], error: type[Exception], message: str
) -> None:
    def augment(sample: Sample, image: np.ndarray, label: np.ndarray) -> list[Any]:
        return [result(image, label)]

    with pytest.raises(error, match=message) as caught:
        export("nnunet", dataclasses.replace(version, augment=augment), tmp_path / "out")
    assert isinstance(caught.value, ExportError) and caught.value.sample in {s.key for s in version.samples}
