"""Agreement figures against values worked out by hand (see each comment)."""

from __future__ import annotations

import pytest

from annotations.metrics import Shape, compute_agreement

KINDS = {"Lesion": "box", "Nodule": "mask", "Quality": "classification_image", "Spot": "point"}
DIMS = {"A": (10, 10), "B": (2, 4), "A2": (10, 10), "A3": (10, 10)}


def box(x0: float, y0: float, x1: float, y1: float, sop: str = "A") -> Shape:
    return Shape("Lesion", "box", sop, 0, {"x0": x0, "y0": y0, "x1": x1, "y1": y1})


def quality(value: str, sop: str) -> Shape:
    return Shape("Quality", "classification_image", sop, 0, {}, {"value": value})


READS = {
    # S1: boxes of 16 px overlapping by 8 (Dice 0.5, IoU 1/3); masks of 4 px overlapping by 2
    # (Dice 0.5, IoU 1/3); quality agrees on A (good/good), not on B (poor/good).
    "S1": {
        "r1": [
            box(0, 0, 3, 3),
            Shape("Nodule", "mask", "B", 0, {"rows": 2, "columns": 4, "rle": [0, 4]}),
            quality("good", "A"),
            quality("poor", "B"),
            Shape("Spot", "point", "A", 0, {"x": 1, "y": 1}),
        ],
        "r2": [
            box(2, 0, 5, 3),
            Shape("Nodule", "mask", "B", 0, {"rows": 2, "columns": 4, "rle": [2, 4]}),
            quality("good", "A"),
            quality("good", "B"),
        ],
    },
    # S2: only r1 drew a lesion (not comparable: no figure, in no mean); quality disagrees (poor/good).
    "S2": {"r1": [box(0, 0, 1, 1, "A2"), quality("poor", "A2")], "r3": [quality("good", "A2")]},
    # S3: quality agrees (poor/poor); nothing else.
    "S3": {"r2": [quality("poor", "A3")], "r3": [quality("poor", "A3")]},
    # A single reader is not compared.
    "S4": {"r1": [box(0, 0, 3, 3, "A")]},
}


def test_labels_by_hand() -> None:
    result = compute_agreement(READS, KINDS, DIMS)
    labels = {row["label"]: row for row in result["labels"]}
    # Lesion: S1's pair only (S2's is not comparable, not 0).
    assert labels["Lesion"]["dice"] == pytest.approx(0.5)
    assert labels["Lesion"]["iou"] == pytest.approx(1 / 3, abs=1e-4)
    assert (labels["Lesion"]["pairs"], labels["Lesion"]["not_comparable"]) == (1, 1)
    assert labels["Nodule"]["dice"] == pytest.approx(0.5)
    assert labels["Nodule"]["iou"] == pytest.approx(1 / 3, abs=1e-4)
    # Quality items (A by pair, B by pair): (g,g) (p,g) (p,g) (p,p): po = 0.5;
    # first raters g1 p3, second g3 p1 -> pe = (1*3 + 3*1) / 16 = 0.375; kappa = 0.125 / 0.625 = 0.2.
    assert labels["Quality"]["kappa"] == pytest.approx(0.2)
    assert labels["Quality"]["dice"] is None
    assert labels["Quality"]["pairs"] == 3
    assert labels["Spot"] == {
        "label": "Spot",
        "kind": "point",
        "dice": None,
        "iou": None,
        "surface_dice": None,
        "hd95_mm": None,
        "volume_difference_mm3": None,
        "tolerance_mm": 2.0,
        "kappa": None,
        "fleiss_kappa": None,
        "fleiss_items": 0,
        "icc": None,
        "pairs": 0,
        "not_comparable": 0,
    }


def test_series_sorted_by_disagreement() -> None:
    rows = compute_agreement(READS, KINDS, DIMS)["series"]
    # S2: quality 0 (its lesion is not comparable) -> 1.0; S1: lesion .5, nodule .5, quality .5 -> 0.5; S3: 0.
    assert [(r["series"], r["disagreement"]) for r in rows] == [("S2", 1.0), ("S1", 0.5), ("S3", 0.0)]
    assert (rows[0]["labels"], rows[0]["not_comparable"]) == ({"Quality": 0.0}, ["Lesion"])
    assert rows[1]["labels"] == {"Lesion": 0.5, "Nodule": 0.5, "Quality": 0.5}
    assert rows[1]["readers"] == ["r1", "r2"]


def test_three_readers_make_three_pairs() -> None:
    reads = {"S": {"a": [box(0, 0, 3, 3)], "b": [box(0, 0, 3, 3)], "c": [box(2, 0, 5, 3)]}}
    label = compute_agreement(reads, {"Lesion": "box"}, DIMS)["labels"][0]
    # pairs a-b 1.0, a-c 0.5, b-c 0.5 -> 2/3
    assert label["pairs"] == 3
    assert label["dice"] == pytest.approx(2 / 3, abs=1e-4)


def test_shapes_on_unknown_images_use_their_extent() -> None:
    reads = {"S": {"a": [box(0, 0, 3, 3, "X")], "b": [box(2, 0, 5, 3, "X")]}}
    assert compute_agreement(reads, {"Lesion": "box"})["labels"][0]["dice"] == pytest.approx(0.5)


def test_a_label_only_one_reader_used_is_not_comparable() -> None:
    # Only r1 used Lesion: no Dice of 0 but None, and the series' other label alone makes its figure.
    reads = {"S": {"r1": [box(0, 0, 3, 3), quality("good", "A")], "r2": [quality("good", "A")]}}
    result = compute_agreement(reads, {"Lesion": "box", "Quality": "classification_image"}, DIMS)
    lesion = result["labels"][0]
    assert (lesion["dice"], lesion["iou"], lesion["pairs"], lesion["not_comparable"]) == (None, None, 0, 1)
    (row,) = result["series"]
    assert (row["disagreement"], row["labels"], row["not_comparable"]) == (0.0, {"Quality": 1.0}, ["Lesion"])


