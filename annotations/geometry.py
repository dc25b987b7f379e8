"""Pure geometry and agreement maths for annotations. Imports no Django.

Coordinates are the image's pixel coordinates: ``x`` is the column, ``y`` the row,
with the origin at the centre of the top-left pixel. A pixel belongs to a shape
when its centre does. Masks are run-length encoded row-major as
``[start, length, start, length, ...]`` over the runs of 1s of one frame.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from annotations.ellipse import ellipse_half_extent, rasterize_ellipse

Mask = npt.NDArray[np.bool_]

AREA_KINDS = frozenset({"box", "polygon", "freehand", "mask", "ellipse"})  # ellipse: annotations.ellipse
CLASS_KINDS = frozenset({"classification_image", "classification_series"})
# Kinds drawn as points on the image that cover no pixels (COCO keypoints, not label maps).
POINT_KINDS = frozenset({"point", "line", "angle"})
ALL_KINDS = AREA_KINDS | CLASS_KINDS | POINT_KINDS
MAX_MASK_PIXELS = 16384 * 16384


class GeometryError(ValueError):
    """The geometry does not fit its label's kind or its image; the message says why.

    ``field`` names the request field at fault (``geometry`` unless told otherwise), so that an
    API answers 400 under the right key.
    """

    def __init__(self, message: str, *, field: str = "geometry") -> None:
        super().__init__(message)
        self.field = field


# --- run-length encoding --------------------------------------------------------------------------


def rle_encode(mask: Mask) -> list[int]:
    """Row-major runs of 1s as [start, length, ...]."""
    array = np.asarray(mask, dtype=bool)
    offset = 0
    if array.ndim == 2 and array.size:
        # Only the band of rows that hold a 1 is scanned: a lesion's mask or an uncertainty map
        # covers a few rows of a 512x512 slice, and the rows around it add no run.
        rows = np.flatnonzero(array.any(axis=1))
        if not rows.size:
            return []
        offset = int(rows[0]) * array.shape[1]
        array = array[rows[0] : rows[-1] + 1]
    flat = array.ravel()
    padded = np.concatenate(([False], flat, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2] + offset, edges[1::2] + offset
    return [int(v) for pair in zip(starts, ends - starts, strict=True) for v in pair]


def rle_decode(rle: Sequence[int], rows: int, columns: int) -> Mask:
    flat = np.zeros(rows * columns, dtype=bool)
    for start, length in zip(rle[0::2], rle[1::2], strict=True):
        flat[start : start + length] = True
    return flat.reshape(rows, columns)


def rle_area(rle: Sequence[int]) -> int:
    return int(sum(rle[1::2]))


# --- rasterization --------------------------------------------------------------------------------


def rasterize_box(geometry: dict[str, float], rows: int, columns: int) -> Mask:
    """Pixels whose centres lie inside the box, edges included."""
    x0, x1 = sorted((geometry["x0"], geometry["x1"]))
    y0, y1 = sorted((geometry["y0"], geometry["y1"]))
    mask = np.zeros((rows, columns), dtype=bool)
    c0, c1 = max(math.ceil(x0), 0), min(math.floor(x1), columns - 1)
    r0, r1 = max(math.ceil(y0), 0), min(math.floor(y1), rows - 1)
    if c0 <= c1 and r0 <= r1:
        mask[r0 : r1 + 1, c0 : c1 + 1] = True
    return mask


def rasterize_polygon(points: Sequence[Sequence[float]], rows: int, columns: int) -> Mask:
    """Pixels whose centres lie inside the polygon (even-odd rule; closed implicitly)."""
    ys, xs = np.mgrid[0:rows, 0:columns]
    inside = np.zeros((rows, columns), dtype=bool)
    count = len(points)
    for i in range(count):
        xa, ya = points[i]
        xb, yb = points[(i + 1) % count]
        if ya == yb:
            continue
        crosses = (ya > ys) != (yb > ys)
        x_at = xa + (ys - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (xs < x_at)
    return inside


def mask_to_polygon(mask: Mask, *, tolerance: float = 0.35) -> list[list[float]]:
    """The outline of the mask's largest region as polygon vertices [x, y] in pixel coordinates.

    Traced on the mask upsampled twice, so the outline runs a quarter pixel inside the pixel
    edges: every boundary pixel's centre is inside it, and :func:`rasterize_polygon` gives the
    region back. Simplified (Douglas-Peucker) to within ``tolerance`` pixels. [] when empty.
    """
    import cv2  # opencv: imported on first use (it costs ~0.2 s)

    if not np.asarray(mask).any():
        return []
    doubled = np.kron(np.asarray(mask, dtype=np.uint8), np.ones((2, 2), dtype=np.uint8)).astype(np.uint8)
    contours, _hierarchy = cv2.findContours(doubled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    largest = max(contours, key=cv2.contourArea)
    simplified = cv2.approxPolyDP(largest, 2 * tolerance, True).reshape(-1, 2)
    if len(simplified) < 3:
        simplified = largest.reshape(-1, 2)
    return [[round(x / 2 - 0.25, 2), round(y / 2 - 0.25, 2)] for x, y in simplified.tolist()]


def rasterize(kind: str, geometry: dict[str, Any], rows: int, columns: int) -> Mask:
    """The mask of an area annotation on a rows x columns frame."""
    if kind == "ellipse":
        return rasterize_ellipse(geometry, rows, columns)
    if kind == "box":
        return rasterize_box(geometry, rows, columns)
    if kind in ("polygon", "freehand"):
        return rasterize_polygon(geometry["points"], rows, columns)
    if kind == "mask":
        if (geometry["rows"], geometry["columns"]) == (rows, columns):
            return rle_decode(geometry["rle"], rows, columns)
        canvas = np.zeros((rows, columns), dtype=bool)
        own = rle_decode(geometry["rle"], geometry["rows"], geometry["columns"])
        r, c = min(rows, own.shape[0]), min(columns, own.shape[1])
        canvas[:r, :c] = own[:r, :c]
        return canvas
    raise GeometryError(f"'{kind}' has no area.")


def extent(kind: str, geometry: dict[str, Any]) -> tuple[int, int]:
    """(rows, columns) of the smallest frame from the origin that holds the shape."""
    if kind == "mask":
        return int(geometry["rows"]), int(geometry["columns"])
    if kind == "box":
        xs, ys = [geometry["x0"], geometry["x1"]], [geometry["y0"], geometry["y1"]]
    elif kind == "ellipse":
        (cx, cy), (hx, hy) = geometry["center"], ellipse_half_extent(geometry)
        xs, ys = [cx + hx], [cy + hy]
    else:
        xs = [p[0] for p in geometry["points"]]
        ys = [p[1] for p in geometry["points"]]
    return max(math.floor(max(ys)) + 1, 1), max(math.floor(max(xs)) + 1, 1)


# --- measurements ---------------------------------------------------------------------------------


def line_length_mm(points: Sequence[Sequence[float]], pixel_spacing: Sequence[float] | None) -> float | None:
    """Length of a two-point line in mm; PixelSpacing is [row spacing, column spacing]."""
    if not pixel_spacing or len(pixel_spacing) != 2:
        return None
    (xa, ya), (xb, yb) = points[0], points[1]
    row_mm, col_mm = float(pixel_spacing[0]), float(pixel_spacing[1])
    return math.hypot((xb - xa) * col_mm, (yb - ya) * row_mm)


def ellipse_area_mm2(geometry: dict[str, Any], pixel_spacing: Sequence[float] | None) -> float | None:
    """pi*rx*ry in mm²: scaling x and y by the spacings scales any area by their product."""
    if not pixel_spacing or len(pixel_spacing) != 2:
        return None
    rx, ry = geometry["radii"]
    return math.pi * float(rx) * float(ry) * float(pixel_spacing[0]) * float(pixel_spacing[1])


def angle_degrees(points: Sequence[Sequence[float]], pixel_spacing: Sequence[float] | None = None) -> float | None:
    """The angle at the middle point between the arms to the first and last, 0 to 180 degrees,
    measured in mm where the pixel spacing is known (non-square pixels bend angles), else in
    pixels; None when an arm has no length."""
    row_mm, col_mm = (float(pixel_spacing[0]), float(pixel_spacing[1])) if pixel_spacing else (1.0, 1.0)
    (xa, ya), (xv, yv), (xb, yb) = points[0], points[1], points[2]
    ax, ay = (xa - xv) * col_mm, (ya - yv) * row_mm
    bx, by = (xb - xv) * col_mm, (yb - yv) * row_mm
    if math.hypot(ax, ay) == 0 or math.hypot(bx, by) == 0:
        return None
    return math.degrees(math.atan2(abs(ax * by - ay * bx), ax * bx + ay * by))


def with_measurements(kind: str, geometry: dict[str, Any], pixel_spacing: Sequence[float] | None) -> dict[str, Any]:
    """The validated geometry with what the server derives from it set: a line's ``length_mm``,
    an ellipse's ``area_mm2``, an angle's ``angle_deg`` (what a client sent for them is ignored)."""
    spacing = pixel_spacing if pixel_spacing and len(pixel_spacing) == 2 else None
    if kind == "line":
        return geometry | {"length_mm": line_length_mm(geometry["points"], spacing)}
    if kind == "ellipse":
        return geometry | {"area_mm2": ellipse_area_mm2(geometry, spacing)}
    if kind == "angle":
        return geometry | {"angle_deg": angle_degrees(geometry["points"], spacing)}
    return geometry


# --- agreement ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlap:
    """Pixel counts of two readers' masks: what Dice and IoU are made of (they pool by summing)."""

    intersection: int = 0
    area_a: int = 0
    area_b: int = 0

    def __add__(self, other: Overlap) -> Overlap:
        return Overlap(self.intersection + other.intersection, self.area_a + other.area_a, self.area_b + other.area_b)

    @property
    def dice(self) -> float | None:
        total = self.area_a + self.area_b
        return None if total == 0 else 2 * self.intersection / total

    @property
    def iou(self) -> float | None:
        union = self.area_a + self.area_b - self.intersection
        return None if union == 0 else self.intersection / union


