"""Datasets, their frozen versions and export jobs.

A version's content lives in its manifest (a JSON file in the store, named by its own sha256,
which is also the version's id); the row only keeps what lists and pages show. Nothing here
changes a frozen version: rows change only through datasets.services.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from workbench.models import Project


class Dataset(models.Model):
    """A named selection inside a project; freezing it makes a version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)  # becomes the card's "intended use"
    # datasets.selection.Selection.to_dict(): modalities, series, labels, statuses, dates, include/exclude.
    selection = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_dataset_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    """An immutable snapshot. ``id`` is the sha256 of the canonical manifest."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    note = models.TextField(blank=True)
    manifest_path = models.CharField(max_length=300)
    samples = models.PositiveIntegerField()
    instances = models.PositiveIntegerField()
    annotations = models.PositiveIntegerField()
    # Per split: samples, patients, label counts; the leakage check's verdict; the label source.
    summary = models.JSONField(default=dict)
    # Which reads gave the samples their labels (datasets.labelsource); versions frozen before
    # there was a choice merged every reader's labels ("merged", the migration's default).
    label_source = models.CharField(max_length=16)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.dataset} @ {self.id[:12]}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Export(models.Model):
    """One archive of one version in one format with one set of options; built once, then reused."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="exports")
    format = models.CharField(max_length=16)
    options = models.JSONField(default=dict, blank=True)
    options_key = models.CharField(max_length=64)  # sha256 of the canonical options
    status = models.CharField(max_length=8, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    archive_path = models.CharField(max_length=300, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The claim's fence (see datasets.claims): numbered claims, one count of lapsed ones, and the
    # heartbeat that keeps the current one alive.
    claim = models.PositiveIntegerField(default=0)
    lost_claims = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "format", "options_key"], name="unique_export_per_options")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.version_id[:12]} {self.format}"
