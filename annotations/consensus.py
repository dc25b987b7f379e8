"""Fusing several readers' labels into one consensus. Pure (numpy and SimpleITK).

- **Masks**: STAPLE (Warfield et al. 2004, SimpleITK's filter), which weighs each reader by
  the sensitivity and specificity it estimates, and majority vote (a voxel is in when more
  than half the readers marked it).
- **Boxes**: weighted box fusion (Solovyev et al. 2021): boxes of different readers that
  overlap are clustered and averaged, weighted by score; a cluster only some readers drew
  keeps a score scaled down by the share of readers who drew it.
- **Classes**: the majority; a tie is no consensus (None), a case for the adjudicator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from annotations.agreement import Box, box_iou


@dataclass(frozen=True)
class StapleResult:
    mask: np.ndarray  # bool, the consensus
    probability: np.ndarray  # float, per voxel: the estimated probability of the true label
    sensitivity: tuple[float, ...]  # per reader, as estimated
    specificity: tuple[float, ...]


def _check(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    arrays = [np.asarray(m).astype(bool) for m in masks]
    if not arrays or len({a.shape for a in arrays}) != 1:
        raise ValueError("Fusion needs one or more masks of the same shape.")
    return arrays


def majority_vote(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Voxels marked by more than half of the readers (two readers: both)."""
    arrays = _check(masks)
    return np.sum(arrays, axis=0) * 2 > len(arrays)


def staple(masks: Sequence[np.ndarray], *, threshold: float = 0.5) -> StapleResult:
    """STAPLE consensus of binary masks, thresholded at ``threshold`` probability."""
    arrays = _check(masks)
    if not any(a.any() for a in arrays):  # nothing to estimate: everyone says background
        zeros = np.zeros(arrays[0].shape)
        return StapleResult(zeros.astype(bool), zeros, (1.0,) * len(arrays), (1.0,) * len(arrays))
    images = [sitk.GetImageFromArray(a.astype(np.uint8)) for a in arrays]
    fusion = sitk.STAPLEImageFilter()
    fusion.SetForegroundValue(1)
    probability = sitk.GetArrayFromImage(fusion.Execute(images)).astype(np.float64)
    return StapleResult(
        mask=probability >= threshold,
        probability=probability,
        sensitivity=tuple(float(v) for v in fusion.GetSensitivity()),
        specificity=tuple(float(v) for v in fusion.GetSpecificity()),
    )


@dataclass(frozen=True)
class FusedBox:
    box: Box
    score: float
    readers: int  # how many readers' boxes the cluster holds


def weighted_box_fusion(
    readers: Sequence[Sequence[tuple[Box, float]]], *, iou_threshold: float = 0.55, skip_below: float = 0.0
) -> list[FusedBox]:
    """Fuse each reader's (box, score) list of one image and one label (a reader's own
    boxes carry score 1.0). Boxes are taken by falling score; each joins the first cluster
    whose fused box it overlaps by more than ``iou_threshold``, or opens a new one.
    """
    entries = sorted(
        ((score, index, box) for index, boxes in enumerate(readers) for box, score in boxes if score >= skip_below),
        key=lambda e: -e[0],
    )
    clusters: list[list[tuple[float, int, Box]]] = []
    fused: list[Box] = []
    for entry in entries:
        target = next((i for i, box in enumerate(fused) if box_iou(box, entry[2]) > iou_threshold), None)
        if target is None:
            clusters.append([entry])
            fused.append(entry[2])
            continue
        clusters[target].append(entry)
        fused[target] = _weighted(clusters[target])
    result = []
    for members, box in zip(clusters, fused, strict=True):
        scores = [score for score, _, _ in members]
        drawn_by = len({index for _, index, _ in members})
        score = float(np.mean(scores)) * min(len(members), len(readers)) / len(readers)
        result.append(FusedBox(box=box, score=score, readers=drawn_by))
    return sorted(result, key=lambda f: -f.score)


def _weighted(members: list[tuple[float, int, Box]]) -> Box:
    weights = np.array([score for score, _, _ in members])
    coords = np.array([box for _, _, box in members], dtype=np.float64)
    x0, y0, x1, y1 = (weights[:, None] * coords).sum(axis=0) / weights.sum()
    return (float(x0), float(y0), float(x1), float(y1))


def majority_class(classes: Sequence[Hashable]) -> Hashable | None:
    """The class most readers gave; None when no class has more votes than every other."""
    ranked = Counter(classes).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]
