"""A series' readers compared and fused into one consensus read. Pure (numpy and SimpleITK).

``series_fuse`` takes every reader's shapes of one series, the series' images in spatial order
and its voxel spacing, and answers, per label, how well the readers agree and what the fused
label is (annotations.agreement and annotations.consensus do the maths):

- **mask** labels: each reader's masks stacked into a 3-D volume over the series; agreement is
  the mean 3-D Dice over reader pairs, the fusion STAPLE (one mask annotation per slice that
  holds any of the consensus).
- **box** labels: per image the readers' boxes are paired for the largest summed IoU; a pair's
  agreement is the summed matched IoU over the larger of the two box counts (a box only one
  reader drew counts 0), pooled over the series. The fusion is weighted box fusion, keeping the
  clusters at least half the readers drew.
- **classification** labels: the share of items (images, or the series) both readers gave the
  same class; the fusion is the majority class, and a tie is left for the adjudicator.
- polygon, freehand, ellipse, point, line and angle labels are compared on no figure here and carried over
  from the first reader's read (``fallback``) unfused; the details say so.

For routing, a label one reader of a pair used and the other did not agrees 0 (one reader found
something the other did not: the case an adjudicator is for), unlike the quality page, where
such a label is "not comparable". The series' agreement is the lowest of its labels'.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

import numpy as np

from annotations import agreement as agr
from annotations import consensus as fuse
from annotations import geometry as geo
from annotations.metrics import Shape

Image = tuple[str, int]  # (sop_instance_uid, frame)


@dataclass(frozen=True)
class SliceInfo:
    sop_instance_uid: str
    frame: int
    rows: int
    columns: int


@dataclass(frozen=True)
class LabelResult:
    label: str
    kind: str
    measure: str  # "dice_3d" | "matched_iou" | "class_agreement" | "" (not compared)
    agreement: float | None
    method: str  # "staple" | "wbf" | "majority" | "first_read"
    note: str = ""


@dataclass(frozen=True)
class Fused:
    agreement: float | None  # the lowest label agreement; None when nothing was compared
    labels: list[LabelResult]
    shapes: list[Shape] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        return {
            r.label: {
                "kind": r.kind,
                "measure": r.measure,
                "agreement": None if r.agreement is None else round(r.agreement, 4),
                "method": r.method,
                "note": r.note,
            }
            for r in self.labels
        }


def _volume(shapes: Sequence[Shape], slices: Sequence[SliceInfo]) -> np.ndarray:
    rows = max((s.rows for s in slices), default=1)
    columns = max((s.columns for s in slices), default=1)
    index = {(s.sop_instance_uid, s.frame): z for z, s in enumerate(slices)}
    volume = np.zeros((max(len(slices), 1), rows, columns), dtype=bool)
    for shape in shapes:
        z = index.get((shape.sop_instance_uid, shape.frame))
        if z is not None:
            volume[z] |= geo.rasterize(shape.kind, dict(shape.geometry), rows, columns)
    return volume


def _mask_label(
    name: str, by_reader: Sequence[Sequence[Shape]], slices: Sequence[SliceInfo]
) -> tuple[LabelResult, list[Shape]]:
    volumes = [_volume(shapes, slices) for shapes in by_reader]
    scores = []
    for a, b in itertools.combinations(volumes, 2):
        both, total = int(np.count_nonzero(a & b)), int(np.count_nonzero(a)) + int(np.count_nonzero(b))
        if total:
            scores.append(2 * both / total)
    fused = fuse.staple(volumes).mask
    shapes = []
    for z, info in enumerate(slices):
        plane = fused[z, : info.rows, : info.columns]
        if plane.any():
            geometry = {"rows": info.rows, "columns": info.columns, "rle": geo.rle_encode(plane)}
            shapes.append(Shape(name, "mask", info.sop_instance_uid, info.frame, geometry))
    result = LabelResult(name, "mask", "dice_3d", fmean(scores) if scores else None, "staple")
    return result, shapes


def _box(shape: Shape) -> agr.Box:
    g = shape.geometry
    x0, x1 = sorted((float(g["x0"]), float(g["x1"])))
    y0, y1 = sorted((float(g["y0"]), float(g["y1"])))
    return (x0, y0, x1, y1)


def _on(shapes: Sequence[Shape], image: Image) -> list[Shape]:
    return [s for s in shapes if (s.sop_instance_uid, s.frame) == image]


def _box_label(name: str, by_reader: Sequence[Sequence[Shape]]) -> tuple[LabelResult, list[Shape]]:
    images = sorted({(s.sop_instance_uid, s.frame) for shapes in by_reader for s in shapes})
    scores = []
    for a, b in itertools.combinations(by_reader, 2):
        matched = counted = 0.0
        for image in images:
            boxes_a, boxes_b = [_box(s) for s in _on(a, image)], [_box(s) for s in _on(b, image)]
            matched += sum(iou for _, _, iou in agr.match_boxes(boxes_a, boxes_b))
            counted += max(len(boxes_a), len(boxes_b))
        if counted:
            scores.append(matched / counted)
    shapes = []
    for image in images:
        readers = [[(_box(s), 1.0) for s in _on(shapes_of, image)] for shapes_of in by_reader]
        for box in fuse.weighted_box_fusion(readers):
            if box.readers * 2 >= len(by_reader):
                x0, y0, x1, y1 = box.box
                shapes.append(Shape(name, "box", image[0], image[1], {"x0": x0, "y0": y0, "x1": x1, "y1": y1}))
    return LabelResult(name, "box", "matched_iou", fmean(scores) if scores else None, "wbf"), shapes


def _class_label(name: str, kind: str, by_reader: Sequence[Sequence[Shape]]) -> tuple[LabelResult, list[Shape]]:
    def classes(shapes: Sequence[Shape]) -> dict[Image, Hashable]:
        out: dict[Image, Hashable] = {}
        for s in shapes:  # in save order: the last class given wins
            key = ("", 0) if kind == "classification_series" else (s.sop_instance_uid, s.frame)
            out[key] = s.attributes.get("value")
        return out

    given = [classes(shapes) for shapes in by_reader]
    items = sorted({key for one in given for key in one})
    scores = []
    for a, b in itertools.combinations(given, 2):
        if items:
            scores.append(sum(1 for key in items if key in a and key in b and a[key] == b[key]) / len(items))
    shapes, ties = [], 0
    for key in items:
        winner = fuse.majority_class([one[key] for one in given if key in one])
        # A class fewer than half the readers gave is no majority of the readers.
        votes = sum(1 for one in given if one.get(key) == winner)
        if winner is None or votes * 2 < len(given):
            ties += 1
            continue
        shapes.append(Shape(name, kind, key[0], key[1], {}, {"value": winner}))
    note = f"{ties} item(s) without a majority: the adjudicator decides" if ties else ""
    return LabelResult(name, kind, "class_agreement", fmean(scores) if scores else None, "majority", note), shapes


def series_fuse(
    reads: Sequence[Sequence[Shape]],
    kinds: Mapping[str, str],
    slices: Sequence[SliceInfo],
    *,
    fallback: int = 0,
) -> Fused:
    """Agreement per label and the fused shapes of one series; ``reads[i]`` is reader i's shapes.

    ``fallback`` is the index of the read whose labels are carried over for kinds not fused.
    """
    results: list[LabelResult] = []
    shapes: list[Shape] = []
    for name, kind in kinds.items():
        by_reader = [[s for s in read if s.label == name] for read in reads]
        used = [bool(one) for one in by_reader]
        if not any(used):
            continue
        if kind == "mask":
            result, fused = _mask_label(name, by_reader, slices)
        elif kind == "box":
            result, fused = _box_label(name, by_reader)
        elif kind in geo.CLASS_KINDS:
            result, fused = _class_label(name, kind, by_reader)
        else:
            carried = by_reader[fallback] if fallback < len(by_reader) else []
            note = "not fused: carried over from the first read"
            result, fused = LabelResult(name, kind, "", None, "first_read", note), list(carried)
        if result.measure and not all(used):
            # Pairs where one reader marked it and the other did not already scored 0 above.
            result = LabelResult(
                name, kind, result.measure, result.agreement, result.method, "not every reader used it"
            )
        results.append(result)
        shapes.extend(fused)
    compared = [r.agreement for r in results if r.agreement is not None]
    return Fused(min(compared) if compared else None, results, shapes)
