"""Image and series classification: a MONAI DenseNet121 on slices, trained with MONAI's engines.

Pure (no Django); imports torch and MONAI, so only workers import it (through inference.handlers).
Training is a plain function from files and a config (:func:`train`, files as in handlers.base:
``label`` is the slice's class index); inference is a handler loaded once
(:class:`ClassificationHandler`): class probabilities per slice, a series' score pooled from its
slices, and a GradCAM heat map (:meth:`ClassificationHandler.explain`) for the reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ROCAUC, from_engine
from monai.inferers import SimpleInferer
from monai.networks.nets import DenseNet121
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    Compose,
    EnsureTyped,
    RandFlipd,
    Resized,
    ScaleIntensityRanged,
)
from monai.utils import set_determinism
from monai.visualize import GradCAM

from inference.handlers.base import ClassifyConfig, ClassifyResult, EpochReport, Progress
from inference.handlers.harness import Scoring, harness_run, load_weights, pick_device


def build_network(config: ClassifyConfig) -> torch.nn.Module:
    if config.network != "densenet121":
        raise ValueError(f"Unknown classification network {config.network!r}; the app trains 'densenet121'.")
    return DenseNet121(spatial_dims=2, in_channels=1, out_channels=len(config.classes))


def _items(folder: Path) -> list[dict[str, Any]]:
    items = []
    for path in sorted(folder.glob("*.npz")):
        with np.load(path) as data:
            image = data["image"].astype(np.float32)[None]
            items.append({"image": image, "label": np.asarray([int(data["label"])], dtype=np.int64)})
    return items


def _transform(config: ClassifyConfig, *, train: bool) -> Compose:
    low, high = config.window
    flips = [RandFlipd("image", prob=0.5, spatial_axis=a) for a in (0, 1)] if train else []
    return Compose(
        [
            ScaleIntensityRanged("image", a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True),
            Resized("image", spatial_size=(config.size, config.size), mode="area"),
            *flips,
            EnsureTyped("image", dtype=torch.float32, track_meta=False),
            EnsureTyped("label", dtype=torch.int64, track_meta=False),
        ]
    )


class _CrossEntropy(torch.nn.Module):
    """Cross-entropy against labels batched as (N, 1) (one channel per item, as MONAI's transforms keep them)."""

    def __init__(self) -> None:
        super().__init__()
        self.loss = torch.nn.CrossEntropyLoss()

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, label.reshape(-1).long())  # type: ignore[no-any-return]


def train(
    data_dir: Path,
    config: ClassifyConfig,
    work_dir: Path,
    *,
    parent_weights: bytes | None = None,
    progress: Progress | None = None,
) -> ClassifyResult:
    """Train on ``data_dir/train``, validate on ``data_dir/validation``; as segmentation.train, scored by AUC.

    MONAI's SupervisedTrainer and SupervisedEvaluator: validation AUC (ROCAUC handler, over slices)
    after every epoch, a checkpoint after every epoch in ``work_dir/checkpoints`` (a later call with
    the same ``work_dir`` resumes from it), early stopping when ``config.patience`` is set.
    ``progress`` returning False stops (cancel). Returns the best epoch's weights.
    """
    set_determinism(config.seed)
    device = pick_device()
    amp = device.type == "cuda"
    train_items, validation_items = _items(data_dir / "train"), _items(data_dir / "validation")
    if not train_items or not validation_items:
        raise ValueError("Training needs slices in both the train and the validation split.")
    network = build_network(config)
    if parent_weights is not None:
        load_weights(network, parent_weights)
    network = network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    classes = len(config.classes)
    train_loader = DataLoader(
        Dataset(train_items, transform=_transform(config, train=True)),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    validation_loader = DataLoader(
        Dataset(validation_items, transform=_transform(config, train=False)), batch_size=config.batch_size
    )
    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=validation_loader,
        network=network,
        inferer=SimpleInferer(),
        postprocessing=Compose(
            [Activationsd("pred", softmax=True), AsDiscreted("label", to_onehot=classes)]  # type: ignore[arg-type]
        ),
        key_val_metric={"val_auc": ROCAUC(output_transform=from_engine(["pred", "label"]))},
        amp=amp,
    )
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=config.epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=_CrossEntropy(),
        inferer=SimpleInferer(),
        amp=amp,
    )
    run = harness_run(
        trainer=trainer,
        evaluator=evaluator,
        network=network,
        optimizer=optimizer,
        work_dir=work_dir,
        scoring=_SCORING,
        patience=config.patience,
        device=device,
        progress=progress,
    )
    return ClassifyResult(
        weights=run.weights,
        auc=float(max(run.score, 0.0)),
        epochs_run=run.epochs_run,
        best_epoch=run.best_epoch,
        resumed_from=run.resumed_from,
        history=run.history,
    )


