"""Building, storing and reading a version's manifest (its shape: datasets/exporters/base.py).

The manifest copies every annotation's geometry at its current revision, so later edits never
reach a frozen version; its id is the sha256 of its canonical JSON, so equal content gives an
equal id.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pydicom
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Q

from annotations.geometry import AREA_KINDS
from annotations.models import Annotation, Assignment, AssignmentKind, AssignmentStatus
from annotations.selectors import label_schema_current
from anonymizer.services import project_options
from datasets.exporters.base import canonical_json
from datasets.labelsource import CONSENSUS, READER, LabelSource, chosen_reads, label_basis
from datasets.models import Dataset
from datasets.selection import Selection
from datasets.splits import SplitSpec, assign_splits
from workbench.models import Instance, Series
from workbench.models.catalog import spatial_order

FORMAT = "workbench.dataset-version/1"
PROFILE = "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile"


class EmptySelection(ValueError):
    """The selection chose no series; the message says which filters to loosen."""


def manifest_build(
    *,
    dataset: Dataset,
    split: SplitSpec,
    augmentation: dict[str, Any],
    parent: str | None,
    note: str,
    label_source: LabelSource | None = None,
) -> dict[str, Any]:
    """The manifest of what the dataset selects right now. Reads; writes nothing.

    ``label_source`` (datasets.labelsource; its default when None) says which reads of each
    series give the sample its labels; every sample lists them under ``reads``.
    """
    source = label_source or LabelSource()
    selection = Selection.from_dict(dataset.selection)
    series = list(selection.series_queryset(dataset.project))
    if not series:
        raise EmptySelection(
            "The selection holds no series: no series matches every filter with an assignment whose status is "
            f"{' or '.join(selection.statuses)}. Loosen the filters, or accept the readers' work first."
        )
    finished_read = Q(kind=AssignmentKind.READ, status__in=selection.statuses)
    decided = Q(kind=AssignmentKind.CONSENSUS, status=AssignmentStatus.ACCEPTED)
    candidates = Assignment.objects.filter(finished_read | decided, series__in=series).select_related(
        "reader", "reviewed_by"
    )
    readers_of: dict[Any, set[Any]] = defaultdict(set)
    for series_id, pk in candidates.filter(kind=AssignmentKind.READ).values_list("series_id", "pk"):
        readers_of[series_id].add(pk)
    reads = chosen_reads(source, candidates.order_by("created_at", "id"))
    if source.mode == READER:
        series = [one for one in series if one.pk in reads]
        if not series:
            raise EmptySelection(
                f"The reader {source.reader!r} has no read with status {' or '.join(selection.statuses)} in the "
                "series this dataset selects. Check the username, or choose another label source."
            )
    labels = _labels(dataset, selection)
    chosen = {read.pk for group in reads.values() for read in group}
    by_series: dict[Any, list[Annotation]] = defaultdict(list)
    for annotation in selection.annotations(series, consensus=True).filter(assignment_id__in=chosen):
        by_series[annotation.assignment.series_id].append(annotation)
    samples = [_sample(one, by_series[one.pk], labels, reads.get(one.pk, [])) for one in series]
    for sample, one in zip(samples, series, strict=True):
        if source.mode == CONSENSUS:
            sample["label_basis"] = label_basis(source, reads.get(one.pk, []), len(readers_of[one.pk]))
    reviewers = sorted(
        {read.reviewed_by.get_username() for group in reads.values() for read in group if read.reviewed_by}
    )
    area = {label["name"] for label in labels if label["kind"] in AREA_KINDS}
    placement = assign_splits(
        {s["key"]: s["patient"] for s in samples},
        {s["key"]: {a["label"] for a in s["annotations"] if a["label"] in area} for s in samples},
        split,
    )
    for sample in samples:
        sample["split"], sample["fold"] = placement[sample["key"]]
    options = project_options(dataset.project)
    return {
        "format": FORMAT,
        "project": {"id": str(dataset.project_id), "name": dataset.project.name},
        "dataset": {"id": str(dataset.pk), "name": dataset.name, "description": dataset.description},
        "parent": parent,
        "note": note,
        "selection": selection.to_dict(),
        "labels": labels_block(dataset, labels),
        "split": split.to_dict(),
        "review": {"statuses": list(selection.statuses), "reviewers": reviewers},
        "label_source": source.to_dict(readers={r.reader_name for g in reads.values() for r in g}),
        "augmentation": augmentation,
        "deidentification": {
            "profile": PROFILE,
            "options": options.to_dict(),
            "methods": [{"code": c, "meaning": m} for c, m in options.method_codes()],
        },
        "samples": samples,
    }


def labels_block(dataset: Dataset, labels: list[dict[str, Any]]) -> dict[str, Any]:
    schema = label_schema_current(project=dataset.project)
    return {
        "schema_id": str(schema.pk) if schema else None,
        "version": schema.version if schema else None,
        "labels": labels,
    }


def _labels(dataset: Dataset, selection: Selection) -> list[dict[str, Any]]:
    """The current schema's labels (those the selection names, if it names any), indexed from 1."""
    schema = label_schema_current(project=dataset.project)
    chosen = [
        one for one in (schema.labels.all() if schema else []) if not selection.labels or one.name in selection.labels
    ]
    return [
        {"index": n, "name": one.name, "color": one.color, "kind": one.kind, "attributes": one.attributes}
        for n, one in enumerate(chosen, start=1)
    ]


