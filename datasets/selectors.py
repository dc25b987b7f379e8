"""Reads for datasets: version lists and the comparison of two frozen manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from datasets.models import Dataset, DatasetVersion, Export
from workbench.models import Project


def datasets_of(project: Project) -> QuerySet[Dataset]:
    return Dataset.objects.filter(project=project).select_related("created_by").order_by("name")


def versions_of(dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("created_by").order_by("-created_at")


def exports_of(version: DatasetVersion) -> QuerySet[Export]:
    return version.exports.order_by("-created_at")


def _place(sample: Mapping[str, Any]) -> str:
    return sample["split"] if sample.get("fold") is None else f"{sample['split']}/fold {sample['fold']}"


def _labels(sample: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    return sorted((a["id"], a["revision"], a["label"]) for a in sample["annotations"])


def version_compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What changed from manifest ``old`` to manifest ``new``, sample by sample.

    ``added`` and ``removed`` are sample keys; ``relabeled`` lists samples whose annotations
    (ids, revisions or labels) differ, with the counts before and after; ``moved`` lists samples
    whose split (or fold) changed. Also says whether the label schema or the recipe changed.
    """
    before = {s["key"]: s for s in old["samples"]}
    after = {s["key"]: s for s in new["samples"]}
    kept = sorted(before.keys() & after.keys())
    relabeled = [
        {
            "key": key,
            "annotations_before": len(before[key]["annotations"]),
            "annotations_after": len(after[key]["annotations"]),
        }
        for key in kept
        if _labels(before[key]) != _labels(after[key])
    ]
    moved = [
        {"key": key, "from": _place(before[key]), "to": _place(after[key])}
        for key in kept
        if _place(before[key]) != _place(after[key])
    ]
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "relabeled": relabeled,
        "moved": moved,
        "unchanged": len(kept) - len({r["key"] for r in relabeled} | {m["key"] for m in moved}),
        "labels_changed": old["labels"] != new["labels"],
        "augmentation_changed": old["augmentation"] != new["augmentation"],
    }
