"""Fusion of several readers into a consensus, against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from annotations.consensus import majority_class, majority_vote, staple, weighted_box_fusion


def _square(start, size, shape=(20, 20)):
    mask = np.zeros(shape, dtype=bool)
    mask[start[0] : start[0] + size, start[1] : start[1] + size] = True
    return mask


def test_majority_vote_needs_more_than_half():
    a, b, c = _square((2, 2), 8), _square((3, 3), 8), _square((12, 12), 4)
    assert majority_vote([a, b]).sum() == 49  # two readers: where both marked
    assert (majority_vote([a, b, c]) == (a & b)).all()  # c alone never wins
    with pytest.raises(ValueError):
        majority_vote([a, a[:5]])


def test_staple_follows_the_readers_who_agree_and_rates_them():
    truth = _square((4, 4), 10)
    noisy = truth.copy()
    noisy[4:14, 4:9] = False  # misses half
    noisy[0:3, 0:20] = True  # and marks a band that is not there
    result = staple([truth, truth, noisy])
    assert (result.mask == truth).all()
    assert result.probability.min() >= 0 and result.probability.max() <= 1
    assert result.sensitivity[0] > 0.95 and result.sensitivity[2] < 0.6  # the third reader misses half
    assert result.specificity[2] < result.specificity[0]
    empty = staple([np.zeros((4, 4), bool)] * 2)
    assert not empty.mask.any()


def test_weighted_box_fusion_by_hand():
    # IoU of (0,0,10,10) and (1,1,11,11) is 81/119 > 0.55: one fused box, the mean, full score.
    fused = weighted_box_fusion([[((0, 0, 10, 10), 1.0)], [((1, 1, 11, 11), 1.0)]])
    assert len(fused) == 1 and fused[0].readers == 2 and fused[0].score == pytest.approx(1.0)
    assert fused[0].box == pytest.approx((0.5, 0.5, 10.5, 10.5))
    # Weighted by score: 0.9 and 0.3 -> three quarters of the way to the first box.
    weighted = weighted_box_fusion([[((0, 0, 10, 10), 0.9)], [((2, 0, 12, 10), 0.3)]], iou_threshold=0.5)
    assert weighted[0].box == pytest.approx((0.5, 0.0, 10.5, 10.0))
    # Too little overlap (64/136): two boxes, each drawn by one of two readers, score halved.
    apart = weighted_box_fusion([[((0, 0, 10, 10), 1.0)], [((2, 2, 12, 12), 1.0)]])
    assert [(f.readers, f.score) for f in apart] == [(1, 0.5), (1, 0.5)]
    assert weighted_box_fusion([[], []]) == []


def test_majority_class_and_ties():
    assert majority_class(["nodule", "nodule", "normal"]) == "nodule"
    assert majority_class(["nodule", "normal"]) is None  # a tie is for the adjudicator
    assert majority_class([]) is None
