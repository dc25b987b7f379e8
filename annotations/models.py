"""Label schemas, assignments, annotations and their revisions.

No business logic lives here (see annotations.services): rows change only through
the services, which keep ``Annotation.revision`` and the revision log in step.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from workbench.models import Project, Series


class LabelKind(models.TextChoices):
    BOX = "box", "Box"
    POLYGON = "polygon", "Polygon"
    FREEHAND = "freehand", "Freehand"
    MASK = "mask", "Mask"
    POINT = "point", "Point"
    LINE = "line", "Line measurement"
    ELLIPSE = "ellipse", "Ellipse"
    ANGLE = "angle", "Angle"
    CLASSIFICATION_IMAGE = "classification_image", "Image classification"
    CLASSIFICATION_SERIES = "classification_series", "Series classification"


class LabelSchema(models.Model):
    """One version of a project's label set; a change makes a new version, old ones stay."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_schemas")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="unique_schema_version")]
        ordering = ["project", "-version"]

    def __str__(self) -> str:
        return f"{self.project} labels v{self.version}"


class Label(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7)  # "#rrggbb"
    kind = models.CharField(max_length=32, choices=LabelKind.choices)
    # [{"name", "type": boolean|choice|number|text, "choices": [...]}]
    attributes = models.JSONField(default=list, blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["schema", "name"], name="unique_label_name_per_schema")]
        ordering = ["order"]

    def __str__(self) -> str:
        return self.name


class AssignmentStatus(models.TextChoices):
    TODO = "todo", "To do"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted"
    ACCEPTED = "accepted", "Accepted"
    RETURNED = "returned", "Returned"


LOCKED_STATUSES = frozenset({AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED})


class Priority(models.IntegerChoices):
    """How soon a read is wanted, as a RIS worklist says it; higher is sooner."""

    LOW = 0, "Low"
    ROUTINE = 1, "Routine"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class AssignmentKind(models.TextChoices):
    READ = "read", "Reader's read"
    CONSENSUS = "consensus", "Consensus"


class Assignment(models.Model):
    """One series given to one reader; readers of the same series never see each other's labels.

    ``kind`` consensus: the one consensus read of a series (docs/decisions/0012), with no reader.
    Its annotations are written through the same services, so they keep revisions like a
    reader's; only reviewers and admins see it (annotations.access), and it is in no reader's
    list, no agreement figure and no review queue.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="assignments")
    kind = models.CharField(max_length=16, choices=AssignmentKind.choices, default=AssignmentKind.READ)
    # None for a consensus read, which is nobody's.
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.TODO)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.ROUTINE)
    comment = models.TextField(blank=True)  # the reviewer's, when returned
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "reader"], name="unique_reader_per_series"),
            models.UniqueConstraint(
                fields=["series"], condition=models.Q(kind="consensus"), name="one_consensus_per_series"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="consensus", reader__isnull=True) | models.Q(kind="read", reader__isnull=False),
                name="consensus_has_no_reader",
            ),
        ]
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return (
            f"{self.series} consensus" if self.kind == AssignmentKind.CONSENSUS else f"{self.series} for {self.reader}"
        )

    @property
    def reader_name(self) -> str:
        """The reader's username; "consensus" for the consensus read."""
        return self.reader.get_username() if self.reader is not None else "consensus"


class Source(models.TextChoices):
    HUMAN = "human", "Human"
    MODEL = "model", "Model proposal"
    FUSION = "fusion", "Fused from the readers"


class Annotation(models.Model):
    """The current state of one annotation. ``revision`` counts its saves; each is in AnnotationRevision."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="annotations")
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="annotations")
    sop_instance_uid = models.CharField(max_length=64, blank=True)  # blank for series classifications
    frame = models.PositiveIntegerField(default=0)
    geometry = models.JSONField(default=dict)
    attributes = models.JSONField(default=dict, blank=True)
    revision = models.PositiveIntegerField(default=1)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField()
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.HUMAN)
    # Room for model proposals (issue: later): which model version and which proposal it came from.
    model_version = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 (API contract: null = no model)
    proposal = models.UUIDField(null=True, blank=True)
    client_id = models.UUIDField(null=True, blank=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="unique_client_id_per_assignment",
            )
        ]
        indexes = [models.Index(fields=["assignment", "sop_instance_uid"])]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.label} r{self.revision}"


class RevisionAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"


class AnnotationRevision(models.Model):
    """Every saved state of an annotation, kept forever: who, when, what changed, and the snapshot."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    action = models.CharField(max_length=8, choices=RevisionAction.choices)
    changes = models.JSONField(default=list)
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["annotation", "revision"], name="unique_annotation_revision")]
        ordering = ["annotation", "revision"]

    def __str__(self) -> str:
        return f"{self.annotation_id} r{self.revision}"


class ConsensusSettings(models.Model):
    """A project's adjudication rules (docs/decisions/0012); a project without a row uses the defaults."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="consensus_settings")
    agreement_threshold = models.FloatField(default=0.7)  # 0..1; below it a series goes to an adjudicator
    auto_accept = models.BooleanField(default=False)  # above it, accept the fused consensus without a person
    surface_tolerance_mm = models.FloatField(default=2.0)  # surface Dice tolerance on the quality page
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"consensus settings of {self.project}"


class ConsensusState(models.TextChoices):
    NEEDS_ADJUDICATION = "needs_adjudication", "Needs adjudication"
    PROPOSED = "proposed", "Proposed"
    ACCEPTED = "accepted", "Accepted automatically"
    ADJUDICATED = "adjudicated", "Adjudicated"


DECIDED_STATES = frozenset({ConsensusState.ACCEPTED, ConsensusState.ADJUDICATED})


class DecisionSource(models.TextChoices):
    FUSED = "fused", "The fused consensus"
    READER = "reader", "One reader's read"
    EDITED = "edited", "The consensus as edited"


class SeriesConsensus(models.Model):
    """Where the consensus of one series stands: its agreement, its routing and the final decision.

    The labels themselves are the annotations of ``assignment`` (kind consensus). ``inputs`` is
    the fingerprint of the reads it was fused from, so that a repeated update changes nothing;
    ``read_inputs`` the same per read and by content, so that a decided consensus is reopened
    when, and only when, a read changed after it was computed.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="consensus")
    series = models.OneToOneField(Series, on_delete=models.CASCADE, related_name="consensus")
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="consensus_state")
    state = models.CharField(max_length=24, choices=ConsensusState.choices)
    agreement = models.FloatField(null=True, blank=True)  # the lowest label agreement; None: nothing to compare
    threshold = models.FloatField()  # the project's threshold when it was routed
    details = models.JSONField(default=dict)  # per label: kind, measure, agreement, method
    inputs = models.CharField(max_length=64)
    computed_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    decision_source = models.CharField(max_length=8, choices=DecisionSource.choices, blank=True)
    source_read = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )  # the reader's read picked as final
    # read id -> fingerprint of what that read held when the consensus was computed: a decided
    # consensus is reopened when a read no longer matches it (annotations.adjudication)
    read_inputs = models.JSONField(default=dict, blank=True)
    # decisions and reopenings, oldest first: {"event": decided|auto_accepted|reopened, "at", ...}
    history = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["agreement", "computed_at"]

    def __str__(self) -> str:
        return f"{self.series} consensus ({self.state})"
