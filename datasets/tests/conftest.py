"""A project with accepted lesion labels, made through the real pipeline and annotation services."""

from __future__ import annotations

from typing import Any

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage

from annotations import services as annotation_services
from annotations.geometry import rle_encode
from annotations.models import Assignment, LabelSchema
from tests.annotation_factory import make_schema
from tests.helpers import ingest
from workbench.demo import lesion_mask, phantom_slice, to_bytes, training_datasets, training_patients
from workbench.models import Project, Series

PATIENTS = 6
SLICES = 4
SIZE = 32


def annotate(assignment: Assignment, schema: LabelSchema, lesion: tuple[float, float, float], reader: Any) -> None:
    """The lesion's true mask on each slice that shows it, and a box around it on the first."""
    mask_label = schema.labels.get(name="Nodule")
    box_label = schema.labels.get(name="Lesion")
    instances = list(assignment.series.instances.order_by("number"))
    boxed = False
    for k, instance in enumerate(instances):
        z = k / max(1, len(instances) - 1)
        mask = lesion_mask(SIZE, z, lesion)
        if not mask.any():
            continue
        annotation_services.annotation_create(
            assignment=assignment,
            user=reader,
            label=mask_label,
            sop_instance_uid=instance.sop_uid,
            geometry={"rows": SIZE, "columns": SIZE, "rle": rle_encode(mask)},
        )
        if not boxed:
            rows, cols = np.nonzero(mask)
            annotation_services.annotation_create(
                assignment=assignment,
                user=reader,
                label=box_label,
                sop_instance_uid=instance.sop_uid,
                geometry={  # around the lesion's pixels, edge to edge, as a reader draws it
                    "x0": cols.min() - 0.5,
                    "y0": rows.min() - 0.5,
                    "x1": cols.max() + 0.5,
                    "y1": rows.max() + 0.5,
                },
                attributes={"suspicious": True},
            )
            boxed = True


@pytest.fixture
def labeled(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> dict[str, Any]:
    """Six CT patients in project A, each series read by bob, accepted by erin."""
    patients = training_patients(PATIENTS)
    files = {
        f"ct-{k:03d}.dcm": to_bytes(ds) for k, ds in enumerate(training_datasets(patients, slices=SLICES, size=SIZE))
    }
    with run_tasks():
        ingest(project_a, files, user=cast["alice"])
    schema = make_schema(project_a)
    series = list(
        Series.objects.filter(study__project=project_a).select_related("study__patient").order_by("series_uid")
    )
    assert len(series) == PATIENTS
    for one in series:
        (assignment,) = annotation_services.assignment_create(series=one, readers=[cast["bob"]], user=cast["alice"])
        annotate(assignment, schema, _lesion_of(one, patients), cast["bob"])
        assignment = annotation_services.assignment_submit(assignment=assignment, user=cast["bob"])
        annotation_services.assignment_accept(assignment=assignment, user=cast["erin"])
    return {"project": project_a, "schema": schema, "series": series}


def _lesion_of(series: Series, patients: Any) -> tuple[float, float, float]:
    """Which training patient a stored series is, from its pixels (its identity is gone)."""
    volume = []
    for instance in series.instances.order_by("number"):
        with default_storage.open(instance.storage_path, "rb") as stream:
            volume.append(pydicom.dcmread(stream).pixel_array)
    last = len(volume) - 1
    (found,) = [
        p
        for p in patients
        if all(np.array_equal(v, phantom_slice(SIZE, k / last, p.lesion)) for k, v in enumerate(volume))
    ]
    return found.lesion
