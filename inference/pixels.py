"""The de-identified pixels of a series as a model reads them: one 2-D array per frame, modality units."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from django.core.files.storage import default_storage
from pydicom.pixels import apply_modality_lut

from workbench.models import Instance, Series


def instance_frames(instance: Instance) -> list[npt.NDArray[np.float32]]:
    """Every frame of one stored (de-identified) instance, Modality LUT applied (CT: HU)."""
    with default_storage.open(instance.storage_path, "rb") as stream:
        ds = pydicom.dcmread(stream)
        pixels: Any = apply_modality_lut(ds.pixel_array, ds)
    array = np.asarray(pixels, dtype=np.float32)
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        array = array.mean(axis=-1)  # colour: models here read one channel
    return list(array) if array.ndim == 3 else [array]


def series_frames(series: Series) -> Iterator[tuple[Instance, int, npt.NDArray[np.float32]]]:
    """(instance, frame, pixels) for each frame of the series, in instance order."""
    for instance in series.instances.order_by("number", "sop_uid"):
        for frame, pixels in enumerate(instance_frames(instance)):
            yield instance, frame, pixels
