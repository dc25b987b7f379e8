"""How unsure a model is about each slice: test-time-augmentation entropy (pure, imports torch).

Each slice goes through the network as is and under three flips; the softmax outputs, flipped
back, are averaged, and the normalised entropy of the mean (0: certain, 1: every class equally
likely) is taken per pixel. A slice's score is the mean of its most uncertain ``top_fraction``
of pixels: a whole-image mean would be all background and say nothing. Works with any handler
that has ``preprocess(images) -> tensor`` and ``infer(tensor) -> probabilities`` (N, C, H, W).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

# The flips of a 2-D batch (N, C, H, W): none, left-right, up-down, both.
FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,), (2, 3))


def _flipped(batch: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return torch.flip(batch, dims) if dims else batch


def entropy_maps(handler: Any, batch: torch.Tensor, *, probabilities: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised per-pixel entropy (N, H, W) of the TTA-mean softmax of a pre-processed batch.

    ``probabilities``: the handler's output for ``batch`` as is, when the caller has it already
    (a pre-annotation run); then only the three flips go through the network.
    """
    views: list[torch.Tensor] = []
    for dims in FLIPS:
        if probabilities is not None and not dims:
            views.append(probabilities)
        else:
            views.append(_flipped(handler.infer(_flipped(batch, dims)), dims))
    mean = sum(views) / len(FLIPS)
    assert isinstance(mean, torch.Tensor)
    classes = mean.shape[1]
    entropy = -(mean * torch.log(mean.clamp_min(1e-8))).sum(dim=1)
    return entropy / math.log(classes) if classes > 1 else entropy


def slice_scores(
    handler: Any, images: Sequence[npt.NDArray[Any]], *, batch_size: int = 16, top_fraction: float = 0.01
) -> list[float]:
    """One uncertainty score in [0, 1] per image, in order (images of one batch share a shape)."""
    scores: list[float] = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            maps = entropy_maps(handler, handler.preprocess(images[start : start + batch_size])).flatten(1)
            k = max(1, int(maps.shape[1] * top_fraction))
            scores += maps.topk(k, dim=1).values.mean(dim=1).cpu().tolist()
    return scores


def predict_with_entropy(
    handler: Any, images: Sequence[npt.NDArray[Any]], *, batch_size: int = 16
) -> list[tuple[list[Any], npt.NDArray[np.float32]]]:
    """Per image (all of one shape), in order: the handler's objects and the TTA entropy at the image's size.

    The same batches as ``handler.predict``: the plain forward pass makes the objects and is the
    first of the four TTA views, so the map costs three more passes. The entropy is computed at
    the network's size and resized (bilinear) to the image's.
    """
    out: list[tuple[list[Any], npt.NDArray[np.float32]]] = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            shape = tuple(np.asarray(chunk[0]).shape)
            batch = handler.preprocess(chunk)
            probabilities = handler.infer(batch)
            maps = entropy_maps(handler, batch, probabilities=probabilities)
            full = F.interpolate(maps[:, None].float(), size=shape, mode="bilinear", align_corners=False)[:, 0]
            objects = handler.postprocess(probabilities, shape)
            # In place on the fresh resize, and no astype copy: the maps are float32 already.
            out += zip(objects, full.clamp_(0.0, 1.0).cpu().numpy().astype(np.float32, copy=False), strict=True)
    return out


def series_score(scores: Sequence[float], *, top: int = 3) -> float:
    """A series is as uncertain as its few most uncertain slices (a lesion is on a few slices)."""
    if not scores:
        return 0.0
    best = sorted(scores, reverse=True)[:top]
    return float(sum(best) / len(best))
