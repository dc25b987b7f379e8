"""The pure parts of proposals: a model's objects as annotation geometries, and what an edit changed."""

from __future__ import annotations

import numpy as np

from annotations import geometry as geo
from inference.decisions import mask_changes
from inference.handlers.base import ObjectPrediction
from inference.runs import proposal_geometries


def _object(rows: slice, cols: slice, score: float) -> ObjectPrediction:
    mask = np.zeros((10, 12), dtype=bool)
    mask[rows, cols] = True
    return ObjectPrediction(label="Nodule", mask=mask, score=score)


def test_a_mask_label_gets_one_mask_per_slice_scored_by_area() -> None:
    small, large = _object(slice(0, 2), slice(0, 2), 0.5), _object(slice(5, 9), slice(5, 9), 0.8)  # 4 and 16 px
    ((geometry, score),) = proposal_geometries("mask", small.mask, [small, large])
    assert geo.validate_geometry("mask", geometry) == geometry and (geometry["rows"], geometry["columns"]) == (10, 12)
    assert np.array_equal(geo.rle_decode(geometry["rle"], 10, 12), small.mask | large.mask)
    assert score == (0.5 * 4 + 0.8 * 16) / 20


def test_a_box_label_gets_one_box_per_object_covering_its_pixels() -> None:
    one = _object(slice(2, 5), slice(3, 9), 0.7)
    ((geometry, score),) = proposal_geometries("box", one.mask, [one])
    assert geometry == {"x0": 3.0, "y0": 2.0, "x1": 8.0, "y1": 4.0} and score == 0.7
    assert np.array_equal(geo.rasterize("box", geometry, 10, 12), one.mask)


def test_mask_changes_counts_added_and_removed_pixels_and_dice() -> None:
    before = {"x0": 0.0, "y0": 0.0, "x1": 3.0, "y1": 3.0}  # 16 px
    after = {"x0": 1.0, "y0": 0.0, "x1": 5.0, "y1": 3.0}  # 20 px, 12 shared
    assert mask_changes("box", before, after, rows=10, columns=12) == {
        "added": 8,
        "removed": 4,
        "dice": round(24 / 36, 4),
    }
    assert mask_changes("box", before, before, rows=10, columns=12) == {"added": 0, "removed": 0, "dice": 1.0}
