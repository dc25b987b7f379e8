"""The pure classification core on synthetic slices: a bright blob means abnormal; AUC, resume, GradCAM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.handlers import handler_class
from inference.handlers.base import ClassifyConfig, EpochReport

torch = pytest.importorskip("torch")

SIZE = 64


def blob_slice(rng: np.random.Generator, *, abnormal: bool, centre: tuple[float, float] | None = None) -> np.ndarray:
    """A noisy lung-like slice; an abnormal one holds a bright disc (soft tissue in air)."""
    image = np.full((SIZE, SIZE), -850.0, dtype=np.float32) + rng.normal(0, 30, (SIZE, SIZE)).astype(np.float32)
    if abnormal:
        cx, cy = centre or (rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75))
        yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= 0.1**2] = 40.0
    return image


def write_slices(root: Path, *, train: int = 48, validation: int = 16) -> None:
    rng = np.random.default_rng(3)
    for split, count in (("train", train), ("validation", validation)):
        (root / split).mkdir(parents=True)
        for n in range(count):
            abnormal = n % 2 == 1
            np.savez(root / split / f"{n:05d}-00000.npz", image=blob_slice(rng, abnormal=abnormal), label=int(abnormal))


CONFIG = ClassifyConfig(label="Finding", classes=("normal", "abnormal"), epochs=3, size=SIZE, learning_rate=1e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, list[EpochReport]]:
    root = tmp_path_factory.mktemp("classify")
    write_slices(root / "data")
    reports: list[EpochReport] = []
    result = handler_class("classification").train(
        root / "data", CONFIG, root / "work", progress=lambda r: reports.append(r) or True
    )
    return root, result, reports


def test_trains_to_a_validation_auc_above_0_9_and_predicts_probabilities(trained: tuple) -> None:
    root, result, reports = trained
    assert [r.epoch for r in reports] == [1, 2, 3] and all(r.auc is not None for r in reports)
    assert result.auc > 0.9 and result.auc == max(r.auc for r in reports) and 0 < result.best_epoch <= 3
    handler = handler_class("classification")(result.weights, CONFIG.to_dict())
    rng = np.random.default_rng(11)
    normal, abnormal = blob_slice(rng, abnormal=False), blob_slice(rng, abnormal=True)
    probabilities = handler.predict([normal, abnormal])
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert probabilities[1, 1] > probabilities[0, 1]
    assert handler.score([abnormal, abnormal]) > handler.score([normal, normal])


def test_series_score_pools_the_positive_class_by_mean_or_max() -> None:
    from inference.handlers.classification import series_score

    slices = np.array([[0.9, 0.1], [0.3, 0.7]], dtype=np.float32)
    assert series_score(slices, positive=1) == pytest.approx(0.4)
    assert series_score(slices, positive=1, pooling="max") == pytest.approx(0.7)
    with pytest.raises(ValueError):
        series_score(np.zeros((0, 2), dtype=np.float32), positive=1)


def test_gradcam_heat_map_peaks_on_the_blob(trained: tuple) -> None:
    _, result, _ = trained
    handler = handler_class("classification")(result.weights, CONFIG.to_dict())
    centre = (0.3, 0.7)  # x, y as fractions: lower left quadrant
    image = blob_slice(np.random.default_rng(5), abnormal=True, centre=centre)
    heat = handler.explain(image)
    assert heat.shape == image.shape and heat.dtype == np.float32
    assert float(heat.min()) == pytest.approx(0.0) and float(heat.max()) == pytest.approx(1.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    blob = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= 0.1**2
    assert heat[blob].mean() > 2 * heat[~blob].mean()
    # DenseNet121's last block sees a 64-pixel slice as 2 x 2 cells: the peak is in the blob's quadrant.
    row, col = np.unravel_index(int(heat.argmax()), heat.shape)
    assert col < SIZE / 2 and row >= SIZE / 2


def test_an_interrupted_training_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    write_slices(tmp_path / "data", train=16, validation=8)
    handler = handler_class("classification")
    config = ClassifyConfig(label="Finding", epochs=2, size=32)

    def crash(report: EpochReport) -> bool:
        raise KeyboardInterrupt("worker lost")  # after epoch 1's checkpoint

    with pytest.raises(KeyboardInterrupt):
        handler.train(tmp_path / "data", config, tmp_path / "work", progress=crash)
    seen: list[int] = []
    result = handler.train(
        tmp_path / "data", config, tmp_path / "work", progress=lambda r: seen.append(r.epoch) or True
    )
    assert result.resumed_from == 1 and seen == [2] and [h["epoch"] for h in result.history] == [1, 2]
