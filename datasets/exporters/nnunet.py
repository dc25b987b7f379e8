"""nnU-Net v2 raw dataset: NIfTI images and label maps, dataset.json, and our patient-grouped splits.

Layout under the output folder (``Dataset{ID:03d}_{Name}/``)::

    imagesTr/{case}_0000.nii.gz   labelsTr/{case}.nii.gz    train and validation samples, augmented copies
    imagesTs/{case}_0000.nii.gz   labelsTs/{case}.nii.gz    test samples (labels for evaluation only)
    dataset.json                  channel, labels, numTraining, file ending
    splits_final.json             the version's folds (or its train/validation split) as nnU-Net folds
    cases.json                    case -> sample, patient, split, fold
    augmentations.json            with materialized augmentation: the parameters of every copy

nnU-Net makes its own random, case-level folds unless it finds ``splits_final.json`` in its
preprocessed folder; ours keep every patient on one side, so the description says to copy it there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from datasets.exporters._cases import Written, augmentation_record, case_table, single_modality, write_cases
from datasets.exporters.base import Exporter, ExportError, ExportInput, Progress, register, write_json

FILE_ENDING = ".nii.gz"


@register
class NnUNetExporter(Exporter):
    name = "nnunet"
    title = "nnU-Net v2 raw dataset (NIfTI)"
    options: ClassVar[dict[str, str]] = {
        "dataset_id": "The nnU-Net dataset number, 1 to 999 (default 1): the folder is Dataset{ID:03d}_{name}.",
        "name": "The dataset name in the folder name, letters and digits only (default: from the dataset's name).",
    }

    def check_options(self, options: Mapping[str, Any]) -> None:
        _dataset_id(options.get("dataset_id", 1))
        _given_name(options)

    def export(self, data: ExportInput, out: Path, *, progress: Progress) -> None:
        dataset_id = _dataset_id(data.options.get("dataset_id", 1))
        name = _dataset_name(data)
        modality = single_modality(data)
        _check_splits(data)
        classes, labels = _classes(data)
        root = out / f"Dataset{dataset_id:03d}_{name}"

        def image_path(case: str, split: str) -> Path:
            return root / ("imagesTs" if split == "test" else "imagesTr") / f"{case}_0000{FILE_ENDING}"

        def label_path(case: str, split: str) -> Path:
            return root / ("labelsTs" if split == "test" else "labelsTr") / f"{case}{FILE_ENDING}"

        written = write_cases(data, image_path=image_path, label_path=label_path, progress=progress, classes=classes)
        training = [c for case in written.cases if case.sample.split != "test" for c in (case.id, *case.copies)]
        folder = root.name
        splits = _splits(data, written)
        write_json(
            root / "dataset.json",
            {
                "name": folder,
                "description": _description(data, folder, splits),
                "reference": f"Workbench dataset version {data.version_id}",
                "channel_names": {"0": modality},
                "labels": labels,
                "numTraining": len(training),
                "file_ending": FILE_ENDING,
            },
        )
        write_json(root / "splits_final.json", splits)
        write_json(root / "cases.json", case_table(written))
        if data.augment is not None:
            write_json(root / "augmentations.json", augmentation_record(data, written))


def _description(data: ExportInput, folder: str, splits: list[dict[str, list[str]]]) -> str:
    text = (
        f"{data.name}: Workbench dataset version {data.version_id}. Copy splits_final.json into "
        f"nnUNet_preprocessed/{folder}/ before training so nnU-Net keeps each patient in one fold."
    )
    empty = [str(n) for n, fold in enumerate(splits) if not fold["val"]]
    if empty:
        # nnU-Net cannot train a fold without validation cases; say so here rather than invent a split.
        text += (
            f" Fold(s) {', '.join(empty)} have no validation cases (the version has none there): "
            "train those with fold 'all' instead."
        )
    return text


def _dataset_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 999:
        raise ExportError(f"the option dataset_id must be a whole number from 1 to 999, not {value!r}")
    return value


def _given_name(options: Mapping[str, Any]) -> str | None:
    given = options.get("name")
    if given is not None and (not isinstance(given, str) or not re.fullmatch(r"[A-Za-z0-9]{1,64}", given)):
        raise ExportError("the option name must be 1 to 64 letters and digits (nnU-Net splits folder names on _)")
    return given


def _dataset_name(data: ExportInput) -> str:
    given = _given_name(data.options)
    if given is not None:
        return given
    # "Synthetic lesions" -> "SyntheticLesions": words kept legible without the characters nnU-Net trips on.
    words = re.findall(r"[A-Za-z0-9]+", data.name)
    return "".join(word[:1].upper() + word[1:] for word in words)[:64] or "Workbench"


def _check_splits(data: ExportInput) -> None:
    """Fail before any file is written when the samples' splits cannot become nnU-Net folds."""
    for one in data.samples:
        if data.folds:
            if one.split == "train" and (one.fold is None or not 0 <= one.fold < data.folds):
                raise ExportError(f"a {data.folds}-fold version has a train sample in fold {one.fold}", sample=one.key)
            if one.split not in ("train", "test"):
                raise ExportError(f"a k-fold version has no {one.split!r} split", sample=one.key)
        elif one.split not in ("train", "validation", "test"):
            raise ExportError(f"unknown split {one.split!r}", sample=one.key)


def _classes(data: ExportInput) -> tuple[npt.NDArray[np.uint8], dict[str, int]]:
    """(lookup table from label index to nnU-Net class, dataset.json labels).

    nnU-Net wants classes 0, 1, 2, ... without gaps, but the schema's area labels may skip indices
    that points or classifications hold; classes follow the area labels in index order.
    """
    area = sorted(data.area_labels, key=lambda one: one.index)
    names = [one.name for one in area]
    if len(set(names)) != len(names) or "background" in names:
        raise ExportError("nnU-Net needs area label names that are unique and not 'background'")
    if len(area) > 255:
        raise ExportError("nnU-Net label maps are written as uint8, which holds at most 255 labels")
    table = np.zeros(256, dtype=np.uint8)
    labels = {"background": 0}
    for number, one in enumerate(area, 1):
        table[one.index] = number
        labels[one.name] = number
    return table, labels


def _splits(data: ExportInput, written: Written) -> list[dict[str, list[str]]]:
    """nnU-Net folds from ours. A copy trains only where its source trains, so it never meets its source in val."""
    train = [case for case in written.cases if case.sample.split == "train"]
    if data.folds:
        return [
            {
                "train": [c for case in train if case.sample.fold != fold for c in (case.id, *case.copies)],
                "val": [case.id for case in train if case.sample.fold == fold],
            }
            for fold in range(data.folds)
        ]
    return [
        {
            "train": [c for case in train for c in (case.id, *case.copies)],
            "val": [case.id for case in written.cases if case.sample.split == "validation"],
        }
    ]
