"""What the 2-D image formats (COCO, YOLO) share: checked annotations, frames rendered to PNG, image records.

Imports no Django. One image is one frame of one instance; its file name is
``{sample key}_{instance:04d}_{frame:04d}.png`` (the instance's place in the series' spatial order,
then the frame within it), never anything read from the file.

Options (the same for both formats):

- ``frames``: ``"all"`` (default) writes every frame of every sample, so frames without labels
  are there as negatives; ``"annotated"`` writes only frames with an area annotation.
- ``bit_depth``: ``8`` (default) or ``16``. 8-bit grey images are windowed (below). 16-bit grey
  images hold the stored pixel values, plus 32768 when they are signed (a PNG is unsigned); the
  image record's ``rescale`` maps a PNG value ``v`` to modality units (HU for CT) as
  ``slope * v + intercept``, or is null when a Modality LUT table (not a line) applies.
- ``window`` (8-bit grey only): ``"file"`` (default) uses the frame's WindowCenter/WindowWidth and
  VOILUTFunction (PS3.3 C.11.2.1.2), falling back to the frame's minimum and maximum when the file
  has no usable window; ``"minmax"`` always maps the frame's minimum to 0 and maximum to 255.
  MONOCHROME1 is inverted so that 255 is white on screen. The record's ``window`` says what was used.

Colour images (RGB, or YBR that pydicom decodes to RGB) are written as 8-bit RGB whatever the options.

Coordinates: annotation geometry has its origin at the centre of the top-left pixel; COCO and YOLO
put it at the pixel's top-left corner, so every x and y moves by half a pixel (:func:`corner_xy`).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut

from annotations.ellipse import ellipse_points
from annotations.geometry import AREA_KINDS, rle_area
from datasets.exporters.base import (
    SPLITS,
    AnnotationRef,
    ExportError,
    ExportInput,
    GeometryMismatch,
    LabelDef,
    Sample,
    image_size,
)
from datasets.exporters.volumes import _functional

FRAME_OPTIONS: Mapping[str, str] = {
    "frames": '"all" (default): every frame, unlabelled ones as negatives; "annotated": frames with an area label.',
    "bit_depth": "8 (default) or 16: 16-bit grey PNGs hold the stored pixel values (plus 32768 when signed).",
    "window": '8-bit grey only: "file" (default) uses the DICOM window, "minmax" the frame\'s range.',
}
SIGNED_OFFSET = 32768
EDGE_TOLERANCE = 1e-6  # pixels: a vertex on the image's outer edge is inside
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class RenderOptions:
    frames: str = "all"
    bit_depth: int = 8
    window: str = "file"


def render_options(options: Mapping[str, Any]) -> RenderOptions:
    """The frame options from an export's options, or ExportError saying which value is wrong."""
    frames = options.get("frames", "all")
    bit_depth = options.get("bit_depth", 8)
    window = options.get("window", "file")
    if frames not in ("all", "annotated"):
        raise ExportError(f'the option frames must be "all" or "annotated", not {frames!r}')
    if isinstance(bit_depth, bool) or bit_depth not in (8, 16):
        raise ExportError(f"the option bit_depth must be 8 or 16, not {bit_depth!r}")
    if window not in ("file", "minmax"):
        raise ExportError(f'the option window must be "file" or "minmax", not {window!r}')
    return RenderOptions(frames=frames, bit_depth=int(bit_depth), window=window)


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class Frame:
    ordinal: int  # the instance's place in the sample's spatial order
    sop_uid: str
    frame: int
    pixel_spacing: tuple[float, float] | None
    file_name: str
    image: npt.NDArray[Any]  # (rows, columns) uint8 or uint16, or (rows, columns, 3) uint8
    window: Mapping[str, Any] | None
    rescale: Mapping[str, float] | None

    @property
    def rows(self) -> int:
        return int(self.image.shape[0])

    @property
    def columns(self) -> int:
        return int(self.image.shape[1])


# --- annotations ----------------------------------------------------------------------------------


