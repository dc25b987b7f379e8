"""Imported models: a TorchScript archive, or a MONAI Bundle (TorchScript or state_dict + network_def).

Pure (no Django); imports torch and MONAI, so only workers import it. The same interface as
:class:`~inference.handlers.segmentation.SegmentationHandler`: load once, then ``predict``.
Nothing is downloaded: the bytes are the stored upload, checked by handlers.artifacts.
:func:`train` fine-tunes one with the same MONAI harness as a U-Net trained in the app, and
stores the result in the parent's format (so this handler runs the child as it ran the parent).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from monai.utils import set_determinism

from inference.handlers.artifacts import UNTRAINABLE
from inference.handlers.base import ObjectPrediction, Progress, TrainConfig, TrainResult, UntrainableModel
from inference.handlers.segmentation import load_weights, objects_of, pick_device, train_network


def load_module(weights: bytes, config: dict[str, Any], device: torch.device) -> torch.nn.Module:
    """The network of a stored upload, on ``device``, in eval mode."""
    if config.get("format") != "monai_bundle":
        return torch.jit.load(io.BytesIO(weights), map_location=device).eval()
    root = str(config.get("root", ""))
    with zipfile.ZipFile(io.BytesIO(weights)) as archive:
        names = archive.namelist()
        if root + "models/model.ts" in names:
            return torch.jit.load(io.BytesIO(archive.read(root + "models/model.ts")), map_location=device).eval()
        state = torch.load(io.BytesIO(archive.read(root + "models/model.pt")), map_location="cpu", weights_only=True)
    from monai.networks import nets

    network_def = dict(config["network_def"])
    network: torch.nn.Module = getattr(nets, network_def.pop("_target_"))(**network_def)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # MONAI's CheckpointSaver layout
    network.load_state_dict(state)
    return network.to(device).eval()


class _Logits(torch.nn.Module):
    """The imported network as the harness trains it: (N, 1 + labels, H, W) logits, background first.

    A tuple output (deep supervision) gives its first item; one sigmoid channel for one label
    becomes the two logits (0, x), whose softmax is (1 - sigmoid(x), sigmoid(x)), as the handler reads it.
    """

    def __init__(self, module: torch.nn.Module, labels: int) -> None:
        super().__init__()
        self.module, self.labels = module, labels

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        output = self.module(batch)
        if isinstance(output, (tuple, list)):
            output = output[0]
        if output.shape[1] == 1 and self.labels == 1:
            return torch.cat([torch.zeros_like(output), output], dim=1)
        return output  # type: ignore[no-any-return]


def _trainable(module: torch.nn.Module, config: TrainConfig) -> _Logits:
    """``module`` wrapped for training, once checked: it has parameters to train and fitting outputs."""
    if not any(p.requires_grad and p.is_floating_point() for p in module.parameters()):
        raise UntrainableModel(UNTRAINABLE)
    network = _Logits(module, len(config.labels))
    with torch.no_grad():
        channels = int(network.eval()(torch.zeros(1, 1, config.size, config.size)).shape[1])
    if channels != 1 + len(config.labels):
        raise UntrainableModel(
            f"The imported model gives {channels} output channels; fine-tuning on {len(config.labels)} label(s) "
            f"needs {1 + len(config.labels)} (background first) or 1 for a single label."
        )
    return network


def train(
    data_dir: Path,
    config: TrainConfig,
    work_dir: Path,
    *,
    parent_weights: bytes,
    artifact: dict[str, Any],
    progress: Progress | None = None,
) -> TrainResult:
    """Fine-tune the imported model in ``parent_weights`` (its stored file; ``artifact`` its format fields).

    As segmentation.train (MONAI's SupervisedTrainer, per-epoch validation and checkpoints, resume,
    early stopping), on whole slices at the parent's size and window. The result's ``weights`` are a
    file in the parent's format: TorchScript (torch.jit.save of the trained module), or the bundle
    zip with its models/model.ts or models/model.pt replaced. Raises UntrainableModel.
    """
    set_determinism(config.seed)
    module = load_module(parent_weights, artifact, torch.device("cpu"))
    network = _trainable(module, config)
    result = train_network(network, data_dir, config, work_dir, progress=progress)
    load_weights(network, result.weights)
    return TrainResult(
        weights=artifact_bytes(parent_weights, artifact, network.module.cpu().eval()),
        dice=result.dice,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        resumed_from=result.resumed_from,
        history=result.history,
    )


def artifact_bytes(parent: bytes, artifact: dict[str, Any], module: torch.nn.Module) -> bytes:
    """``module`` stored as ``parent`` was: a TorchScript file, or the parent's bundle zip with its model replaced."""
    if artifact.get("format") != "monai_bundle":
        return _script_bytes(module)
    root = str(artifact.get("root", ""))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(parent)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == root + "models/model.ts":
                data = _script_bytes(module)
            elif info.filename == root + "models/model.pt":
                state = io.BytesIO()
                torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, state)
                data = state.getvalue()
            target.writestr(info, data)  # the member's own date: equal weights give equal bytes
    return out.getvalue()


def _script_bytes(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)  # type: ignore[no-untyped-call]
    return buffer.getvalue()


class TorchScriptHandler:
    """An imported 2-D segmentation network: (N, 1, H, W) in, (N, classes, H, W) logits out.

    ``classes`` is 1 + len(labels) (softmax, background first) or 1 for one label (sigmoid).
    """

    kind = "segmentation"
    train = staticmethod(train)

    def __init__(self, weights: bytes, config: dict[str, Any], *, device: torch.device | None = None) -> None:
        self.config = config
        self.labels: list[str] = list(config["labels"])
        self.window = tuple(config["window"]) if config.get("window") else None
        self.size = int(config["size"]) if config.get("size") else None
        self.device = device or pick_device()
        self.network = load_module(weights, config, self.device)

    def preprocess(self, images: Sequence[npt.NDArray[Any]]) -> torch.Tensor:
        batch = torch.as_tensor(np.stack([np.asarray(one, dtype=np.float32) for one in images]))[:, None]
        if self.window is not None:
            low, high = self.window
            batch = (batch.clamp(low, high) - low) / (high - low)
        batch = batch.to(self.device)
        if self.size is not None and tuple(batch.shape[2:]) != (self.size, self.size):
            batch = F.interpolate(batch, size=(self.size, self.size), mode="area")
        return batch

    @torch.no_grad()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        output = self.network(batch)
        if isinstance(output, (tuple, list)):
            output = output[0]
        logits = output.float()
        if logits.shape[1] == 1 + len(self.labels):
            return torch.softmax(logits, dim=1)
        if logits.shape[1] == 1 and len(self.labels) == 1:
            foreground = torch.sigmoid(logits)
            return torch.cat([1 - foreground, foreground], dim=1)
        raise ValueError(
            f"The model gives {logits.shape[1]} output channels; {len(self.labels)} labels need "
            f"{1 + len(self.labels)} (background first) or 1 for a single label."
        )

    def predict(self, images: Sequence[npt.NDArray[Any]], *, batch_size: int = 16) -> list[list[ObjectPrediction]]:
        """The objects found on each image (all the same shape), in order."""
        results: list[list[ObjectPrediction]] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            shape = (int(np.asarray(chunk[0]).shape[0]), int(np.asarray(chunk[0]).shape[1]))
            results += objects_of(self.infer(self.preprocess(chunk)), shape, self.labels)
        return results
