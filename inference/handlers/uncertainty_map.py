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
from dataclasses import asdict, dataclass
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
        return asdict(self)


def neighbourhood(masks: Sequence[npt.NDArray[np.bool_]], *, margin: int = MARGIN) -> npt.NDArray[np.bool_]:
    """The union of each mask's bounding box dilated by ``margin`` pixels, clipped to the slice."""
    shape = masks[0].shape
    region = np.zeros(shape, dtype=bool)
    for mask in masks:
        rows, cols = np.nonzero(mask)
        if not rows.size:
            continue
        y0, y1 = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, shape[0])
        x0, x1 = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, shape[1])
        region[y0:y1, x0:x1] = True
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
    values = np.clip(np.asarray(entropy, dtype=np.float32), 0.0, 1.0)
    if not masks or values.shape != masks[0].shape:
        raise ValueError("The entropy map and the proposal's masks must have the slice's shape.")
    inside = np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
    uncertain = (values >= threshold) & neighbourhood(masks, margin=margin)
    picked = values[inside]
    rows, columns = values.shape
    return ProposalUncertainty(
        rows=int(rows),
        columns=int(columns),
        rle=rle_encode(uncertain),
        mean=round(float(picked.mean()), 4) if picked.size else 0.0,
        max=round(float(picked.max()), 4) if picked.size else 0.0,
        threshold=threshold,
    )
