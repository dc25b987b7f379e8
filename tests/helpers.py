"""Helpers shared by the integration tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from anonymizer import services
from anonymizer.intake import Incoming
from anonymizer.models import IngestBatch, Source
from workbench.models import Instance, Project

CT_SMALL = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
MR_SMALL = Path(get_testdata_file("MR_small.dcm"))  # type: ignore[arg-type]


def identifying_strings(path: Path) -> list[str]:
    """Strings that identify the patient in a real test file, to look for in outputs."""
    ds = pydicom.dcmread(path)
    values = [str(ds.PatientName), str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)]
    return [v for v in values if len(v) >= 3]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def ingest(project: Project, files: dict[str, bytes], user: Any = None) -> IngestBatch:
    """Create a batch and add files; call inside run_tasks() to process them."""
    batch = services.batch_create(project=project, source=Source.API, user=user)
    services.batch_add(batch=batch, incoming=[Incoming(name, data) for name, data in files.items()])
    return batch


def stored_bytes(storage_path: str) -> bytes:
    with default_storage.open(storage_path, "rb") as fh:
        return fh.read()


def store_ct(instance: Instance, hu: np.ndarray, *, pixel_spacing: tuple[float, float] | None = None) -> None:
    """Write ``hu`` (rows x columns, Hounsfield units) as the CT file of ``instance`` and point its row at it.

    For catalog rows made directly (tests.annotation_factory.make_series) that a tool or model must read
    pixels from: signed 16-bit, rescale intercept -1024, the instance's own SOP, series and study UIDs.
    ``pixel_spacing`` (row, column mm) goes into the file and onto the row; without it the file has none.
    """
    series = instance.series
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = instance.sop_uid
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, instance.sop_uid, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = series.study.study_uid, series.series_uid
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    fields = ["storage_path"]
    if pixel_spacing is not None:
        ds.PixelSpacing = list(pixel_spacing)
        instance.pixel_spacing = list(pixel_spacing)
        fields.append("pixel_spacing")
    ds.PixelData = np.round(np.asarray(hu) + 1024).astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    instance.storage_path = default_storage.save(f"ct/{instance.sop_uid}.dcm", ContentFile(buffer.getvalue()))
    instance.save(update_fields=fields)
