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
        "kappa": None,
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
