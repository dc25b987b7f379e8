"""Agreement between readers, in the measures radiologists and challenge papers use. Pure.

Numpy and SimpleITK only: no Django, and no torch (the web process shows these figures and
never imports torch). MONAI's metrics, which the field compares against, are the independent
reference the tests check these functions with; the definitions follow them:

- **Masks** (3-D over a series, in millimetres through the voxel spacing): Dice, IoU, volume
  difference, and on the surfaces (object voxels with a face neighbour outside the object,
  the volume padded with background) the symmetric 95th-percentile Hausdorff distance and
  the surface Dice at a tolerance (Nikolov et al. 2021: the share of both surfaces lying
  within the tolerance of the other one). Distances are exact Euclidean (Maurer's transform).
- **Boxes**: IoU, and the pairing of two readers' boxes that maximises the summed IoU.
- **Classes**: Cohen's kappa for two readers, Fleiss' kappa for any number.
- **Measurements** (line lengths): ICC(2,1), two-way random effects, absolute agreement, one
  rater (Shrout & Fleiss 1979), the form that asks whether another reader would give the
  same millimetres.

A figure that cannot be computed (two empty masks, one reader alone, a single target) is
None, "not comparable", never zero.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

Spacing = Sequence[float]  # per axis of the array (z, y, x for a volume), in millimetres
Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class MaskAgreement:
    """Agreement of two masks; None where a figure is not comparable."""

    dice: float | None
    iou: float | None
    volume_a_mm3: float
    volume_b_mm3: float
    volume_difference_mm3: float  # b - a
    hd95_mm: float | None
    surface_dice: float | None
    tolerance_mm: float


def _binary(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask).astype(bool)


def _surface(mask: np.ndarray) -> np.ndarray:
    """Object voxels with a face neighbour outside the object (the array's border counts)."""
    padded = np.pad(mask, 1)
    inner = padded.copy()
    for axis in range(mask.ndim):
        inner &= np.roll(padded, 1, axis) & np.roll(padded, -1, axis)
    return (padded & ~inner)[tuple(slice(1, -1) for _ in range(mask.ndim))]


def _distance_to(surface: np.ndarray, spacing: Spacing) -> np.ndarray:
    """Exact Euclidean distance (mm) of every voxel to the nearest voxel of ``surface``."""
    image = sitk.GetImageFromArray(surface.astype(np.uint8))
    image.SetSpacing([float(s) for s in reversed(spacing)])  # SimpleITK orders axes x, y, z
    distance = sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
    return np.maximum(sitk.GetArrayFromImage(distance).astype(np.float64), 0.0)


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Spacing) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``a`` to ``b``'s surface, and from ``b``'s to ``a``'s."""
    a, b = _binary(a), _binary(b)
    surface_a, surface_b = _surface(a), _surface(b)
    if not surface_a.any() or not surface_b.any():
        return np.zeros(0), np.zeros(0)
    return _distance_to(surface_b, spacing)[surface_a], _distance_to(surface_a, spacing)[surface_b]


def mask_agreement(a: np.ndarray, b: np.ndarray, spacing: Spacing, *, tolerance_mm: float = 1.0) -> MaskAgreement:
    """Dice, IoU, volumes, HD95 and surface Dice of two same-shaped masks (see module docstring)."""
    a, b = _binary(a), _binary(b)
    if a.shape != b.shape or len(spacing) != a.ndim:
        raise ValueError("Both masks must have the same shape, and the spacing one value per axis.")
    voxel = float(np.prod([float(s) for s in spacing]))
    both, either = int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b))
    count_a, count_b = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    dice = 2 * both / (count_a + count_b) if either else None
    iou = both / either if either else None
    hd95 = nsd = None
    if count_a and count_b:
        to_b, to_a = surface_distances(a, b, spacing)
        hd95 = float(max(np.percentile(to_b, 95), np.percentile(to_a, 95)))
        within = int(np.count_nonzero(to_b <= tolerance_mm)) + int(np.count_nonzero(to_a <= tolerance_mm))
        nsd = within / (len(to_b) + len(to_a))
    elif either:
        nsd = 0.0  # one reader drew nothing: none of the other's surface is matched
    return MaskAgreement(
        dice=dice,
        iou=iou,
        volume_a_mm3=count_a * voxel,
        volume_b_mm3=count_b * voxel,
        volume_difference_mm3=(count_b - count_a) * voxel,
        hd95_mm=hd95,
        surface_dice=nsd,
        tolerance_mm=tolerance_mm,
    )


