"""Helpers shared by the integration tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pydicom
from django.core.files.storage import default_storage
from pydicom.data import get_testdata_file

from anonymizer import services
from anonymizer.intake import Incoming
from anonymizer.models import IngestBatch, Source
from workbench.models import Project

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
