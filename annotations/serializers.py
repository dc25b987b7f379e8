"""Input and output serializers of the annotations API, kept apart (validation in, representation out)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from annotations.access import reader_is_active
from annotations.models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentStatus,
    Label,
    LabelSchema,
    Priority,
    Source,
)
from annotations.worklist import SORTS

# --- output serializers ---------------------------------------------------------------------------


class AttributeSpec(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["boolean", "choice", "number", "text"])
    choices = serializers.ListField(child=serializers.CharField(), required=False)


class LabelOut(serializers.ModelSerializer):
    attributes = AttributeSpec(many=True)

    class Meta:
        model = Label
        fields = ["id", "name", "color", "kind", "attributes"]


class LabelSchemaOut(serializers.ModelSerializer):
    labels = LabelOut(many=True)

    class Meta:
        model = LabelSchema
        fields = ["id", "project", "version", "created_at", "labels"]


class AssignmentOut(serializers.ModelSerializer):
    study = serializers.UUIDField(source="series.study_id")
    patient = serializers.CharField(source="series.study.patient.pseudo_id")
    modality = serializers.CharField(source="series.modality")
    series_description = serializers.CharField(source="series.description")
    priority = serializers.IntegerField(help_text="0 low, 1 routine, 2 high, 3 urgent")
    priority_name = serializers.CharField(source="get_priority_display")
    reader = serializers.CharField(
        source="reader_name", help_text="the reader's username; 'consensus' for a series' consensus read"
    )
    reader_id = serializers.IntegerField(allow_null=True, help_text="null for a consensus read")
    kind = serializers.CharField(help_text="read (a reader's) | consensus (the series' consensus read)")
    reader_active = serializers.SerializerMethodField(
        help_text="false once the reader left the project or no longer has a role that reads: "
        "the read stays, but only reviewers and admins act on it"
    )
    triage_score = serializers.SerializerMethodField(
        help_text="the project's triage classifier's probability that the series is abnormal (0..1); "
        "null when no classifier scored it (or outside the worklist)"
    )

    class Meta:
        model = Assignment
        fields = [
            "id",
            "project",
            "series",
            "study",
            "patient",
            "modality",
            "series_description",
            "status",
            "priority",
            "priority_name",
            "kind",
            "reader",
            "reader_id",
            "reader_active",
            "triage_score",
            "created_at",
            "updated_at",
            "submitted_at",
            "reviewed_at",
            "comment",
        ]

    @extend_schema_field({"type": "number", "format": "double", "nullable": True})
    def get_triage_score(self, obj: Assignment) -> float | None:
        score = getattr(obj, "triage_score", None)  # annotated by the worklist (annotations.worklist)
        return None if score is None else float(score)

    def get_reader_active(self, obj: Assignment) -> bool:
        known = getattr(obj, "reader_active", None)  # annotated by the list selectors
        return bool(known) if known is not None else reader_is_active(obj)


class AnnotationOut(serializers.ModelSerializer):
    kind = serializers.CharField(source="label.kind")
    # Plain strings, not enums: anonymizer's batch "source" would collide in the OpenAPI enum names.
    source = serializers.CharField(help_text="human | model | fusion")  # type: ignore[assignment]  # a declared field, not Field.source/label
    author = serializers.CharField(source="author.get_username")

    class Meta:
        model = Annotation
        fields = [
            "id",
            "assignment",
            "label",
            "kind",
            "sop_instance_uid",
            "frame",
            "geometry",
            "attributes",
            "revision",
            "author",
            "created_at",
            "updated_at",
            "source",
            "model_version",
            "proposal",
            "client_id",
            "deleted",
        ]


class RevisionOut(serializers.ModelSerializer):
    author = serializers.CharField(source="author.get_username")
    provenance = serializers.SerializerMethodField(
        help_text="on the create revision of an annotation accepted from a model's proposal: its model "
        "version, proposal, pixels added and removed per slice, Dice against the proposal and "
        "seconds to accept; null otherwise"
    )

    class Meta:
        model = AnnotationRevision
        fields = ["revision", "author", "at", "action", "changes", "data", "provenance"]

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True})
    def get_provenance(self, obj: AnnotationRevision) -> dict[str, Any] | None:
        if obj.action != "create":
            return None
        provenance: dict[str, Any] | None = self.context.get("provenance")
        return provenance


# --- input serializers ----------------------------------------------------------------------------


class LabelIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$")
    kind = serializers.CharField()
    attributes = AttributeSpec(many=True, required=False)


class LabelSchemaIn(serializers.Serializer):
    labels = LabelIn(many=True, allow_empty=False)


_PRIORITY_NAMES = [choice.name.lower() for choice in Priority]


class AssignmentIn(serializers.Serializer):
    series = serializers.UUIDField()
    readers = serializers.ListField(child=serializers.CharField(max_length=150), allow_empty=False)
    priority = serializers.ChoiceField(
        choices=_PRIORITY_NAMES, default="routine", help_text="for new assignments; existing ones keep theirs"
    )


class AssignmentPatchIn(serializers.Serializer):
    priority = serializers.ChoiceField(choices=_PRIORITY_NAMES)


class WorklistIn(serializers.Serializer):
    """Query parameters of the worklist (annotations.worklist checks them). An empty value means
    "not filtered", as the worklist page's "All" options send it."""

    status = serializers.ChoiceField(
        choices=["open", "all", *AssignmentStatus.values],
        required=False,
        allow_blank=True,
        help_text="open, all (default), or one status",
    )
    project = serializers.UUIDField(required=False, help_text="a project id")
    modality = serializers.CharField(required=False, allow_blank=True)
    priority = serializers.ChoiceField(
        choices=_PRIORITY_NAMES, required=False, allow_blank=True, help_text="this priority or higher"
    )
    sort = serializers.ChoiceField(
        choices=[f"{sign}{key}" for key in SORTS for sign in ("", "-")],
        required=False,
        allow_blank=True,
        help_text="a column to order by; '-' descends",
    )


