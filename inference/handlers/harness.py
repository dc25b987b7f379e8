"""The training harness both trained kinds share: MONAI's engines and handlers, wired one way.

Pure (no Django); imports torch and MONAI. A kind builds its network, loaders, trainer and
evaluator (what differs); :func:`harness_run` attaches what is the same for all: resume from the
newest per-epoch checkpoint, validation after every epoch, a checkpoint after every epoch,
early stopping, and the per-epoch tracker (history, best weights, progress and cancel).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import (
    CheckpointLoader,
    CheckpointSaver,
    EarlyStopHandler,
    LrScheduleHandler,
    StatsHandler,
    ValidationHandler,
    from_engine,
    stopping_fn_from_metric,
)

from inference.handlers.base import EpochReport, Progress

_CHECKPOINT = re.compile(r"epoch=(\d+)\.pt$")


def pick_device() -> torch.device:
    """The GPU when the worker has one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def weights_bytes(network: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, buffer)
    return buffer.getvalue()


def load_weights(network: torch.nn.Module, weights: bytes) -> None:
    network.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))


def last_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The newest per-epoch checkpoint CheckpointSaver left in ``folder`` and its epoch, if any."""
    found = [(int(m.group(1)), p) for p in folder.glob("*.pt") if (m := _CHECKPOINT.search(p.name))]
    if not found:
        return None
    epoch, path = max(found)
    return path, epoch


@dataclass(frozen=True)
class Scoring:
    """How a kind scores an epoch: the evaluator's key metric, its name in the history, and the report."""

    engine_metric: str  # the evaluator's key_val_metric, e.g. "val_dice"
    name: str  # the history's and best's key, e.g. "dice"
    report: Callable[[int, int, float, float], EpochReport]  # (epoch, epochs, loss, score) -> report
    details: Callable[[Engine], dict[str, Any]] = lambda evaluator: {}  # more per-epoch history fields


@dataclass(frozen=True)
class HarnessRun:
    weights: bytes  # the best epoch's (or, when no epoch scored, the last) state_dict
    score: float  # the best epoch's score (-1.0 when none)
    epochs_run: int
    best_epoch: int
    resumed_from: int
    history: list[dict[str, Any]]


def harness_run(
    *,
    trainer: SupervisedTrainer,
    evaluator: SupervisedEvaluator,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    work_dir: Path,
    scoring: Scoring,
    patience: int = 0,
    device: torch.device,
    schedule: Any = None,
    progress: Progress | None = None,
) -> HarnessRun:
    """Run ``trainer`` with the shared handlers; checkpoints and history in ``work_dir`` (resumable)."""
    checkpoints = work_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    resume = last_checkpoint(checkpoints)
    if resume is not None:
        CheckpointLoader(
            load_path=str(resume[0]),
            load_dict={"network": network, "optimizer": optimizer, "trainer": trainer},
            map_location=device,  # type: ignore[arg-type]  # passed on to torch.load, which takes a device
        ).attach(trainer)
    if schedule is not None:
        # MONAI's hint names the old _LRScheduler base; the torch schedulers are ones.
        LrScheduleHandler(schedule, print_lr=False).attach(trainer)
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
    if patience > 0:
        EarlyStopHandler(
            patience=patience,
            score_function=stopping_fn_from_metric(scoring.engine_metric),
            trainer=trainer,
            epoch_level=True,
        ).attach(evaluator)
    tracker = _Tracker(work_dir, network, evaluator, scoring, progress)
    tracker.attach(trainer)
    trainer.run()
    best = tracker.best
    return HarnessRun(
        weights=(work_dir / "best.pt").read_bytes() if best["epoch"] else weights_bytes(network),
        score=float(best[scoring.name]),
        epochs_run=int(trainer.state.epoch),
        best_epoch=int(best["epoch"]),
        resumed_from=resume[1] if resume else 0,
        history=list(tracker.history),
    )


class _Tracker:
    """Per epoch: the mean loss and validation score, the best weights so far, and the progress call.

    Its state (history and best) lives in ``work_dir`` beside the checkpoints, so a resumed run
    carries on with the same history and the same best epoch.
    """

    def __init__(
        self, work_dir: Path, network: torch.nn.Module, evaluator: Engine, scoring: Scoring, progress: Progress | None
    ):
        self.state_file = work_dir / "history.json"
        self.best_file = work_dir / "best.pt"
        self.network, self.evaluator, self.scoring, self.progress = network, evaluator, scoring, progress
        saved = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.history: list[dict[str, Any]] = saved.get("history", [])
        self.best: dict[str, float] = saved.get("best", {"epoch": 0, scoring.name: -1.0})
        self.losses: list[float] = []

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self.iteration)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self.epoch)

    def iteration(self, engine: Engine) -> None:
        self.losses.append(float(from_engine(["loss"], first=True)(engine.state.output)))

    def epoch(self, engine: Engine) -> None:
        name = self.scoring.name
        score = float(self.evaluator.state.metrics.get(self.scoring.engine_metric, float("nan")))
        score = 0.0 if np.isnan(score) else score  # e.g. one class only in validation: no AUC
        loss = float(np.mean(self.losses)) if self.losses else 0.0
        self.losses = []
        epoch = int(engine.state.epoch)
        entry = {"epoch": epoch, "loss": loss, name: score, **self.scoring.details(self.evaluator)}
        self.history = [h for h in self.history if h["epoch"] < epoch] + [entry]
        if score > self.best[name]:
            self.best = {"epoch": epoch, name: score}
            self.best_file.write_bytes(weights_bytes(self.network))
        self.state_file.write_text(json.dumps({"history": self.history, "best": self.best}))
        report = self.scoring.report(epoch, int(engine.state.max_epochs or 0), loss, score)
        if self.progress is not None and self.progress(report) is False:
            engine.terminate()