def _sample(
    series: Series, annotations: Iterable[Annotation], labels: list[dict[str, Any]], reads: list[Assignment]
) -> dict[str, Any]:
    names = {label["name"] for label in labels}
    instances = list(series.instances.order_by(*spatial_order()))
    return {
        "key": series.series_uid,
        "patient": series.study.patient.pseudo_id,
        "study_uid": series.study.study_uid,
        "series_uid": series.series_uid,
        "modality": series.modality,
        "study_date": series.study.study_date,
        "scanner": _scanner(instances[0]) if instances else "",
        "split": "",
        "fold": None,
        "instances": [_instance(one) for one in instances],
        "reads": [{"assignment": str(read.pk), "reader": read.reader_name, "status": read.status} for read in reads],
        "annotations": sorted(
            (_annotation(one) for one in annotations if one.label.name in names),
            key=lambda a: (a["sop_uid"], a["frame"], a["label"], a["id"]),
        ),
    }


def _instance(instance: Instance) -> dict[str, Any]:
    return {
        "sop_uid": instance.sop_uid,
        "sha256": instance.sha256,
        "size": instance.size,
        "rows": instance.rows or 0,
        "columns": instance.columns or 0,
        "frames": instance.frames,
        "pixel_spacing": instance.pixel_spacing,
        "position": instance.slice_position,
        "number": instance.number,
    }


def _annotation(annotation: Annotation) -> dict[str, Any]:
    return {
        "id": str(annotation.pk),
        "revision": annotation.revision,
        "label": annotation.label.name,
        "sop_uid": annotation.sop_instance_uid,
        "frame": annotation.frame,
        "geometry": annotation.geometry,
        "attributes": annotation.attributes,
        "reader": annotation.assignment.reader_name,
        "source": annotation.source,
    }


def _scanner(instance: Instance) -> str:
    """Manufacturer and model from the de-identified header (kept by the profile), for the dataset card."""
    with default_storage.open(instance.storage_path, "rb") as stream:
        ds = pydicom.dcmread(stream, stop_before_pixels=True, specific_tags=["Manufacturer", "ManufacturerModelName"])
    return " ".join(str(ds.get(k, "") or "").strip() for k in ("Manufacturer", "ManufacturerModelName")).strip()


def manifest_id(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


def manifest_path(version_id: str) -> str:
    return f"datasets/manifests/{version_id}.json"


def manifest_store(manifest: dict[str, Any]) -> tuple[str, str]:
    """Write the manifest under its own hash (once; content-addressed, never rewritten)."""
    version_id = manifest_id(manifest)
    path = manifest_path(version_id)
    if not default_storage.exists(path):
        default_storage.save(path, ContentFile(canonical_json(manifest)))
    return version_id, path


class ManifestCorrupt(RuntimeError):
    """The stored manifest's bytes no longer hash to the version's id."""


def manifest_load(version_id: str, path: str) -> dict[str, Any]:
    """Read a frozen manifest and prove it is the one the id names."""
    import json

    with default_storage.open(path, "rb") as stream:
        raw = stream.read()
    if hashlib.sha256(raw).hexdigest() != version_id:
        raise ManifestCorrupt(
            f"The manifest of version {version_id} does not match its checksum; restore it from backup."
        )
    value: dict[str, Any] = json.loads(raw)
    return value
