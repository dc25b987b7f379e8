"""The uncertainty map per proposal: TTA entropy beside the plain pass, and what a proposal keeps of it.

Stand-in handlers with known outputs, as in test_uncertainty.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from annotations import geometry as geo
from inference.handlers.uncertainty_map import neighbourhood, proposal_uncertainty


def _square(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_uncertain_pixels_are_kept_in_the_dilated_box_only() -> None:
    entropy = np.full((20, 30), 0.9, dtype=np.float32)  # unsure everywhere
    mask = _square((20, 30), slice(8, 12), slice(10, 14))
    out = proposal_uncertainty(entropy, [mask], margin=2)
    kept = geo.rle_decode(out.rle, out.rows, out.columns)
    assert (out.rows, out.columns) == (20, 30)
    assert np.array_equal(kept, _square((20, 30), slice(6, 14), slice(8, 16)))
    assert out.mean == pytest.approx(0.9) and out.max == pytest.approx(0.9)
    assert out.to_dict()["method"] == "tta_entropy" and out.to_dict()["threshold"] == 0.5
    assert geo.validate_geometry("mask", {"rows": 20, "columns": 30, "rle": out.rle})


def test_the_threshold_picks_pixels_and_the_stats_are_inside_the_proposal() -> None:
    entropy = np.zeros((10, 10), dtype=np.float32)
    entropy[4, 4] = 0.8  # inside the proposal
    entropy[4, 7] = 0.49  # in the neighbourhood, below the threshold
    entropy[0, 9] = 1.0  # outside the neighbourhood
    mask = _square((10, 10), slice(3, 6), slice(3, 6))
    out = proposal_uncertainty(entropy, [mask], margin=2)
    assert geo.rle_decode(out.rle, 10, 10).sum() == 1 and out.rle == [44, 1]
    assert out.mean == pytest.approx(0.8 / 9, abs=1e-4) and out.max == pytest.approx(0.8)


def test_a_confident_model_gives_an_empty_map_and_values_stay_in_range() -> None:
    mask = _square((8, 8), slice(2, 5), slice(2, 5))
    out = proposal_uncertainty(np.zeros((8, 8)), [mask])
    assert out.rle == [] and out.mean == 0.0 and out.max == 0.0
    overshoot = proposal_uncertainty(np.full((8, 8), 1.02), [mask])  # a bilinear resize can overshoot
    assert overshoot.max == 1.0 and 0.0 <= overshoot.mean <= 1.0


def test_the_neighbourhood_of_several_objects_is_the_union_of_their_boxes_clipped() -> None:
    a = _square((10, 10), slice(0, 2), slice(0, 2))
    b = _square((10, 10), slice(8, 10), slice(8, 10))
    region = neighbourhood([a, b], margin=1)
    assert region.sum() == 9 + 9 and region[0, 0] and region[9, 9] and not region[5, 5]


def test_a_map_of_another_size_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        proposal_uncertainty(np.zeros((4, 4)), [np.zeros((5, 5), dtype=bool)])
