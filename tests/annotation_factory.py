"""Catalog rows and a label schema for the annotation tests, made directly (no DICOM pipeline needed)."""

from __future__ import annotations

import uuid
from typing import Any

from annotations import services
from annotations.models import LabelSchema
from workbench.models import Instance, Patient, Project, Series, Study

LABELS: list[dict[str, Any]] = [
    {"name": "Lesion", "color": "#ff0000", "kind": "box", "attributes": [{"name": "suspicious", "type": "boolean"}]},
    {"name": "Lung", "color": "#00ff00", "kind": "polygon", "attributes": []},
    {"name": "Nodule", "color": "#0000ff", "kind": "mask", "attributes": []},
    {"name": "Landmark", "color": "#ffff00", "kind": "point", "attributes": []},
    {"name": "Diameter", "color": "#00ffff", "kind": "line", "attributes": []},
    {
        "name": "Quality",
        "color": "#ff00ff",
        "kind": "classification_image",
        "attributes": [{"name": "value", "type": "choice", "choices": ["good", "poor"]}],
    },
    {
        "name": "Finding",
        "color": "#888888",
        "kind": "classification_series",
        "attributes": [{"name": "value", "type": "choice", "choices": ["normal", "abnormal"]}],
    },
]


def make_series(project: Project, *, instances: int = 2, rows: int = 8, columns: int = 8, tag: str = "") -> Series:
    """A CT series of ``instances`` images of rows x columns with 0.5 mm pixels."""
    tag = tag or uuid.uuid4().hex[:8]
    patient, _ = Patient.objects.get_or_create(project=project, pseudo_id=f"PAT-{tag}")
    study = Study.objects.create(project=project, patient=patient, study_uid=f"2.25.1{uuid.uuid4().int % 10**12}")
    series = Series.objects.create(
        study=study, series_uid=f"2.25.2{uuid.uuid4().int % 10**12}", modality="CT", number=1
    )
    for index in range(instances):
        Instance.objects.create(
            series=series,
            sop_uid=f"2.25.3{uuid.uuid4().int % 10**12}",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            number=index + 1,
            rows=rows,
            columns=columns,
            pixel_spacing=[0.5, 0.5],
            sha256="0" * 64,
            size=1,
            storage_path="unused",
        )
    return series


def make_schema(project: Project) -> LabelSchema:
    return services.label_schema_create(project=project, labels=LABELS)


def label_id(schema: LabelSchema, name: str) -> str:
    return str(schema.labels.get(name=name).pk)


def sop_uids(series: Series) -> list[str]:
    return list(series.instances.order_by("number").values_list("sop_uid", flat=True))
