"""Imported models: a TorchScript archive, or a MONAI Bundle (TorchScript or state_dict + network_def).

Pure (no Django); imports torch and MONAI, so only workers import it. The same interface as
:class:`~inference.handlers.segmentation.SegmentationHandler`: load once, then ``predict``.
Nothing is downloaded: the bytes are the stored upload, checked by handlers.artifacts.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from inference.handlers.base import ObjectPrediction
from inference.handlers.segmentation import objects_of, pick_device


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


class TorchScriptHandler:
    """An imported 2-D segmentation network: (N, 1, H, W) in, (N, classes, H, W) logits out.

    ``classes`` is 1 + len(labels) (softmax, background first) or 1 for one label (sigmoid).
    """

    kind = "segmentation"

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
