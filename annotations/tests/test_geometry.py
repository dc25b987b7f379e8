"""The pure geometry core against values worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from annotations import geometry as geo


def test_rle_round_trip_and_hand_encoding() -> None:
    mask = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]], dtype=bool)
    # flat: 0 1 1 0 | 0 0 0 1 | 1 1 0 0 -> runs at 1 (len 2) and 7 (len 3: 7, 8, 9)
    assert geo.rle_encode(mask) == [1, 2, 7, 3]
    assert (geo.rle_decode([1, 2, 7, 3], 3, 4) == mask).all()
    assert geo.rle_area([1, 2, 7, 3]) == 5


def test_rle_of_empty_and_full() -> None:
    assert geo.rle_encode(np.zeros((2, 2), dtype=bool)) == []
    assert geo.rle_encode(np.ones((2, 2), dtype=bool)) == [0, 4]


def test_box_covers_pixel_centres_inclusive() -> None:
    mask = geo.rasterize_box({"x0": 1, "y0": 1, "x1": 3, "y1": 2}, 5, 5)
    assert mask.sum() == 6  # columns 1..3 x rows 1..2
    assert mask[1, 1] and mask[2, 3] and not mask[0, 1] and not mask[1, 4]
    # reversed corners and half-pixel edges: centres 1..2 in x, 0..1 in y
    assert geo.rasterize_box({"x0": 2.5, "y0": 1.5, "x1": 0.6, "y1": -0.4}, 5, 5).sum() == 4
    assert geo.rasterize_box({"x0": 10, "y0": 10, "x1": 12, "y1": 12}, 5, 5).sum() == 0


def test_polygon_square_and_triangle() -> None:
    square = [[-0.5, -0.5], [3.5, -0.5], [3.5, 3.5], [-0.5, 3.5]]
    assert geo.rasterize_polygon(square, 6, 6).sum() == 16
    # right triangle with legs of 4.5 from (-0.5, -0.5): centres with x + y < 3.5 -> 1+2+3+4 = 10
    triangle = [[-0.5, -0.5], [4.0, -0.5], [-0.5, 4.0]]
    assert geo.rasterize_polygon(triangle, 6, 6).sum() == 10


def test_line_length_uses_row_and_column_spacing() -> None:
    # 3 columns at 0.5 mm and 4 rows at 0.5 mm -> hypot(1.5, 2.0) = 2.5
    assert geo.line_length_mm([[0, 0], [3, 4]], [0.5, 0.5]) == pytest.approx(2.5)
    # PixelSpacing is [row, column]: 4 columns at 0.25 and 3 rows at 1.0 -> hypot(1, 3)
    assert geo.line_length_mm([[0, 0], [4, 3]], [1.0, 0.25]) == pytest.approx(math.hypot(1, 3))
    assert geo.line_length_mm([[0, 0], [3, 4]], None) is None


def test_dice_and_iou_by_hand() -> None:
    a = geo.rasterize_box({"x0": 0, "y0": 0, "x1": 3, "y1": 3}, 10, 10)  # 16 px
    b = geo.rasterize_box({"x0": 2, "y0": 0, "x1": 5, "y1": 3}, 10, 10)  # 16 px, overlap 2x4 = 8
    assert geo.dice(a, b) == pytest.approx(2 * 8 / 32)
    assert geo.iou(a, b) == pytest.approx(8 / 24)
    empty = np.zeros((10, 10), dtype=bool)
    assert geo.dice(empty, empty) is None
    assert geo.dice(a, empty) == 0.0


def test_cohen_kappa_by_hand() -> None:
    # 10 items: agree yes 4, agree no 3, A yes/B no 2, A no/B yes 1.
    pairs = [("y", "y")] * 4 + [("n", "n")] * 3 + [("y", "n")] * 2 + [("n", "y")]
    # po = 0.7; A yes 6/10, B yes 5/10 -> pe = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = 0.2/0.5 = 0.4
    assert geo.cohen_kappa(pairs) == pytest.approx(0.4)
    assert geo.cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert geo.cohen_kappa([("a", "a"), ("a", "a")]) == 1.0
    assert geo.cohen_kappa([]) is None
    # total disagreement on a balanced pair: po 0, pe 0.5 -> -1
    assert geo.cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("kind", "geometry"),
    [
        ("box", {"x0": 1, "y0": 2, "x1": "3", "y1": 4}),
        ("box", {"x0": 1, "y0": 2, "x1": float("nan"), "y1": 4}),
        ("polygon", {"points": [[0, 0], [1, 1]]}),
        ("line", {"points": [[0, 0], [1, 1], [2, 2]]}),
        ("point", {"x": True, "y": 1}),
        ("mask", {"rows": 2, "columns": 2, "rle": [0, 5]}),
        ("mask", {"rows": 2, "columns": 2, "rle": [2, 1, 0, 1]}),
        ("mask", {"rows": 2, "columns": 2, "rle": [0]}),
        ("nope", {}),
        ("box", []),
    ],
)
def test_validate_geometry_refuses(kind: str, geometry: object) -> None:
    with pytest.raises(geo.GeometryError):
        geo.validate_geometry(kind, geometry)


def test_validate_geometry_normalizes() -> None:
    assert geo.validate_geometry("box", {"x0": 1, "y0": 2, "x1": 3, "y1": 4, "extra": 1}) == {
        "x0": 1.0,
        "y0": 2.0,
        "x1": 3.0,
        "y1": 4.0,
    }
    assert geo.validate_geometry("line", {"points": [[0, 0], [1, 1]], "length_mm": 99})["length_mm"] is None
    assert geo.validate_geometry("classification_image", {"anything": 1}) == {}


def test_validate_attributes() -> None:
    specs = [
        {"name": "value", "type": "choice", "choices": ["good", "poor"]},
        {"name": "sure", "type": "boolean"},
        {"name": "size", "type": "number"},
        {"name": "note", "type": "text"},
    ]
    ok = {"value": "good", "sure": True, "size": 3.5, "note": "x"}
    assert geo.validate_attributes(specs, ok, require_value=True) == ok
    for bad in ({"value": "meh"}, {"sure": "yes"}, {"size": "big"}, {"note": 3}, {"other": 1}):
        with pytest.raises(geo.GeometryError):
            geo.validate_attributes(specs, bad, require_value=False)
    with pytest.raises(geo.GeometryError):
        geo.validate_attributes(specs, {}, require_value=True)


# --- bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "geometry"),
    [
        ("box", {"x0": -0.5, "y0": -0.5, "x1": 511.5, "y1": 255.5}),
        ("point", {"x": 511.5, "y": 0}),
        ("line", {"points": [[0, 0], [511, 255]]}),
        ("polygon", {"points": [[0, 0], [10, 0], [5, 255.5]]}),
        ("mask", {"rows": 256, "columns": 512, "rle": [0, 3]}),
        ("classification_image", {}),
    ],
)
def test_shapes_on_the_image_pass(kind: str, geometry: dict[str, Any]) -> None:
    geo.check_bounds(kind, geo.validate_geometry(kind, geometry), rows=256, columns=512)


@pytest.mark.parametrize(
    ("kind", "geometry", "words"),
    [
        ("box", {"x0": -100, "y0": 0, "x1": 5000, "y1": 10}, "(-100, 0) lies outside the 512 x 256"),
        ("box", {"x0": 0, "y0": 0, "x1": 10, "y1": 255.6}, "y between -0.5 and 255.5"),
        ("point", {"x": 512, "y": 0}, "x must be between -0.5 and 511.5"),
        ("freehand", {"points": [[0, 0], [0, -1]]}, "(0, -1)"),
        ("line", {"points": [[0, 0], [600, 10]]}, "(600, 10)"),
        ("mask", {"rows": 512, "columns": 512, "rle": [0, 3]}, "its image is 256 rows x 512 columns"),
    ],
)
def test_shapes_off_the_image_fail_saying_where(kind: str, geometry: dict[str, Any], words: str) -> None:
    with pytest.raises(geo.GeometryError) as caught:
        geo.check_bounds(kind, geo.validate_geometry(kind, geometry), rows=256, columns=512)
    assert words in str(caught.value) and caught.value.field == "geometry"


def test_an_unknown_image_size_checks_nothing() -> None:
    geo.check_bounds("box", {"x0": -100, "y0": 0, "x1": 5000, "y1": 1}, rows=0, columns=0)


def test_attribute_errors_name_the_attributes_field() -> None:
    with pytest.raises(geo.GeometryError) as caught:
        geo.validate_attributes([], {"colour": "red"}, require_value=False)
    assert caught.value.field == "attributes"
