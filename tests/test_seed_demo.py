"""make run's demo: users per role, de-identified studies, a label schema, a worklist, the lesion
ground truth and the ML engineer's dataset."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from annotations.geometry import rle_decode
from annotations.models import Annotation, Assignment, AssignmentStatus, LabelSchema
from datasets.augment import validate_recipe
from datasets.manifest import manifest_load
from datasets.models import Dataset
from workbench.demo import PATIENTS, lesion_mask, phantom_of, training_patients
from workbench.management.commands.seed_demo import DEMO_AUGMENTATION, DEMO_DATASET
from workbench.models import Instance, Membership, Project, Series

pytestmark = pytest.mark.django_db


def _seed(**options: int) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_is_complete_and_idempotent() -> None:
    out = _seed(slices=2, training_patients=2) + _seed(slices=2, training_patients=2)
    project = Project.objects.get(slug="demo")
    assert set(Membership.objects.filter(project=project).values_list("role", flat=True)) == {
        "admin",
        "radiologist",
        "reviewer",
        "compliance",
        "ml_engineer",
    }
    # three patients with a CT and a US study each, a follow-up CT, and two training patients
    assert Instance.objects.filter(series__study__project=project).count() == 2 * 4 + 2 * 3 + 2 * 2
    assert Instance.objects.filter(series__modality="US", pixel_cleaned=True).count() == 6
    assert LabelSchema.objects.filter(project=project).count() == 1
    assert Assignment.objects.filter(project=project, reader__username="radiologist").count() == 7
    assert "password:" in out and "HARRIS" not in out
    # two slices are the ends of the series, where no lesion reaches: no ground truth, no dataset
    assert not Annotation.objects.exists() and not Dataset.objects.exists()
    assert "No demo dataset" in out


def _volume(series: Series) -> tuple[list[str], np.ndarray]:
    uids, pixels = [], []
    for instance in series.instances.order_by("number"):
        with default_storage.open(instance.storage_path, "rb") as stream:
            pixels.append(pydicom.dcmread(stream).pixel_array)
        uids.append(instance.sop_uid)
    return uids, np.stack(pixels)


def test_every_ct_series_has_its_lesion_as_accepted_masks_and_one_dataset_version() -> None:
    _seed(slices=8, size=48, training_patients=3)
    first = {a.pk: a.geometry for a in Annotation.objects.all()}
    dataset = Dataset.objects.get(name=DEMO_DATASET)
    (version,) = dataset.versions.all()
    out = _seed(slices=8, size=48, training_patients=3)
    assert {a.pk: a.geometry for a in Annotation.objects.all()} == first, "a re-run adds and changes nothing"
    assert list(dataset.versions.values_list("pk", flat=True)) == [version.pk]
    assert str(dataset.pk) in out and version.pk in out

    project = Project.objects.get(slug="demo")
    ct = Series.objects.filter(study__project=project, modality="CT")
    assert ct.count() == 4 + 3
    truth = Assignment.objects.filter(project=project, reader__username="reader", status=AssignmentStatus.ACCEPTED)
    assert set(truth.values_list("series", flat=True)) == set(ct.values_list("pk", flat=True))
    worklist = Assignment.objects.filter(project=project, reader__username="radiologist")
    assert worklist.count() == 7 and worklist.filter(series__modality="CT").count() == 4, "not the training patients"
    candidates = PATIENTS + training_patients(3)
    for series in ct:
        uids, volume = _volume(series)
        patient = phantom_of(volume, candidates)
        assert patient is not None
        drawn = {
            a.sop_instance_uid: rle_decode(a.geometry["rle"], 48, 48)
            for a in Annotation.objects.filter(assignment__series=series, label__name="Nodule", deleted=False)
        }
        for k, uid in enumerate(uids):
            expected = lesion_mask(48, k / 7, patient.lesion)
            if expected.any():
                assert np.array_equal(drawn.pop(uid), expected)
        assert not drawn, "no mask on a slice the lesion does not reach"

    manifest = manifest_load(version.pk, version.manifest_path)
    assert {s["series_uid"] for s in manifest["samples"]} == set(ct.values_list("series_uid", flat=True))
    assert {s["split"] for s in manifest["samples"]} == {"train", "validation", "test"}
    assert {a["label"] for s in manifest["samples"] for a in s["annotations"]} == {"Nodule"}
    assert manifest["augmentation"] == validate_recipe(DEMO_AUGMENTATION)
    assert manifest["split"]["ratios"] == {"train": 0.7, "validation": 0.15, "test": 0.15}
    assert version.summary["leakage"] == {}
    assert dataset.created_by.username == "mlengineer"
