"""The model registry and training jobs. Rows change only through inference.services."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from workbench.models import Project


class ModelKind(models.TextChoices):
    SEGMENTATION = "segmentation", "Segmentation"
    DETECTION = "detection", "Detection"
    CLASSIFICATION = "classification", "Classification"


class ModelVersion(models.Model):
    """An immutable model: ``id`` is the sha256 of its weights and its canonical config."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    name = models.CharField(max_length=100)
    labels = models.JSONField(default=list)  # label-schema label names, in class order (1, 2, ...)
    # {"modality", "dims": 2|3, "spacing": [..] | None, "window": [low, high], "size": int}
    input_spec = models.JSONField(default=dict)
    config = models.JSONField(default=dict)  # the handler's config (handlers.base.TrainConfig)
    metrics = models.JSONField(default=dict)
    weights_path = models.CharField(max_length=300)
    weights_sha256 = models.CharField(max_length=64)
    # Provenance: the frozen dataset version, the parent it was fine-tuned from, the code, the seed.
    dataset_version = models.CharField(max_length=64, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    code_version = models.CharField(max_length=100, blank=True)
    seed = models.IntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.id[:12]}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class TrainingJob(models.Model):
    """One training run from a frozen dataset version; ``progress`` holds one entry per epoch."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_jobs")
    dataset_version = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=ModelKind.choices, default=ModelKind.SEGMENTATION)
    config = models.JSONField(default=dict)
    parent = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    progress = models.JSONField(default=list)  # [{"epoch", "loss", "dice"}]
    result = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training {self.pk} ({self.status})"


class UncertaintyScore(models.Model):
    """How unsure one model version is about one series (inference.handlers.uncertainty)."""

    model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="uncertainty_scores")
    series = models.ForeignKey("workbench.Series", on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    method = models.CharField(max_length=32, default="tta_entropy")
    slices = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "series"], name="one_score_per_model_series")]
        ordering = ["-score"]

    def __str__(self) -> str:
        return f"{self.series_id} {self.score:.3f}"


class CaseReservation(models.Model):
    """A case served to one reader by active learning; while it holds, nobody else is served it.

    It holds until ``expires_at``. A served read the reader has not started by then is withdrawn
    and its series goes back to the pool (inference.active_learning.reservations_expire); once the
    reader starts it, ``claimed_at`` is set and the read is theirs like any other.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    series = models.ForeignKey("workbench.Series", on_delete=models.CASCADE, related_name="+")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignment = models.ForeignKey(
        "annotations.Assignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.FloatField(null=True, blank=True)
    reserved_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-reserved_at"]
        indexes = [models.Index(fields=["project", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.series_id} for {self.reader_id} until {self.expires_at:%H:%M}"
