"""REST API for triage: a classifier scores a project's series, worklists order by the score.

Admins and ML engineers start it; outsiders get 404, other members 403 (workbench.access).
The scores are read in the worklist (``triage_score`` of /api/assignments/mine/, ``sort=score``)
and, with the heat map of where the classifier looked, in the annotator (``AssignmentTriage``:
whoever may open the assignment, annotations.access).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import get_assignment_for_user
from inference import triage
from inference.api_active import RANK_ROLES
from inference.models import ModelVersion
from workbench.access import get_project_for_user


class TriageIn(serializers.Serializer):
    model = serializers.CharField(max_length=64, help_text="a classification model version of the project")
    series = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="default: every series of the model's modality"
    )


class HeatmapOut(serializers.Serializer):
    sop_uid = serializers.CharField(help_text="the SOP Instance UID of the slice it was computed on")
    frame = serializers.IntegerField(help_text="0-based frame of that instance")
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    rle = serializers.ListField(
        child=serializers.IntegerField(), help_text="row-major [start, length, ...] runs of the map's pixels"
    )


class AssignmentTriageOut(serializers.Serializer):
    scored = serializers.BooleanField(help_text="false: no triage classifier has scored this series (all else null)")
    model_id = serializers.CharField(allow_null=True, help_text="the classifier's model version (sha256)")
    model_name = serializers.CharField(allow_null=True)
    score = serializers.FloatField(allow_null=True, help_text="probability of the positive class, pooled (0..1)")
    positive_class = serializers.CharField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    heatmap = HeatmapOut(
        allow_null=True, help_text="GradCAM of the highest-scoring slice, at or above one half; null if none"
    )


NOT_SCORED = {
    "scored": False,
    "model_id": None,
    "model_name": None,
    "score": None,
    "positive_class": None,
    "computed_at": None,
    "heatmap": None,
}


class AssignmentTriage(APIView):
    @extend_schema(responses=AssignmentTriageOut)
    def get(self, request: Request, assignment_id: str) -> Response:
        """The triage classifier's score of the read's series and its heat map (whoever may open the read);
        ``scored: false`` when none has scored it. Shown in the annotator, never saved as an annotation."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        found = triage.series_triage_get(series=assignment.series)
        if found is None:
            return Response(NOT_SCORED)
        body = {
            "scored": True,
            "model_id": found.model_id,
            "model_name": found.model.name,
            "score": found.score,
            "positive_class": triage.positive_class(found.model),
            "computed_at": found.computed_at,
            "heatmap": found.heatmap_rle or None,
        }
        return Response(AssignmentTriageOut(body).data)


class TriageCreate(APIView):
    @extend_schema(
        request=TriageIn,
        responses={
            202: inline_serializer(
                "TriageQueued",
                {
                    "model": serializers.CharField(),
                    "series": serializers.IntegerField(help_text="how many series are queued for scoring"),
                    "run": serializers.UUIDField(help_text="the triage run; its progress shows on the Models page"),
                },
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
            run = triage.triage_run_create(project=project, model=model, user=request.user, series_ids=series)
        except triage.InvalidTriage as exc:
            raise ValidationError({exc.field: str(exc)}) from None
        return Response(
            {"model": model.pk, "series": run.series_total, "run": str(run.pk)}, status=status.HTTP_202_ACCEPTED
        )
