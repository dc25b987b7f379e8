"""Synthetic frozen versions for exporter tests: real DICOM files on disk, a manifest, an ExportInput.

Each patient has one CT series of ``slices`` axial slices (``size`` x ``size``, int16 stored with
RescaleIntercept -1024, pixel spacing 0.7 mm, slices 2.5 mm apart going down in z), a bright
disc "lesion" on the middle slices with a mask annotation that covers it exactly, a box around
it on the middle slice and a polygon (a diamond) on the first slice. Files look de-identified
(no names, pseudonymous ids), as the exporters only ever see the de-identified store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from annotations.geometry import rle_encode
from datasets.exporters.base import ExportInput

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
LABELS = [
    {"index": 1, "name": "Lesion", "color": "#ff0000", "kind": "mask", "attributes": []},
    {"index": 2, "name": "Nodule box", "color": "#00ff00", "kind": "box", "attributes": []},
    {"index": 3, "name": "Organ", "color": "#0000ff", "kind": "polygon", "attributes": []},
    {"index": 4, "name": "Normal", "color": "#ffff00", "kind": "classification_series", "attributes": []},
]


def lesion_mask(size: int, k: int, slices: int, centre: tuple[float, float]) -> np.ndarray:
    """The ground truth: a disc on the middle third of the slices, smaller towards its ends."""
    middle = (slices - 1) / 2
    radius = size * 0.12 * max(0.0, 1 - abs(k - middle) / max(slices / 3, 1))
    yy, xx = np.mgrid[0:size, 0:size]
    return (xx - centre[0] * size) ** 2 + (yy - centre[1] * size) ** 2 <= radius**2  # type: ignore[no-any-return]


def ct_slice(
    *, series_uid: str, study_uid: str, frame_uid: str, patient: str, k: int, size: int, pixels: np.ndarray
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CT_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = CT_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = patient
    ds.PatientID = patient
    ds.PatientIdentityRemoved = "YES"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.Modality = "CT"
    ds.Manufacturer = "WORKBENCH-SYNTHETIC"
    ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
    ds.Rows = ds.Columns = size
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = "2.5"
    ds.ImagePositionPatient = [-size * 0.35, -size * 0.35, -2.5 * k]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.PixelData = pixels.astype(np.int16).tobytes()
    return ds


def make_version(
    root: Path,
    *,
    patients: int = 3,
    slices: int = 5,
    size: int = 32,
    splits: Iterable[str] = ("train", "train", "validation", "test"),
    folds: int | None = None,
    name: str = "Synthetic lesions",
) -> ExportInput:
    """Write the DICOM files under ``root`` and return the ExportInput of a frozen version over them."""
    files: dict[str, Path] = {}
    samples: list[dict[str, Any]] = []
    split_cycle = list(splits)
    rng = np.random.default_rng(7)
    for p in range(patients):
        patient = f"PSEUDO-{p:04d}"
        series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
        centre = (0.35 + 0.1 * (p % 3), 0.45 + 0.05 * (p % 2))
        instances, annotations = [], []
        for k in range(slices):
            truth = lesion_mask(size, k, slices, centre)
            hu = np.full((size, size), -850.0) + rng.normal(0, 10, (size, size))
            hu[truth] = 60.0
            ds = ct_slice(
                series_uid=series_uid,
                study_uid=study_uid,
                frame_uid=frame_uid,
                patient=patient,
                k=k,
                size=size,
                pixels=hu + 1024,
            )
            path = root / f"{series_uid}-{k:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files[ds.SOPInstanceUID] = path
            instances.append(
                {
                    "sop_uid": ds.SOPInstanceUID,
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "size": path.stat().st_size,
                    "rows": size,
                    "columns": size,
                    "frames": 1,
                    "pixel_spacing": [0.7, 0.7],
                    "position": -2.5 * k,
                    "number": k + 1,
                }
            )
            common = {"sop_uid": ds.SOPInstanceUID, "frame": 0, "attributes": {}, "reader": "reader1"}
            if truth.any():
                rle = rle_encode(truth)
                annotations.append(
                    {"id": f"{series_uid}-m{k}", "revision": 2, "label": "Lesion", **common}
                    | {"geometry": {"rows": size, "columns": size, "rle": rle}}
                )
            if k == slices // 2:
                ys, xs = np.nonzero(truth)
                box = {"x0": float(xs.min()), "y0": float(ys.min()), "x1": float(xs.max()), "y1": float(ys.max())}
                annotations.append(
                    {"id": f"{series_uid}-b", "revision": 1, "label": "Nodule box", **common} | {"geometry": box}
                )
            if k == 0:
                c = size / 2
                diamond = [[c, c - 6], [c + 6, c], [c, c + 6], [c - 6, c]]
                annotations.append(
                    {"id": f"{series_uid}-p", "revision": 1, "label": "Organ", **common}
                    | {"geometry": {"points": diamond}}
                )
        annotations.append(
            {
                "id": f"{series_uid}-c",
                "revision": 1,
                "label": "Normal",
                "sop_uid": "",
                "frame": 0,
                "geometry": {},
                "attributes": {},
                "reader": "reader1",
            }
        )
        split = split_cycle[p % len(split_cycle)]
        samples.append(
            {
                "key": series_uid,
                "patient": patient,
                "study_uid": study_uid,
                "series_uid": series_uid,
                "modality": "CT",
                "split": "train" if folds else split,
                "fold": p % folds if folds else None,
                "instances": instances,
                "annotations": annotations,
            }
        )
    samples.sort(key=lambda s: s["key"])
    manifest = {
        "format": "workbench.dataset-version/1",
        "project": {"id": "p", "name": "Synthetic"},
        "dataset": {"id": "d", "name": name},
        "parent": None,
        "note": "",
        "selection": {},
        "labels": {"schema_id": "s", "version": 1, "labels": LABELS},
        "split": {
            "seed": 1,
            "ratios": None if folds else {"train": 0.5, "validation": 0.25, "test": 0.25},
            "folds": folds,
            "group_by": "patient",
        },
        "augmentation": {"seed": 0, "materialize": False, "copies": 0, "transforms": []},
        "deidentification": {"profile": "PS3.15 E.1-1 Basic"},
        "samples": samples,
    }
    return ExportInput.from_manifest(manifest, version_id="0" * 64, path_of=lambda uid: files[uid])
