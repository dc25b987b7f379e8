"""The training chart on the Models page: loss and the validation metric per epoch as SVG polylines. Pure.

The template draws the lines (inline SVG, no script); this module only does the arithmetic.
The validation metric (Dice for segmentation, AUC for a classifier, both kept in the entries'
"dice" field by the training service) is drawn on a fixed 0..1 axis (right); the loss on its own
axis from 0 to its maximum (left). ``metric`` names it for the template's axis, legend and summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 480, 160
LEFT, RIGHT, TOP, BOTTOM = 44, 40, 10, 24


@dataclass(frozen=True)
class TrainingChart:
    width: int
    height: int
    left: int
    right: int  # x of the right axis
    top: int
    baseline: int
    loss_points: str  # "x,y x,y ..." for <polyline points>
    dice_points: str
    loss_max: float
    epochs: int  # the x axis runs from epoch 1 to this
    last: dict[str, Any]
    metric: str  # "Dice" or "AUC": what the 0..1 line is


def metric_name(kind: str) -> str:
    """The validation metric's name for a model kind: a classifier reports AUC, the others Dice."""
    return "AUC" if kind == "classification" else "Dice"


def training_chart(
    progress: Sequence[dict[str, Any]], *, epochs: int, kind: str = "segmentation"
) -> TrainingChart | None:
    """The chart of a job's progress entries ({"epoch", "loss", "dice"}); None before the first epoch."""
    if not progress:
        return None
    span = max(int(epochs), max(int(p["epoch"]) for p in progress), 2)
    loss_max = max(max(float(p["loss"]) for p in progress), 1e-6)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(epoch: int) -> float:
        return round(LEFT + inner_w * (epoch - 1) / (span - 1), 1)

    def y(share: float) -> float:
        return round(TOP + inner_h * (1 - min(max(share, 0.0), 1.0)), 1)

    entries = sorted(progress, key=lambda p: int(p["epoch"]))
    return TrainingChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        baseline=HEIGHT - BOTTOM,
        loss_points=" ".join(f"{x(int(p['epoch']))},{y(float(p['loss']) / loss_max)}" for p in entries),
        dice_points=" ".join(f"{x(int(p['epoch']))},{y(float(p['dice']))}" for p in entries),
        loss_max=round(loss_max, 3),
        epochs=span,
        last=dict(entries[-1]),
        metric=metric_name(kind),
    )
