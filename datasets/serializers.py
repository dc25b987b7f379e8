"""Input and output serializers of the datasets API (validation in, representation out)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from datasets.labelsource import DEFAULT, MODES, RULES
from datasets.models import Dataset, DatasetVersion, Export

# --- output ---------------------------------------------------------------------------------------


class VersionBrief(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.get_username", default=None)

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "parent",
            "note",
            "label_source",
            "samples",
            "instances",
            "annotations",
            "created_by",
            "created_at",
        ]


class DatasetOut(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.get_username", default=None)
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "project", "name", "description", "selection", "created_by", "created_at", "latest_version"]

    def get_latest_version(self, dataset: Dataset) -> str | None:
        latest = dataset.versions.order_by("-created_at").values_list("pk", flat=True).first()
        return str(latest) if latest else None


class VersionOut(VersionBrief):
    dataset = serializers.UUIDField(source="dataset_id")
    project = serializers.UUIDField(source="dataset.project_id")

    class Meta(VersionBrief.Meta):
        fields = [*VersionBrief.Meta.fields, "dataset", "project", "summary"]


class ExportOut(serializers.ModelSerializer):
    version = serializers.CharField(source="version_id")
    progress = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id",
            "url",
            "version",
            "format",
            "options",
            "status",
            "progress",
            "size",
            "sha256",
            "download",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_progress(self, export: Export) -> dict[str, int]:
        return {"done": export.done, "total": export.total}

    def get_url(self, export: Export) -> str:
        return reverse("api-export-detail", args=[export.pk])

    def get_download(self, export: Export) -> str | None:
        return reverse("api-export-download", args=[export.pk]) if export.status == "done" else None


# --- input ----------------------------------------------------------------------------------------


class DatasetIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    selection = serializers.JSONField(required=False, default=dict)


class FreezeIn(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    split = serializers.JSONField(
        required=False, default=None, help_text='{"seed", "ratios"} or {"seed", "folds", "test"}'
    )
    augmentation = serializers.JSONField(
        required=False, default=None, help_text='{"seed", "materialize", "copies", "transforms": [{"name", ...}]}'
    )
    label_source = serializers.ChoiceField(
        choices=list(MODES),
        required=False,
        default=DEFAULT,
        help_text="Which reads label the samples: " + "; ".join(f"{mode}: {RULES[mode]}" for mode in MODES) + ".",
    )
    reader = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The reader's username, for label_source reader."
    )


class ExportIn(serializers.Serializer):
    format = serializers.CharField()
    options = serializers.DictField(required=False, default=dict)