def test_a_series_with_only_one_sided_labels_has_no_disagreement_figure() -> None:
    reads = {"S": {"r1": [box(0, 0, 3, 3)], "r2": []}}
    (row,) = compute_agreement(reads, {"Lesion": "box"}, DIMS)["series"]
    assert (row["disagreement"], row["not_comparable"]) == (None, ["Lesion"])


def test_masks_get_3d_measures_and_lines_an_icc_when_the_series_is_a_volume() -> None:
    """The quality page's 3-D figures: computed over the whole stack with its spacing (the
    measures themselves are checked against MONAI in test_agreement.py)."""
    import numpy as np

    from annotations import agreement
    from annotations.geometry import rasterize
    from annotations.metrics import Volume

    volume = Volume(sops=("s0", "s1", "s2"), rows=8, columns=8, spacing=(2.0, 0.5, 0.5))
    a_box = {"x0": 0, "y0": 0, "x1": 4, "y1": 4}
    b_box = {"x0": 0, "y0": 0, "x1": 4, "y1": 2}

    def shapes(box: dict[str, int], sops: tuple[str, ...], line: float) -> list[Shape]:
        out = [Shape("Lesion", "box", sop, geometry=box) for sop in sops]
        return out + [
            Shape("Diameter", "line", sop, geometry={"points": [[0, 0], [1, 1]], "length_mm": line + k})
            for k, sop in enumerate(("s0", "s1", "s2"))
        ]

    reads = {"S": {"A": shapes(a_box, ("s0", "s1"), 10.0), "B": shapes(b_box, ("s1",), 10.5)}}
    kinds = {"Lesion": "box", "Diameter": "line"}
    result = compute_agreement(reads, kinds, volumes={"S": volume}, tolerance_mm=1.0)
    labels = {row["label"]: row for row in result["labels"]}
    a_pixels = int(rasterize("box", a_box, 8, 8).sum())
    b_pixels = int(rasterize("box", b_box, 8, 8).sum())
    voxel = 2.0 * 0.5 * 0.5
    assert labels["Lesion"]["volume_difference_mm3"] == pytest.approx(abs(2 * a_pixels - b_pixels) * voxel)
    a = np.zeros((3, 8, 8), bool)
    a[0] = a[1] = rasterize("box", a_box, 8, 8)
    b = np.zeros((3, 8, 8), bool)
    b[1] = rasterize("box", b_box, 8, 8)
    expected = agreement.mask_agreement(a, b, (2.0, 0.5, 0.5), tolerance_mm=1.0)
    assert labels["Lesion"]["hd95_mm"] == pytest.approx(expected.hd95_mm, abs=1e-4)
    assert labels["Lesion"]["surface_dice"] == pytest.approx(expected.surface_dice, abs=1e-4)
    assert labels["Lesion"]["hd95_mm"] >= 2.0  # slice 0 is A's alone: 2 mm away along z
    icc = agreement.icc_2_1([[10.0, 10.5], [11.0, 11.5], [12.0, 12.5]])
    assert labels["Diameter"]["icc"] == pytest.approx(icc, abs=1e-4) and labels["Diameter"]["pairs"] == 1
    # without the volume, the 3-D figures are not computed (not zero)
    flat = {row["label"]: row for row in compute_agreement(reads, kinds)["labels"]}
    assert flat["Lesion"]["hd95_mm"] is None and flat["Lesion"]["dice"] is not None


def test_fleiss_kappa_over_three_or_more_readers_by_hand() -> None:
    # S1: readers r1 r2 r3 on images A and A2: (good, good, good), (good, poor, none): the third reader
    # gave A2 no class, which counts as "(none)". S2 has four readers on A3: (poor, poor, good, good).
    # S3 has two readers only: in Cohen's kappa, not in Fleiss'.
    # P_i: A 1; A2 0 (three different); A3 (2+2)/12 = 1/3 -> P-bar 4/9.
    # ratings: good 6, poor 3, none 1 of 10 -> P_e = (36+9+1)/100 = 0.46; kappa (4/9-0.46)/0.54 = -0.0288.
    reads = {
        "S1": {
            "r1": [quality("good", "A"), quality("good", "A2")],
            "r2": [quality("good", "A"), quality("poor", "A2")],
            "r3": [quality("good", "A")],
        },
        "S2": {f"r{k}": [quality(v, "A3")] for k, v in enumerate(("poor", "poor", "good", "good"))},
        "S3": {"r1": [quality("good", "A")], "r2": [quality("poor", "A")]},
    }
    result = compute_agreement(reads, {"Quality": "classification_image", "Lesion": "box"}, DIMS)
    labels = {row["label"]: row for row in result["labels"]}
    assert labels["Quality"]["fleiss_kappa"] == pytest.approx((4 / 9 - 0.46) / 0.54, abs=1e-4)
    assert labels["Quality"]["fleiss_items"] == 3
    assert labels["Quality"]["kappa"] is not None  # Cohen's per pair is still there
    assert (labels["Lesion"]["fleiss_kappa"], labels["Lesion"]["fleiss_items"]) == (None, 0)


def test_fleiss_kappa_is_not_comparable_with_two_readers() -> None:
    label = compute_agreement(READS, KINDS, DIMS)["labels"]
    quality_row = next(row for row in label if row["label"] == "Quality")
    assert (quality_row["fleiss_kappa"], quality_row["fleiss_items"]) == (None, 0)