# --- boxes --------------------------------------------------------------------------------


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 for boxes without area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(a: Sequence[Box], b: Sequence[Box], *, min_iou: float = 0.1) -> list[tuple[int, int, float]]:
    """(index in a, index in b, IoU) pairs maximising the summed IoU, each IoU >= ``min_iou``.

    Exhaustive over the smaller side's assignments for the few boxes a reader draws on one
    image (up to 8), greedy by IoU beyond that.
    """
    iou = np.array([[box_iou(x, y) for y in b] for x in a]).reshape(len(a), len(b))
    if min(len(a), len(b)) == 0:
        return []
    if max(len(a), len(b)) <= 8:
        best: tuple[float, list[tuple[int, int, float]]] = (-1.0, [])
        small, large, flip = (a, b, False) if len(a) <= len(b) else (b, a, True)
        for chosen in itertools.permutations(range(len(large)), len(small)):
            assignment = [(j, i) if flip else (i, j) for i, j in enumerate(chosen)]
            kept = [(i, j, float(iou[i, j])) for i, j in assignment if iou[i, j] >= min_iou]
            total = sum(v for _, _, v in kept)
            if total > best[0]:
                best = (total, kept)
        return sorted(best[1])
    pairs: list[tuple[int, int, float]] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for i, j in sorted(np.ndindex(iou.shape), key=lambda ij: -iou[ij]):
        if iou[i, j] >= min_iou and i not in used_a and j not in used_b:
            pairs.append((i, j, float(iou[i, j])))
            used_a.add(i)
            used_b.add(j)
    return sorted(pairs)


# --- classes --------------------------------------------------------------------------------


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two readers' classes of the same items; None when it is undefined."""
    if len(a) != len(b) or not a:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected == 1:
        return None  # both readers gave one and the same class to everything
    return (observed - expected) / (1 - expected)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa (Fleiss 1971); ``ratings[i]`` holds the classes the readers gave item ``i``.

    Every item needs two or more ratings. With the same number of ratings on every item this is
    Fleiss' statistic exactly; items may also have different numbers (series read by three and
    by four readers, pooled): each item's agreement is then over its own pairs of ratings and the
    class shares over all ratings, which reduces to Fleiss' when the numbers are equal. None when
    undefined (no items, an item with fewer than two ratings, one class given to everything).
    """
    if not ratings or min(len(r) for r in ratings) < 2:
        return None
    categories = sorted({c for r in ratings for c in r}, key=repr)
    counts = np.array([[Counter(r)[c] for c in categories] for r in ratings], dtype=np.float64)
    per_item = counts.sum(axis=1)
    agreement = float(((counts * (counts - 1)).sum(axis=1) / (per_item * (per_item - 1))).mean())
    shares = counts.sum(axis=0) / per_item.sum()
    expected = float((shares**2).sum())
    if expected >= 1 - 1e-12:
        return None
    return (agreement - expected) / (1 - expected)


# --- measurements ---------------------------------------------------------------------------


def icc_2_1(values: Sequence[Sequence[float]]) -> float | None:
    """ICC(2,1) of ``values[target][reader]`` (every target measured by every reader).

    None with fewer than two targets or readers, or when every value is the same.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        return None
    n, k = x.shape
    grand = x.mean()
    ms_rows = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((x.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    residual = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    ms_error = (residual**2).sum() / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error + k * (ms_cols - ms_error) / n
    return float((ms_rows - ms_error) / denominator) if denominator > 0 else None
