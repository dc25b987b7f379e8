"""Input and output serializers of the pre-annotation API, kept apart (validation in, representation out)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inference.models import InferenceRun, Proposal

# --- output -----------------------------------------------------------------------------------------


class InferenceRunOut(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name")
    series = serializers.ListField(child=serializers.UUIDField(), source="series_ids")
    # A plain string: the same four states as an export's would rename that export's enum in the schema.
    status = serializers.CharField(help_text="queued | running | done | failed")
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = InferenceRun
        fields = [
            "id",
            "project",
            "model",
            "model_name",
            "series",
            "status",
            "slices_total",
            "slices_done",
            "proposals_count",
            "device",
            "uncertainty",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_created_by(self, obj: InferenceRun) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None


class UncertaintyOut(serializers.Serializer):
    """A proposal's uncertainty map (inference.handlers.uncertainty_map)."""

    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    rle = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="pixels of the proposal's neighbourhood at or above the threshold, as a mask's rle",
    )
    mean = serializers.FloatField(help_text="mean normalised entropy inside the proposal, 0 (sure) to 1")
    max = serializers.FloatField(help_text="highest normalised entropy inside the proposal")
    method = serializers.CharField(help_text="tta_entropy: entropy of the mean softmax over 4 flips")
    threshold = serializers.FloatField()


class ProposalOut(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_id")
    label_name = serializers.CharField(source="label.name")
    geometry = serializers.JSONField(help_text="as an annotation of the label's kind (mask: rows, columns, rle)")
    decision = serializers.SerializerMethodField(help_text="this read's decision")
    annotation = serializers.UUIDField(
        source="decision_annotation", allow_null=True, help_text="the annotation an accept made"
    )
    uncertainty = UncertaintyOut(allow_null=True, help_text="null for proposals made before maps existed")

    class Meta:
        model = Proposal
        fields = [
            "id",
            "run",
            "model_version",
            "label",
            "label_name",
            "kind",
            "sop_instance_uid",
            "frame",
            "geometry",
            "score",
            "uncertainty",
            "decision",
            "annotation",
        ]

    @extend_schema_field({"type": "string", "enum": ["pending", "accepted", "rejected"]})
    def get_decision(self, obj: Proposal) -> str:
        return str(getattr(obj, "decision_status", None) or "pending")


class ProvenanceOut(serializers.Serializer):
    model_version = serializers.CharField()
    proposal = serializers.UUIDField()
    run = serializers.UUIDField()
    score = serializers.FloatField()
    edited = serializers.BooleanField()
    slices = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text='"<sop_instance_uid>:<frame>" -> {"added": pixels, "removed": pixels}',
    )
    dice = serializers.FloatField(help_text="between the proposal and the accepted annotation")
    seconds_to_accept = serializers.FloatField(allow_null=True)


class AcceptOut(serializers.Serializer):
    annotation = serializers.JSONField(help_text="the annotation, as the annotations API returns it")
    provenance = ProvenanceOut()


class RejectOut(serializers.Serializer):
    decision = serializers.CharField()


class AcceptedCountOut(serializers.Serializer):
    accepted = serializers.IntegerField()


# --- input ------------------------------------------------------------------------------------------


class InferenceRunIn(serializers.Serializer):
    model = serializers.CharField(max_length=64, help_text="a model version id of this project")
    series = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_null=True,
        default=None,
        allow_empty=False,
        help_text="the series to run on; absent: every unlabelled series of the model's modality",
    )
    uncertainty = serializers.BooleanField(
        default=True, help_text="give each proposal its uncertainty map (test-time flips: about 4x the network work)"
    )


class ProposalFilterIn(serializers.Serializer):
    sop_instance_uid = serializers.CharField(required=False, max_length=64)
    decision = serializers.ChoiceField(choices=["pending", "accepted", "rejected"], required=False)


class AcceptIn(serializers.Serializer):
    geometry = serializers.JSONField(required=False, help_text="the reader's edit; absent: the proposal as is")
    opened_at = serializers.DateTimeField(required=False, help_text="when the reader opened the proposal")


class AcceptAboveIn(serializers.Serializer):
    score = serializers.FloatField(min_value=0.0, max_value=1.0)