class ReturnIn(serializers.Serializer):
    comment = serializers.CharField(max_length=5000)


class AnnotationFilterIn(serializers.Serializer):
    assignment = serializers.UUIDField(required=False)
    series = serializers.UUIDField(required=False)
    # DRF moves declared fields off the class, so "label" does not clash with Field.label at run time.
    label = serializers.UUIDField(required=False)  # type: ignore[assignment]
    sop_instance_uid = serializers.CharField(required=False, max_length=64)
    include_deleted = serializers.BooleanField(required=False, default=False)


# An inline enum, not a named one: anonymizer's batch "source" would collide in the schema's enum names.
@extend_schema_field({"type": "string", "enum": ["human", "model"]})
class _SourceField(serializers.CharField):
    pass


class AnnotationIn(serializers.Serializer):
    assignment = serializers.UUIDField()
    label = serializers.UUIDField()  # type: ignore[assignment]  # a declared field, not Field.source/label
    sop_instance_uid = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    frame = serializers.IntegerField(min_value=0, required=False, default=0)
    geometry = serializers.JSONField(required=False, default=dict)
    attributes = serializers.JSONField(required=False, default=dict)
    client_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    source = _SourceField(required=False, default=Source.HUMAN, help_text="human | model | fusion")  # type: ignore[assignment]  # a declared field, not Field.source/label
    model_version = serializers.CharField(max_length=100, required=False, allow_null=True, default=None)
    proposal = serializers.UUIDField(required=False, allow_null=True, default=None)

    def validate_source(self, value: str) -> str:
        if value not in Source.values:
            raise ValidationError(f"Use one of {', '.join(Source.values)}.")
        return value


class AnnotationPatchIn(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1)
    geometry = serializers.JSONField(required=False)
    attributes = serializers.JSONField(required=False)
    # DRF moves declared fields off the class, so "label" does not clash with Field.label at run time.
    label = serializers.UUIDField(required=False)  # type: ignore[assignment]


class RevisionIn(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1)