def check_sample(data: ExportInput, sample: Sample) -> None:
    """Fail before writing a sample whose split, key or annotations the image formats cannot take.

    Every annotation (except series classifications) must sit on a frame the series holds, and
    area shapes must lie inside their image and cover some area: GeometryMismatch or ExportError
    naming the sample, never a label dropped or clipped without a word.
    """
    if sample.split not in SPLITS:
        raise ExportError(f"unknown split {sample.split!r}", sample=sample.key)
    if not _SAFE_KEY.fullmatch(sample.key):
        raise ExportError("the sample key cannot be part of a file name", sample=sample.key)
    if not sample.instances:
        raise ExportError("the series has no instances", sample=sample.key)
    by_name = {one.name: one for one in data.labels}
    instances = {one.sop_uid: one for one in sample.instances}
    for one in sample.annotations:
        label = by_name.get(one.label)
        if label is None:
            raise ExportError(f"annotation {one.id} has the label {one.label!r}, not in the schema", sample=sample.key)
        if label.kind == "classification_series":
            continue
        instance = instances.get(one.sop_uid)
        if instance is None or not 0 <= one.frame < instance.frames:
            raise GeometryMismatch(
                f"annotation {one.id} is on image {one.sop_uid} frame {one.frame}, which the series does not hold",
                sample=sample.key,
            )
        if label.kind in AREA_KINDS:
            _check_shape(one, label.kind, instance.rows, instance.columns, sample.key)


def _check_shape(one: AnnotationRef, kind: str, rows: int, columns: int, sample: str) -> None:
    geometry = one.geometry
    if kind == "mask":
        size = (int(geometry["rows"]), int(geometry["columns"]))
        if size != (rows, columns):
            raise GeometryMismatch(
                f"the mask of annotation {one.id} is {image_size(*size)} but its image is {image_size(rows, columns)}",
                sample=sample,
            )
        if rle_area(geometry["rle"]) == 0:
            raise ExportError(f"annotation {one.id} is an empty mask", sample=sample)
        return
    points = shape_points(kind, geometry)
    low = -0.5 - EDGE_TOLERANCE
    for x, y in points:
        if not (low <= x <= columns - 0.5 + EDGE_TOLERANCE and low <= y <= rows - 0.5 + EDGE_TOLERANCE):
            raise GeometryMismatch(
                f"annotation {one.id} reaches ({x:g}, {y:g}), outside its {image_size(rows, columns)} image",
                sample=sample,
            )
    if polygon_area(points) == 0:
        raise ExportError(f"annotation {one.id} ({kind}) encloses no area", sample=sample)


def area_annotations(
    data: ExportInput, sample: Sample, sop_uid: str, frame: int
) -> list[tuple[AnnotationRef, LabelDef]]:
    """The frame's area annotations with their labels, in label order then id (as label maps draw them)."""
    by_name = {one.name: one for one in data.area_labels}
    found = [(one, by_name[one.label]) for one in sample.annotations_on(sop_uid, frame) if one.label in by_name]
    return sorted(found, key=lambda pair: (pair[1].index, pair[0].id))


def classifications(data: ExportInput, sample: Sample, sop_uid: str, frame: int) -> list[dict[str, Any]]:
    """Image classifications on the frame and the sample's series classifications, for its image record."""
    kinds = {one.name: one.kind for one in data.labels}
    out = []
    for one in sample.annotations:
        kind = kinds.get(one.label)
        on_frame = kind == "classification_image" and (one.sop_uid, one.frame) == (sop_uid, frame)
        if on_frame or kind == "classification_series":
            scope = "image" if on_frame else "series"
            out.append(
                {
                    "id": one.id,
                    "label": one.label,
                    "scope": scope,
                    "attributes": dict(one.attributes),
                    "reader": one.reader,
                }
            )
    return out


def shape_points(kind: str, geometry: Mapping[str, Any]) -> list[tuple[float, float]]:
    """The vertices of a box, polygon or freehand shape, or of the 64-gon an ellipse is written as
    (annotations.ellipse.ellipse_points), in geometry coordinates."""
    if kind == "box":
        return box_points(geometry)
    if kind == "ellipse":
        return ellipse_points(dict(geometry))
    return [(float(x), float(y)) for x, y in geometry["points"]]


