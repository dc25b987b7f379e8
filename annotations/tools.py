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
from annotations.models import Annotation, Assignment
from workbench.models import Instance
from workbench.models.catalog import spatial_order

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


MAX_VOXELS = 16 * 2**20  # 64 slices of 512 x 512: ~6 s for the watershed on a busy 2-core machine


def _series_slab(
    assignment: Assignment, *, sop_instance_uid: str, frame: int, reach_mm: float | None = None
) -> tuple[np.ndarray, list[tuple[str, int]], int, tuple[float, float, float]]:
    """The assignment's series around one slice as a (slices, rows, columns) volume of modality
    values in the series' spatial order: at most MAX_VOXELS, centred on the slice (a longer
    series is cut there, so a request stays within seconds). Also the (sop, frame) of each
    slice, the index of the given slice among them and the (slice, row, column) spacing in mm.

    ToolError (in words) when the slice is not in the series or the slices are not one volume.
    """
    instances, frames = _frames_in_space(assignment)
    if (sop_instance_uid, frame) not in frames:
        raise ToolError("That image is not in this task's series.")
    shapes = {(i.rows or 0, i.columns or 0) for i in instances}
    if len(shapes) != 1:
        raise ToolError("The slices of this series differ in size: it is not one volume.")
    rows, columns = shapes.pop()
    positions = [i.slice_position for i in instances if i.frames <= 1 and i.slice_position is not None]
    gaps = np.abs(np.diff(positions)) if len(positions) == len(instances) else np.array([])
    gaps = gaps[gaps > 1e-3]
    thickness = next((i.slice_thickness for i in instances if i.slice_thickness), None)
    between = float(np.median(gaps)) if gaps.size else float(thickness or 1.0)
    in_plane = next((i.pixel_spacing for i in instances if i.pixel_spacing), None) or [1.0, 1.0]
    reach = max(1, MAX_VOXELS // max(1, rows * columns) // 2)
    if reach_mm is not None:  # only the slices a sphere of that radius reaches
        reach = min(reach, int(np.ceil(reach_mm / between)))
    here = frames.index((sop_instance_uid, frame))
    low, high = max(0, here - reach), min(len(frames), here + reach + 1)
    slices: list[np.ndarray] = []
    n = 0
    for instance in instances:
        count = max(1, instance.frames)
        if n + count > low and n < high:  # the instance has a slice in the slab
            with default_storage.open(instance.storage_path, "rb") as fh:
                ds = pydicom.dcmread(fh)
            if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
                raise ToolError("The segmentation tools work on grey-scale images only.")
            values = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float32)
            values = values if int(ds.get("NumberOfFrames", 1) or 1) > 1 else values[np.newaxis]
            slices.extend(values[max(0, low - n) : high - n])
        n += count
    return np.stack(slices), frames[low:high], here - low, (between, float(in_plane[0]), float(in_plane[1]))


def tool_grow_from_seeds_3d(
    *, assignment: Assignment, sop_instance_uid: str, frame: int, inside: list[list[float]], outside: list[list[float]]
) -> dict[str, list[dict[str, Any]]]:
    """The region grown in 3-D through the series from seeds clicked on one slice:
    ``{"masks": [...]}``, one mask per slice the region reaches (in the series' spatial order),
    within a slab of at most MAX_VOXELS around the clicked slice.

    Nothing is written: the annotator saves each slice's mask as an ordinary mask stroke. The
    slab is read from storage on every call (no cache); measured on a shared 2-core machine:
    24 x 64 x 64 in ~25 ms, 60 x 256 x 256 in ~1.1 s, 60 x 512 x 512 in ~6 s (watershed alone).
    """
    volume, frames, z, spacing = _series_slab(assignment, sop_instance_uid=sop_instance_uid, frame=frame)
    grown = interactive.grow_from_seeds(volume, [[*p, z] for p in inside], [[*p, z] for p in outside], spacing=spacing)
    return _slice_masks(grown, frames)


def _slice_masks(volume: np.ndarray, frames: list[tuple[str, int]]) -> dict[str, list[dict[str, Any]]]:
    """``{"masks": [...]}``: the slices of a (slices, rows, columns) mask that hold something."""
    return {
        "masks": [
            {"sop_instance_uid": frames[n][0], "frame": frames[n][1], **_mask_geometry(volume[n])}
            for n in range(len(frames))
            if volume[n].any()
        ]
    }


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


