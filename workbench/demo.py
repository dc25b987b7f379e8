"""Synthetic demo studies with planted identity. No real patient data.

CT series are a simple phantom (body, lungs, a round lesion) so that the demo
looks like a chest and later issues can train on it; US images carry burned-in
text, which the pipeline must black out.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom import Dataset
from pydicom.uid import generate_uid

from anonymizer.deid.tests.factory import make_ct, make_us


@dataclass(frozen=True)
class DemoPatient:
    name: str
    patient_id: str
    lesion: tuple[float, float, float]  # centre (x, y, slice) as fractions


PATIENTS = (
    DemoPatient("HARRIS^MARGARET", "MRN0041177", (0.35, 0.45, 0.5)),
    DemoPatient("OKAFOR^DANIEL", "MRN0058213", (0.65, 0.40, 0.4)),
    DemoPatient("NAKAMURA^YUKI", "MRN0072391", (0.30, 0.55, 0.6)),
)


def phantom_slice(size: int, z: float, lesion: tuple[float, float, float]) -> np.ndarray:
    """A chest-like slice in HU: air, soft tissue body, two lungs, one lesion."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    hu = np.full((size, size), -1000.0)
    hu[((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.32) ** 2 <= 1] = 40.0
    for cx in (0.32, 0.68):
        hu[((xx - cx) / 0.14) ** 2 + ((yy - 0.48) / 0.22) ** 2 <= 1] = -850.0
    hu[((xx - 0.5) / 0.05) ** 2 + ((yy - 0.62) / 0.05) ** 2 <= 1] = 700.0  # spine
    lx, ly, lz = lesion
    radius = 0.06 * max(0.0, 1 - abs(z - lz) / 0.25)
    if radius > 0:
        hu[(xx - lx) ** 2 + (yy - ly) ** 2 <= radius**2] = 30.0
    noise = np.random.default_rng(int(z * 1000)).normal(0, 12, hu.shape)
    return (hu + noise + 1024).astype(np.int16)  # stored values; RescaleIntercept -1024


def _ct_series(patient: DemoPatient, study_uid: str, study_date: str, slices: int, size: int) -> Iterator[Dataset]:
    series_uid, frame_uid = generate_uid(), generate_uid()
    for k in range(slices):
        ds = make_ct(
            patient_name=patient.name, patient_id=patient.patient_id, study_uid=study_uid, study_date=study_date
        )
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = 2, k + 1
        ds.Rows = ds.Columns = size
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = "5"
        ds.ImagePositionPatient = [-size * 0.35, -size * 0.35, -5.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = -5.0 * k
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.PixelRepresentation = 1
        ds.PixelData = phantom_slice(size, k / max(slices - 1, 1), patient.lesion).tobytes()
        yield ds


def _us_series(patient: DemoPatient, study_date: str, images: int) -> Iterator[Dataset]:
    study_uid, series_uid = generate_uid(), generate_uid()
    for k in range(images):
        ds = make_us(
            patient_name=patient.name,
            patient_id=patient.patient_id,
            study_uid=study_uid,
            study_date=study_date,
            text=f"{patient.name.replace('^', ' ')} {patient.patient_id}",
        )
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, 1, k + 1
        ds.StudyDescription = f"US ABDOMEN {patient.name.split('^')[0]}"  # the name is cleaned away
        ds.SeriesDescription = "ABDOMEN B-MODE"
        yield ds


def demo_datasets(*, slices: int = 12, size: int = 512, us_images: int = 2) -> Iterator[Dataset]:
    """Three patients with a CT and a US study each; the first has a follow-up CT."""
    for n, patient in enumerate(PATIENTS):
        yield from _ct_series(patient, generate_uid(), f"2024{3 + n:02d}1{n}", slices, size)
        yield from _us_series(patient, f"2024{3 + n:02d}2{n}", us_images)
    yield from _ct_series(PATIENTS[0], generate_uid(), "20240911", slices, size)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
