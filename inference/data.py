"""A frozen dataset version as training files (handlers.base): one .npz per slice, per split."""

from __future__ import annotations

import tempfile
from pathlib import Path

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
