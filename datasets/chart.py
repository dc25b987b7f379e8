"""The split chart on a dataset's page: label counts per split, as bar geometry for an SVG. Pure.

The template draws the bars (so label names stay auto-escaped); this module only does the arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WIDTH = 640
BAR_AREA = 180  # pixels for the tallest bar
TOP = 20
GROUP_GAP = 28
LEFT = 40


@dataclass(frozen=True)
class Bar:
    split: str
    label: str
    count: int
    share: float  # of this label's annotations in all splits
    color: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    baseline: float
    bars: tuple[Bar, ...]
    groups: tuple[tuple[str, float, int, int], ...]  # (split, x of its centre, samples, patients)
    legend: tuple[tuple[str, str], ...]  # (label, color)


def split_chart(distribution: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str]) -> Chart | None:
    """Grouped bars: one group per split (or fold), one bar per label; None when nothing is labeled."""
    labels = sorted({label for entry in distribution.values() for label in entry["labels"]})
    if not labels:
        return None
    splits = _ordered(distribution)
    tallest = max(entry["labels"].get(label, 0) for entry in distribution.values() for label in labels) or 1
    totals = {label: sum(entry["labels"].get(label, 0) for entry in distribution.values()) for label in labels}
    group_width = (WIDTH - LEFT - GROUP_GAP * len(splits)) / len(splits)
    bar_width = group_width / len(labels)
    baseline = TOP + BAR_AREA
    bars, groups = [], []
    for g, split in enumerate(splits):
        left = LEFT + g * (group_width + GROUP_GAP)
        entry = distribution[split]
        groups.append((split, left + group_width / 2, int(entry["samples"]), int(entry["patients"])))
        for b, label in enumerate(labels):
            count = int(entry["labels"].get(label, 0))
            height = BAR_AREA * count / tallest
            bars.append(
                Bar(
                    split=split,
                    label=label,
                    count=count,
                    share=count / totals[label] if totals[label] else 0.0,
                    color=colors.get(label, "#888888"),
                    x=round(left + b * bar_width, 1),
                    y=round(baseline - height, 1),
                    width=round(bar_width - 2, 1),
                    height=round(height, 1),
                )
            )
    legend = tuple((label, colors.get(label, "#888888")) for label in labels)
    return Chart(WIDTH, int(baseline + 44), baseline, tuple(bars), tuple(groups), legend)


def _ordered(distribution: Mapping[str, Any]) -> list[str]:
    rank = {"train": 0, "validation": 1, "test": 2}
    return sorted(distribution, key=lambda name: (rank.get(name, 3), name))
