"""REST API for consensus reads and adjudication (docs/decisions/0012).

Reviewers and admins list the series waiting for a decision, read one series' consensus and
decide it; project admins set the routing rules. Outsiders get 404, other members 403.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import adjudication, review_data, selectors, services
from annotations.access import ASSIGN_ROLES, REVIEW_ROLES
from annotations.models import Assignment, AssignmentKind, ConsensusState, SeriesConsensus
from workbench.access import get_project_for_user, get_series_for_user, require_role
from workbench.api.pagination import PaginatedList


class ConsensusOut(serializers.ModelSerializer):
    patient = serializers.CharField(source="series.study.patient.pseudo_id")
    modality = serializers.CharField(source="series.modality")
    consensus = serializers.UUIDField(source="assignment_id", help_text="the consensus read (an assignment)")
    decided_by = serializers.CharField(source="decided_by.get_username", default=None, allow_null=True)
    reopened = serializers.SerializerMethodField(
        help_text="while a decided consensus waits again because a read changed after the decision: "
        "{at, reason, readers, previous}; else null"
    )

    @extend_schema_field({"type": "object", "nullable": True})
    def get_reopened(self, row: SeriesConsensus) -> dict[str, Any] | None:
        return adjudication.reopened_of(row)

    class Meta:
        model = SeriesConsensus
        fields = [
            "series",
            "patient",
            "modality",
            "state",
            "agreement",
            "threshold",
            "consensus",
            "computed_at",
            "decided_by",
            "decided_at",
            "decision_source",
            "reopened",
        ]


class DecideIn(serializers.Serializer):
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a declared field, not Field.source
        choices=["reader", "consensus"], help_text="reader: one reader's read (give read); consensus: as it stands"
    )
    read = serializers.UUIDField(required=False, allow_null=True, help_text="the reader's assignment id")
    reason = serializers.CharField(max_length=2000, allow_blank=True)


class SettingsIO(serializers.Serializer):
    agreement_threshold = serializers.FloatField(min_value=0.0, max_value=1.0)
    auto_accept = serializers.BooleanField()
    surface_tolerance_mm = serializers.FloatField(min_value=0.01, max_value=100.0)


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class AdjudicationList(PaginatedList, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("state", str, enum=ConsensusState.values, description="default: waiting")],
        responses=ConsensusOut(many=True),
    )
    def get(self, request: Request, project_id: str) -> Response:
        """Series whose consensus waits for a person (or ?state=), lowest agreement first. Reviewers and admins."""
        project = get_project_for_user(request.user, project_id, REVIEW_ROLES)
        state = request.query_params.get("state", "")
        if state and state not in ConsensusState.values:
            raise ValidationError({"state": f"state must be one of: {', '.join(ConsensusState.values)}."})
        return self.paginated(request, selectors.consensus_list(project=project, state=state), ConsensusOut)


class ConsensusDetail(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: str) -> Response:
        """The series' reads, consensus state ("pending" while reads are open), agreement per label
        and the decision. Reviewers and admins."""
        series = get_series_for_user(request.user, series_id)
        require_role(request.user, series.study.project, REVIEW_ROLES)
        return Response(review_data.consensus_summary(series))


class ConsensusDecide(APIView):
    @extend_schema(request=DecideIn, responses={200: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT})
    def post(self, request: Request, series_id: str) -> Response:
        """Decide the final read: one reader's read, or the consensus read as it stands; a reason
        is required. Reviewers and admins who did not read the series. 409 when there is nothing
        to decide (reads still open, or decided already)."""
        series = get_series_for_user(request.user, series_id)
        require_role(request.user, series.study.project, REVIEW_ROLES)
        data = _valid(DecideIn, request.data)
        row = selectors.consensus_of(series=series)
        if row is None:
            message = "This series has no consensus yet: every read must be submitted or accepted first."
            return Response({"error": "invalid_status", "message": message}, status=status.HTTP_409_CONFLICT)
        read = None
        if data.get("read"):
            read = Assignment.objects.filter(pk=data["read"], series=series, kind=AssignmentKind.READ).first()
            if read is None:
                raise ValidationError({"read": "No read of this series has that id."})
        try:
            adjudication.consensus_decide(
                consensus=row, user=request.user, source=data["source"], reason=data["reason"], read=read
            )
        except adjudication.InvalidDecision as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        except services.InvalidTransition as exc:
            return Response({"error": "invalid_status", "message": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(review_data.consensus_summary(series))


class ConsensusSettingsView(APIView):
    @extend_schema(responses=SettingsIO)
    def get(self, request: Request, project_id: str) -> Response:
        """The project's adjudication rules (reviewers and admins)."""
        project = get_project_for_user(request.user, project_id, REVIEW_ROLES)
        return Response(SettingsIO(adjudication.consensus_settings_of(project)).data)

    @extend_schema(request=SettingsIO, responses=SettingsIO)
    def put(self, request: Request, project_id: str) -> Response:
        """Set the threshold (0 to 1), auto-accept and the surface Dice tolerance in mm (project admins)."""
        project = get_project_for_user(request.user, project_id, ASSIGN_ROLES)
        data = _valid(SettingsIO, request.data)
        try:
            row = adjudication.consensus_settings_update(project=project, user=request.user, **data)
        except adjudication.InvalidDecision as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return Response(SettingsIO(row).data)
