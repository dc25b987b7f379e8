"""Segmentation tools that save a reader's time: grow from seeds, threshold brush. Pure.

Numpy and SimpleITK, no Django. Images are modality values (Hounsfield units for CT) as a
2-D (rows, columns) slice or a 3-D (slices, rows, columns) volume; points are (x, y) on a
slice or (x, y, z) in a volume, in pixel coordinates (x the column).

- **Grow from seeds** (3D Slicer's Segment Editor effect of that name, MONAI Label's
  scribbles): the reader clicks or scribbles inside the structure and, optionally, outside
  it. Marker-controlled watershed on the smoothed gradient magnitude floods from both
  marker sets and stops where they meet, on the strongest edge between them. The image
  border (in 3-D, every slice's border) is always outside as well. Only the inside region connected to an
  inside seed is kept.
- **Threshold brush**: a disk (a ball in 3-D) that paints only the pixels whose value lies
  in [low, high], e.g. bone above 300 HU, so a brush stroke stops at the edge by itself.
- **Fill between slices**: shape-based interpolation (Raya & Udupa 1990) of the masks drawn on
  key slices: on a slice between two keys, the signed distance maps of the keys (in mm) are
  mixed in proportion to the distance to each, and the mask is where the mix is inside. The
  keys are first moved so that their centres meet where the slice's centre is interpolated,
  so a structure that moves between keys (a vessel, a rib) is followed, not lost.
- **Propagate to the next slice**: the mask of one slice, shrunk by a margin, seeds the
  inside on the next slice, and everything beyond the mask grown by that margin seeds the
  outside; the watershed of grow from seeds then finds the structure's edge on that slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

Mask = npt.NDArray[np.bool_]
Point = Sequence[float]
SEED_RADIUS = 1  # pixels around a clicked seed that count as seed (a click is not pixel-exact)
SMOOTHING_MM = 1.0  # Gaussian sigma of the gradient, in millimetres (spacing-aware)


class ToolError(ValueError):
    """The request cannot be done as asked; the message says why in words."""


def _index(point: Point, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Array index (z, row, column) of an (x, y[, z]) point; ToolError when outside the image."""
    if len(point) != len(shape):
        raise ToolError(f"Each point needs {len(shape)} coordinates ({'x, y' if len(shape) == 2 else 'x, y, z'}).")
    index = tuple(round(float(v)) for v in reversed(point))
    if any(not 0 <= i < n for i, n in zip(index, shape, strict=True)):
        raise ToolError("A point lies outside the image.")
    return index


def _markers(shape: tuple[int, ...], inside: Sequence[Point], outside: Sequence[Point]) -> npt.NDArray[np.uint8]:
    markers = np.zeros(shape, dtype=np.uint8)
    for label, points in ((2, outside), (1, inside)):  # inside last: it wins where both touch
        for point in points:
            centre = _index(point, shape)
            region = tuple(slice(max(0, c - SEED_RADIUS), c + SEED_RADIUS + 1) for c in centre)
            markers[region] = label
    # The in-plane border of every slice is outside too (a structure may run through the ends of a
    # volume): a single outside click in the tissue then still bounds the region on every side.
    border = np.ones(shape, dtype=bool)
    border[(..., slice(1, -1), slice(1, -1))] = False
    markers[border & (markers == 0)] = 2
    return markers


