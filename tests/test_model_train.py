"""Training in the app from the demo's frozen version: Dice of at least 0.8, registered, fine-tunable."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import pytest
from django.core.management import call_command

from datasets.models import DatasetVersion
from inference import selectors
from inference.models import JobStatus, ModelVersion, TrainingJob
from inference.services import model_version_register, model_weights, training_job_create, training_job_run

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EPOCHS = 25
SIZE = 128  # the demo's 64-pixel slices, upsampled: the 2-D U-Net sees the small lesions' edges


def test_model_train_on_the_demo_reaches_a_dice_of_0_8_and_fine_tunes_from_it() -> None:
    call_command("seed_demo", stdout=io.StringIO(), slices=8, size=64, training_patients=8, model=False)
    version = DatasetVersion.objects.get()
    out = io.StringIO()
    started = time.monotonic()
    call_command("model_train", project="demo", version=version.pk, epochs=EPOCHS, size=SIZE, stdout=out)
    print(f"training: {time.monotonic() - started:.1f} s, {out.getvalue().strip()}")
    model_id, metric = out.getvalue().split()
    model = ModelVersion.objects.get(pk=model_id)
    # Dice over each 3-D validation volume at the stored resolution, mean over the volumes.
    assert float(metric.split("=")[1]) == pytest.approx(model.metrics["validation_dice"], abs=1e-3)
    assert model.metrics["validation_dice"] >= 0.8
    assert model.dataset_version == version.pk and model.labels == ["Nodule"] and model.kind == "segmentation"
    assert model.input_spec["modality"] == "CT" and model.seed == 0 and "monai" in model.code_version
    job = TrainingJob.objects.get()
    assert (
        job.status == JobStatus.DONE and job.result == model and len(job.progress) == job.result.metrics["epochs_run"]
    )
    card = selectors.model_card(model)
    assert card["provenance"]["source"] == "trained" and card["metrics_per_label"]["Nodule"] >= 0.8
    assert card["data"]["dataset"]["name"] and sum(card["data"]["splits"].values()) == version.samples
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

    # Fine-tuning starts from the parent's weights: at learning rate 0 they come out unchanged,
    # and the first epoch's validation Dice is the parent's.
    child_job = training_job_create(
        project=model.project,
        version=version,
        user=None,
        parent=model,
        epochs=1,
        options={"learning_rate": 0.0},
        enqueue=False,
    )
    assert child_job.config["size"] == SIZE and child_job.config["labels"] == ["Nodule"]
    done = training_job_run(job_id=str(child_job.pk))
    assert done is not None and done.status == JobStatus.DONE and done.result is not None
    child = done.result
    assert child.parent == model and child.pk != model.pk
    assert model_weights(child) == model_weights(model) or _same_tensors(model_weights(child), model_weights(model))
    assert done.progress[0]["dice"] == pytest.approx(model.metrics["validation_dice"], abs=1e-4)
    assert selectors.model_card(child)["provenance"] == {
        **selectors.model_card(child)["provenance"],
        "source": "fine-tuned",
        "parent": model.pk,
        "dataset_version": version.pk,
    }


def _same_tensors(a: bytes, b: bytes) -> bool:
    import torch

    left, right = (torch.load(io.BytesIO(w), weights_only=True) for w in (a, b))
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_the_demo_trains_its_model_then_pre_annotates_what_nobody_labelled(run_tasks: Any) -> None:
    from annotations.models import Annotation, Assignment
    from inference.models import InferenceRun, Proposal, RunStatus
    from inference.services import training_job_run

    call_command("seed_demo", stdout=io.StringIO(), slices=8, size=64, training_patients=8)
    job = TrainingJob.objects.get()  # queued by the demo for the worker of `make run`
    assert job.config["then_preannotate"] and job.status == JobStatus.QUEUED and job.created_by.username == "mlengineer"
    assert job.config["epochs"] == EPOCHS  # the demo trains as the Dice test above does
    human = {a.pk: a.geometry for a in Annotation.objects.all()}
    with run_tasks():
        done = training_job_run(job_id=str(job.pk))
    assert done is not None and done.status == JobStatus.DONE and done.result is not None
    assert done.result.metrics["validation_dice"] >= 0.8
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
