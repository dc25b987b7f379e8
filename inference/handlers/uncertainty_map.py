"""An uncertainty map per proposal, from a slice's per-pixel entropy (pure: numpy only, no torch).

The run computes the slice's test-time-augmentation entropy (inference.handlers.uncertainty) and
hands it here with the masks of one proposal. What is kept is small enough to live on the
proposal row: the uncertain pixels (entropy at or above ``threshold``) of the proposal's
neighbourhood, i.e. each object's bounding box dilated by ``margin`` pixels, as the annotations'
run-length encoding over the whole slice, and the mean and max entropy inside the proposal.
Uncertainty at a lesion's border is what a reader wants to see, hence the margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from annotations.geometry import rle_encode

METHOD = "tta_entropy"
THRESHOLD = 0.5
MARGIN = 4  # pixels around each object's bounding box


@dataclass(frozen=True)
class ProposalUncertainty:
    """What a proposal's ``uncertainty`` field holds (see :meth:`to_dict`)."""

    rows: int
    columns: int
    rle: list[int]  # uncertain pixels of the neighbourhood, row-major runs over rows x columns
    mean: float  # mean normalised entropy inside the proposal, in [0, 1]
    max: float  # highest normalised entropy inside the proposal, in [0, 1]
    method: str = METHOD
    threshold: float = THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies the rle list element by element, which cost more
        # than the whole map on a 512x512 slice (bench/inference_throughput.py).
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {"rle": list(self.rle)}


def _dilated_boxes(
    masks: Sequence[npt.NDArray[np.bool_]], shape: tuple[int, ...], margin: int
) -> list[tuple[slice, slice]]:
    """Each non-empty mask's bounding box dilated by ``margin`` pixels, clipped to ``shape``."""
    boxes = []
    for mask in masks:
        # The row and column projections, not np.nonzero: no index array of every pixel.
        rows = np.flatnonzero(np.any(mask, axis=1))
        if not rows.size:
            continue
        cols = np.flatnonzero(np.any(mask, axis=0))
        y0, y1 = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, shape[0])
        x0, x1 = max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, shape[1])
        boxes.append((slice(y0, y1), slice(x0, x1)))
    return boxes


def neighbourhood(masks: Sequence[npt.NDArray[np.bool_]], *, margin: int = MARGIN) -> npt.NDArray[np.bool_]:
    """The union of each mask's bounding box dilated by ``margin`` pixels, clipped to the slice."""
    shape = masks[0].shape
    region = np.zeros(shape, dtype=bool)
    for box in _dilated_boxes(masks, shape, margin):
        region[box] = True
    return region


def proposal_uncertainty(
    entropy: npt.NDArray[Any],
    masks: Sequence[npt.NDArray[np.bool_]],
    *,
    threshold: float = THRESHOLD,
    margin: int = MARGIN,
) -> ProposalUncertainty:
    """The uncertainty map of one proposal made of ``masks`` (its objects, each rows x columns).

    ``entropy`` is the slice's normalised entropy at the slice's size; values are clipped to
    [0, 1] (a resize can overshoot a little). A confident model gives an empty ``rle``.
    """
    values = np.asarray(entropy, dtype=np.float32)
    if not masks or values.shape != masks[0].shape:
        raise ValueError("The entropy map and the proposal's masks must have the slice's shape.")
    bools = [np.asarray(m, dtype=bool) for m in masks]
    inside = np.logical_or.reduce(bools)
    # Only the neighbourhood's boxes and the proposal's pixels are clipped and compared, not the
    # whole slice: the same values, a few thousand pixels instead of 512x512.
    uncertain = np.zeros(values.shape, dtype=bool)
    for box in _dilated_boxes(bools, values.shape, margin):
        uncertain[box] = np.clip(values[box], 0.0, 1.0) >= threshold
    picked = np.clip(values[inside], 0.0, 1.0)
    rows, columns = values.shape
    return ProposalUncertainty(
        rows=int(rows),
        columns=int(columns),
        rle=rle_encode(uncertain),
        mean=round(float(picked.mean()), 4) if picked.size else 0.0,
        max=round(float(picked.max()), 4) if picked.size else 0.0,
        threshold=threshold,
    )
