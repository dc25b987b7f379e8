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


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class InferenceRun(models.Model):
    """One pre-annotation run of a model version over series; its results are Proposal rows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="inference_runs")
    model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="runs")
    series_ids = models.JSONField(default=list)  # the series' UUIDs, as strings, in run order
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED)
    slices_total = models.PositiveIntegerField(default=0)
    slices_done = models.PositiveIntegerField(default=0)
    proposals_count = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=16, blank=True)  # "cuda" | "cpu", once running
    # Whether each proposal gets its uncertainty map (three more passes of the network per slice).
    uncertainty = models.BooleanField(default=True)
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
        return f"inference {self.pk} ({self.status})"


class Proposal(models.Model):
    """What a model proposes on one slice of one series for one label: never an annotation until accepted.

    ``geometry`` has the format of an annotation of the label's kind (mask: rows, columns, rle;
    box: x0, y0, x1, y1), so accepting it unchanged is an ordinary annotation create.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(InferenceRun, on_delete=models.CASCADE, related_name="proposals")
    model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="proposals")
    series = models.ForeignKey("workbench.Series", on_delete=models.CASCADE, related_name="proposals")
    label = models.ForeignKey("annotations.Label", on_delete=models.PROTECT, related_name="proposals")
    sop_instance_uid = models.CharField(max_length=64)
    frame = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=32)  # the label's kind when proposed
    geometry = models.JSONField(default=dict)
    score = models.FloatField()
    uncertainty = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["series", "sop_instance_uid"])]
        ordering = ["sop_instance_uid", "frame", "-score", "id"]

    def __str__(self) -> str:
        return f"proposal {self.pk} ({self.score:.2f})"


class DecisionStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class ProposalDecision(models.Model):
    """One reader's decision on one proposal, in one assignment; readers decide independently.

    ``provenance`` (accepted only): {"edited", "slices": {"<sop>:<frame>": {"added", "removed"}},
    "dice", "seconds_to_accept", "model_version", "proposal", "run", "score"}.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="decisions")
    assignment = models.ForeignKey("annotations.Assignment", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=DecisionStatus.choices)
    annotation = models.ForeignKey(
        "annotations.Annotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()
    provenance = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "assignment"], name="one_decision_per_proposal_and_read")
        ]

    def __str__(self) -> str:
        return f"{self.proposal_id} {self.status}"


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


class RetrainingBase(models.TextChoices):
    NEWEST = "newest", "Fine-tune the project's newest model"
    SCRATCH = "scratch", "Train from scratch"


class RetrainingSettings(models.Model):
    """A project's retraining rule: once ``after_labels`` labels were accepted since the last
    cut-off, freeze ``dataset`` again and train on it (inference.retraining).

    ``generation`` is the claim: every retraining start bumps it with a compare-and-set, together
    with ``cutoff`` (labels accepted after it count towards the next one) and ``last_job``.
    A project without a row never retrains.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="retraining_settings")
    enabled = models.BooleanField(default=False)
    after_labels = models.PositiveIntegerField(default=50)
    dataset = models.ForeignKey("datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    base = models.CharField(max_length=8, choices=RetrainingBase.choices, default=RetrainingBase.NEWEST)
    epochs = models.PositiveIntegerField(default=15)
    generation = models.PositiveIntegerField(default=0)
    cutoff = models.DateTimeField(null=True, blank=True)
    last_job = models.ForeignKey(TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"retraining settings of {self.project}"


class TriageRun(models.Model):
    """One triage of series by a classifier (inference.triage); its results are SeriesScore rows.

    Kept so that the Models page can tell that scoring is pending and how far it got, and a failure
    leaves an end state with its reason. ``series_done`` counts the series scored so far.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="triage_runs")
    model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="triage_runs")
    series_ids = models.JSONField(default=list)  # the series' UUIDs, as strings, in scoring order
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED)
    series_total = models.PositiveIntegerField(default=0)
    series_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"triage {self.pk} ({self.status})"


class SeriesScore(models.Model):
    """A classifier's score for one series (triage: likely-abnormal first), and where it looked.

    ``score`` is the positive class's probability pooled over the series' slices (the model's
    input_spec "pooling"); ``heatmap_rle`` is the GradCAM map of the highest-scoring slice above
    one half, as a mask ({"sop_uid", "frame", "rows", "columns", "rle"}), or null.
    """

    model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="series_scores")
    series = models.ForeignKey("workbench.Series", on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    heatmap_rle = models.JSONField(null=True, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "series"], name="one_triage_score_per_model_series")]
        ordering = ["-score"]

    def __str__(self) -> str:
        return f"{self.series_id} {self.score:.3f}"
