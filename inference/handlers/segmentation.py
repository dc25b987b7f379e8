"""2-D segmentation: a MONAI UNet trained with MONAI's engines, run slice by slice in batches.

Pure (no Django); imports torch and MONAI, so only workers import it (through inference.handlers).
Training is a plain function from files and a config (:func:`train`); inference is a handler
loaded once (:class:`SegmentationHandler`: pre-process, infer, post-process).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from ignite.engine import Engine
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import MeanDice, from_engine
from monai.inferers import SimpleInferer, SliceInferer
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    Compose,
    EnsureTyped,
    Lambda,
    RandCropByPosNegLabeld,
    RandFlipd,
    Resized,
    ScaleIntensityRanged,
)
from monai.utils import set_determinism
from scipy import ndimage

from inference.handlers.base import EpochReport, ObjectPrediction, Progress, TrainConfig, TrainResult
from inference.handlers.harness import (  # noqa: F401  # re-exported: callers import them from here
    Scoring,
    harness_run,
    last_checkpoint,
    load_weights,
    pick_device,
    weights_bytes,
)


def build_network(config: TrainConfig) -> torch.nn.Module:
    channels = tuple(config.channels)
    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=1 + len(config.labels),
        channels=channels,
        strides=(2,) * (len(channels) - 1),
        num_res_units=2,
    )


def _volumes(folder: Path) -> list[dict[str, Any]]:
    """The folder's slices stacked per volume (files ``<volume>-<slice>.npz``): (1, rows, columns, slices)."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.npz")):
        groups.setdefault(path.stem.split("-")[0], []).append(path)
    volumes = []
    for paths in groups.values():
        images, labels = [], []
        for path in paths:
            with np.load(path) as data:
                images.append(data["image"].astype(np.float32))
                labels.append(data["label"].astype(np.float32))
        volumes.append({"image": np.stack(images, axis=-1)[None], "label": np.stack(labels, axis=-1)[None]})
    return volumes


def _slices(volumes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"image": v["image"][..., k], "label": v["label"][..., k]} for v in volumes for k in range(v["image"].shape[-1])
    ]


def _window(config: TrainConfig) -> list[ScaleIntensityRanged]:
    if config.window is None:  # an imported model that takes the modality's own units
        return []
    low, high = config.window
    return [ScaleIntensityRanged("image", a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)]


def _train_transform(config: TrainConfig) -> Compose:
    """Slices resized to ``size`` and flipped; with ``crop``, foreground sampling (half the crops on a lesion)."""
    sampling: list[Any] = []
    if 0 < config.crop < config.size:
        sampling.append(
            RandCropByPosNegLabeld(
                ["image", "label"],
                label_key="label",
                spatial_size=(config.crop, config.crop),
                pos=1,
                neg=1,
                num_samples=2,
            )
        )
    return Compose(
        [
            *_window(config),
            Resized(["image", "label"], spatial_size=(config.size, config.size), mode=("area", "nearest-exact")),
            *sampling,
            RandFlipd(["image", "label"], prob=0.5, spatial_axis=0),
            RandFlipd(["image", "label"], prob=0.5, spatial_axis=1),
            EnsureTyped(["image", "label"], dtype=torch.float32, track_meta=False),
        ]
    )


def _validation_transform(config: TrainConfig) -> Compose:
    """Whole volumes; only the image is resized (in-plane): the label stays as stored, to be scored as is."""
    return Compose(
        [
            *_window(config),
            Resized("image", spatial_size=(config.size, config.size, -1), mode="area"),
            EnsureTyped(["image", "label"], dtype=torch.float32, track_meta=False),
        ]
    )


def _pred_to_label_shape(item: dict[str, Any]) -> dict[str, Any]:
    """The probabilities (classes, size, size, slices) resized back to the stored label's grid."""
    shape = tuple(item["label"].shape[1:])
    if tuple(item["pred"].shape[1:]) != shape:
        item["pred"] = F.interpolate(item["pred"][None], size=shape, mode="trilinear", align_corners=False)[0]
    return item


