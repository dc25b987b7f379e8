"""Training in the app from the demo's frozen version: a registered model version, through the command."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.core.management import call_command

from datasets.models import DatasetVersion
from inference.models import JobStatus, ModelVersion, TrainingJob
from inference.services import model_version_register, model_weights

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_model_train_on_the_demo_registers_a_content_addressed_version() -> None:
    call_command("seed_demo", stdout=io.StringIO(), slices=8, size=64, training_patients=8, model=False)
    version = DatasetVersion.objects.get()
    out = io.StringIO()
    call_command("model_train", project="demo", version=version.pk, epochs=15, size=64, stdout=out)
    model_id, metric = out.getvalue().split()
    model = ModelVersion.objects.get(pk=model_id)
    # The 0.8 target is not reached yet at 64 pixels per-slice Dice (about 0.54): see the report.
    assert float(metric.split("=")[1]) == pytest.approx(model.metrics["validation_dice"], abs=1e-3)
    assert model.metrics["validation_dice"] > 0.3
    assert model.dataset_version == version.pk and model.labels == ["Nodule"] and model.kind == "segmentation"
    assert model.input_spec["modality"] == "CT" and model.seed == 0 and "monai" in model.code_version
    job = TrainingJob.objects.get()
    assert (
        job.status == JobStatus.DONE and job.result == model and len(job.progress) == job.result.metrics["epochs_run"]
    )
    # Content-addressed and immutable: registering the same weights and config again is the same row.
    again, created = model_version_register(
        project=model.project,
        kind=model.kind,
        name="other name",
        weights=model_weights(model),
        config=model.config,
        labels=model.labels,
        input_spec=model.input_spec,
    )
    assert not created and again.pk == model.pk and again.name == model.name


def test_the_demo_trains_its_model_then_pre_annotates_what_nobody_labelled(run_tasks: Any) -> None:
    from annotations.models import Annotation, Assignment
    from inference.models import InferenceRun, Proposal, RunStatus
    from inference.services import training_job_run

    call_command("seed_demo", stdout=io.StringIO(), slices=8, size=64, training_patients=8)
    job = TrainingJob.objects.get()  # queued by the demo for the worker of `make run`
    assert job.config["then_preannotate"] and job.status == JobStatus.QUEUED and job.created_by.username == "mlengineer"
    TrainingJob.objects.filter(pk=job.pk).update(config={**job.config, "epochs": 3})  # the chain, not the Dice
    human = {a.pk: a.geometry for a in Annotation.objects.all()}
    with run_tasks():
        done = training_job_run(job_id=str(job.pk))
    assert done is not None and done.status == JobStatus.DONE and done.result is not None
    run = InferenceRun.objects.get(model=done.result)
    assert run.status == RunStatus.DONE, run.error
    # The radiologist's CT reads, all empty: proposals are what they find when they open one.
    reads = Assignment.objects.filter(reader__username="radiologist", series__modality="CT")
    assert {str(s) for s in reads.values_list("series_id", flat=True)} == set(run.series_ids)
    assert not Annotation.objects.filter(assignment__in=reads).exists() and run.proposals_count > 0
    assert set(Proposal.objects.filter(run=run).values_list("series_id", flat=True)) <= {
        uuid.UUID(s) for s in run.series_ids
    }
    # Proposals are their own rows: the readers' annotations are as they were.
    assert {a.pk: a.geometry for a in Annotation.objects.all()} == human
    # A second seed_demo does not queue another job.
    call_command("seed_demo", stdout=io.StringIO(), slices=8, size=64, training_patients=8)
    assert TrainingJob.objects.count() == 1
