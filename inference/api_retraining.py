"""REST API of the project's retraining rule (inference.retraining).

Admins and ML engineers read and set it; outsiders get 404, other members 403.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.models import Dataset
from inference import retraining
from inference.models import RetrainingBase, RetrainingSettings
from workbench.access import get_project_for_user


class RetrainingIn(serializers.Serializer):
    enabled = serializers.BooleanField()
    after_labels = serializers.IntegerField(
        min_value=1, max_value=1_000_000, help_text="retrain once this many labels were accepted since the cut-off"
    )
    dataset = serializers.UUIDField(
        allow_null=True, required=False, help_text="the dataset frozen again for each retraining (needed to enable)"
    )
    base = serializers.ChoiceField(
        choices=RetrainingBase.choices,
        default=RetrainingBase.NEWEST,
        help_text="newest: fine-tune the project's newest model (from scratch when it has none); scratch",
    )
    epochs = serializers.IntegerField(min_value=1, max_value=retraining.MAX_EPOCHS, default=15)


class RetrainingOut(serializers.Serializer):
    enabled = serializers.BooleanField()
    after_labels = serializers.IntegerField()
    dataset = serializers.UUIDField(source="dataset_id", allow_null=True)
    base = serializers.CharField()
    epochs = serializers.IntegerField()
    cutoff = serializers.DateTimeField(
        allow_null=True, help_text="the last retraining's cut-off; labels accepted after it count"
    )
    last_job = serializers.UUIDField(source="last_job_id", allow_null=True, help_text="the last retraining job")
    labels_since_cutoff = serializers.SerializerMethodField(
        help_text="labels accepted since the cut-off (or since the newest model when there was no retraining yet)"
    )

    def get_labels_since_cutoff(self, row: RetrainingSettings) -> int:
        return retraining.labels_accepted_since(project=row.project, since=retraining.retraining_cutoff(row))


class RetrainingView(APIView):
    @extend_schema(responses=RetrainingOut)
    def get(self, request: Request, project_id: str) -> Response:
        """The project's retraining rule (disabled until set). Admins and ML engineers."""
        project = get_project_for_user(request.user, project_id, retraining.RETRAINING_ROLES)
        return Response(RetrainingOut(retraining.retraining_settings_of(project)).data)

    @extend_schema(request=RetrainingIn, responses=RetrainingOut)
    def put(self, request: Request, project_id: str) -> Response:
        """Set the rule: enabled, after how many accepted labels, the dataset to freeze again, the
        base model and the epochs. Admins and ML engineers. 400 names the field at fault."""
        project = get_project_for_user(request.user, project_id, retraining.RETRAINING_ROLES)
        serializer = RetrainingIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        dataset = None
        if data.get("dataset") is not None:
            dataset = Dataset.objects.filter(pk=data["dataset"], project=project).first()
            if dataset is None:
                raise ValidationError({"dataset": "No dataset of this project has that id."})
        try:
            row = retraining.retraining_settings_update(
                project=project,
                user=request.user,
                enabled=data["enabled"],
                after_labels=data["after_labels"],
                dataset=dataset,
                base=data["base"],
                epochs=data["epochs"],
            )
        except retraining.InvalidRetraining as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return Response(RetrainingOut(row).data)
