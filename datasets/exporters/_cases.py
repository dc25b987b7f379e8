"""What the volume formats (nnU-Net, NIfTI) share: case names, writing image/label pairs, augmented copies.

Imports no Django. A case is one sample written as a NIfTI image and label map; its name comes from
the sample's position in ``ExportInput.samples`` (never from a file's attributes), so the same
version always gives the same names. Materialized augmentation adds copies of train cases only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets.exporters.base import ExportError, ExportInput, GeometryMismatch, Progress, Sample
from datasets.exporters.volumes import label_volume, load_volume, nifti_affine, nifti_array, nifti_bytes

CASE_PREFIX = "case"
# A copy is named "<case>_<suffix>": keep suffixes to characters every file system and nnU-Net take.
_SUFFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")

CasePath = Callable[[str, str], Path]  # (case id, split) -> where its file goes


@dataclass(frozen=True)
class Case:
    id: str
    sample: Sample
    copies: tuple[str, ...] = ()  # ids of its augmented copies (train samples only), in the augmenter's order


@dataclass(frozen=True)
class Written:
    cases: tuple[Case, ...]
    augmentations: Mapping[str, Mapping[str, Any]]  # copy id -> {"case", "sample", "suffix", "params"}


def case_ids(samples: tuple[Sample, ...]) -> list[str]:
    """``case_0000``, ``case_0001``, ... in sample order (wider when there are more than 10,000)."""
    width = max(4, len(str(max(len(samples) - 1, 0))))
    return [f"{CASE_PREFIX}_{n:0{width}d}" for n in range(len(samples))]


def single_modality(data: ExportInput) -> str:
    """The modality every sample shares: a volume dataset's one channel has one meaning."""
    modalities = sorted({one.modality for one in data.samples})
    if not modalities:
        raise ExportError("the version has no samples to export")
    if len(modalities) > 1:
        raise ExportError(
            f"the samples have different modalities ({', '.join(modalities)}); a volume dataset's channel has one"
        )
    return modalities[0]


def write_cases(
    data: ExportInput,
    *,
    image_path: CasePath,
    label_path: CasePath,
    progress: Progress,
    classes: npt.NDArray[np.uint8] | None = None,
) -> Written:
    """Write every sample as a NIfTI image and label pair, and the augmented copies of train samples.

    ``classes`` maps label indices to the values the format stores (a lookup table; None keeps the
    schema's indices). The augmenter sees the arrays as written, ``(x, y, z)`` with stored label
    values, and its copies keep the source's affine. ``progress`` is called after each sample.
    """
    ids = case_ids(data.samples)
    taken = set(ids)
    allowed = {0} | {int(classes[one.index]) if classes is not None else one.index for one in data.area_labels}
    cases: list[Case] = []
    augmentations: dict[str, dict[str, Any]] = {}
    for done, (case, sample) in enumerate(zip(ids, data.samples, strict=True), 1):
        volume = load_volume(data, sample)
        labels = label_volume(data, sample, volume)
        if classes is not None:
            labels = classes[labels]
        affine = nifti_affine(volume)
        image, label = nifti_array(volume.pixels), nifti_array(labels)
        _write_pair(image_path(case, sample.split), label_path(case, sample.split), image, label, affine)
        copies: list[str] = []
        if data.augment is not None and sample.split == "train":
            for suffix, new_image, new_label, params in data.augment(sample, image.copy(), label.copy()):
                copy = f"{case}_{_suffix(suffix, sample.key)}"
                if copy in taken:
                    raise ExportError(f"the augmenter gave two copies the suffix {suffix!r}", sample=sample.key)
                taken.add(copy)
                new_image, new_label = _checked_copy(new_image, new_label, allowed, suffix=suffix, sample=sample.key)
                _write_pair(image_path(copy, "train"), label_path(copy, "train"), new_image, new_label, affine)
                record = {"case": case, "sample": sample.key, "suffix": suffix, "params": _jsonable(params, sample.key)}
                augmentations[copy] = record
                copies.append(copy)
        cases.append(Case(id=case, sample=sample, copies=tuple(copies)))
        progress(done, len(data.samples))
    return Written(cases=tuple(cases), augmentations=augmentations)


def case_table(written: Written) -> dict[str, dict[str, Any]]:
    """Case id -> the sample it was made from (and, for a copy, the case it augments): for tracing back."""
    table: dict[str, dict[str, Any]] = {}
    for case in written.cases:
        one = case.sample
        row = {"sample": one.key, "patient": one.patient, "split": one.split, "fold": one.fold, "augments": None}
        table[case.id] = row
        for copy in case.copies:
            table[copy] = row | {"split": "train", "augments": case.id}
    return table


def augmentation_record(data: ExportInput, written: Written) -> dict[str, Any]:
    """What ``augmentations.json`` holds: the version and, per copy, its source and the applied parameters."""
    return {"version": data.version_id, "copies": dict(written.augmentations)}


def _write_pair(
    image_path: Path,
    label_path: Path,
    image: npt.NDArray[Any],
    label: npt.NDArray[np.uint8],
    affine: npt.NDArray[np.float64],
) -> None:
    # The label gets the image's very affine, so a reader can never find the two out of register.
    for path, array in ((image_path, image), (label_path, label)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(nifti_bytes(array, affine))


def _suffix(suffix: str, sample: str) -> str:
    clean = suffix.lstrip("_") if isinstance(suffix, str) else ""  # "<case>_<suffix>", underscore given or not
    if not _SUFFIX.fullmatch(clean):
        raise ExportError(f"the augmenter's suffix {suffix!r} is not 1-32 letters, digits or hyphens", sample=sample)
    return clean


def _checked_copy(
    image: Any, label: Any, allowed: set[int], *, suffix: str, sample: str
) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint8]]:
    """The copy as arrays NIfTI stores well; a label value that is no class fails instead of being written."""
    image, label = np.asarray(image), np.asarray(label)
    if image.ndim != 3 or image.shape != label.shape:
        raise GeometryMismatch(
            f"the augmented copy {suffix!r} has an image of {image.shape} and a label map of {label.shape}; "
            "both must be the same 3-D shape",
            sample=sample,
        )
    if np.issubdtype(image.dtype, np.floating) and image.dtype != np.float32:
        image = image.astype(np.float32)
    rounded = np.rint(label) if np.issubdtype(label.dtype, np.floating) else label
    found = {int(v) for v in np.unique(rounded)}
    if not np.array_equal(rounded, label) or not found <= allowed:
        raise ExportError(
            f"the augmented copy {suffix!r} has label values that are not classes (interpolated labels?); "
            f"expected only {sorted(allowed)}",
            sample=sample,
        )
    return image, rounded.astype(np.uint8)


def _jsonable(value: Any, sample: str) -> Any:
    """Parameters as plain JSON values (numpy scalars and arrays become numbers and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, sample) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, sample) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return _jsonable(value.tolist(), sample)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExportError(f"an augmentation parameter is {value}, which JSON cannot hold", sample=sample)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ExportError(
        f"an augmentation parameter of type {type(value).__name__} cannot be written as JSON", sample=sample
    )
