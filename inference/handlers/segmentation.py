"""2-D segmentation: a MONAI UNet trained with MONAI's engines, run slice by slice in batches.

Pure (no Django); imports torch and MONAI, so only workers import it (through inference.handlers).
Training is a plain function from files and a config (:func:`train`); inference is a handler
loaded once (:class:`SegmentationHandler`: pre-process, infer, post-process).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import (
    CheckpointLoader,
    CheckpointSaver,
    EarlyStopHandler,
    LrScheduleHandler,
    MeanDice,
    StatsHandler,
    ValidationHandler,
    from_engine,
    stopping_fn_from_metric,
)
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

_CHECKPOINT = re.compile(r"epoch=(\d+)\.pt$")


def pick_device() -> torch.device:
    """The GPU when the worker has one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def weights_bytes(network: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, buffer)
    return buffer.getvalue()


def load_weights(network: torch.nn.Module, weights: bytes) -> None:
    network.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))


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


def _window(config: TrainConfig) -> ScaleIntensityRanged:
    low, high = config.window
    return ScaleIntensityRanged("image", a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)


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
            _window(config),
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
            _window(config),
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


def last_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The newest per-epoch checkpoint CheckpointSaver left in ``folder`` and its epoch, if any."""
    found = [(int(m.group(1)), p) for p in folder.glob("*.pt") if (m := _CHECKPOINT.search(p.name))]
    if not found:
        return None
    epoch, path = max(found)
    return path, epoch


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
    device = pick_device()
    amp = device.type == "cuda"
    train_items, validation_items = _slices(_volumes(data_dir / "train")), _volumes(data_dir / "validation")
    if not train_items or not validation_items:
        raise ValueError("Training needs slices in both the train and the validation split.")
    network = build_network(config)
    if parent_weights is not None:
        load_weights(network, parent_weights)
    network = network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
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
    checkpoints = work_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    resume = last_checkpoint(checkpoints)
    if resume is not None:
        CheckpointLoader(
            load_path=str(resume[0]),
            load_dict={"network": network, "optimizer": optimizer, "trainer": trainer},
            map_location=device,  # type: ignore[arg-type]  # passed on to torch.load, which takes a device
        ).attach(trainer)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    # MONAI's hint names the old _LRScheduler base; CosineAnnealingLR is one.
    LrScheduleHandler(schedule, print_lr=False).attach(trainer)  # type: ignore[arg-type]
    ValidationHandler(validator=evaluator, interval=1, epoch_level=True).attach(trainer)
    StatsHandler(name="inference.train", tag_name="loss", output_transform=from_engine(["loss"], first=True)).attach(
        trainer
    )
    CheckpointSaver(
        save_dir=str(checkpoints),
        save_dict={"network": network, "optimizer": optimizer, "trainer": trainer},
        save_interval=1,
        epoch_level=True,
        n_saved=1,
    ).attach(trainer)
    if config.patience > 0:
        EarlyStopHandler(
            patience=config.patience,
            score_function=stopping_fn_from_metric("val_dice"),
            trainer=trainer,
            epoch_level=True,
        ).attach(evaluator)
    tracker = _Tracker(work_dir, network, evaluator, progress)
    tracker.attach(trainer)
    trainer.run()
    best = tracker.best
    return TrainResult(
        weights=(work_dir / "best.pt").read_bytes() if best["epoch"] else weights_bytes(network),
        dice=float(best["dice"]),
        epochs_run=int(trainer.state.epoch),
        best_epoch=int(best["epoch"]),
        resumed_from=resume[1] if resume else 0,
        history=list(tracker.history),
    )


class _Tracker:
    """Per epoch: the mean loss and validation Dice, the best weights so far, and the progress call.

    Its state (history and best) lives in ``work_dir`` beside the checkpoints, so a resumed run
    carries on with the same history and the same best epoch.
    """

    def __init__(self, work_dir: Path, network: torch.nn.Module, evaluator: Engine, progress: Progress | None):
        self.state_file = work_dir / "history.json"
        self.best_file = work_dir / "best.pt"
        self.network, self.evaluator, self.progress = network, evaluator, progress
        saved = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.history: list[dict[str, Any]] = saved.get("history", [])
        self.best: dict[str, float] = saved.get("best", {"epoch": 0, "dice": -1.0})
        self.losses: list[float] = []

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self.iteration)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self.epoch)

    def _per_label(self) -> list[float]:
        """Validation Dice per label: the mean over the volumes that show it (0.0 when none does)."""
        details = getattr(self.evaluator.state, "metric_details", {}).get("val_dice")
        if details is None:
            return []
        means = torch.nanmean(torch.as_tensor(details, dtype=torch.float32), dim=0)
        return [0.0 if np.isnan(v) else float(v) for v in means.tolist()]

    def iteration(self, engine: Engine) -> None:
        self.losses.append(float(from_engine(["loss"], first=True)(engine.state.output)))

    def epoch(self, engine: Engine) -> None:
        dice = float(self.evaluator.state.metrics.get("val_dice", float("nan")))
        dice = 0.0 if np.isnan(dice) else dice
        loss = float(np.mean(self.losses)) if self.losses else 0.0
        self.losses = []
        epoch = int(engine.state.epoch)
        entry = {"epoch": epoch, "loss": loss, "dice": dice, "per_label": self._per_label()}
        self.history = [h for h in self.history if h["epoch"] < epoch] + [entry]
        if dice > self.best["dice"]:
            self.best = {"epoch": epoch, "dice": dice}
            self.best_file.write_bytes(weights_bytes(self.network))
        self.state_file.write_text(json.dumps({"history": self.history, "best": self.best}))
        report = EpochReport(epoch=epoch, epochs=int(engine.state.max_epochs or 0), loss=loss, dice=dice)
        if self.progress is not None and self.progress(report) is False:
            engine.terminate()


def _class_map(probabilities: torch.Tensor) -> torch.Tensor:
    """``probabilities.argmax(dim=1)`` (first maximum wins), one class at a time: on the CPU torch's
    argmax over the channel axis of a (N, C, 512, 512) tensor takes ~40 ms a slice, this ~1 ms."""
    best = probabilities[:, 0].clone()
    classes = torch.zeros(best.shape, dtype=torch.int64, device=probabilities.device)
    for index in range(1, probabilities.shape[1]):
        better = probabilities[:, index] > best
        classes[better] = index
        best = torch.maximum(best, probabilities[:, index])
    return classes


def objects_of(
    probabilities: torch.Tensor, shape: tuple[int, int], labels: Sequence[str]
) -> list[list[ObjectPrediction]]:
    """Per slice, one object per connected component of each label, scored by its mean probability.

    ``probabilities`` is (slices, 1 + len(labels), rows, columns), background first; resized to ``shape``.
    Components are found once per label and measured together (``ndimage.find_objects`` and
    ``ndimage.mean``), so a slice with many small components costs one pass, not one per component.
    """
    full = F.interpolate(probabilities, size=shape, mode="bilinear", align_corners=False)
    classes_all = _class_map(full).cpu().numpy()
    probs_all = full.cpu().numpy()
    out: list[list[ObjectPrediction]] = []
    for probs, classes in zip(probs_all, classes_all, strict=True):
        objects = []
        for index, name in enumerate(labels, start=1):
            components, count = ndimage.label(classes == index)
            if not count:
                continue
            scores = ndimage.mean(probs[index], components, np.arange(1, count + 1))
            for n, box in enumerate(ndimage.find_objects(components), start=1):
                if box is None:
                    continue
                mask = np.zeros(shape, dtype=bool)
                mask[box] = components[box] == n
                objects.append(ObjectPrediction(label=name, mask=mask, score=float(scores[n - 1])))
        out.append(objects)
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
        low, high = self.config.window
        batch = torch.as_tensor(np.stack([np.asarray(one, dtype=np.float32) for one in images]))[:, None]
        batch = ((batch.clamp(low, high) - low) / (high - low)).to(self.device)
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
