"""Export formats: one module each, all implementing ``datasets.exporters.base.Exporter``."""

from __future__ import annotations

import importlib

from datasets.exporters.base import REGISTRY, Exporter, ExportError

FORMATS = ("nnunet", "nifti", "coco", "yolo", "dicomseg", "dicom")


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name``; ExportError names the formats there are."""
    if name not in FORMATS:
        raise ExportError(f"Unknown export format {name!r}; choose one of: {', '.join(FORMATS)}.")
    importlib.import_module(f"datasets.exporters.{name}")
    return REGISTRY[name]()
