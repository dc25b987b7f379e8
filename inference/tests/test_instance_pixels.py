"""The run's pixel read (inference.runs): plain DICOM straight from the bytes, the rest through pydicom,
the same modality values either way."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from inference.runs import _modality_values, _native_frames


def _dataset(values: np.ndarray, *, bits_stored: int | None = None, syntax: str = ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    frames, rows, columns = values.shape
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated = values.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, int(values.dtype.kind == "i")
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = values.astype(values.dtype.newbyteorder("<")).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _pydicom_values(ds: Dataset) -> list[np.ndarray]:
    pixels = ds.pixel_array
    frames = pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[None]
    return [np.asarray(apply_modality_lut(frame, ds), dtype=np.float32) for frame in frames]


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8])
@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_plain_pixels_are_read_from_the_bytes_with_pydicoms_values(dtype: type, frames: int, syntax: str) -> None:
    info = np.iinfo(dtype)
    values = np.random.default_rng(0).integers(info.min, info.max, (frames, 6, 5), endpoint=True).astype(dtype)
    ds = _dataset(values, syntax=syntax)
    fast = _native_frames(ds)
    assert fast is not None and np.array_equal(fast, values)
    got, want = _modality_values(fast, ds), _pydicom_values(ds)
    assert all(a.dtype == np.float32 and np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_unused_high_bits_and_compressed_data_go_through_pydicom() -> None:
    values = np.random.default_rng(1).integers(0, 4095, (1, 4, 4)).astype(np.uint16)
    assert _native_frames(_dataset(values, bits_stored=12)) is None
    compressed = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
    assert _native_frames(compressed) is None


@pytest.mark.parametrize(
    "slope,intercept", [(1, -1024), (2, -1000), (-3, 7), (0.5, 0), (1, 0.25), (256, 0), (None, None)]
)
def test_the_rescale_gives_apply_modality_luts_values(slope: float | None, intercept: float | None) -> None:
    values = np.random.default_rng(2).integers(-32768, 32767, (2, 5, 7), endpoint=True).astype(np.int16)
    ds = Dataset()
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    want = [np.asarray(apply_modality_lut(frame, ds), dtype=np.float32) for frame in values]
    got = _modality_values(values, ds)
    assert all(a.dtype == np.float32 and np.array_equal(a, b) for a, b in zip(got, want, strict=True))
