"""Synthetic demo studies with planted identity. No real patient data.

CT series are a simple phantom (body, lungs, a round lesion) so that the demo
looks like a chest and an ML team can train on it: :func:`lesion_mask` is the
lesion's ground truth, pixel for pixel, and :func:`phantom_of` tells which phantom
a stored (de-identified) CT series is by comparing its pixels. US images carry
burned-in text, which the pipeline must black out.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
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


LESION_RADIUS = 0.06  # of the slice width, at the lesion's centre slice
LESION_HALF_DEPTH = 0.25  # of the series length: the lesion shrinks to nothing this far from its centre
_LUNGS = (0.32, 0.68)  # centres (x) of the two lung ellipses, which are 0.14 wide and 0.22 high at y = 0.48


def training_patients(count: int) -> tuple[DemoPatient, ...]:
    """``count`` more synthetic patients, the same on every call, each with one lesion inside a lung.

    Lesions stay inside the lung (dark around them) so that their edge is visible all round,
    as a segmentation model needs; left and right lungs alternate.
    """
    rng = np.random.default_rng(20240611)
    out = []
    for n in range(count):
        x = _LUNGS[n % 2] + rng.uniform(-0.04, 0.04)
        y = 0.48 + rng.uniform(-0.09, 0.09)
        z = rng.uniform(0.35, 0.65)
        out.append(DemoPatient(f"PHANTOM^CASE{n + 1:02d}", f"TRN{n + 1:05d}", (round(x, 3), round(y, 3), round(z, 3))))
    return tuple(out)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size] / size
    return yy, xx


def lesion_mask(size: int, z: float, lesion: tuple[float, float, float]) -> np.ndarray:
    """The lesion's ground truth on the slice at ``z`` (rows x columns, boolean): exactly the
    pixels :func:`phantom_slice` draws as lesion. Empty where the lesion does not reach."""
    yy, xx = _grid(size)
    lx, ly, lz = lesion
    radius = LESION_RADIUS * max(0.0, 1 - abs(z - lz) / LESION_HALF_DEPTH)
    if radius <= 0:
        return np.zeros((size, size), dtype=bool)
    return np.asarray((xx - lx) ** 2 + (yy - ly) ** 2 <= radius**2)


def phantom_slice(size: int, z: float, lesion: tuple[float, float, float]) -> np.ndarray:
    """A chest-like slice in HU: air, soft tissue body, two lungs, one lesion."""
    yy, xx = _grid(size)
    hu = np.full((size, size), -1000.0)
    hu[((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.32) ** 2 <= 1] = 40.0
    for cx in _LUNGS:
        hu[((xx - cx) / 0.14) ** 2 + ((yy - 0.48) / 0.22) ** 2 <= 1] = -850.0
    hu[((xx - 0.5) / 0.05) ** 2 + ((yy - 0.62) / 0.05) ** 2 <= 1] = 700.0  # spine
    hu[lesion_mask(size, z, lesion)] = 30.0
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


def training_datasets(patients: Sequence[DemoPatient], *, slices: int = 12, size: int = 512) -> Iterator[Dataset]:
    """One CT series per training patient (no US): data to train a lesion segmentation on."""
    for n, patient in enumerate(patients):
        yield from _ct_series(patient, generate_uid(), f"2023{1 + n % 12:02d}{10 + n % 18:02d}", slices, size)


def phantom_of(volume: np.ndarray, candidates: Sequence[DemoPatient]) -> DemoPatient | None:
    """Which candidate's phantom a stored CT series is, or None; checked pixel for pixel.

    ``volume`` holds the stored values (slices, rows, columns) in slice order (InstanceNumber).
    A candidate is the answer only if the slice through its lesion's centre equals
    :func:`phantom_slice` exactly (lesion, noise and slice position included), so a ground truth
    is not attached to images it was not drawn on.
    """
    if volume.ndim != 3 or volume.shape[1] != volume.shape[2] or volume.shape[0] < 2:
        return None
    slices, size = volume.shape[0], volume.shape[1]
    for candidate in candidates:
        lx, ly, lz = candidate.lesion
        k = round(lz * (slices - 1))
        if volume[k, int(ly * size), int(lx * size)] < 1024 - 400:  # cheap: lung where its lesion would be
            continue
        if np.array_equal(volume[k], phantom_slice(size, k / (slices - 1), candidate.lesion)):
            return candidate
    return None


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
