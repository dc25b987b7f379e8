"""The split chart on a dataset's page: label counts per split, as bar geometry for an SVG. Pure.

The template draws the bars (so label names stay auto-escaped); this module only does the
arithmetic: bar geometry, a y axis with round ticks, and each split's counts in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WIDTH = 640
BAR_AREA = 180  # pixels for the top tick of the axis
TOP = 24  # room above the tallest bar for its count
GROUP_GAP = 28
LEFT = 64  # room for the tick labels and the axis title
LINE = 14  # pixels per line of text under a group
# Irregular plurals of the nouns the page counts; the rest take an "s".
_PLURALS = {"series": "series", "study": "studies"}


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
class Group:
    split: str
    x: float  # of its centre
    counts: tuple[str, ...]  # "3 patients", "1 study", "4 series", ... (those the summary has)


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    baseline: float
    ticks: tuple[tuple[float, int], ...]  # (y, value) from 0 up
    bars: tuple[Bar, ...]
    groups: tuple[Group, ...]
    legend: tuple[tuple[str, str], ...]  # (label, color)


def counted(number: int, noun: str) -> str:
    """``1 patient``, ``2 patients``, ``1 series``, ``3 studies``."""
    return f"{number} {noun if number == 1 else _PLURALS.get(noun, noun + 's')}"


def axis_step(tallest: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving at most five ticks above zero."""
    magnitude = 10 ** max(0, int(math.log10(max(tallest, 1))) - 1)
    for factor in (1, 2, 5, 10, 20, 50):
        if tallest <= 5 * factor * magnitude:
            return factor * magnitude
    return 100 * magnitude


def split_counts(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """A split's patients, studies, series and images in words; versions frozen before
    studies and images were counted show what they have."""
    nouns = (("patients", "patient"), ("studies", "study"), ("samples", "series"), ("instances", "image"))
    return tuple(counted(int(entry[key]), noun) for key, noun in nouns if entry.get(key) is not None)


def split_chart(distribution: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str]) -> Chart | None:
    """Grouped bars: one group per split (or fold), one bar per label; None when nothing is labeled."""
    labels = sorted({label for entry in distribution.values() for label in entry["labels"]})
    if not labels:
        return None
    splits = _ordered(distribution)
    tallest = max(entry["labels"].get(label, 0) for entry in distribution.values() for label in labels)
    step = axis_step(tallest)
    top_value = step * max(1, math.ceil(tallest / step))
    totals = {label: sum(entry["labels"].get(label, 0) for entry in distribution.values()) for label in labels}
    group_width = (WIDTH - LEFT - GROUP_GAP * len(splits)) / len(splits)
    bar_width = group_width / len(labels)
    baseline = TOP + BAR_AREA
    bars, groups = [], []
    for g, split in enumerate(splits):
        left = LEFT + GROUP_GAP / 2 + g * (group_width + GROUP_GAP)
        entry = distribution[split]
        groups.append(Group(split, round(left + group_width / 2, 1), split_counts(entry)))
        for b, label in enumerate(labels):
            count = int(entry["labels"].get(label, 0))
            height = BAR_AREA * count / top_value
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
    ticks = tuple((round(baseline - BAR_AREA * value / top_value, 1), value) for value in range(0, top_value + 1, step))
    lines = 1 + max(len(group.counts) for group in groups)
    legend = tuple((label, colors.get(label, "#888888")) for label in labels)
    return Chart(WIDTH, int(baseline + 8 + LINE * lines), LEFT, baseline, ticks, tuple(bars), tuple(groups), legend)


def _ordered(distribution: Mapping[str, Any]) -> list[str]:
    rank = {"train": 0, "validation": 1, "test": 2}
    return sorted(distribution, key=lambda name: (rank.get(name, 3), name))