# The chart's 0..1 line ("dice") is a classifier's validation AUC, also reported as such.
_SCORING = Scoring(
    engine_metric="val_auc",
    name="auc",
    report=lambda epoch, epochs, loss, auc: EpochReport(epoch=epoch, epochs=epochs, loss=loss, dice=auc, auc=auc),
)


def series_score(probabilities: npt.NDArray[np.float32], *, positive: int, pooling: str = "mean") -> float:
    """A series' score from its slices' class probabilities (slices x classes): mean or max of the positive class."""
    if len(probabilities) == 0:
        raise ValueError("A series score needs at least one slice.")
    column = np.asarray(probabilities)[:, positive]
    return float(column.max() if pooling == "max" else column.mean())


def _normalise(heat: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    low, high = float(heat.min()), float(heat.max())
    if high - low <= 1e-12:
        return np.zeros_like(heat, dtype=np.float32)
    return ((heat - low) / (high - low)).astype(np.float32)


class ClassificationHandler:
    """Load once; :meth:`predict` slices' class probabilities, :meth:`score` a series, :meth:`explain` one slice."""

    kind = "classification"
    train = staticmethod(train)

    def __init__(self, weights: bytes, config: dict[str, Any], *, device: torch.device | None = None) -> None:
        self.config = ClassifyConfig.from_dict(config)
        self.device = device or pick_device()
        network = build_network(self.config)
        load_weights(network, weights)
        self.network = network.to(self.device).eval()

    def preprocess(self, images: Sequence[npt.NDArray[Any]]) -> torch.Tensor:
        low, high = self.config.window
        batch = torch.as_tensor(np.stack([np.asarray(one, dtype=np.float32) for one in images]))[:, None]
        batch = ((batch.clamp(low, high) - low) / (high - low)).to(self.device)
        return F.interpolate(batch, size=(self.config.size, self.config.size), mode="area")

    @torch.no_grad()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device.type, enabled=self.device.type == "cuda"):
            return torch.softmax(self.network(batch).float(), dim=1)

    def predict(self, images: Sequence[npt.NDArray[Any]], *, batch_size: int = 32) -> npt.NDArray[np.float32]:
        """Class probabilities per image (images x classes, in ``config.classes`` order)."""
        out = [
            self.infer(self.preprocess(images[start : start + batch_size])).cpu().numpy()
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(self.config.classes)), np.float32)

    def score(self, images: Sequence[npt.NDArray[Any]]) -> float:
        """The series' probability of the positive class, pooled over its slices (``config.pooling``)."""
        return series_score(self.predict(images), positive=self.config.positive_index, pooling=self.config.pooling)

    def explain(self, image: npt.NDArray[Any], *, class_index: int | None = None) -> npt.NDArray[np.float32]:
        """GradCAM of ``class_index`` (default: the positive class) on one slice: rows x columns, in [0, 1]."""
        cam = GradCAM(nn_module=self.network, target_layers=self.config.target_layer)
        batch = self.preprocess([image]).requires_grad_(True)
        index = self.config.positive_index if class_index is None else class_index
        with torch.enable_grad():
            # The raw map at the layer's resolution: CAM's own call normalises max to 0 (for a reversed colormap).
            heat = cam.compute_map(batch, class_idx=index, layer_idx=-1)
        full = F.interpolate(heat.detach().float(), size=tuple(np.asarray(image).shape), mode="bilinear")
        return _normalise(full[0, 0].cpu().numpy())
