"""Ellipses and angles in the pure geometry core, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from annotations import ellipse
from annotations import geometry as geo


def test_ellipse_and_angle_are_kinds_of_their_families() -> None:
    assert "ellipse" in geo.AREA_KINDS and "angle" in geo.POINT_KINDS
    assert {"ellipse", "angle"} <= geo.ALL_KINDS


@pytest.mark.parametrize(
    ("rx", "ry", "rotation"),
    [(40.0, 25.0, 0.0), (60.5, 10.25, 0.0), (30.0, 12.0, 33.0), (75.0, 75.0, 0.0), (50.0, 20.0, 90.0)],
)
def test_rasterized_ellipse_covers_pi_a_b(rx: float, ry: float, rotation: float) -> None:
    geometry = {"center": [100.3, 90.7], "radii": [rx, ry], "rotation": rotation}
    area = int(geo.rasterize("ellipse", geometry, 200, 200).sum())
    # Pixel centres inside: the count differs from pi*a*b by about the perimeter's share of a pixel.
    assert area == pytest.approx(math.pi * rx * ry, rel=0.02)


def test_small_ellipse_by_hand() -> None:
    # centre (2, 2), radii 2 and 1: centres with ((x-2)/2)^2 + (y-2)^2 <= 1:
    # row 2 has x = 0..4 (5 pixels), rows 1 and 3 only x = 2 (1 pixel each) -> 7
    mask = geo.rasterize("ellipse", {"center": [2, 2], "radii": [2, 1], "rotation": 0}, 5, 5)
    assert mask.sum() == 7
    assert mask[2].tolist() == [True] * 5 and mask[1].tolist() == [False, False, True, False, False]
    # turned a quarter, it stands up: column 2 full, rows 1..3 one more... by symmetry 7 again
    turned = geo.rasterize("ellipse", {"center": [2, 2], "radii": [2, 1], "rotation": 90}, 5, 5)
    assert turned.sum() == 7 and turned[:, 2].all()


def test_ellipse_is_clipped_to_the_frame_and_its_extent() -> None:
    geometry = {"center": [0, 0], "radii": [10, 10], "rotation": 0}
    assert geo.rasterize("ellipse", geometry, 4, 4).all()
    assert geo.extent("ellipse", {"center": [10, 5], "radii": [3, 2], "rotation": 0}) == (8, 14)
    assert geo.extent("ellipse", {"center": [10, 5], "radii": [3, 2], "rotation": 90}) == (9, 13)


def test_ellipse_polygon_is_on_the_ellipse_with_nearly_its_area() -> None:
    geometry = {"center": [50, 40], "radii": [30, 10], "rotation": 30}
    points = ellipse.ellipse_points(geometry)
    assert len(points) == 64
    theta = math.radians(30)
    for x, y in points:
        u = ((x - 50) * math.cos(theta) + (y - 40) * math.sin(theta)) / 30
        v = (-(x - 50) * math.sin(theta) + (y - 40) * math.cos(theta)) / 10
        assert u * u + v * v == pytest.approx(1.0)
    edges = zip(points, points[1:] + points[:1], strict=True)
    shoelace = abs(sum(xa * yb - xb * ya for (xa, ya), (xb, yb) in edges)) / 2
    assert shoelace == pytest.approx(math.pi * 300, rel=0.002)


def test_ellipse_validation_normalizes_and_names_what_is_wrong() -> None:
    clean = geo.validate_geometry("ellipse", {"center": [3, 4], "radii": [2, 1.5], "area_mm2": 9e9})
    assert clean == {"center": [3.0, 4.0], "radii": [2.0, 1.5], "rotation": 0.0, "area_mm2": None}
    assert geo.validate_geometry("ellipse", {"center": [3, 4], "radii": [2, 1], "rotation": 270})["rotation"] == 90.0
    for bad, words in [
        ({"radii": [2, 1]}, "center must be a pair"),
        ({"center": [1, 2], "radii": [2]}, "radii must be a pair"),
        ({"center": [1, 2], "radii": [2, 0]}, "radii must be two positive numbers"),
        ({"center": [1, "a"], "radii": [2, 1]}, "center[1] must be a finite number"),
        ({"center": [1, 2], "radii": [2, 1], "rotation": math.inf}, "rotation must be a finite number"),
    ]:
        with pytest.raises(geo.GeometryError, match=words.replace("[", r"\[").replace("]", r"\]")):
            geo.validate_geometry("ellipse", bad)


def test_ellipse_bounds_use_its_bounding_box() -> None:
    geo.check_bounds("ellipse", {"center": [3.5, 3.5], "radii": [4, 4], "rotation": 0}, rows=8, columns=8)
    with pytest.raises(geo.GeometryError, match=r"The ellipse's edge at \(-1, -1\) lies outside the 8 x 8"):
        geo.check_bounds("ellipse", {"center": [3.5, 3.5], "radii": [4.5, 4.5], "rotation": 0}, rows=8, columns=8)
    # a long thin ellipse that fits lying down does not fit turned upright on a wide image
    lying = {"center": [10, 2], "radii": [8, 1], "rotation": 0}
    geo.check_bounds("ellipse", lying, rows=5, columns=20)
    with pytest.raises(geo.GeometryError):
        geo.check_bounds("ellipse", lying | {"rotation": 90}, rows=5, columns=20)


def test_ellipse_area_in_mm2() -> None:
    geometry = {"center": [3, 4], "radii": [10, 4], "rotation": 17}
    assert geo.ellipse_area_mm2(geometry, [0.5, 0.25]) == pytest.approx(math.pi * 40 * 0.125)
    assert geo.ellipse_area_mm2(geometry, None) is None
    measured = geo.with_measurements("ellipse", geo.validate_geometry("ellipse", geometry), [1.0, 1.0])
    assert measured["area_mm2"] == pytest.approx(math.pi * 40)


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([[10, 0], [0, 0], [0, 10]], 90.0),
        ([[10, 0], [0, 0], [10, 10]], 45.0),
        ([[10, 0], [0, 0], [-10, 0]], 180.0),
        ([[10, 0], [0, 0], [20, 0]], 0.0),
        ([[1, 0], [0, 0], [-1, math.sqrt(3)]], 120.0),
        ([[5, 5], [2, 3], [2, 9]], math.degrees(math.atan2(3, 2))),
    ],
)
def test_angle_of_known_points(points: list[list[float]], expected: float) -> None:
    assert geo.angle_degrees(points) == pytest.approx(expected)
    assert geo.validate_geometry("angle", {"points": points, "angle_deg": 1})["angle_deg"] == pytest.approx(expected)


def test_angle_in_mm_follows_non_square_pixels_and_degenerate_arms() -> None:
    # 10 px right and 10 px down is 45 degrees in pixels; with rows 2 mm apart it is atan(20/10)
    points = [[10, 0], [0, 0], [10, 10]]
    assert geo.angle_degrees(points, [2.0, 1.0]) == pytest.approx(math.degrees(math.atan2(20, 10)))
    assert geo.with_measurements("angle", {"points": points}, [2.0, 1.0])["angle_deg"] == pytest.approx(63.4349, 1e-4)
    assert geo.angle_degrees([[0, 0], [0, 0], [3, 3]]) is None


def test_angle_validation_and_bounds() -> None:
    with pytest.raises(geo.GeometryError, match="exactly 3"):
        geo.validate_geometry("angle", {"points": [[0, 0], [1, 1]]})
    geo.check_bounds("angle", {"points": [[0, 0], [3, 3], [7.5, 0]]}, rows=8, columns=8)
    with pytest.raises(geo.GeometryError, match=r"The point \(9, 0\) lies outside"):
        geo.check_bounds("angle", {"points": [[0, 0], [3, 3], [9, 0]]}, rows=8, columns=8)
    with pytest.raises(geo.GeometryError, match="has no area"):
        geo.rasterize("angle", {"points": [[0, 0], [3, 3], [7, 0]]}, 8, 8)