def tool_threshold_brush_3d(
    *,
    assignment: Assignment,
    sop_instance_uid: str,
    frame: int,
    points: list[list[float]],
    low: float,
    high: float,
    radius_mm: float | None = None,
    radius_px: float | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The threshold brush as a ball: a stroke drawn on one slice paints, on that slice and on
    every slice the ball reaches, the voxels within the radius (mm, or image pixels times the
    in-plane spacing) whose value lies in [low, high]: ``{"masks": [...]}``, one per slice painted,
    in the series' spatial order. Reads only the slices the ball reaches; nothing is written."""
    instances, _frames = _frames_in_space(assignment)
    in_plane = next((i.pixel_spacing for i in instances if i.pixel_spacing), None) or [1.0, 1.0]
    radius = radius_mm if radius_mm is not None else float(radius_px or 0) * float(in_plane[0])
    volume, frames, z, spacing = _series_slab(
        assignment, sop_instance_uid=sop_instance_uid, frame=frame, reach_mm=radius
    )
    painted = interactive.threshold_stroke(volume, [[*p, z] for p in points], radius, low, high, spacing=spacing)
    return _slice_masks(painted, frames)


CONTOUR_KINDS = ("polygon", "freehand")
_FILL_KINDS = ("mask", *CONTOUR_KINDS)
_NEED_KEYS = "Draw this label on at least two slices first; the slices between them are filled."


def tool_fill_between(*, assignment: Assignment, label_id: Any) -> dict[str, list[dict[str, Any]]]:
    """The label's shape on every slice between two slices that hold it (key slices), in the
    series' spatial order (see :func:`interactive.fill_between`): ``{"masks": [...]}`` for a mask
    label, ``{"polygons": [...]}`` for a polygon or freehand label (each key contour is filled,
    interpolated as a mask, and traced back to a contour). Nothing is written: the annotator saves
    the ones the reader keeps. ToolError when the label draws none of these kinds or has < 2 keys.
    """
    saved = list(
        Annotation.objects.filter(
            assignment=assignment, label_id=label_id, deleted=False, label__kind__in=_FILL_KINDS
        ).select_related("label")
    )
    if not saved:
        raise ToolError(_NEED_KEYS)
    kind = saved[0].label.kind
    instances, frames = _frames_in_space(assignment)
    position = {key: n for n, key in enumerate(frames)}
    size = {(i.sop_uid, f): (i.rows or 0, i.columns or 0) for i in instances for f in range(max(1, i.frames))}
    keys: dict[int, np.ndarray] = {}
    for annotation in saved:
        key = (annotation.sop_instance_uid, annotation.frame)
        n = position.get(key)
        if n is None:
            continue
        rows, columns = size[key]
        mask = geo.rasterize(kind, annotation.geometry, rows, columns)
        keys[n] = keys[n] | mask if n in keys and keys[n].shape == mask.shape else mask
    if len(keys) < 2:
        raise ToolError(_NEED_KEYS)
    spacing = next((i.pixel_spacing for i in instances if i.pixel_spacing), None) or [1.0, 1.0]
    filled = interactive.fill_between(keys, spacing=(float(spacing[0]), float(spacing[1])))
    if kind in CONTOUR_KINDS:
        polygons = []
        for n, mask in sorted(filled.items()):
            points = geo.mask_to_polygon(mask)
            if len(points) >= 3:
                polygons.append({"sop_instance_uid": frames[n][0], "frame": frames[n][1], "points": points})
        return {"polygons": polygons}
    return {
        "masks": [
            {"sop_instance_uid": frames[n][0], "frame": frames[n][1], **_mask_geometry(mask)}
            for n, mask in sorted(filled.items())
        ]
    }


def _frames_in_space(assignment: Assignment) -> tuple[list[Instance], list[tuple[str, int]]]:
    instances = list(assignment.series.instances.order_by(*spatial_order()))
    return instances, [(i.sop_uid, f) for i in instances for f in range(max(1, i.frames))]


def tool_propagate(
    *, assignment: Assignment, sop_instance_uid: str, frame: int, label_id: Any, step: int
) -> dict[str, Any]:
    """The saved mask of ``label_id`` on one slice, carried to the slice ``step`` (+1 or -1) away
    in the series' spatial order (see :func:`interactive.propagate`). Nothing is written."""
    saved = list(
        Annotation.objects.filter(
            assignment=assignment,
            label_id=label_id,
            label__kind="mask",
            deleted=False,
            sop_instance_uid=sop_instance_uid,
            frame=frame,
        )
    )
    if not saved:
        raise ToolError("This slice holds no saved mask of that label to carry over.")
    _instances, frames = _frames_in_space(assignment)
    here = frames.index((sop_instance_uid, frame)) if (sop_instance_uid, frame) in frames else None
    if here is None:
        raise ToolError("That image is not in this task's series.")
    there = here + step
    if not 0 <= there < len(frames):
        raise ToolError("There is no slice beyond this one in that direction.")
    g = saved[0].geometry
    mask = np.zeros((g["rows"], g["columns"]), dtype=bool)
    for annotation in saved:
        mask |= geo.rle_decode(annotation.geometry["rle"], g["rows"], g["columns"])
    image = tool_frame(assignment=assignment, sop_instance_uid=frames[there][0], frame=frames[there][1])
    carried = interactive.propagate(mask, image.values, spacing=image.spacing)
    return {"sop_instance_uid": frames[there][0], "frame": frames[there][1], **_mask_geometry(carried)}