def grow_from_seeds(
    image: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    inside: Sequence[Point],
    outside: Sequence[Point] = (),
    *,
    spacing: Sequence[float] | None = None,
) -> Mask:
    """The region grown from ``inside`` seeds against ``outside`` seeds (see module docstring).

    ``spacing`` is per array axis in millimetres (default 1).
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim not in (2, 3) or min(data.shape) < 2:
        raise ToolError("Grow from seeds works on a slice or a volume of at least 2 pixels per side.")
    if not inside:
        raise ToolError("Give at least one seed inside the structure.")
    markers = _markers(data.shape, inside, outside)
    return _watershed(data, markers, spacing or [1.0] * data.ndim)


def _watershed(data: npt.NDArray[np.float32], markers: npt.NDArray[np.uint8], spacing: Sequence[float]) -> Mask:
    """The region of marker 1 after flooding the smoothed gradient from markers 1 and 2."""
    sitk_image = sitk.GetImageFromArray(data)
    sitk_image.SetSpacing([float(s) for s in reversed(spacing)])
    # Quantised to 16 bits: ITK floods integer images with a hierarchical queue, about ten
    # times faster than a float priority queue, and 65,536 levels keep every edge apart.
    gradient = sitk.Cast(
        sitk.RescaleIntensity(sitk.GradientMagnitudeRecursiveGaussian(sitk_image, sigma=SMOOTHING_MM), 0, 65535),
        sitk.sitkUInt16,
    )
    marker_image = sitk.GetImageFromArray(markers)
    marker_image.CopyInformation(sitk_image)
    labels = sitk.MorphologicalWatershedFromMarkers(
        gradient, marker_image, markWatershedLine=False, fullyConnected=False
    )
    grown = sitk.GetArrayFromImage(labels) == 1
    return _connected_to_seeds(grown, markers == 1)


def _connected_to_seeds(mask: Mask, seeds: Mask) -> Mask:
    components = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8))))
    keep = np.unique(components[seeds & mask])
    return np.isin(components, keep[keep > 0])


def threshold_brush(
    image: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    centre: Point,
    radius: float,
    low: float,
    high: float,
    *,
    spacing: Sequence[float] | None = None,
) -> Mask:
    """Pixels within ``radius`` (millimetres when ``spacing`` is given, else pixels) of
    ``centre`` whose value lies in [low, high]."""
    data = np.asarray(image)
    if data.ndim not in (2, 3):
        raise ToolError("The threshold brush works on a slice or a volume.")
    if not radius > 0:
        raise ToolError("The brush radius must be above 0.")
    if low > high:
        raise ToolError("The lower threshold must not be above the upper one.")
    index = _index(centre, data.shape)
    steps = [float(s) for s in (spacing or [1.0] * data.ndim)]
    reach = [int(np.ceil(radius / s)) for s in steps]
    window = tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, r, n in zip(index, reach, data.shape, strict=True))
    grids = np.ogrid[window]
    distance2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, index, steps, strict=True))
    values = data[window]
    mask = np.zeros(data.shape, dtype=bool)
    mask[window] = (distance2 <= radius * radius) & (values >= low) & (values <= high)
    return mask


def threshold_stroke(
    image: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    points: Sequence[Point],
    radius: float,
    low: float,
    high: float,
    *,
    spacing: Sequence[float] | None = None,
) -> Mask:
    """A brush stroke through ``points``: the union of :func:`threshold_brush` at each point."""
    if not points:
        raise ToolError("A stroke needs at least one point.")
    mask = np.zeros(np.asarray(image).shape, dtype=bool)
    for point in points:
        mask |= threshold_brush(image, point, radius, low, high, spacing=spacing)
    return mask


def _signed_distance(mask: Mask, spacing: Sequence[float]) -> npt.NDArray[np.float64]:
    """Signed distance (mm) to the mask's boundary: negative inside, positive outside."""
    if not mask.any():
        return np.full(mask.shape, np.inf)
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing([float(s) for s in reversed(spacing)])
    distance = sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
    return sitk.GetArrayFromImage(distance).astype(np.float64)


def _centre(mask: Mask) -> npt.NDArray[np.float64]:
    return np.argwhere(mask).mean(axis=0)


def _shift(mask: Mask, by: npt.NDArray[np.float64]) -> Mask:
    """``mask`` moved by ``by`` (rows, columns) rounded to whole pixels; what leaves the image is lost."""
    dy, dx = (round(float(v)) for v in by)
    out = np.zeros_like(mask)
    rows, cols = mask.shape
    src = mask[max(0, -dy) : rows - max(0, dy), max(0, -dx) : cols - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def fill_between(keys: dict[int, Mask], *, spacing: Sequence[float] | None = None) -> dict[int, Mask]:
    """Masks for every slice strictly between consecutive key slices (``keys``: slice index ->
    mask, all the same shape); slices that hold a key, or lie outside the keys, are not returned.
    ``spacing`` is (row, column) in millimetres. An empty key ends the structure: the slices
    between it and a drawn key shrink towards the drawn mask's deepest point.
    """
    order = sorted(keys)
    shapes = {keys[k].shape for k in order}
    if len(shapes) > 1:
        raise ToolError("The key masks must all have the same size.")
    steps = [float(s) for s in (spacing or (1.0, 1.0))]
    filled: dict[int, Mask] = {}
    for lower, upper in zip(order, order[1:], strict=False):
        if upper - lower < 2 or not (keys[lower].any() or keys[upper].any()):
            continue
        low_mask, high_mask = keys[lower], keys[upper]
        a = _signed_distance(low_mask, steps)
        for z in range(lower + 1, upper):
            t = (z - lower) / (upper - lower)
            if not high_mask.any():  # the structure ends at the upper key: erode towards its deepest point
                mask = a <= t * a.min()
            elif not low_mask.any():
                b = _signed_distance(high_mask, steps)
                mask = b <= (1 - t) * b.min()
            else:  # both drawn: the shapes are mixed where their centres meet, then the mix moves there
                c0, c1 = _centre(low_mask), _centre(high_mask)
                at = (1 - t) * c0 + t * c1
                mixed = (1 - t) * _signed_distance(_shift(low_mask, at - c0), steps)
                mixed += t * _signed_distance(_shift(high_mask, at - c1), steps)
                mask = mixed <= 0
            if mask.any():
                filled[z] = mask
    return filled


def propagate(
    mask: Mask,
    image: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    *,
    spacing: Sequence[float] | None = None,
    margin_mm: float = 2.0,
) -> Mask:
    """The structure of ``mask`` (one slice) found on the neighbouring slice ``image``."""
    data = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != data.shape or data.ndim != 2:
        raise ToolError("The mask and the next slice must have the same size.")
    if not mask.any():
        raise ToolError("There is no mask on this slice to carry over.")
    steps = [float(s) for s in (spacing or (1.0, 1.0))]
    depth = _signed_distance(mask, steps)
    inside = depth <= -margin_mm
    if not inside.any():  # a thin structure: its deepest pixels
        inside = depth <= depth.min() + 1e-6
    markers = np.where(inside, 1, np.where(depth > margin_mm, 2, 0)).astype(np.uint8)
    return _watershed(data, markers, steps)
