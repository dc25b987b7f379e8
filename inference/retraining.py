"""Retraining when enough new labels were accepted (issue 11): the project's rule and its check.

A project opts in with a RetrainingSettings row (enabled, after how many labels, which dataset to
freeze again, the base model, epochs). Every accepted read queues ``retraining_check`` after
commit (inference.tasks.retraining_check, on the default queue); once ``after_labels`` labels
were accepted since the last cut-off and no training job of the project is queued or running,
it freezes a new version of the dataset (same split and augmentation as its latest version)
and queues a training job that fine-tunes the project's newest model on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotations.models import Annotation, AssignmentKind, AssignmentStatus
from datasets.models import Dataset, DatasetVersion
from datasets.services import InvalidDataset, version_freeze
from inference.access import TRAIN_ROLES
from inference.models import (
    JobStatus,
    ModelKind,
    ModelVersion,
    RetrainingBase,
    RetrainingSettings,
    TrainingJob,
)
from inference.services import InvalidTraining, training_job_create
from workbench.audit import audit_record
from workbench.models import Project

# Who reads and sets the rule: those who train (the API checks it through workbench.access).
RETRAINING_ROLES = TRAIN_ROLES
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
MAX_EPOCHS = 500


class InvalidRetraining(ValueError):
    """The settings cannot be saved; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def retraining_settings_of(project: Project) -> RetrainingSettings:
    """The project's retraining rule; the defaults (disabled, unsaved) when it never set one."""
    found = RetrainingSettings.objects.filter(project=project).select_related("dataset", "last_job").first()
    return found or RetrainingSettings(project=project)


def retraining_settings_update(
    *,
    project: Project,
    user: Any,
    enabled: bool,
    after_labels: int,
    dataset: Dataset | None,
    base: str = RetrainingBase.NEWEST,
    epochs: int = 15,
) -> RetrainingSettings:
    """Save the project's rule. Admins and ML engineers (checked by the caller). InvalidRetraining
    names a bad field; enabling needs a dataset of this project. The cut-off is kept. Audited
    (retraining_settings_updated)."""
    if isinstance(after_labels, bool) or not isinstance(after_labels, int) or not 1 <= after_labels <= 1_000_000:
        raise InvalidRetraining("after_labels must be a whole number from 1 to 1000000.", field="after_labels")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
        raise InvalidRetraining(f"epochs must be a whole number from 1 to {MAX_EPOCHS}.", field="epochs")
    if base not in RetrainingBase.values:
        raise InvalidRetraining(f"base must be one of: {', '.join(RetrainingBase.values)}.", field="base")
    if dataset is not None and dataset.project_id != project.pk:
        raise InvalidRetraining("The dataset belongs to another project.", field="dataset")
    if enabled and dataset is None:
        raise InvalidRetraining("Choose the dataset to freeze again before enabling retraining.", field="dataset")
    values = {"enabled": bool(enabled), "after_labels": after_labels, "base": base, "epochs": epochs}
    with transaction.atomic():
        row, _ = RetrainingSettings.objects.update_or_create(
            project=project, defaults={**values, "dataset": dataset, "updated_by": user}
        )
        audit_record(
            action="retraining_settings_updated",
            actor=user,
            project=project,
            object_type="project",
            object_id=project.pk,
            details={**values, "dataset": str(dataset.pk) if dataset else None},
        )
    return row


def labels_accepted_since(*, project: Project, since: dt.datetime | None, until: dt.datetime | None = None) -> int:
    """Live annotations in the project's accepted reads (by review time) and decided consensus
    reads (by decision time) accepted after ``since`` (every one when None) and, when given, at
    or before ``until``."""
    read = Q(assignment__kind=AssignmentKind.READ)
    consensus = Q(assignment__kind=AssignmentKind.CONSENSUS)
    if since is not None:
        read &= Q(assignment__reviewed_at__gt=since)
        consensus &= Q(assignment__consensus_state__decided_at__gt=since)
    if until is not None:
        read &= Q(assignment__reviewed_at__lte=until)
        consensus &= Q(assignment__consensus_state__decided_at__lte=until)
    return Annotation.objects.filter(
        read | consensus,
        assignment__project=project,
        assignment__status=AssignmentStatus.ACCEPTED,
        deleted=False,
    ).count()


def retraining_cutoff(row: RetrainingSettings) -> dt.datetime | None:
    """Labels accepted after this count: the last retraining's cut-off, else the newest model's
    creation (the labels it could not have seen), else None (every accepted label)."""
    if row.cutoff is not None:
        return row.cutoff
    newest = ModelVersion.objects.filter(project_id=row.project_id).order_by("-created_at").first()
    return newest.created_at if newest else None


