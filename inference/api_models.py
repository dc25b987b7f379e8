"""Token API of the model registry and training jobs (issue 11, "Models and training").

Thin: objects come through inference.access (404 to outsiders and former members, 403 to a
member without the role), writes through inference.services. Any member may read models and
jobs; project admins and ML engineers train, import and cancel. Errors follow workbench.api.errors.
No torch here: uploads are checked by inference.handlers.artifacts, training runs in a worker.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.models import DatasetVersion
from inference import selectors, services
from inference.access import TRAIN_ROLES, VIEW_ROLES, get_model_for_user, get_training_job_for_user
from inference.models import ModelKind, ModelVersion
from inference.uploads import ModelUploadHandler
from workbench.access import get_project_for_user
from workbench.api.pagination import PaginatedList
from workbench.api.parsers import UploadMultiPartParser

MAX_EPOCHS = 500


class ModelOut(serializers.ModelSerializer[ModelVersion]):
    provenance = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "kind",
            "labels",
            "input_spec",
            "metrics",
            "dataset_version",
            "parent",
            "provenance",
            "code_version",
            "seed",
            "weights_sha256",
            "created_at",
        ]

    def get_provenance(self, model: ModelVersion) -> str:
        if model.config.get("provenance") == "imported":
            return "imported"
        return "fine-tuned" if model.parent_id else "trained"


class ModelCardOut(ModelOut):
    card = serializers.SerializerMethodField()

    class Meta(ModelOut.Meta):
        fields = [*ModelOut.Meta.fields, "card"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_card(self, model: ModelVersion) -> dict[str, Any]:
        return selectors.model_card(model)


class TrainingJobOut(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    status = serializers.CharField()
    kind = serializers.CharField()
    dataset_version = serializers.CharField()
    config = serializers.JSONField()
    # A field called "parent" shadows Field.parent in the stubs; DRF's metaclass takes it off the class.
    parent = serializers.CharField(source="parent_id", allow_null=True)  # type: ignore[assignment]
    progress = serializers.JSONField(help_text='One entry per finished epoch: {"epoch", "loss", "dice"}.')
    cancel_requested = serializers.BooleanField()
    result = serializers.CharField(source="result_id", allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainingJobIn(serializers.Serializer[Any]):
    dataset_version = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=ModelKind.choices, default=ModelKind.SEGMENTATION)
    labels = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)
    epochs = serializers.IntegerField(min_value=1, max_value=MAX_EPOCHS, default=25)
    parent = serializers.CharField(max_length=64, required=False, allow_null=True)  # type: ignore[assignment]


class ModelImportIn(serializers.Serializer[Any]):
    file = serializers.FileField(help_text="A TorchScript model (torch.jit.save) or a MONAI Bundle zip.")
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=ModelKind.choices, default=ModelKind.SEGMENTATION)
    labels = serializers.CharField(
        required=False, help_text="Label names in output-channel order, comma-separated (a bundle may name them)."
    )
    window = serializers.CharField(required=False, help_text="Intensity window 'low,high' in modality units.")
    size = serializers.IntegerField(required=False, min_value=8, max_value=2048)
    modality = serializers.CharField(required=False, max_length=16, default="")

    def validate_labels(self, value: str) -> list[str]:
        labels = [one.strip() for one in value.split(",") if one.strip()]
        if not labels:
            raise serializers.ValidationError("Give at least one label name.")
        return labels

    def validate_window(self, value: str) -> tuple[float, float]:
        try:
            low, high = (float(one) for one in value.split(","))
        except ValueError as exc:
            raise serializers.ValidationError("Give the window as two numbers, 'low,high' (e.g. -1000,400).") from exc
        if not high > low:
            raise serializers.ValidationError("The window's high must be above its low.")
        return low, high


def _valid(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ModelList(PaginatedList, APIView):
    @extend_schema(responses=ModelOut(many=True))
    def get(self, request: Request, project_id: str) -> Response:
        """The project's model versions, newest first (any member)."""
        project = get_project_for_user(request.user, project_id, VIEW_ROLES)
        return self.paginated(request, selectors.models_of(project), ModelOut)


class ModelDetail(APIView):
    @extend_schema(responses=ModelCardOut)
    def get(self, request: Request, model_id: str) -> Response:
        """One model version with its model card (any member of its project)."""
        return Response(ModelCardOut(get_model_for_user(request.user, model_id)).data)


class ModelImport(APIView):
    parser_classes = [UploadMultiPartParser, FormParser]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        request.upload_handlers = [ModelUploadHandler(request)]  # before anything reads the body
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": ModelImportIn}, responses={201: ModelCardOut, 200: ModelCardOut})
    def post(self, request: Request, project_id: str) -> Response:
        """Import a TorchScript model or a MONAI Bundle zip (admins, ML engineers); 200 if already there."""
        project = get_project_for_user(request.user, project_id, TRAIN_ROLES)
        data = _valid(ModelImportIn, request.data)
        upload = data.pop("file")
        try:
            model, created = services.model_version_import(
                project=project, user=request.user, data=upload.read(), **data
            )
        except services.InvalidTraining as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(ModelCardOut(model).data, status=code)


class TrainingJobListCreate(PaginatedList, APIView):
    @extend_schema(responses=TrainingJobOut(many=True))
    def get(self, request: Request, project_id: str) -> Response:
        """The project's training jobs, newest first (any member)."""
        project = get_project_for_user(request.user, project_id, VIEW_ROLES)
        return self.paginated(request, selectors.training_jobs_of(project), TrainingJobOut)

    @extend_schema(request=TrainingJobIn, responses={201: TrainingJobOut})
    def post(self, request: Request, project_id: str) -> Response:
        """Queue a training job on a frozen dataset version (admins, ML engineers), on the training queue."""
        project = get_project_for_user(request.user, project_id, TRAIN_ROLES)
        data = _valid(TrainingJobIn, request.data)
        version = DatasetVersion.objects.filter(pk=data["dataset_version"], dataset__project=project).first()
        if version is None:
            raise ValidationError({"dataset_version": "No frozen dataset version with this id in this project."})
        parent = None
        if data.get("parent"):
            parent = ModelVersion.objects.filter(pk=data["parent"], project=project).first()
            if parent is None:
                raise ValidationError({"parent": "No model version with this id in this project."})
        try:
            job = services.training_job_create(
                project=project,
                version=version,
                user=request.user,
                kind=data["kind"],
                labels=data.get("labels") or None,
                epochs=data["epochs"],
                parent=parent,
            )
        except services.InvalidTraining as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return Response(TrainingJobOut(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetail(APIView):
    @extend_schema(responses=TrainingJobOut)
    def get(self, request: Request, job_id: str) -> Response:
        """Status and per-epoch progress (loss, validation Dice) of a training job (any member)."""
        return Response(TrainingJobOut(get_training_job_for_user(request.user, job_id)).data)


class TrainingJobCancel(APIView):
    @extend_schema(request=None, responses=TrainingJobOut)
    def post(self, request: Request, job_id: str) -> Response:
        """Cancel: a queued job at once, a running one after its current epoch (admins, ML engineers)."""
        job = get_training_job_for_user(request.user, job_id, TRAIN_ROLES)
        return Response(TrainingJobOut(services.training_job_cancel(job=job)).data)
