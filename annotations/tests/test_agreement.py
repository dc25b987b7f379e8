"""Agreement metrics against hand-computed values, published examples and MONAI's own metrics."""

from __future__ import annotations

import numpy as np
import pytest

from annotations.agreement import (
    box_iou,
    cohen_kappa,
    fleiss_kappa,
    icc_2_1,
    mask_agreement,
    match_boxes,
    surface_distances,
)


def _cube(shape, start, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + size) for s in start)] = True
    return mask


def test_dice_iou_and_volumes_by_hand():
    a = _cube((8, 8, 8), (2, 2, 2), 4)
    b = _cube((8, 8, 8), (2, 2, 3), 4)  # one voxel along x: 48 of 64 voxels shared
    result = mask_agreement(a, b, (2.0, 1.0, 1.0))
    assert result.dice == pytest.approx(0.75) and result.iou == pytest.approx(0.6)
    assert result.volume_a_mm3 == result.volume_b_mm3 == 128.0 and result.volume_difference_mm3 == 0.0


def test_surface_figures_by_hand_with_anisotropic_spacing():
    a = np.zeros((1, 1, 8), dtype=bool)
    b = np.zeros((1, 1, 8), dtype=bool)
    a[0, 0, 1], b[0, 0, 4] = True, True  # three voxels apart along x, 0.5 mm each
    assert mask_agreement(a, b, (3.0, 3.0, 0.5)).hd95_mm == pytest.approx(1.5)
    assert mask_agreement(a, b, (3.0, 3.0, 0.5), tolerance_mm=1.0).surface_dice == 0.0
    assert mask_agreement(a, b, (3.0, 3.0, 0.5), tolerance_mm=1.5).surface_dice == 1.0
    to_b, to_a = surface_distances(a, b, (3.0, 3.0, 0.5))
    assert to_b.tolist() == pytest.approx([1.5]) and to_a.tolist() == pytest.approx([1.5])


def test_empty_masks_are_not_comparable_not_zero():
    empty = np.zeros((4, 4, 4), dtype=bool)
    both_empty = mask_agreement(empty, empty, (1, 1, 1))
    assert both_empty.dice is None and both_empty.iou is None and both_empty.hd95_mm is None
    one_empty = mask_agreement(_cube((4, 4, 4), (1, 1, 1), 2), empty, (1, 1, 1))
    assert one_empty.dice == 0.0 and one_empty.hd95_mm is None and one_empty.surface_dice == 0.0
    with pytest.raises(ValueError):
        mask_agreement(empty, empty[:2], (1, 1, 1))


def _blob(rng, shape, spheres):
    z, y, x = np.indices(shape)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(spheres):
        c = [rng.integers(2, s - 2) for s in shape]
        r = rng.uniform(1.5, 4.0)
        mask |= (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r
    return mask


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_monai_metrics_on_random_blobs(seed):
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice

    rng = np.random.default_rng(seed)
    shape, spacing, tolerance = (10, 24, 22), (2.5, 0.7, 0.9), 1.2
    a, b = _blob(rng, shape, 4), _blob(rng, shape, 4)
    ours = mask_agreement(a, b, spacing, tolerance_mm=tolerance)

    def onehot(mask):
        return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))

    pa, pb = onehot(a), onehot(b)
    assert ours.dice == pytest.approx(float(compute_dice(pa, pb, include_background=False)), abs=1e-6)
    hd95 = compute_hausdorff_distance(pa, pb, include_background=False, percentile=95, spacing=list(spacing))
    assert ours.hd95_mm == pytest.approx(float(hd95), abs=1e-4)
    nsd = compute_surface_dice(pa, pb, [tolerance], include_background=False, spacing=list(spacing))
    assert ours.surface_dice == pytest.approx(float(nsd), abs=1e-6)


def test_box_iou_and_pairing():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    a = [(0, 0, 10, 10), (50, 50, 60, 60)]
    b = [(51, 51, 61, 61), (1, 0, 11, 10), (100, 100, 110, 110)]
    pairs = match_boxes(a, b)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (1, 0)]
    assert match_boxes(a, []) == []


def test_cohen_kappa_by_hand():
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15 -> po 0.7, pe 0.5, kappa 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None


def test_fleiss_kappa_on_the_published_example():
    # Fleiss (1971) as worked in the literature: 10 items, 14 raters, 5 categories, kappa 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = [[c for c, n in enumerate(row, 1) for _ in range(n)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(0.2099, abs=5e-4)
    # the worked example's intermediate figures: P-bar 0.378, P_e 0.213 -> (0.378-0.213)/(1-0.213)
    p_bar = sum(sum(n * (n - 1) for n in row) / (14 * 13) for row in table) / 10
    p_e = sum((sum(row[j] for row in table) / 140) ** 2 for j in range(5))
    assert (p_bar, p_e) == (pytest.approx(0.378, abs=5e-4), pytest.approx(0.2128, abs=5e-4))
    assert fleiss_kappa(ratings) == pytest.approx((p_bar - p_e) / (1 - p_e))
    assert fleiss_kappa([["a", "b"], ["a"]]) is None
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["x", "x", "x"], ["x", "x", "x"]]) is None  # one class for everything: undefined


def test_fleiss_kappa_by_hand_with_three_readers_and_unequal_items() -> None:
    # 3 readers, 4 items: (y,y,y) (y,y,n) (n,n,n) (y,n,n).
    # P_i = 1, 1/3, 1, 1/3 -> P-bar 2/3; shares y 6/12, n 6/12 -> P_e 0.5; kappa (2/3-1/2)/(1/2) = 1/3.
    equal = [["y", "y", "y"], ["y", "y", "n"], ["n", "n", "n"], ["y", "n", "n"]]
    assert fleiss_kappa(equal) == pytest.approx(1 / 3)
    # A fifth item read by four readers (y,y,n,n): P_5 = (2+2)/12 = 1/3; P-bar (1+1/3+1+1/3+1/3)/5 = 0.6;
    # shares y 8/16, n 8/16 -> P_e 0.5; kappa (0.6-0.5)/0.5 = 0.2.
    assert fleiss_kappa([*equal, ["y", "y", "n", "n"]]) == pytest.approx(0.2)
    assert fleiss_kappa([["a", "b", "a"], ["b", "a", "b"]]) == pytest.approx(-1 / 3)  # worse than chance


def test_fleiss_kappa_matches_statsmodels_when_it_is_installed() -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    rng = np.random.default_rng(12)
    ratings = rng.integers(0, 4, size=(40, 5)).tolist()
    table, _ = inter_rater.aggregate_raters(np.asarray(ratings))
    assert fleiss_kappa(ratings) == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"))


def test_icc_2_1_on_shrout_and_fleiss():
    # Shrout & Fleiss (1979), Table 2: six targets, four judges; ICC(2,1) = 0.29.
    values = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    assert icc_2_1(values) == pytest.approx(0.29, abs=5e-3)
    assert icc_2_1([[5.0, 5.0], [5.0, 5.0]]) is None
    assert icc_2_1([[1.0, 2.0]]) is None
    identical = [[3.0, 3.0], [7.0, 7.0], [12.0, 12.0]]
    assert icc_2_1(identical) == pytest.approx(1.0)
