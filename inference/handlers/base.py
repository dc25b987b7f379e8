"""The typed boundary of the inference core: configs, results and predictions. Imports no torch.

Training data on disk (what the worker writes from a frozen dataset version, and what a handler
trains from): ``<root>/train/*.npz`` and ``<root>/validation/*.npz``, one slice per file named
``<volume>-<slice>.npz`` (validation scores Dice per volume; a name without ``-`` is a volume of
its own), each with ``image`` (rows x columns, float32, modality units) and ``label`` (rows x
columns, uint8: 0 background, n the n-th of ``TrainConfig.labels``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights besides the data (and the parent's weights)."""

    labels: tuple[str, ...]
    epochs: int = 25
    size: int = 128  # slices are resized to size x size pixels (the demo's 64-pixel lesions need the upsampling)
    crop: int = 96  # 0 (or >= size): whole slices; else crops of crop x crop pixels, half centred on a label
    # intensity window, modality units (CT: HU); None only for an imported model that takes raw units
    window: tuple[float, float] | None = (-1000.0, 400.0)
    batch_size: int = 8
    learning_rate: float = 3e-3
    seed: int = 0
    channels: tuple[int, ...] = (16, 32, 64, 128)
    patience: int = 0  # early stopping after this many epochs without a better validation Dice; 0: never
    network: str = "unet"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        for name in ("labels", "window", "channels"):
            if known.get(name) is not None:
                known[name] = tuple(known[name])
        return cls(**known)


class UntrainableModel(ValueError):
    """An imported model that cannot be fine-tuned here (no trainable parameters, outputs that do not fit)."""


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    epochs: int
    loss: float
    dice: float  # segmentation: validation Dice; classification: its validation AUC (the chart's 0..1 line)
    auc: float | None = None  # classification only


# Called after each epoch (and its checkpoint); returning False stops the training (cancel).
Progress = Callable[[EpochReport], bool]


@dataclass(frozen=True)
class TrainResult:
    weights: bytes  # the best epoch's state_dict, torch.save'd
    dice: float  # its validation Dice (mean over validation slices that show a label)
    epochs_run: int  # the last epoch reached (counting epochs before a resume)
    best_epoch: int
    resumed_from: int  # 0 when the training started afresh
    history: list[dict[str, Any]] = field(default_factory=list)  # {"epoch", "loss", "dice", "per_label"}


@dataclass(frozen=True)
class ClassifyConfig:
    """A classifier's config: one classification label of the schema and its classes (choices), in order.

    Training files (as for segmentation, ``<volume>-<slice>.npz`` under train/ and validation/) hold
    ``image`` (rows x columns, float32) and ``label``: the slice's class, an integer index into ``classes``.
    """

    label: str
    classes: tuple[str, ...] = ("normal", "abnormal")
    positive: str = ""  # the class whose probability is the triage score; "": the last class
    epochs: int = 10
    size: int = 64  # slices are resized to size x size pixels
    window: tuple[float, float] = (-1000.0, 400.0)
    batch_size: int = 16
    learning_rate: float = 1e-3
    seed: int = 0
    patience: int = 0  # early stopping after this many epochs without a better validation AUC; 0: never
    network: str = "densenet121"
    pooling: str = "mean"  # a series' score from its slices' scores: "mean" or "max"
    target_layer: str = "class_layers.relu"  # GradCAM's layer: after DenseNet121's last dense block

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label,)

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.positive) if self.positive else len(self.classes) - 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ClassifyConfig:
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        for name in ("classes", "window"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)


@dataclass(frozen=True)
class ClassifyResult:
    weights: bytes  # the best epoch's state_dict, torch.save'd
    auc: float  # its validation AUC over slices (macro over the classes, one against the rest)
    epochs_run: int
    best_epoch: int
    resumed_from: int
    history: list[dict[str, Any]] = field(default_factory=list)  # {"epoch", "loss", "auc"}


@dataclass(frozen=True, eq=False)
class ObjectPrediction:
    """One object a model found on one slice: a mask (rows x columns) of one label, and its score."""

    label: str
    mask: npt.NDArray[np.bool_]
    score: float  # mean foreground probability inside the mask

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the mask's bounding box, in pixels."""
        # Row and column projections: no index array of every pixel as np.nonzero makes.
        rows, cols = np.flatnonzero(self.mask.any(axis=1)), np.flatnonzero(self.mask.any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
