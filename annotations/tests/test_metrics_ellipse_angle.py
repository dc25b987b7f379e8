"""Quality figures for ellipses (Dice and IoU of their pixels, like any area) and angles (ICC of
the degrees, like line lengths), against values worked out from the geometry core."""

from __future__ import annotations

import pytest

from annotations import agreement, geometry
from annotations.metrics import Shape, compute_agreement

KINDS = {"Cyst": "ellipse", "Cobb": "angle"}
DIMS = {sop: (40, 40) for sop in ("s0", "s1", "s2")}


def ellipse(cx: float, sop: str = "s0") -> Shape:
    return Shape("Cyst", "ellipse", sop, 0, {"center": [cx, 20], "radii": [8, 5], "rotation": 0})


def angle(degrees: float | None, sop: str, points: list[list[float]] | None = None) -> Shape:
    return Shape("Cobb", "angle", sop, 0, {"points": points or [[10, 0], [0, 0], [0, 10]], "angle_deg": degrees})


def test_ellipses_compare_by_their_pixels() -> None:
    reads = {"S": {"r1": [ellipse(20)], "r2": [ellipse(24)]}}
    labels = {row["label"]: row for row in compute_agreement(reads, KINDS, DIMS)["labels"]}
    a = geometry.rasterize("ellipse", dict(ellipse(20).geometry), 40, 40)
    b = geometry.rasterize("ellipse", dict(ellipse(24).geometry), 40, 40)
    assert labels["Cyst"]["dice"] == pytest.approx(geometry.dice(a, b), abs=1e-4)
    assert labels["Cyst"]["iou"] == pytest.approx(geometry.iou(a, b), abs=1e-4)
    assert 0 < labels["Cyst"]["dice"] < 1 and labels["Cyst"]["pairs"] == 1


def test_an_ellipse_one_reader_drew_is_not_comparable() -> None:
    reads = {"S": {"r1": [ellipse(20)], "r2": [angle(90.0, "s0")]}}
    labels = {row["label"]: row for row in compute_agreement(reads, KINDS, DIMS)["labels"]}
    assert labels["Cyst"]["dice"] is None and labels["Cyst"]["not_comparable"] == 1


def test_angles_compare_by_icc_of_their_degrees() -> None:
    reads = {
        "S": {
            "r1": [angle(30.0, "s0"), angle(60.0, "s1"), angle(90.0, "s2")],
            "r2": [angle(32.0, "s0"), angle(59.0, "s1"), angle(93.0, "s2")],
        }
    }
    labels = {row["label"]: row for row in compute_agreement(reads, KINDS, DIMS)["labels"]}
    expected = agreement.icc_2_1([[30.0, 32.0], [60.0, 59.0], [90.0, 93.0]])
    assert labels["Cobb"]["icc"] == pytest.approx(expected, abs=1e-4) and labels["Cobb"]["pairs"] == 1
    assert labels["Cobb"]["dice"] is None


def test_an_angle_without_its_stored_degrees_is_measured_from_its_points() -> None:
    reads = {
        "S": {
            "r1": [angle(None, "s0"), angle(None, "s1", [[10, 0], [0, 0], [10, 10]])],
            "r2": [angle(88.0, "s0"), angle(47.0, "s1")],
        }
    }
    labels = {row["label"]: row for row in compute_agreement(reads, KINDS, DIMS)["labels"]}
    assert labels["Cobb"]["icc"] == pytest.approx(agreement.icc_2_1([[90.0, 88.0], [45.0, 47.0]]), abs=1e-4)
