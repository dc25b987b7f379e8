"""TTA entropy against hand-computed values, with stand-in handlers whose outputs are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inference.handlers.uncertainty import (  # noqa: E402
    entropy_maps,
    predict_with_entropy,
    series_score,
    slice_scores,
)


class Fixed:
    """A handler whose softmax is the same everywhere: ``p`` for class 1, ``1 - p`` for class 0."""

    def __init__(self, p: float) -> None:
        self.p = p

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(images), dtype=torch.float32)[:, None]

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        fg = torch.full_like(batch, self.p)
        return torch.cat([1 - fg, fg], dim=1)


class LeftHalf(Fixed):
    """Certain foreground on the left half of the image it is given: flips move it, TTA disagrees."""

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        fg = torch.zeros_like(batch)
        fg[..., : batch.shape[-1] // 2] = 1.0
        return torch.cat([1 - fg, fg], dim=1)


def binary_entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2)


def test_a_sure_model_scores_zero_and_a_coin_toss_one() -> None:
    images = [np.zeros((8, 8), dtype=np.float32)] * 2
    assert slice_scores(Fixed(0.999999), images) == pytest.approx([0.0, 0.0], abs=1e-4)
    assert slice_scores(Fixed(0.5), images) == pytest.approx([1.0, 1.0])
    assert slice_scores(Fixed(0.9), images)[0] == pytest.approx(binary_entropy(0.9), rel=1e-5)


def test_disagreement_under_flips_is_uncertainty() -> None:
    # Left half foreground as given; flipped left-right it lands on the right half. Averaged over
    # the four flips every pixel is foreground in two views of four: p = 0.5, entropy 1.
    maps = entropy_maps(LeftHalf(0.0), torch.zeros(1, 1, 4, 6))
    assert maps.shape == (1, 4, 6)
    assert torch.allclose(maps, torch.ones_like(maps), atol=1e-5)


def test_a_slice_is_as_uncertain_as_its_most_uncertain_pixels() -> None:
    class Spot(Fixed):
        def infer(self, batch: torch.Tensor) -> torch.Tensor:
            fg = torch.full_like(batch, 1e-6)
            fg[..., 0, 0] = 0.5  # one unsure pixel in a hundred, at a corner every flip keeps unsure
            fg[..., 0, -1] = fg[..., -1, 0] = fg[..., -1, -1] = 0.5
            return torch.cat([1 - fg, fg], dim=1)

    (score,) = slice_scores(Spot(0.0), [np.zeros((20, 20), dtype=np.float32)], top_fraction=0.01)
    assert score == pytest.approx(1.0, abs=1e-3)  # the top 1 % (4 pixels) are the unsure corners


def test_series_score_is_the_mean_of_its_top_slices() -> None:
    assert series_score([0.1, 0.9, 0.5, 0.7]) == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert series_score([]) == 0.0


class Disk(Fixed):
    """A stand-in segmentation handler: preprocess resizes to 8x8, postprocess gives one object."""

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        batch = torch.as_tensor(np.stack(images), dtype=torch.float32)[:, None]
        return torch.nn.functional.interpolate(batch, size=(8, 8), mode="area")

    def postprocess(self, probabilities: torch.Tensor, shape: tuple[int, int]) -> list[list[str]]:
        return [[f"objects {tuple(shape)}"] for _ in range(probabilities.shape[0])]


def test_predict_with_entropy_reuses_the_plain_pass_and_resizes_to_the_slice() -> None:
    calls: list[torch.Tensor] = []

    class Counting(Disk):
        def infer(self, batch: torch.Tensor) -> torch.Tensor:
            calls.append(batch)
            return super().infer(batch)

    images = [np.zeros((16, 24), dtype=np.float32)] * 3
    out = predict_with_entropy(Counting(0.9), images, batch_size=2)
    assert len(calls) == 2 * 4  # two batches, each: the plain pass and three flips
    assert [objects for objects, _ in out] == [["objects (16, 24)"]] * 3
    for _, entropy in out:
        assert entropy.shape == (16, 24) and entropy.dtype == np.float32
        assert np.allclose(entropy, binary_entropy(0.9), atol=1e-5)
    sure = predict_with_entropy(Disk(0.999999), images[:1])
    assert float(sure[0][1].max()) < 1e-3


def test_the_given_plain_pass_is_used_as_the_first_view() -> None:
    batch = torch.zeros(1, 1, 4, 6)
    given = LeftHalf(0.0).infer(batch)
    assert torch.allclose(entropy_maps(LeftHalf(0.0), batch, probabilities=given), entropy_maps(LeftHalf(0.0), batch))
