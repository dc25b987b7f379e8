"""NIfTI images and label maps with a MONAI (Medical Segmentation Decathlon) datalist.

Layout under the output folder::

    images/{case}.nii.gz   labels/{case}.nii.gz   every sample (and augmented copies of train samples)
    datalist.json          training (with "fold" when the version has folds), validation, test; augmented
                           copies are in training, or with folds in training_augmented (see below)
    cases.json             case -> sample, patient, split, fold
    augmentations.json     with materialized augmentation: the parameters of every copy

Paths in ``datalist.json`` are relative to it, so ``monai.data.load_decathlon_datalist(path,
data_list_key="training", base_dir=folder)`` reads it as it is. Label values are the schema's
label indices (the ``labels`` table), unlike nnU-Net, which needs them without gaps.

Augmented copies of train samples join ``training`` when the version has a validation split. With
folds they are listed apart, in ``training_augmented`` with their source's fold: a copy of a fold-k
sample belongs to the training set of every other fold and to neither set of fold k, which one
``fold`` value in ``training`` cannot say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets.exporters._cases import Case, augmentation_record, case_table, single_modality, write_cases
from datasets.exporters.base import Exporter, ExportInput, Progress, register, write_json

FILE_ENDING = ".nii.gz"


@register
class NiftiExporter(Exporter):
    name = "nifti"
    title = "NIfTI with a MONAI datalist (Decathlon layout)"

    def export(self, data: ExportInput, out: Path, *, progress: Progress) -> None:
        modality = single_modality(data)

        def image_path(case: str, split: str) -> Path:
            return out / "images" / f"{case}{FILE_ENDING}"

        def label_path(case: str, split: str) -> Path:
            return out / "labels" / f"{case}{FILE_ENDING}"

        written = write_cases(data, image_path=image_path, label_path=label_path, progress=progress)
        train = [case for case in written.cases if case.sample.split == "train"]
        training = [_item(case.id, case, data.folds) for case in train]
        copies = [_item(copy, case, data.folds) for case in train for copy in case.copies]
        datalist: dict[str, Any] = {
            "name": data.name,
            "description": f"{data.name}: Workbench dataset version {data.version_id}",
            "reference": f"Workbench dataset version {data.version_id}",
            "tensorImageSize": "3D",
            "modality": {"0": modality},
            "labels": {"0": "background"} | {str(one.index): one.name for one in data.area_labels},
            # Empty with folds: the folds are the validation scheme then.
            "validation": [_item(c.id, c, None) for c in written.cases if c.sample.split == "validation"],
            "test": [_item(c.id, c, None) for c in written.cases if c.sample.split == "test"],
        }
        if data.folds and data.augment is not None:
            # A copy carries its source's fold, and whoever selects fold k's validation set by "fold" would pick
            # it up with its source; kept apart, a copy trains for the folds k != its fold only when asked for.
            datalist["training_augmented"] = copies
        elif not data.folds:
            training += copies
        datalist |= {"training": training, "numTraining": len(training), "numTest": len(datalist["test"])}
        write_json(out / "datalist.json", datalist)
        write_json(out / "cases.json", case_table(written))
        if data.augment is not None:
            write_json(out / "augmentations.json", augmentation_record(data, written))


def _item(case_id: str, case: Case, folds: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {"image": f"images/{case_id}{FILE_ENDING}", "label": f"labels/{case_id}{FILE_ENDING}"}
    if folds:
        item["fold"] = case.sample.fold
    return item