def retraining_check(*, project: Project) -> TrainingJob | None:
    """Start a retraining when the project's rule says so; the new job, or None.

    Nothing happens while the rule is disabled, below its threshold, or while a training job of
    the project is queued or running. Idempotent and safe under concurrency: the start is a
    compare-and-set on the rule's ``generation`` (with the new cut-off), so two checks that see
    the same labels never start two jobs. Then, in one transaction: a new frozen version of the
    rule's dataset (note "retraining after N new labels", the split and augmentation of its
    latest version) and a training job on it, fine-tuning the newest model unless the rule says
    scratch, enqueued after commit. When either is refused the cut-off is put back (the labels
    count again) and retraining_failed is audited with the reason; else retraining_started.
    """
    row = RetrainingSettings.objects.filter(project=project, enabled=True).select_related("dataset").first()
    if row is None or row.dataset is None:
        return None
    if TrainingJob.objects.filter(project=project, status__in=ACTIVE).exists():
        return None
    since = retraining_cutoff(row)
    now = timezone.now()
    count = labels_accepted_since(project=project, since=since, until=now)  # the next check counts after now
    if count < row.after_labels:
        return None
    claimed = RetrainingSettings.objects.filter(pk=row.pk, generation=row.generation, enabled=True).update(
        generation=F("generation") + 1, cutoff=now
    )
    if not claimed:
        return None  # another check started (or the rule changed) since this one read it
    try:
        with transaction.atomic():
            job = _start(row, project=project, count=count, since=since, cutoff=now)
    except (InvalidDataset, InvalidTraining) as exc:
        RetrainingSettings.objects.filter(pk=row.pk, generation=row.generation + 1).update(cutoff=row.cutoff)
        audit_record(
            action="retraining_failed",
            project=project,
            object_type="project",
            object_id=project.pk,
            details={"labels": count, "after_labels": row.after_labels, "field": exc.field, "error": str(exc)},
        )
        return None
    return job


def _start(
    row: RetrainingSettings, *, project: Project, count: int, since: dt.datetime | None, cutoff: dt.datetime
) -> TrainingJob:
    assert row.dataset is not None  # checked by the caller
    version = _refreeze(row.dataset, user=row.updated_by, note=f"retraining after {count} new labels")
    parent = newest_model(project) if row.base == RetrainingBase.NEWEST else None
    retraining = {
        "labels": count,
        "after_labels": row.after_labels,
        "since": since.isoformat() if since else None,
        "cutoff": cutoff.isoformat(),
    }
    job = training_job_create(
        project=project,
        version=version,
        user=row.updated_by,
        labels=list(parent.labels) if parent is not None else None,
        epochs=row.epochs,
        parent=parent,
        options={"retraining": retraining},
    )
    RetrainingSettings.objects.filter(pk=row.pk).update(last_job=job)
    audit_record(
        action="retraining_started",
        project=project,
        object_type="training_job",
        object_id=job.pk,
        details={**retraining, "version": version.pk, "parent": parent.pk if parent else None},
    )
    return job


def newest_model(project: Project) -> ModelVersion | None:
    """The project's newest U-Net trained in the app.

    Imported models and their fine-tuned children are left out: an import can be fine-tuned by
    hand (training jobs), but automatic retraining keeps to the app's own networks, which it knows
    train on crops at any size; an imported one may lack a declared input size.
    """
    for model in ModelVersion.objects.filter(project=project, kind=ModelKind.SEGMENTATION).order_by("-created_at")[:50]:
        if model.config.get("provenance") != "imported" and not model.config.get("handler"):
            return model
    return None


def _refreeze(dataset: Dataset, *, user: Any, note: str) -> DatasetVersion:
    """A new version of the dataset with the split seed, augmentation and label source of its latest one."""
    from datasets.manifest import manifest_load

    latest = dataset.versions.order_by("-created_at").first()
    split: dict[str, Any] | None = None
    augmentation: dict[str, Any] | None = None
    label_source, reader = "", ""
    if latest is not None:
        manifest = manifest_load(latest.pk, latest.manifest_path)
        split = split_request(manifest.get("split") or {})
        augmentation = manifest.get("augmentation") or None
        source = manifest.get("label_source") or {}
        label_source, reader = source.get("mode") or "", source.get("reader") or ""
    version, _ = version_freeze(
        dataset=dataset,
        user=user,
        note=note,
        split=split,
        augmentation=augmentation,
        label_source=label_source,
        reader=reader,
    )
    return version


def split_request(frozen: dict[str, Any]) -> dict[str, Any]:
    """A manifest's ``split`` block back into the request that makes it (datasets.splits.SplitSpec)."""
    request: dict[str, Any] = {"seed": frozen.get("seed", 0)}
    if frozen.get("folds"):
        request["folds"] = frozen["folds"]
        request["test"] = frozen.get("test") or 0.0
    elif frozen.get("ratios"):
        request["ratios"] = frozen["ratios"]
    return request
