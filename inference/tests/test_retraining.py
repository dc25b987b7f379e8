"""Retraining after N accepted labels (inference.retraining): the check, its hook, its API and page.

The world is datasets' ``labeled`` fixture (six CT series read by bob, accepted by erin), a
dataset over it frozen once with a split seed and an augmentation recipe, and an old model the
retraining fine-tunes. Training itself never runs here: the job stays queued (its enqueue is a
commit callback these tests do not run, or a stub where they do).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from annotations import services as annotation_services
from annotations.geometry import rle_encode
from datasets.manifest import manifest_load
from datasets.models import Dataset
from datasets.services import dataset_create, version_freeze
from datasets.tests.conftest import labeled  # noqa: F401  (the fixture)
from inference import retraining, tasks
from inference.models import JobStatus, ModelVersion, RetrainingSettings, TrainingJob
from workbench.models import AuditEvent, Project

SPLIT = {"seed": 7, "ratios": {"train": 0.5, "validation": 0.25, "test": 0.25}}
RECIPE = {"seed": 3, "transforms": [{"name": "flip", "prob": 0.5}]}


def _old_model(project: Project, *, labels: list[str], created: dt.datetime) -> ModelVersion:
    model = ModelVersion.objects.create(
        id="a" * 64,
        project=project,
        kind="segmentation",
        name="old",
        labels=labels,
        weights_path="models/unused.pt",
        weights_sha256="0" * 64,
    )
    ModelVersion.objects.filter(pk=model.pk).update(created_at=created)
    model.refresh_from_db()
    return model


@pytest.fixture
def world(labeled: dict[str, Any], cast: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    project = labeled["project"]
    dataset = dataset_create(project=project, user=cast["dave"], name="Lesions", selection={})
    first, _ = version_freeze(dataset=dataset, user=cast["dave"], split=SPLIT, augmentation=RECIPE)
    model = _old_model(project, labels=["Nodule"], created=timezone.now() - dt.timedelta(days=1))
    total = retraining.labels_accepted_since(project=project, since=None)
    assert total > 0
    return {**labeled, "dataset": dataset, "first": first, "model": model, "total": total}


def _rule(world: dict[str, Any], user: Any, **changes: Any) -> RetrainingSettings:
    values = {"enabled": True, "after_labels": world["total"], "dataset": world["dataset"], "epochs": 3}
    return retraining.retraining_settings_update(project=world["project"], user=user, **{**values, **changes})


def test_below_the_threshold_nothing_happens(world: dict[str, Any], cast: dict[str, Any]) -> None:
    _rule(world, cast["dave"], after_labels=world["total"] + 1)
    assert retraining.retraining_check(project=world["project"]) is None
    assert world["dataset"].versions.count() == 1
    assert not TrainingJob.objects.exists()
    assert RetrainingSettings.objects.get(project=world["project"]).cutoff is None


def test_at_the_threshold_one_version_and_one_fine_tuning_job(world: dict[str, Any], cast: dict[str, Any]) -> None:
    _rule(world, cast["dave"])
    before = timezone.now()
    job = retraining.retraining_check(project=world["project"])
    assert job is not None
    assert TrainingJob.objects.count() == 1
    versions = list(world["dataset"].versions.order_by("created_at"))
    assert len(versions) == 2
    new = versions[1]
    assert new.parent_id == world["first"].pk
    assert new.note == f"retraining after {world['total']} new labels"
    manifest = manifest_load(new.pk, new.manifest_path)
    assert manifest["split"]["seed"] == 7 and manifest["split"]["ratios"]["train"] == 0.5
    assert manifest["augmentation"] == manifest_load(world["first"].pk, world["first"].manifest_path)["augmentation"]
    assert job.dataset_version == new.pk
    assert job.parent_id == world["model"].pk
    assert job.status == JobStatus.QUEUED
    assert job.config["labels"] == ["Nodule"] and job.config["epochs"] == 3
    row = RetrainingSettings.objects.get(project=world["project"])
    assert row.last_job_id == job.pk and row.generation == 1
    assert row.cutoff is not None and row.cutoff >= before
    assert job.config["retraining"]["cutoff"] == row.cutoff.isoformat()
    assert job.config["retraining"]["labels"] == world["total"]
    event = AuditEvent.objects.get(action="retraining_started")
    assert event.object_id == str(job.pk) and event.details["parent"] == world["model"].pk


def test_no_second_job_while_one_is_queued_or_running(world: dict[str, Any], cast: dict[str, Any]) -> None:
    _rule(world, cast["dave"], after_labels=1)
    job = retraining.retraining_check(project=world["project"])
    assert job is not None
    RetrainingSettings.objects.filter(project=world["project"]).update(cutoff=None)  # every label counts again
    assert retraining.retraining_check(project=world["project"]) is None
    TrainingJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    assert retraining.retraining_check(project=world["project"]) is None
    assert TrainingJob.objects.count() == 1 and world["dataset"].versions.count() == 2


def test_a_finished_job_is_not_followed_by_another_without_new_labels(
    world: dict[str, Any], cast: dict[str, Any]
) -> None:
    _rule(world, cast["dave"], after_labels=1)
    job = retraining.retraining_check(project=world["project"])
    assert job is not None
    TrainingJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE)
    assert retraining.retraining_check(project=world["project"]) is None  # nothing accepted since the cut-off
    assert TrainingJob.objects.count() == 1


def test_two_checks_that_see_the_same_labels_start_one_job(
    world: dict[str, Any], cast: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _rule(world, cast["dave"])
    counted = retraining.labels_accepted_since
    first = retraining.retraining_check

    def racing(**kwargs: Any) -> int:
        # Another check, between this one's read of the rule and its claim, starts a retraining.
        monkeypatch.setattr(retraining, "labels_accepted_since", counted)
        assert first(project=world["project"]) is not None
        return counted(**kwargs)

    monkeypatch.setattr(retraining, "labels_accepted_since", racing)
    assert retraining.retraining_check(project=world["project"]) is None
    assert TrainingJob.objects.count() == 1
    assert RetrainingSettings.objects.get(project=world["project"]).generation == 1


def test_disabled_or_without_a_rule_nothing_happens(world: dict[str, Any], cast: dict[str, Any]) -> None:
    assert retraining.retraining_check(project=world["project"]) is None  # no rule at all
    _rule(world, cast["dave"], enabled=False, after_labels=1)
    assert retraining.retraining_check(project=world["project"]) is None
    assert not TrainingJob.objects.exists() and world["dataset"].versions.count() == 1


def test_a_refused_start_puts_the_cut_off_back(world: dict[str, Any], cast: dict[str, Any]) -> None:
    _rule(world, cast["dave"])
    Dataset.objects.filter(pk=world["dataset"].pk).update(selection={"modalities": ["MR"]})  # selects nothing
    assert retraining.retraining_check(project=world["project"]) is None
    row = RetrainingSettings.objects.get(project=world["project"])
    assert row.cutoff is None and not TrainingJob.objects.exists()
    assert AuditEvent.objects.filter(action="retraining_failed").count() == 1


def test_an_accepted_read_queues_the_check_after_commit(
    world: dict[str, Any], cast: dict[str, Any], run_tasks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[str] = []
    monkeypatch.setattr(tasks.training_job_run, "delay", lambda job_id: queued.append(job_id))
    _rule(world, cast["dave"], after_labels=world["total"] + 1)
    series = world["series"][0]
    (read,) = annotation_services.assignment_create(series=series, readers=[cast["alice"]], user=cast["alice"])
    instance = series.instances.order_by("number").first()
    grid = np.zeros((32, 32), dtype=bool)
    grid[4:6, 4:6] = True
    annotation_services.annotation_create(
        assignment=read,
        user=cast["alice"],
        label=world["schema"].labels.get(name="Nodule"),
        sop_instance_uid=instance.sop_uid,
        geometry={"rows": 32, "columns": 32, "rle": rle_encode(grid)},
    )
    read = annotation_services.assignment_submit(assignment=read, user=cast["alice"])
    with run_tasks():
        annotation_services.assignment_accept(assignment=read, user=cast["erin"])
    job = TrainingJob.objects.get()
    assert queued == [str(job.pk)]
    assert job.config["retraining"]["labels"] == world["total"] + 1


def test_the_check_task_runs_on_the_default_queue() -> None:
    assert tasks.retraining_check.queue == "default"
    assert tasks.retraining_check.name == "inference.retraining_check"


def test_scratch_trains_without_a_parent(world: dict[str, Any], cast: dict[str, Any]) -> None:
    _rule(world, cast["dave"], base="scratch")
    job = retraining.retraining_check(project=world["project"])
    assert job is not None and job.parent is None


def test_an_imported_model_is_not_the_base(world: dict[str, Any], cast: dict[str, Any]) -> None:
    ModelVersion.objects.create(
        id="b" * 64,
        project=world["project"],
        kind="segmentation",
        name="imported",
        labels=["Nodule"],
        config={"provenance": "imported"},
        weights_path="models/unused.pt",
        weights_sha256="0" * 64,
    )
    ModelVersion.objects.filter(pk="b" * 64).update(created_at=world["model"].created_at + dt.timedelta(hours=1))
    _rule(world, cast["dave"])
    job = retraining.retraining_check(project=world["project"])
    assert job is not None and job.parent_id == world["model"].pk


@pytest.mark.slow
def test_the_next_retraining_fine_tunes_the_model_the_last_one_made(
    world: dict[str, Any], cast: dict[str, Any]
) -> None:
    from inference import services

    ModelVersion.objects.filter(pk=world["model"].pk).delete()  # no weights: trained from scratch first
    _rule(world, cast["dave"], epochs=1)
    first = retraining.retraining_check(project=world["project"])
    assert first is not None and first.parent is None
    first = services.training_job_run(job_id=str(first.pk))
    assert first is not None and first.status == JobStatus.DONE, first.error
    # As if the labels had been accepted after that model: they count again.
    RetrainingSettings.objects.filter(project=world["project"]).update(cutoff=timezone.now() - dt.timedelta(days=1))
    second = retraining.retraining_check(project=world["project"])
    assert second is not None and second.parent_id == first.result_id
    second = services.training_job_run(job_id=str(second.pk))
    assert second is not None and second.status == JobStatus.DONE, second.error
    assert second.result is not None and second.result.parent_id == first.result_id
    assert second.result.dataset_version == second.dataset_version
