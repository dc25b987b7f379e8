"""A classifier trained in the app from a frozen version with series classifications (issue 11)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from annotations import services as annotation_services
from datasets.services import dataset_create, version_freeze
from inference.data import version_class_slices_write
from inference.models import JobStatus, ModelVersion, TrainingJob
from inference.services import InvalidTraining, training_job_create
from tests.annotation_factory import make_schema
from tests.helpers import ingest
from workbench.demo import DemoPatient, phantom_slice, to_bytes, training_datasets, training_patients
from workbench.models import Project, Series

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SLICES, SIZE = 4, 32
NO_LESION = (0.5, 0.5, 5.0)  # a centre slice far outside the series: no slice shows a lesion
SPLIT = {"seed": 1, "ratios": {"train": 0.5, "validation": 0.5, "test": 0.0}}


def _is_normal(series: Series) -> bool:
    """Whether a stored series is a lesion-free phantom, from its pixels (its identity is gone)."""
    instances = list(series.instances.order_by("number"))
    for k, instance in enumerate(instances):
        with default_storage.open(instance.storage_path, "rb") as stream:
            stored = pydicom.dcmread(stream).pixel_array
        if not np.array_equal(stored, phantom_slice(SIZE, k / (len(instances) - 1), NO_LESION)):
            return False
    return True


@pytest.fixture
def classified(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> dict[str, Any]:
    """Eight CT series, half with a lesion; each read by bob as Finding normal/abnormal, accepted by erin."""
    sick = training_patients(4)
    healthy = tuple(DemoPatient(f"PHANTOM^NORMAL{n}", f"NRM{n:05d}", NO_LESION) for n in range(4))
    files = {
        f"ct-{k:03d}.dcm": to_bytes(ds)
        for k, ds in enumerate(training_datasets(sick + healthy, slices=SLICES, size=SIZE))
    }
    with run_tasks():
        ingest(project_a, files, user=cast["alice"])
    schema = make_schema(project_a)
    finding = schema.labels.get(name="Finding")
    series = list(Series.objects.filter(study__project=project_a).order_by("series_uid"))
    assert len(series) == 8
    truth = {}
    for one in series:
        truth[one.pk] = "normal" if _is_normal(one) else "abnormal"
        (assignment,) = annotation_services.assignment_create(series=one, readers=[cast["bob"]], user=cast["alice"])
        annotation_services.annotation_create(
            assignment=assignment, user=cast["bob"], label=finding, attributes={"value": truth[one.pk]}
        )
        assignment = annotation_services.assignment_submit(assignment=assignment, user=cast["bob"])
        annotation_services.assignment_accept(assignment=assignment, user=cast["erin"])
    assert sorted(truth.values()) == ["abnormal"] * 4 + ["normal"] * 4
    dataset = dataset_create(project=project_a, user=cast["dave"], name="Findings", selection={})
    version, _ = version_freeze(dataset=dataset, user=cast["dave"], split=SPLIT)
    return {"project": project_a, "version": version, "truth": truth}


def test_model_train_trains_a_classifier_and_registers_its_auc(classified: dict[str, Any], tmp_path: Any) -> None:
    version = classified["version"]
    counts = version_class_slices_write(version=version, label="Finding", classes=["normal", "abnormal"], root=tmp_path)
    assert counts["train"] + counts["validation"] == 8 * SLICES  # every slice carries its series' class
    classes = {int(np.load(p)["label"]) for p in tmp_path.glob("*/*.npz")}
    assert classes == {0, 1}

    out = io.StringIO()
    call_command(
        "model_train",
        project=classified["project"].slug,
        version=version.pk,
        kind="classification",
        label="Finding",
        epochs=2,
        size=SIZE,
        stdout=out,
    )
    model_id, metric = out.getvalue().split()
    model = ModelVersion.objects.get(pk=model_id)
    assert metric.startswith("validation_auc=")
    assert float(metric.split("=")[1]) == pytest.approx(model.metrics["validation_auc"], abs=1e-3)
    assert 0.0 <= model.metrics["validation_auc"] <= 1.0 and model.metrics["epochs_run"] == 2
    assert model.kind == "classification" and model.labels == ["Finding"]
    assert model.input_spec["classes"] == ["normal", "abnormal"] and model.input_spec["positive"] == "abnormal"
    assert model.input_spec["modality"] == "CT" and model.dataset_version == version.pk
    assert model.config["label"] == "Finding" and model.config["size"] == SIZE
    job = TrainingJob.objects.get()
    assert job.status == JobStatus.DONE and job.result == model
    assert [e["epoch"] for e in job.progress] == [1, 2] and all("auc" in e for e in job.progress)


def test_a_classifier_needs_a_classification_label_with_two_classes(classified: dict[str, Any]) -> None:
    project, version = classified["project"], classified["version"]
    with pytest.raises(InvalidTraining, match="no classification label 'Nodule'") as caught:
        training_job_create(
            project=project, version=version, user=None, kind="classification", labels=["Nodule"], enqueue=False
        )
    assert caught.value.field == "labels"
    with pytest.raises(InvalidTraining, match="exactly one"):
        training_job_create(
            project=project,
            version=version,
            user=None,
            kind="classification",
            labels=["Finding", "Quality"],
            enqueue=False,
        )
    job = training_job_create(project=project, version=version, user=None, kind="classification", enqueue=False)
    assert job.config["label"] in ("Finding", "Quality") and job.kind == "classification"
    with pytest.raises(CommandError, match="labels"):
        call_command(
            "model_train", project=project.slug, version=version.pk, kind="classification", label="Lung", epochs=1
        )
    with pytest.raises(InvalidTraining, match="segmentation and classification"):
        training_job_create(project=project, version=version, user=None, kind="detection", enqueue=False)


def _parameters(weights: bytes) -> dict[str, Any]:
    """The learnable tensors of a state dict (DenseNet's batch-norm running statistics move even at lr 0)."""
    import torch

    from inference.handlers.base import ClassifyConfig
    from inference.handlers.classification import build_network

    state = torch.load(io.BytesIO(weights), weights_only=True)
    learnable = {name for name, _ in build_network(ClassifyConfig(label="Finding")).named_parameters()}
    return {name: tensor for name, tensor in state.items() if name in learnable}


def test_a_classifier_is_fine_tuned_from_its_parents_weights(
    classified: dict[str, Any], project_b: Project, cast: dict[str, Any]
) -> None:
    from inference.services import model_weights, training_job_run

    project, version = classified["project"], classified["version"]
    job = training_job_create(
        project=project,
        version=version,
        user=None,
        kind="classification",
        labels=["Finding"],
        epochs=2,
        options={"size": SIZE},
        enqueue=False,
    )
    parent = training_job_run(job_id=str(job.pk)).result  # type: ignore[union-attr]
    assert parent is not None

    # At learning rate 0 every learnable weight comes out as the parent's: training started from them.
    child_job = training_job_create(
        project=project,
        version=version,
        user=None,
        kind="classification",
        parent=parent,
        epochs=1,
        options={"learning_rate": 0.0, "size": 2 * SIZE},  # the parent's size wins: the weights must fit
        enqueue=False,
    )
    assert child_job.parent == parent and child_job.config["label"] == "Finding"  # the parent's label
    assert child_job.config["size"] == SIZE and child_job.config["network"] == parent.config["network"]
    done = training_job_run(job_id=str(child_job.pk))
    assert done is not None and done.status == JobStatus.DONE and done.result is not None
    child = done.result
    assert child.parent == parent and child.pk != parent.pk and child.kind == "classification"
    mine, theirs = _parameters(model_weights(child)), _parameters(model_weights(parent))
    assert mine.keys() == theirs.keys() and len(mine) > 100
    assert all(np.array_equal(mine[k].numpy(), theirs[k].numpy()) for k in mine)
    from inference import selectors

    assert selectors.model_card(child)["provenance"]["source"] == "fine-tuned"
    assert selectors.model_card(child)["provenance"]["parent"] == parent.pk

    # A parent of another kind, of other classes or of another project is refused, saying why.
    with pytest.raises(InvalidTraining, match="keeps the parent's classes") as caught:
        training_job_create(
            project=project, version=version, user=None, kind="classification", labels=["Quality"], parent=parent
        )
    assert caught.value.field == "labels"
    with pytest.raises(InvalidTraining, match="segmentation model is fine-tuned from a segmentation model"):
        training_job_create(project=project, version=version, user=None, parent=parent, enqueue=False)
    stranger = ModelVersion.objects.filter(pk=parent.pk).first()
    assert stranger is not None
    stranger.project = project_b
    with pytest.raises(InvalidTraining, match="another project"):
        training_job_create(
            project=project, version=version, user=None, kind="classification", parent=stranger, enqueue=False
        )
    with pytest.raises(CommandError, match="No model version 'nope'"):
        call_command("model_train", project=project.slug, version=version.pk, kind="classification", parent="nope")