def box_points(geometry: Mapping[str, Any]) -> list[tuple[float, float]]:
    """A box's corners, clockwise on screen from the top left, in geometry coordinates."""
    x0, x1 = sorted((float(geometry["x0"]), float(geometry["x1"])))
    y0, y1 = sorted((float(geometry["y0"]), float(geometry["y1"])))
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def corner_xy(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Geometry coordinates (origin at the top-left pixel's centre) to COCO/YOLO ones (at its corner)."""
    return [(x + 0.5, y + 0.5) for x, y in points]


def polygon_area(points: list[tuple[float, float]]) -> float:
    """The shoelace area, unsigned (a polygon's own winding does not matter here)."""
    if len(points) < 3:
        return 0.0
    twice = sum(xa * yb - xb * ya for (xa, ya), (xb, yb) in zip(points, points[1:] + points[:1], strict=True))
    return abs(twice) / 2


# --- frames ---------------------------------------------------------------------------------------


def sample_frames(
    data: ExportInput, sample: Sample, options: RenderOptions, *, also: frozenset[str] = frozenset()
) -> Iterator[Frame]:
    """The sample's frames in spatial order, rendered as ``options`` say (only annotated ones, if asked).

    "Annotated" means holding an area label, or a label of a kind in ``also`` (a format that
    exports points and lines passes them, so that their frames are written too).
    """
    drawn = {one.name for one in data.area_labels} | {one.name for one in data.labels if one.kind in also}
    annotated = {(one.sop_uid, one.frame) for one in sample.annotations if one.label in drawn}
    for ordinal, ref in enumerate(sample.instances):
        wanted = [f for f in range(ref.frames) if options.frames == "all" or (ref.sop_uid, f) in annotated]
        if not wanted:
            continue
        ds = pydicom.dcmread(data.path_of(ref.sop_uid))
        frames, rows, columns = int(ds.get("NumberOfFrames") or 1), int(ds.Rows), int(ds.Columns)
        if (rows, columns, frames) != (ref.rows, ref.columns, ref.frames):
            raise GeometryMismatch(
                f"instance {ordinal + 1} is {image_size(rows, columns)} with {frames} frame(s) but the manifest "
                f"says {image_size(ref.rows, ref.columns)} with {ref.frames}",
                sample=sample.key,
            )
        channels = int(ds.get("SamplesPerPixel") or 1)
        stored = np.asarray(ds.pixel_array).reshape(frames, rows, columns, channels)
        for f in wanted:
            image, window, rescale = _render(ds, stored[f], f, options, sample=sample.key)
            yield Frame(
                ordinal=ordinal,
                sop_uid=ref.sop_uid,
                frame=f,
                pixel_spacing=ref.pixel_spacing,
                file_name=f"{sample.key}_{ordinal:04d}_{f:04d}.png",
                image=image,
                window=window,
                rescale=rescale,
            )


def image_record(sample: Sample, frame: Frame) -> dict[str, Any]:
    """What an image record says about where a frame comes from (pseudonyms and UIDs of the store only)."""
    return {
        "file_name": frame.file_name,
        "width": frame.columns,
        "height": frame.rows,
        "sample": sample.key,
        "patient": sample.patient,
        "study_uid": sample.study_uid,
        "series_uid": sample.series_uid,
        "modality": sample.modality,
        "split": sample.split,
        "fold": sample.fold,
        "sop_uid": frame.sop_uid,
        "instance": frame.ordinal,
        "frame": frame.frame,
        "pixel_spacing": list(frame.pixel_spacing) if frame.pixel_spacing else None,
        "window": dict(frame.window) if frame.window else None,
        "rescale": dict(frame.rescale) if frame.rescale else None,
    }


def png_bytes(image: npt.NDArray[Any]) -> bytes:
    """A PNG of the image with no metadata chunks (no time, no text), so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


# --- rendering ------------------------------------------------------------------------------------


def _render(
    ds: Dataset, stored: npt.NDArray[Any], frame: int, options: RenderOptions, *, sample: str
) -> tuple[npt.NDArray[Any], dict[str, Any] | None, dict[str, float] | None]:
    """(image, window used, rescale from PNG values to modality units) of one frame.

    ``stored`` is the frame's stored values as (rows, columns, channels).
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if stored.shape[2] == 3:
        if stored.dtype != np.uint8:
            raise ExportError(f"a colour image with {ds.get('BitsStored')}-bit samples is not supported", sample=sample)
        return np.ascontiguousarray(stored), None, None
    if not photometric.startswith("MONOCHROME"):
        raise ExportError(f"images with PhotometricInterpretation {photometric} are not supported", sample=sample)
    grey = stored[:, :, 0]
    slope = _functional(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
    intercept = _functional(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
    linear = slope is not None or "ModalityLUTSequence" not in ds
    if slope is None:
        slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    # An empty (Type 2) value means the identity, as an absent one does.
    slope, intercept = float(slope or 1.0), float(intercept or 0.0)
    if options.bit_depth == 16:
        return _sixteen_bit(ds, grey, slope, intercept, linear, sample=sample)
    if linear:
        values = grey.astype(np.float64) * slope + intercept
    else:
        values = np.asarray(apply_modality_lut(grey, ds), dtype=np.float64)
    window = _file_window(ds, frame) if options.window == "file" else None
    if window is None:
        low, high = float(values.min()), float(values.max())
        window = {"center": (low + high) / 2 + 0.5, "width": high - low + 1, "function": "LINEAR", "source": "minmax"}
    image = _apply_window(values, window)
    if photometric == "MONOCHROME1":
        image = 255 - image
    return image, window, None


def _sixteen_bit(
    ds: Dataset, grey: npt.NDArray[Any], slope: float, intercept: float, linear: bool, *, sample: str
) -> tuple[npt.NDArray[Any], None, dict[str, float] | None]:
    offset = SIGNED_OFFSET if int(ds.get("PixelRepresentation") or 0) == 1 else 0
    if not np.issubdtype(grey.dtype, np.integer):
        raise ExportError("floating-point pixel data cannot be a 16-bit PNG; use bit_depth 8", sample=sample)
    shifted = grey.astype(np.int64) + offset
    if shifted.size and (shifted.min() < 0 or shifted.max() > 65535):
        raise ExportError("the stored pixel values do not fit a 16-bit PNG; use bit_depth 8", sample=sample)
    rescale = {"slope": slope, "intercept": intercept - slope * offset} if linear else None
    return shifted.astype(np.uint16), None, rescale


def _file_window(ds: Dataset, frame: int) -> dict[str, Any] | None:
    """The frame's own window (per-frame functional groups first), or None when there is no usable one."""
    center = _functional(ds, frame, "FrameVOILUTSequence", "WindowCenter")
    width = _functional(ds, frame, "FrameVOILUTSequence", "WindowWidth")
    function = _functional(ds, frame, "FrameVOILUTSequence", "VOILUTFunction")
    if center is None or width is None:
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        function = ds.get("VOILUTFunction")
    try:
        center_value, width_value = float(_first(center)), float(_first(width))
    except (TypeError, ValueError, IndexError):
        return None
    function = str(function or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID") or not math.isfinite(center_value):
        return None
    # PS3.3 C.11.2.1.2: LINEAR needs a width of at least 1, the others one above 0.
    if not math.isfinite(width_value) or (width_value < 1 if function == "LINEAR" else width_value <= 0):
        return None
    return {"center": center_value, "width": width_value, "function": function, "source": "file"}


def _first(value: Any) -> Any:
    """The first of several values (a file may offer several windows; viewers show the first)."""
    return value[0] if isinstance(value, list | MultiValue) else value


def _apply_window(values: npt.NDArray[np.float64], window: Mapping[str, Any]) -> npt.NDArray[np.uint8]:
    """PS3.3 C.11.2.1.2 onto 0..255; a LINEAR window of width 1 is a threshold, as the standard says."""
    c, w, function = float(window["center"]), float(window["width"]), window["function"]
    if function == "SIGMOID":
        scaled = 255 / (1 + np.exp(-4 * (values - c) / w))
    elif function == "LINEAR_EXACT":
        scaled = ((values - c) / w + 0.5) * 255
    elif w == 1:
        scaled = np.where(values <= c - 0.5, 0.0, 255.0)
    else:
        scaled = ((values - (c - 0.5)) / (w - 1) + 0.5) * 255
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
