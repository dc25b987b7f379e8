"""One sample as a checked 3-D volume, its label map, and deterministic NIfTI bytes. Imports no Django.

Axes and coordinates, the one place they are decided for the volume formats:

- ``Volume.pixels`` is indexed ``(z, y, x)`` = (slice, row, column), slices in the manifest's order
  (spatial order). ``spacing``, ``origin`` and ``direction`` are given for the axes x, y, z.
- DICOM patient coordinates are LPS (+x to the patient's left, +y posterior, +z head). The centre of
  pixel (row r, column c) of slice k is ``IPP_k + c * col_mm * X + r * row_mm * Y`` where ``X`` and
  ``Y`` are the first and second triplets of ImageOrientationPatient and PixelSpacing is
  ``[row_mm, col_mm]`` (the distance between rows, then between columns).
- NIfTI world coordinates (as nibabel, ITK-SNAP and nnU-Net read them) are RAS+, and the data array
  is ``(x, y, z)``; :func:`nifti_affine` maps its indices ``(i, j, k)`` = (column, row, slice) to RAS.

Slices are never reordered: when the manifest order runs against the slice normal, the z axis of
``direction`` points the way the slices go (the matrix is then left-handed, which NIfTI's qfac holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset

from datasets.exporters.base import (
    ExportError,
    ExportInput,
    GeometryMismatch,
    InstanceRef,
    Sample,
    gzip_bytes,
    image_size,
    label_map,
)

# Two slices closer than this along the normal are the same slice; steps may differ by the larger of
# this and 1% of the step before the stack counts as unevenly spaced.
POSITION_TOLERANCE_MM = 0.01
STEP_TOLERANCE = 0.01
# ImageOrientationPatient and PixelSpacing are decimal strings; equal planes agree far closer than this.
ORIENTATION_TOLERANCE = 1e-4
SPACING_TOLERANCE_MM = 1e-4

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class Volume:
    pixels: npt.NDArray[Any]  # (z, y, x) in modality units: int16 when that is lossless, else float32
    spacing: tuple[float, float, float]  # mm along x (between columns), y (between rows), z (slice step)
    origin: tuple[float, float, float]  # LPS mm of the centre of voxel (0, 0, 0)
    direction: npt.NDArray[np.float64]  # 3x3, columns: unit vectors of the x, y and z axes in LPS
    sop_uids: tuple[str, ...]  # per slice
    frames: tuple[int, ...]  # per slice: the frame of its instance (0 for single-frame instances)


@dataclass(frozen=True, eq=False)
class _Slice:
    sop_uid: str
    frame: int
    rows: int
    columns: int
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None  # (row_mm, col_mm) as DICOM orders them
    position: tuple[float, float, float] | None
    thickness: float | None
    values: npt.NDArray[np.float64]  # modality units


# --- reading --------------------------------------------------------------------------------------


def _functional(ds: Dataset, frame: int, sequence: str, keyword: str) -> Any:
    """An attribute from the frame's functional groups (per-frame first, then shared), or None."""
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        inner = group.get(sequence)
        if inner and keyword in inner[0]:
            return inner[0].get(keyword)
    return None


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):  # a single number or text where a list of numbers belongs
        return None
    return numbers if len(numbers) == count else None


