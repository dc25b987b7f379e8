"""REST API for active learning: rank unlabelled series by uncertainty, serve and assign them in that order.

Admins and ML engineers rank; admins fill worklists; reviewers, admins and ML engineers see the
ranking; any member who may read asks for their next best case. Outsiders get 404, other members 403.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import ASSIGN_ROLES, READER_ROLES, REVIEW_ROLES
from annotations.api import _readers
from annotations.serializers import AssignmentOut
from inference import active_learning
from inference.models import ModelVersion
from workbench.access import get_project_for_user
from workbench.api.pagination import PaginatedList
from workbench.models import Project, Role

RANK_ROLES = frozenset({Role.ADMIN, Role.ML_ENGINEER})
RANKING_ROLES = REVIEW_ROLES | RANK_ROLES


class NothingLeft(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "nothing_to_serve"


class RankedCaseOut(serializers.Serializer):
    series = serializers.UUIDField(source="score.series_id")
    patient = serializers.CharField(source="score.series.study.patient.pseudo_id")
    modality = serializers.CharField(source="score.series.modality")
    score = serializers.FloatField(source="score.score", help_text="0: the model is sure; 1: it is not at all")
    slices = serializers.IntegerField(source="score.slices")
    model = serializers.CharField(source="score.model_id")
    computed_at = serializers.DateTimeField(source="score.computed_at")
    readers = serializers.ListField(child=serializers.CharField(), help_text="who has been given it to read")
    reserved_by = serializers.CharField(source="reservation.reader.username", default=None, allow_null=True)
    reserved_until = serializers.DateTimeField(source="reservation.expires_at", default=None, allow_null=True)


class ModelIn(serializers.Serializer):
    model = serializers.CharField(max_length=64, required=False, help_text="default: the newest ranked model")


class FillIn(ModelIn):
    readers = serializers.ListField(child=serializers.CharField(max_length=150), allow_empty=False)
    count = serializers.IntegerField(min_value=1, max_value=1000)


class ServedOut(serializers.Serializer):
    assignment = serializers.UUIDField(source="assignment_id")
    series = serializers.UUIDField(source="series_id")
    score = serializers.FloatField()
    model = serializers.CharField(source="model_id")
    reserved_until = serializers.DateTimeField(source="expires_at")
    annotator_url = serializers.SerializerMethodField()

    def get_annotator_url(self, reservation: Any) -> str:
        return reverse("assignment", args=[reservation.assignment_id])


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _model(project: Project, model_id: str | None) -> ModelVersion | None:
    if not model_id:
        return None
    model = ModelVersion.objects.filter(project=project, pk=model_id).first()
    if model is None:
        raise ValidationError({"model": "No model version with this id in this project."})
    return model


def _invalid(exc: active_learning.InvalidActiveLearning) -> ValidationError:
    return ValidationError({exc.field: str(exc)})


class RankingList(PaginatedList, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("model", OpenApiTypes.STR, description="default: the newest ranked model")],
        responses=RankedCaseOut(many=True),
    )
    def get(self, request: Request, project_id: str) -> Response:
        """Unlabelled series, most uncertain first (?model=, default the newest ranked model)."""
        project = get_project_for_user(request.user, project_id, RANKING_ROLES)
        try:
            rows = active_learning.ranked_cases(
                project=project, model=_model(project, request.query_params.get("model"))
            )
        except active_learning.InvalidActiveLearning as exc:
            raise _invalid(exc) from None
        return self.paginated(request, rows, RankedCaseOut)


class RankCreate(APIView):
    @extend_schema(
        request=ModelIn,
        responses={
            202: inline_serializer(
                "RankQueued", {"model": serializers.CharField(), "series": serializers.IntegerField()}
            )
        },
    )
    def post(self, request: Request, project_id: str) -> Response:
        """Score every unlabelled series of the model's modality with it, in an inference worker (202)."""
        project = get_project_for_user(request.user, project_id, RANK_ROLES)
        data = _valid(ModelIn, request.data)
        model = _model(project, data.get("model"))
        if model is None:
            raise ValidationError({"model": "Name the model version that ranks the series."})
        try:
            queued = active_learning.uncertainty_rank_create(project=project, model=model, user=request.user)
        except active_learning.InvalidActiveLearning as exc:
            raise _invalid(exc) from None
        return Response({"model": model.pk, "series": queued}, status=status.HTTP_202_ACCEPTED)


class WorklistsFill(APIView):
    @extend_schema(request=FillIn, responses={201: AssignmentOut(many=True)})
    def post(self, request: Request, project_id: str) -> Response:
        """Give the N most uncertain unread cases to the readers named, in turn (project admins)."""
        project = get_project_for_user(request.user, project_id, ASSIGN_ROLES)
        data = _valid(FillIn, request.data)
        try:
            created = active_learning.worklists_fill(
                project=project,
                readers=_readers(project, data["readers"]),
                count=data["count"],
                user=request.user,
                model=_model(project, data.get("model")),
            )
        except active_learning.InvalidActiveLearning as exc:
            raise _invalid(exc) from None
        return Response(AssignmentOut(created, many=True).data, status=status.HTTP_201_CREATED)


class NextBestCase(APIView):
    @extend_schema(request=ModelIn, responses={201: ServedOut})
    def post(self, request: Request, project_id: str) -> Response:
        """Serve me the most uncertain case nobody reads or holds, reserved for me for a while (201)."""
        project = get_project_for_user(request.user, project_id, READER_ROLES)
        data = _valid(ModelIn, request.data)
        try:
            reservation = active_learning.next_best_case(
                project=project, reader=request.user, model=_model(project, data.get("model"))
            )
        except active_learning.InvalidActiveLearning as exc:
            raise _invalid(exc) from None
        except active_learning.NothingToServe as exc:
            raise NothingLeft(str(exc)) from None
        return Response(ServedOut(reservation).data, status=status.HTTP_201_CREATED)
