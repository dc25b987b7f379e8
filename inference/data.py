"""A frozen dataset version as training files (handlers.base): one .npz per slice, per split."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from datasets.exporters.base import ExportInput
from datasets.exporters.volumes import label_volume, load_volume
from datasets.manifest import manifest_load
from datasets.models import DatasetVersion
from datasets.services import _local_files

# The version's "test" split stays unseen; "train" and "validation" are what the handler reads.
SPLITS = {"train": "train", "validation": "validation"}


def version_slices_write(*, version: DatasetVersion, labels: list[str], root: Path) -> dict[str, int]:
    """Write every slice of the version's train and validation samples under ``root``; counts per split.

    Label values follow ``labels`` (1 is the first name); other labels count as background.
    Reads the checksum-verified stored files of the frozen manifest; writes nothing in the database.
    """
    manifest = manifest_load(version.pk, version.manifest_path)
    with tempfile.TemporaryDirectory(prefix="train-src-") as scratch:
        data = ExportInput.from_manifest(
            manifest, version_id=version.pk, path_of=_local_files(version, manifest, Path(scratch))
        )
        lookup = np.zeros(256, dtype=np.uint8)
        for one in data.labels:
            if one.name in labels:
                lookup[one.index] = labels.index(one.name) + 1
        counts = dict.fromkeys(SPLITS, 0)
        volumes = dict.fromkeys(SPLITS, 0)
        for sample in data.samples:
            split = SPLITS.get(sample.split)
            if split is None:
                continue
            volume = load_volume(data, sample)
            label = lookup[label_volume(data, sample, volume)]
            folder = root / split
            folder.mkdir(parents=True, exist_ok=True)
            number = volumes[split]
            volumes[split] += 1
            for k in range(volume.pixels.shape[0]):
                np.savez(
                    folder / f"{number:05d}-{k:05d}.npz",  # volume-slice: validation scores whole volumes
                    image=volume.pixels[k].astype(np.float32),
                    label=label[k],
                )
                counts[split] += 1
    return counts


def classification_labels(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """The version's classification labels (image or series) and their classes (the "value" choices)."""
    from annotations.geometry import CLASS_KINDS

    found = {}
    for one in manifest["labels"]["labels"]:
        if one["kind"] in CLASS_KINDS:
            value: dict[str, Any] = next((a for a in one.get("attributes") or [] if a.get("name") == "value"), {})
            found[one["name"]] = [str(c) for c in value.get("choices") or []]
    return found


def version_class_slices_write(
    *, version: DatasetVersion, label: str, classes: list[str], root: Path
) -> dict[str, int]:
    """Write the train and validation slices that carry a class of ``label`` under ``root``; counts per split.

    A slice's class is its image classification, else its series' classification (every slice of the
    series), as an index into ``classes``; slices with neither, or a value not in ``classes``, are left
    out. Files as for segmentation (``<volume>-<slice>.npz``), ``label`` holding the class index.
    Reads the checksum-verified stored files of the frozen manifest; writes nothing in the database.
    """
    manifest = manifest_load(version.pk, version.manifest_path)
    with tempfile.TemporaryDirectory(prefix="train-src-") as scratch:
        data = ExportInput.from_manifest(
            manifest, version_id=version.pk, path_of=_local_files(version, manifest, Path(scratch))
        )
        kind = data.label(label).kind
        counts = dict.fromkeys(SPLITS, 0)
        volumes = dict.fromkeys(SPLITS, 0)
        for sample in data.samples:
            split = SPLITS.get(sample.split)
            ours = [a for a in sample.annotations if a.label == label and a.attributes.get("value") in classes]
            if split is None or not ours:
                continue
            series_class = next((a.attributes["value"] for a in ours if kind == "classification_series"), None)
            on_slice = {(a.sop_uid, a.frame): a.attributes["value"] for a in ours if kind == "classification_image"}
            volume = load_volume(data, sample)
            folder = root / split
            folder.mkdir(parents=True, exist_ok=True)
            number = volumes[split]
            volumes[split] += 1
            for k, key in enumerate(zip(volume.sop_uids, volume.frames, strict=True)):
                value = on_slice.get(key, series_class)
                if value is None:
                    continue
                np.savez(
                    folder / f"{number:05d}-{k:05d}.npz",
                    image=volume.pixels[k].astype(np.float32),
                    label=np.int64(classes.index(value)),
                )
                counts[split] += 1
    return counts