def overlap(a: Mask, b: Mask) -> Overlap:
    return Overlap(int(np.count_nonzero(a & b)), int(np.count_nonzero(a)), int(np.count_nonzero(b)))


def dice(a: Mask, b: Mask) -> float | None:
    """2|A∩B| / (|A|+|B|); None when both are empty."""
    return overlap(a, b).dice


def iou(a: Mask, b: Mask) -> float | None:
    """|A∩B| / |A∪B|; None when both are empty."""
    return overlap(a, b).iou


def cohen_kappa(pairs: Iterable[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters over items given as (rating_a, rating_b); None without items.

    When chance agreement is total (both raters always used the same one category)
    kappa is undefined; this answers 1.0, since the raters agreed on every item.
    """
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    count_a = Counter(a for a, _ in pairs)
    count_b = Counter(b for _, b in pairs)
    expected = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1 - expected)


# --- validation -----------------------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GeometryError(f"{what} must be a finite number.")
    return float(value)


def _points(value: Any, minimum: int, maximum: int | None = None) -> list[list[float]]:
    if not isinstance(value, list) or len(value) < minimum or (maximum is not None and len(value) > maximum):
        bound = f"exactly {minimum}" if maximum == minimum else f"at least {minimum}"
        raise GeometryError(f"points must be a list of {bound} [x, y] pairs.")
    out = []
    for point in value:
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise GeometryError("Each point must be an [x, y] pair.")
        out.append([_number(point[0], "x"), _number(point[1], "y")])
    return out


def _mask(geometry: dict[str, Any]) -> dict[str, Any]:
    rows, columns, rle = geometry.get("rows"), geometry.get("columns"), geometry.get("rle")
    for name, value in (("rows", rows), ("columns", columns)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GeometryError(f"{name} must be a positive integer.")
    assert isinstance(rows, int) and isinstance(columns, int)  # narrowed above, for the type checker
    if rows * columns > MAX_MASK_PIXELS:
        raise GeometryError("The mask is too large.")
    if not isinstance(rle, list) or len(rle) % 2 or not all(type(v) is int and v >= 0 for v in rle):
        raise GeometryError("rle must be a flat list of [start, length] integer pairs.")
    end = 0
    for start, length in zip(rle[0::2], rle[1::2], strict=True):
        if start < end or length < 1:
            raise GeometryError("rle runs must be ascending, non-overlapping and non-empty.")
        end = start + length
    if end > rows * columns:
        raise GeometryError("rle runs go past rows x columns.")
    return {"rows": rows, "columns": columns, "rle": list(rle)}


def _pair(value: Any, what: str) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise GeometryError(f"{what} must be a pair of numbers.")
    return [_number(value[0], f"{what}[0]"), _number(value[1], f"{what}[1]")]


def _ellipse(geometry: dict[str, Any]) -> dict[str, Any]:
    center = _pair(geometry.get("center"), "center")
    radii = _pair(geometry.get("radii"), "radii")
    if min(radii) <= 0:
        raise GeometryError("radii must be two positive numbers [rx, ry] in pixels.")
    rotation = geometry.get("rotation")
    # An ellipse turned half a turn is the same ellipse: one stored form, in [0, 180).
    rotation = 0.0 if rotation is None else _number(rotation, "rotation") % 180.0
    return {"center": center, "radii": radii, "rotation": rotation, "area_mm2": None}


def validate_geometry(kind: str, geometry: Any) -> dict[str, Any]:
    """The geometry normalized for its kind, or GeometryError saying what is wrong."""
    if not isinstance(geometry, dict):
        raise GeometryError("geometry must be an object.")
    if kind == "box":
        return {k: _number(geometry.get(k), k) for k in ("x0", "y0", "x1", "y1")}
    if kind == "polygon":
        return {"points": _points(geometry.get("points"), 3)}
    if kind == "freehand":
        return {"points": _points(geometry.get("points"), 2)}
    if kind == "point":
        return {"x": _number(geometry.get("x"), "x"), "y": _number(geometry.get("y"), "y")}
    if kind == "line":
        return {"points": _points(geometry.get("points"), 2, 2), "length_mm": None}
    if kind == "mask":
        return _mask(geometry)
    if kind == "ellipse":
        return _ellipse(geometry)
    if kind == "angle":
        points = _points(geometry.get("points"), 3, 3)
        return {"points": points, "angle_deg": angle_degrees(points)}
    if kind in CLASS_KINDS:
        return {}
    raise GeometryError(f"Unknown kind '{kind}'.")


def check_bounds(kind: str, geometry: dict[str, Any], *, rows: int, columns: int) -> None:
    """GeometryError unless a validated shape lies on its rows x columns image.

    The image covers x from -0.5 to columns - 0.5 and y from -0.5 to rows - 0.5 (pixel centres
    at whole numbers, edges half a pixel out), so a box drawn edge to edge around the border
    pixels fits and one a hair further out does not. Masks must have the image's size.
    An unknown size (0) checks nothing: the catalog did not read it.
    """
    if rows < 1 or columns < 1:
        return
    if kind == "mask":
        if (geometry["rows"], geometry["columns"]) != (rows, columns):
            raise GeometryError(
                f"The mask is {geometry['rows']} rows x {geometry['columns']} columns; "
                f"its image is {rows} rows x {columns} columns. Send a mask of the image's size."
            )
        return
    if kind == "box":
        points = [(geometry["x0"], geometry["y0"]), (geometry["x1"], geometry["y1"])]
    elif kind == "point":
        points = [(geometry["x"], geometry["y"])]
    elif kind in ("polygon", "freehand", "line", "angle"):
        points = [(p[0], p[1]) for p in geometry["points"]]
    elif kind == "ellipse":
        (cx, cy), (hx, hy) = geometry["center"], ellipse_half_extent(geometry)
        points = [(cx - hx, cy - hy), (cx + hx, cy + hy)]
    else:
        return
    x_max, y_max = columns - 0.5, rows - 0.5
    what = "The ellipse's edge at" if kind == "ellipse" else "The point"
    for x, y in points:
        if not -0.5 <= x <= x_max or not -0.5 <= y <= y_max:
            raise GeometryError(
                f"{what} ({x:g}, {y:g}) lies outside the {columns} x {rows} (width x height) image: "
                f"x must be between -0.5 and {x_max:g} and y between -0.5 and {y_max:g} "
                "(pixel coordinates, x the column and y the row)."
            )


def validate_attributes(specs: Sequence[dict[str, Any]], values: Any, *, require_value: bool) -> dict[str, Any]:
    """Attribute values checked against the label's attribute specs ({name, type, choices})."""
    if not isinstance(values, dict):
        raise GeometryError("attributes must be an object.", field="attributes")
    by_name = {spec["name"]: spec for spec in specs}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            raise GeometryError(f"The label has no attribute '{name}'.", field="attributes")
        kind = spec["type"]
        if value is None:
            continue
        if kind == "boolean" and not isinstance(value, bool):
            raise GeometryError(f"'{name}' must be true or false.", field="attributes")
        if kind == "number":
            _number(value, f"'{name}'")
        if kind == "text" and not isinstance(value, str):
            raise GeometryError(f"'{name}' must be text.", field="attributes")
        if kind == "choice" and value not in spec.get("choices", []):
            raise GeometryError(f"'{name}' must be one of {spec.get('choices', [])}.", field="attributes")
    if require_value and values.get("value") is None:
        raise GeometryError("A classification needs its class in attributes.value.", field="attributes")
    return dict(values)