def _read_instance(path: Any, ref: InstanceRef, *, sample: str, ordinal: int) -> list[_Slice]:
    ds = pydicom.dcmread(path)
    frames = int(ds.get("NumberOfFrames") or 1)
    rows, columns = int(ds.Rows), int(ds.Columns)
    where = f"instance {ordinal}"
    if (rows, columns, frames) != (ref.rows, ref.columns, ref.frames):
        raise GeometryMismatch(
            f"{where} is {image_size(rows, columns)} with {frames} frame(s) but the manifest says "
            f"{image_size(ref.rows, ref.columns)} with {ref.frames}",
            sample=sample,
        )
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        raise ExportError(f"{where} is a colour image; volume formats take one value per voxel", sample=sample)
    if "ModalityLUTSequence" in ds:
        raise ExportError(
            f"{where} maps values through a Modality LUT, which volume formats do not apply", sample=sample
        )
    _check_frozen_spacing(ref, _floats(ds.get("PixelSpacing"), 2), where=where, sample=sample)
    stored = np.asarray(ds.pixel_array).reshape(frames, rows, columns)
    out = []
    for frame in range(frames):
        position = _functional(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
        if position is None and frames == 1:
            position = ds.get("ImagePositionPatient")
        if position is None and frames > 1:
            raise GeometryMismatch(
                f"{where} has {frames} frames but frame {frame + 1} has no position of its own "
                "(PerFrameFunctionalGroupsSequence > PlanePositionSequence); it cannot be stacked",
                sample=sample,
            )
        orientation = _functional(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = _functional(ds, frame, "PixelMeasuresSequence", "PixelSpacing")
        thickness = _functional(ds, frame, "PixelMeasuresSequence", "SliceThickness")
        slope = _functional(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _functional(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
        orientation = orientation if orientation is not None else ds.get("ImageOrientationPatient")
        spacing = spacing if spacing is not None else ds.get("PixelSpacing")
        thickness = thickness if thickness is not None else ds.get("SliceThickness")
        slope = float(slope if slope is not None else ds.get("RescaleSlope", 1.0))
        intercept = float(intercept if intercept is not None else ds.get("RescaleIntercept", 0.0))
        pixel_spacing = _floats(spacing, 2)
        out.append(
            _Slice(
                sop_uid=ref.sop_uid,
                frame=frame,
                rows=rows,
                columns=columns,
                orientation=_floats(orientation, 6),
                pixel_spacing=(pixel_spacing[0], pixel_spacing[1]) if pixel_spacing else None,
                position=_floats(position, 3),  # type: ignore[arg-type]  # three floats, checked by _floats
                thickness=float(thickness) if thickness not in (None, "") else None,
                values=stored[frame].astype(np.float64) * slope + intercept,
            )
        )
    return out


# --- checks ---------------------------------------------------------------------------------------


def _check_frozen_spacing(ref: InstanceRef, found: tuple[float, ...] | None, *, where: str, sample: str) -> None:
    """The file's top-level PixelSpacing is the one the catalog froze into the manifest.

    Only that attribute is compared: it is what the catalog reads (before ImagerPixelSpacing), while
    per-frame spacings of enhanced objects are checked against each other in :func:`_check_planes`.
    """
    if ref.pixel_spacing is None or found is None:
        return
    if not np.allclose(found, ref.pixel_spacing, rtol=0, atol=SPACING_TOLERANCE_MM):
        a, b = found, ref.pixel_spacing
        raise GeometryMismatch(
            f"{where} has PixelSpacing {a[0]:g}\\{a[1]:g} mm but the manifest says {b[0]:g}\\{b[1]:g} mm",
            sample=sample,
        )


def _check_planes(slices: list[_Slice], sample: str) -> None:
    """Every slice has the first one's size, orientation and pixel spacing."""
    first, count = slices[0], len(slices)
    for k, one in enumerate(slices):
        where = f"slice {k + 1} of {count}"
        if one.orientation is None or one.pixel_spacing is None or one.position is None:
            missing = [
                name
                for name, value in (
                    ("ImageOrientationPatient", one.orientation),
                    ("PixelSpacing", one.pixel_spacing),
                    ("ImagePositionPatient", one.position),
                )
                if value is None
            ]
            raise GeometryMismatch(f"{where} has no {' or '.join(missing)}", sample=sample)
        if (one.rows, one.columns) != (first.rows, first.columns):
            raise GeometryMismatch(
                f"{where} is {image_size(one.rows, one.columns)} "
                f"but slice 1 is {image_size(first.rows, first.columns)}",
                sample=sample,
            )
        if not np.allclose(one.orientation, first.orientation, rtol=0, atol=ORIENTATION_TOLERANCE):  # type: ignore[arg-type]
            raise GeometryMismatch(f"{where} has a different ImageOrientationPatient from slice 1", sample=sample)
        if not np.allclose(one.pixel_spacing, first.pixel_spacing, rtol=0, atol=SPACING_TOLERANCE_MM):  # type: ignore[arg-type]
            a, b = one.pixel_spacing, first.pixel_spacing
            raise GeometryMismatch(
                f"{where} has PixelSpacing {a[0]:g}\\{a[1]:g} mm but slice 1 has {b[0]:g}\\{b[1]:g} mm",  # type: ignore[index]
                sample=sample,
            )


def _axes(orientation: tuple[float, ...], sample: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The unit vectors along a row (x) and down a column (y), from ImageOrientationPatient."""
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(column) - 1) > 1e-3 or abs(row @ column) > 1e-3:
        raise GeometryMismatch("ImageOrientationPatient is not two orthogonal unit vectors", sample=sample)
    return row / np.linalg.norm(row), column / np.linalg.norm(column)


def _slice_axis(
    positions: npt.NDArray[np.float64], normal: npt.NDArray[np.float64], sample: str
) -> tuple[float, npt.NDArray[np.float64]]:
    """(step in mm, unit z axis): the slices must go one way along the normal, evenly, without side shift."""
    count = len(positions)
    along = positions @ normal
    steps = np.diff(along)
    for k, step in enumerate(steps):
        if abs(step) < POSITION_TOLERANCE_MM:
            raise GeometryMismatch(
                f"slices {k + 1} and {k + 2} of {count} are at the same position (a repeated slice)", sample=sample
            )
    for k, step in enumerate(steps):
        if np.sign(step) != np.sign(steps[0]):
            raise GeometryMismatch(
                f"slice {k + 2} of {count} goes back along the slice normal: the slices are not in one direction, "
                "so their order disagrees with the normal",
                sample=sample,
            )
    typical = float(np.median(steps))
    tolerance = max(STEP_TOLERANCE * abs(typical), POSITION_TOLERANCE_MM)
    for k, step in enumerate(steps):
        if abs(step - typical) > tolerance:
            raise GeometryMismatch(
                f"slice positions are not evenly spaced: slices {k + 1} and {k + 2} of {count} are "
                f"{abs(step):.3f} mm apart, the stack's step is {abs(typical):.3f} mm",
                sample=sample,
            )
    sideways = positions - positions[0] - np.outer(along - along[0], normal)
    for k, shift in enumerate(np.linalg.norm(sideways, axis=1)):
        if shift > tolerance:
            raise GeometryMismatch(
                f"slice {k + 1} of {count} is {shift:.3f} mm to the side of the slice normal through slice 1 "
                "(a tilted or sheared stack)",
                sample=sample,
            )
    step = (along[-1] - along[0]) / (count - 1)
    return abs(float(step)), normal * np.sign(step)


def _compact(values: npt.NDArray[np.float32], integral: bool) -> npt.NDArray[Any]:
    """int16 when every value is a whole number in its range (lossless and half the size), else float32."""
    if integral and values.size and values.min() >= -32768 and values.max() <= 32767:
        return values.astype(np.int16)
    return values


# --- public ---------------------------------------------------------------------------------------


def load_volume(data: ExportInput, sample: Sample) -> Volume:
    """The sample's pixels stacked in the manifest's order; GeometryMismatch when they do not form one grid."""
    if not sample.instances:
        raise ExportError("the series has no instances", sample=sample.key)
    slices: list[_Slice] = []
    for ordinal, ref in enumerate(sample.instances, 1):
        slices.extend(_read_instance(data.path_of(ref.sop_uid), ref, sample=sample.key, ordinal=ordinal))
    _check_planes(slices, sample.key)
    first = slices[0]
    x_axis, y_axis = _axes(first.orientation, sample.key)  # type: ignore[arg-type]  # checked by _check_planes
    normal = np.cross(x_axis, y_axis)
    if len(slices) == 1:
        step, z_axis = (first.thickness or 1.0), normal
    else:
        step, z_axis = _slice_axis(np.array([s.position for s in slices]), normal, sample.key)
    pixels = np.empty((len(slices), first.rows, first.columns), dtype=np.float32)
    integral = True
    for k, one in enumerate(slices):
        pixels[k] = one.values
        integral = integral and bool(np.all(one.values == np.round(one.values)))
    row_mm, col_mm = first.pixel_spacing  # type: ignore[misc]  # checked by _check_planes
    return Volume(
        pixels=_compact(pixels, integral),
        spacing=(col_mm, row_mm, step),
        origin=tuple(float(v) for v in first.position),  # type: ignore[arg-type, union-attr]
        direction=np.column_stack([x_axis, y_axis, z_axis]) + 0.0,  # + 0.0 turns -0.0 into 0.0 in the headers
        sop_uids=tuple(s.sop_uid for s in slices),
        frames=tuple(s.frame for s in slices),
    )


def label_volume(data: ExportInput, sample: Sample, volume: Volume) -> npt.NDArray[np.uint8]:
    """The label map of every slice, ``(z, y, x)`` like ``volume.pixels``: 0 background, else the label's index.

    An area annotation on an image or frame that is not one of the volume's slices fails rather
    than being dropped, so a label is never silently lost.
    """
    area = {one.name for one in data.area_labels}
    present = set(zip(volume.sop_uids, volume.frames, strict=True))
    for one in sample.annotations:
        if one.label in area and (one.sop_uid, one.frame) not in present:
            raise GeometryMismatch(
                f"annotation {one.id} is on an image or frame that is not a slice of the series", sample=sample.key
            )
    depth, rows, columns = volume.pixels.shape
    out = np.zeros((depth, rows, columns), dtype=np.uint8)
    for k, (sop_uid, frame) in enumerate(zip(volume.sop_uids, volume.frames, strict=True)):
        plane = label_map(sample.annotations_on(sop_uid, frame), data.labels, rows, columns, sample=sample.key)
        if plane.shape != (rows, columns):
            raise GeometryMismatch(
                f"the label map of slice {k + 1} is {image_size(*plane.shape)} "
                f"but the image is {image_size(rows, columns)}",
                sample=sample.key,
            )
        out[k] = plane
    return out


def nifti_affine(volume: Volume) -> npt.NDArray[np.float64]:
    """4x4 from NIfTI indices (i, j, k) = (column, row, slice) to RAS+ mm.

    The LPS affine is ``[direction * spacing | origin]``; RAS is LPS with x and y negated, so the
    step from one to the other is a left multiplication by diag(-1, -1, 1, 1), never a flip of the data.
    """
    lps = np.eye(4)
    lps[:3, :3] = volume.direction * np.asarray(volume.spacing)  # scales each column (axis) by its spacing
    lps[:3, 3] = volume.origin
    return LPS_TO_RAS @ lps  # type: ignore[no-any-return]


def nifti_array(zyx: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A ``(z, y, x)`` array in NIfTI's ``(x, y, z)`` index order (the transpose; values unchanged)."""
    return np.ascontiguousarray(np.transpose(zyx, (2, 1, 0)))


def nifti_bytes(xyz: npt.NDArray[Any], affine: npt.NDArray[np.float64]) -> bytes:
    """A gzipped NIfTI-1 image of an ``(x, y, z)`` array: the same input gives the same bytes.

    The affine goes into both the qform and the sform (code 1, scanner) so that readers that prefer
    either agree; units are millimetres.
    """
    image = nib.Nifti1Image(xyz, affine)
    image.set_data_dtype(xyz.dtype)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units(xyz="mm")
    return gzip_bytes(image.to_bytes())
