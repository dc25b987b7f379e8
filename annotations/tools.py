"""Server side of the reader's segmentation tools: the pixels they work on, and the call.

The tools (:mod:`annotations.interactive`) are pure; this module reads the de-identified
frame of an instance of the assignment's series as modality values (Hounsfield units for
CT), runs the tool and answers with a ``mask`` geometry, which the annotator stores as an
ordinary, editable mask annotation. Nothing is written here: a tool's answer is a proposal
the reader keeps or discards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from django.core.files.storage import default_storage
from pydicom.pixels import apply_modality_lut

from annotations import geometry as geo
from annotations import interactive
from annotations.models import Assignment
from workbench.models import Instance

ToolError = interactive.ToolError


@dataclass(frozen=True)
class Frame:
    values: np.ndarray  # (rows, columns) modality values
    spacing: tuple[float, float]  # row, column in mm (1.0 when the file gives none)


def tool_frame(*, assignment: Assignment, sop_instance_uid: str, frame: int) -> Frame:
    """One frame of an instance of ``assignment``'s series as modality values.

    ToolError (in words) when the instance is not in that series or has no such frame.
    """
    instance = Instance.objects.filter(sop_uid=sop_instance_uid, series_id=assignment.series_id).first()
    if instance is None:
        raise ToolError("That image is not in this task's series.")
    if not 0 <= frame < max(1, instance.frames):
        raise ToolError(f"The image has {instance.frames} frame(s); frame {frame} does not exist.")
    with default_storage.open(instance.storage_path, "rb") as fh:
        ds = pydicom.dcmread(fh)
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise ToolError("The segmentation tools work on grey-scale images only.")
    pixels = ds.pixel_array
    data = pixels[frame] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels
    values = np.asarray(apply_modality_lut(data, ds), dtype=np.float32)
    spacing = instance.pixel_spacing or [1.0, 1.0]
    return Frame(values, (float(spacing[0]), float(spacing[1])))


def _mask_geometry(mask: np.ndarray) -> dict[str, Any]:
    rows, columns = mask.shape
    rle = geo.rle_encode(mask)
    return {"rows": rows, "columns": columns, "rle": rle, "area_px": geo.rle_area(rle)}


def tool_grow_from_seeds(
    *, assignment: Assignment, sop_instance_uid: str, frame: int, inside: list[list[float]], outside: list[list[float]]
) -> dict[str, Any]:
    """The mask grown from the reader's seeds on one frame (see :func:`interactive.grow_from_seeds`)."""
    image = tool_frame(assignment=assignment, sop_instance_uid=sop_instance_uid, frame=frame)
    mask = interactive.grow_from_seeds(image.values, inside, outside, spacing=image.spacing)
    return _mask_geometry(mask)


def tool_threshold_brush(
    *,
    assignment: Assignment,
    sop_instance_uid: str,
    frame: int,
    points: list[list[float]],
    low: float,
    high: float,
    radius_mm: float | None = None,
    radius_px: float | None = None,
) -> dict[str, Any]:
    """The pixels a threshold-brush stroke through ``points`` paints (see
    :func:`interactive.threshold_stroke`); the radius in millimetres or in image pixels."""
    image = tool_frame(assignment=assignment, sop_instance_uid=sop_instance_uid, frame=frame)
    if radius_px is not None:
        mask = interactive.threshold_stroke(image.values, points, radius_px, low, high)
    else:
        assert radius_mm is not None  # the serializer asks for one of the two
        mask = interactive.threshold_stroke(image.values, points, radius_mm, low, high, spacing=image.spacing)
    return _mask_geometry(mask)