def train(
    data_dir: Path,
    config: TrainConfig,
    work_dir: Path,
    *,
    parent_weights: bytes | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train on ``data_dir/train``, validate on ``data_dir/validation`` (see handlers.base for the files).

    MONAI's SupervisedTrainer and SupervisedEvaluator with its handlers: validation after every
    epoch (mean Dice over the labels, background excluded), a checkpoint of network, optimizer and
    trainer after every epoch in ``work_dir/checkpoints`` (a later call with the same ``work_dir``
    resumes from the newest one), early stopping when ``config.patience`` is set. ``parent_weights``
    (fine-tuning) are loaded before the first epoch. ``progress`` returning False stops (cancel).
    Returns the best epoch's weights.
    """
    set_determinism(config.seed)
    network = build_network(config)
    if parent_weights is not None:
        load_weights(network, parent_weights)
    return train_network(network, data_dir, config, work_dir, progress=progress)


def train_network(
    network: torch.nn.Module,
    data_dir: Path,
    config: TrainConfig,
    work_dir: Path,
    *,
    progress: Progress | None = None,
) -> TrainResult:
    """As :func:`train`, for a network built (and its weights loaded) by the caller: an imported one too.

    ``network`` takes (N, 1, size, size) and gives (N, 1 + len(labels), size, size) logits; only its
    parameters that require a gradient are trained. The caller seeds (``set_determinism``) first.
    """
    device = pick_device()
    amp = device.type == "cuda"
    train_items, validation_items = _slices(_volumes(data_dir / "train")), _volumes(data_dir / "validation")
    if not train_items or not validation_items:
        raise ValueError("Training needs slices in both the train and the validation split.")
    network = network.to(device)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.learning_rate)
    classes = 1 + len(config.labels)
    train_loader = DataLoader(
        Dataset(train_items, transform=_train_transform(config)),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    # One volume per batch: slices through the 2-D network (SliceInferer), Dice over each 3-D volume.
    validation_loader = DataLoader(Dataset(validation_items, transform=_validation_transform(config)), batch_size=1)
    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=validation_loader,
        network=network,
        inferer=SliceInferer(roi_size=(config.size, config.size), spatial_dim=2, sw_batch_size=config.batch_size),
        postprocessing=Compose(
            [
                Activationsd("pred", softmax=True),
                Lambda(_pred_to_label_shape),
                AsDiscreted(["pred", "label"], argmax=(True, False), to_onehot=classes),
            ]
        ),
        key_val_metric={
            "val_dice": MeanDice(
                include_background=False, output_transform=from_engine(["pred", "label"]), save_details=True
            )
        },
        amp=amp,
    )
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=config.epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        # batch=True: Dice over the whole batch, so crops without lesion do not each count as 0 or 1.
        loss_function=DiceCELoss(to_onehot_y=True, softmax=True, batch=True),
        inferer=SimpleInferer(),
        amp=amp,
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    run = harness_run(
        trainer=trainer,
        evaluator=evaluator,
        network=network,
        optimizer=optimizer,
        work_dir=work_dir,
        scoring=_SCORING,
        patience=config.patience,
        device=device,
        schedule=schedule,
        progress=progress,
    )
    return TrainResult(
        weights=run.weights,
        dice=run.score,
        epochs_run=run.epochs_run,
        best_epoch=run.best_epoch,
        resumed_from=run.resumed_from,
        history=run.history,
    )


def _per_label(evaluator: Engine) -> dict[str, Any]:
    """Validation Dice per label: the mean over the volumes that show it (0.0 when none does)."""
    details = getattr(evaluator.state, "metric_details", {}).get("val_dice")
    if details is None:
        return {"per_label": []}
    means = torch.nanmean(torch.as_tensor(details, dtype=torch.float32), dim=0)
    return {"per_label": [0.0 if np.isnan(v) else float(v) for v in means.tolist()]}


_SCORING = Scoring(
    engine_metric="val_dice",
    name="dice",
    report=lambda epoch, epochs, loss, dice: EpochReport(epoch=epoch, epochs=epochs, loss=loss, dice=dice),
    details=_per_label,
)


# A label whose probability stays this far below the background's on every pixel of the network's
# grid wins nowhere after the bilinear resize (each resized pixel is a convex combination of grid
# pixels; float32 rounding is ~1e-7), so a slice, or a part of one, where every label does is left
# out of the resize.
EMPTY_MARGIN = 1e-3


def _class_map(probabilities: torch.Tensor, *, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """``probabilities.argmax(dim=1)`` (first maximum wins), one class at a time: on the CPU torch's
    argmax over the channel axis of a (N, C, 512, 512) tensor takes ~40 ms a slice, this ~1 ms."""
    best = probabilities[:, 0]
    classes = torch.zeros(best.shape, dtype=dtype, device=probabilities.device)
    for index in range(1, probabilities.shape[1]):
        current = probabilities[:, index]
        classes.masked_fill_(current > best, index)
        if index + 1 < probabilities.shape[1]:
            best = torch.maximum(best, current)
    return classes


def _slice_objects(
    probs: npt.NDArray[np.float32],
    classes: npt.NDArray[Any],
    labels: Sequence[str],
    shape: tuple[int, int],
    offset: tuple[int, int] = (0, 0),
) -> list[ObjectPrediction]:
    """One slice's objects: connected components of each label, found in the label's bounding
    rectangle only (the same components, numbered in the same raster order as over the whole
    slice), each scored by its mean probability as ``ndimage.mean`` sums it (bincount, raster order).

    ``probs`` and ``classes`` may cover only the rectangle of the slice (of ``shape``) that starts
    at ``offset``, when no label can win outside it; the masks are of the whole slice.
    """
    oy, ox = offset
    objects = []
    for index, name in enumerate(labels, start=1):
        found = classes == index
        rows = np.flatnonzero(found.any(axis=1))
        if not rows.size:
            continue
        cols = np.flatnonzero(found.any(axis=0))
        y0, x0 = int(rows[0]), int(cols[0])
        crop = (slice(y0, int(rows[-1]) + 1), slice(x0, int(cols[-1]) + 1))
        components, count = ndimage.label(found[crop])
        on = components > 0
        numbers = components[on]
        counts = np.bincount(numbers, minlength=count + 1).astype(np.float64)
        sums = np.bincount(numbers, weights=probs[index][crop][on], minlength=count + 1)
        y0, x0 = y0 + oy, x0 + ox
        for n, box in enumerate(ndimage.find_objects(components), start=1):
            if box is None:
                continue
            mask = np.zeros(shape, dtype=bool)
            mask[box[0].start + y0 : box[0].stop + y0, box[1].start + x0 : box[1].stop + x0] = components[box] == n
            objects.append(ObjectPrediction(label=name, mask=mask, score=float(sums[n] / counts[n])))
    return objects


def _near_boxes(probabilities: torch.Tensor) -> list[tuple[int, int, int, int] | None]:
    """Per slice, the rectangle (rows r0:r1, columns c0:c1) of the network's grid outside which
    no label comes within ``EMPTY_MARGIN`` of the background, grown by one pixel (a resized pixel
    mixes its grid pixel's neighbours); None where no label comes near anywhere."""
    near = (probabilities[:, 1:] - probabilities[:, :1]).amax(dim=1) > -EMPTY_MARGIN
    rows, cols = near.any(dim=2), near.any(dim=1)
    height, width = near.shape[1:]
    out: list[tuple[int, int, int, int] | None] = []
    for on_rows, on_cols in zip(rows.cpu().numpy(), cols.cpu().numpy(), strict=True):
        r, c = np.flatnonzero(on_rows), np.flatnonzero(on_cols)
        if not r.size:
            out.append(None)
            continue
        out.append(
            (max(int(r[0]) - 1, 0), min(int(r[-1]) + 2, height), max(int(c[0]) - 1, 0), min(int(c[-1]) + 2, width))
        )
    return out


def _resized_box(
    probabilities: torch.Tensor, box: tuple[int, int, int, int], factor: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]]:
    """The bilinear resize (align_corners=False) of one slice (C, h, w) by ``factor``s that are
    powers of two, on the output rectangle over the grid's ``box`` only, and that rectangle's offset.

    Resized from the box and one more grid pixel each side, then trimmed: the kept pixels are the
    whole slice's, from the same grid pixels with the same weights (a power of two's reciprocal
    and every source coordinate are exact in float32); torch may order the sums differently, a
    float32 rounding apart. Clamping at the grid's edges happens only where the box touches them,
    as it does over the whole slice.
    """
    r0, r1, c0, c1 = box
    ky, kx = factor
    h, w = probabilities.shape[1:]
    s0, s1, t0, t1 = max(r0 - 1, 0), min(r1 + 1, h), max(c0 - 1, 0), min(c1 + 1, w)
    part = probabilities[None, :, s0:s1, t0:t1]
    resized = F.interpolate(part, size=((s1 - s0) * ky, (t1 - t0) * kx), mode="bilinear", align_corners=False)[0]
    kept = resized[:, (r0 - s0) * ky : (r1 - s0) * ky, (c0 - t0) * kx : (c1 - t0) * kx]
    return kept, (r0 * ky, c0 * kx)


def objects_of(
    probabilities: torch.Tensor, shape: tuple[int, int], labels: Sequence[str]
) -> list[list[ObjectPrediction]]:
    """Per slice, one object per connected component of each label, scored by its mean probability.

    ``probabilities`` is (slices, 1 + len(labels), rows, columns), background first; resized to ``shape``.
    Slices on which no label comes near the background's probability (``EMPTY_MARGIN``) have no
    object and are not resized. When ``shape`` is the grid's times powers of two (a 128 grid for
    512x512 or 256x256 slices), only the rectangle of the grid where a label comes near is resized
    (:func:`_resized_box`): every other pixel of the slice is background. Components are found
    once per label and measured together, in the label's bounding rectangle, so a slice costs
    about its objects' area, not its own.
    """
    out: list[list[ObjectPrediction]] = [[] for _ in range(probabilities.shape[0])]
    near = {slot: box for slot, box in enumerate(_near_boxes(probabilities)) if box is not None}
    if not near:
        return out
    dtype = torch.uint8 if probabilities.shape[1] <= 256 else torch.int64
    grid = probabilities.shape[2:]
    factor = (shape[0] // grid[0], shape[1] // grid[1])
    if all(size == k * g and k & (k - 1) == 0 for size, k, g in zip(shape, factor, grid, strict=True)):
        for slot, box in near.items():
            resized, offset = _resized_box(probabilities[slot], box, factor)
            classes = _class_map(resized[None], dtype=dtype)[0].cpu().numpy()
            out[slot] = _slice_objects(resized.cpu().numpy(), classes, labels, shape, offset)
        return out
    keep = list(near)
    chosen = probabilities if len(keep) == probabilities.shape[0] else probabilities[keep]
    full = F.interpolate(chosen, size=shape, mode="bilinear", align_corners=False)
    classes_all = _class_map(full, dtype=dtype).cpu().numpy()
    probs_all = full.cpu().numpy()
    for slot, probs, classes in zip(keep, probs_all, classes_all, strict=True):
        out[slot] = _slice_objects(probs, classes, labels, shape)
    return out


class SegmentationHandler:
    """Load once; then :meth:`predict` slices: pre-process, infer (batched, AMP on a GPU), post-process."""

    kind = "segmentation"
    train = staticmethod(train)

    def __init__(self, weights: bytes, config: dict[str, Any], *, device: torch.device | None = None) -> None:
        self.config = TrainConfig.from_dict(config)
        self.device = device or pick_device()
        network = build_network(self.config)
        load_weights(network, weights)
        self.network = network.to(self.device).eval()

    def preprocess(self, images: Sequence[npt.NDArray[Any]]) -> torch.Tensor:
        low, high = self.config.window or (0.0, 1.0)  # trained in the app: always a window
        batch = torch.as_tensor(np.stack([np.asarray(one, dtype=np.float32) for one in images]))[:, None]
        # In place, on the fresh stack: the same values as (clamp - low) / width, without two more
        # batch-sized tensors.
        batch = batch.clamp_(low, high).sub_(low).div_(high - low).to(self.device)
        size = self.config.size
        return F.interpolate(batch, size=(size, size), mode="area")

    @torch.no_grad()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device.type, enabled=self.device.type == "cuda"):
            return torch.softmax(self.network(batch).float(), dim=1)

    def postprocess(self, probabilities: torch.Tensor, shape: tuple[int, int]) -> list[list[ObjectPrediction]]:
        return objects_of(probabilities, shape, self.config.labels)

    def predict(self, images: Sequence[npt.NDArray[Any]], *, batch_size: int = 16) -> list[list[ObjectPrediction]]:
        """The objects found on each image (all the same shape), in order."""
        results: list[list[ObjectPrediction]] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            shape = tuple(np.asarray(chunk[0]).shape)
            results += self.postprocess(self.infer(self.preprocess(chunk)), shape)  # type: ignore[arg-type]
        return results

    def predict_with_uncertainty(
        self, images: Sequence[npt.NDArray[Any]], *, batch_size: int = 16
    ) -> list[tuple[list[ObjectPrediction], npt.NDArray[np.float32]]]:
        """As :meth:`predict`, with each image's TTA entropy map at its size (three more passes per batch)."""
        from inference.handlers.uncertainty import predict_with_entropy

        return predict_with_entropy(self, images, batch_size=batch_size)
