"""REST API for triage: a classifier scores a project's series, worklists order by the score.

Admins and ML engineers start it; outsiders get 404, other members 403 (workbench.access).
The scores are read in the worklist (``triage_score`` of /api/assignments/mine/, ``sort=score``).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inference import triage
from inference.api_active import RANK_ROLES
from inference.models import ModelVersion
from workbench.access import get_project_for_user


class TriageIn(serializers.Serializer):
    model = serializers.CharField(max_length=64, help_text="a classification model version of the project")
    series = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="default: every series of the model's modality"
    )


class TriageCreate(APIView):
    @extend_schema(
        request=TriageIn,
        responses={
            202: inline_serializer(
                "TriageQueued", {"model": serializers.CharField(), "series": serializers.IntegerField()}
            )
        },
    )
    def post(self, request: Request, project_id: str) -> Response:
        """Score the project's series with a classifier, in an inference worker (202); worklists can sort by it."""
        project = get_project_for_user(request.user, project_id, RANK_ROLES)
        serializer = TriageIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = ModelVersion.objects.filter(project=project, pk=data["model"]).first()
        if model is None:
            raise ValidationError({"model": "No model version with this id in this project."})
        series = [str(s) for s in data["series"]] if "series" in data else None
        try:
            queued = triage.triage_run_create(project=project, model=model, user=request.user, series_ids=series)
        except triage.InvalidTriage as exc:
            raise ValidationError({exc.field: str(exc)}) from None
        return Response({"model": model.pk, "series": len(queued)}, status=status.HTTP_202_ACCEPTED)
