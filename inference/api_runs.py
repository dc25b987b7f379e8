"""REST API of pre-annotation: inference runs, and a read's proposals with accept/reject.

Thin: objects come through workbench.access / annotations.access, writes through
inference.runs and inference.decisions. A locked assignment answers 409 like the annotations API.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import services as annotation_services
from annotations.access import get_assignment_for_user, require_annotation_writer
from annotations.api import locked_response
from annotations.models import Assignment
from annotations.serializers import AnnotationOut
from inference import decisions, runs
from inference.models import InferenceRun, ModelVersion, Proposal
from inference.serializers import (
    AcceptAboveIn,
    AcceptedCountOut,
    AcceptIn,
    AcceptOut,
    InferenceRunIn,
    InferenceRunOut,
    ProposalFilterIn,
    ProposalOut,
    RejectOut,
)
from workbench.access import as_uuid, get_project_for_user
from workbench.api.pagination import PaginatedList


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _decided_response(exc: decisions.AlreadyDecided) -> Response:
    return Response({"error": "already_decided", "message": str(exc)}, status=status.HTTP_409_CONFLICT)


def _runs_of(project: Any) -> Any:
    return InferenceRun.objects.filter(project=project).select_related("model", "created_by")


# --- runs -------------------------------------------------------------------------------------------


class InferenceRunListCreate(PaginatedList, APIView):
    @extend_schema(responses=InferenceRunOut(many=True))
    def get(self, request: Request, project_id: str) -> Response:
        """The project's pre-annotation runs, newest first (project admins and ML engineers)."""
        project = get_project_for_user(request.user, project_id, runs.RUN_ROLES)
        return self.paginated(request, _runs_of(project), InferenceRunOut)

    @extend_schema(request=InferenceRunIn, responses={201: InferenceRunOut})
    def post(self, request: Request, project_id: str) -> Response:
        """Run a model on series (project admins and ML engineers); queued on the ``inference`` queue."""
        project = get_project_for_user(request.user, project_id, runs.RUN_ROLES)
        data = _valid(InferenceRunIn, request.data)
        model = ModelVersion.objects.filter(pk=data["model"], project=project).first()
        if model is None:
            raise ValidationError({"model": "No such model version in this project."})
        try:
            run = runs.inference_run_create(
                project=project,
                model=model,
                series_ids=data["series"],
                user=request.user,
                uncertainty=data["uncertainty"],
            )
        except runs.InvalidRun as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return Response(InferenceRunOut(_runs_of(project).get(pk=run.pk)).data, status=status.HTTP_201_CREATED)


class InferenceRunDetail(APIView):
    @extend_schema(responses=InferenceRunOut)
    def get(self, request: Request, run_id: str) -> Response:
        """One run and its progress (project admins and ML engineers)."""
        run = InferenceRun.objects.select_related("project").filter(pk=as_uuid(run_id)).first()
        if run is None:
            raise Http404("Not found.")
        get_project_for_user(request.user, run.project_id, runs.RUN_ROLES)
        return Response(InferenceRunOut(_runs_of(run.project).get(pk=run.pk)).data)


# --- proposals of a read ----------------------------------------------------------------------------


def _proposal_or_404(assignment: Assignment, proposal_id: str) -> Proposal:
    proposal = decisions.proposal_for_assignment(assignment=assignment, proposal_id=as_uuid(proposal_id))
    if proposal is None:
        raise Http404("Not found.")
    return proposal


class ProposalList(PaginatedList, APIView):
    @extend_schema(parameters=[ProposalFilterIn], responses=ProposalOut(many=True))
    def get(self, request: Request, assignment_id: str) -> Response:
        """The model's proposals on the read's series, with this read's decision on each
        (the reader, reviewers and admins). ``page_size`` up to 1000."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        filters = _valid(ProposalFilterIn, request.query_params.dict())
        qs = decisions.proposal_list_for_assignment(assignment=assignment, **filters)
        return self.paginated(request, qs, ProposalOut)


class ProposalAccept(APIView):
    @extend_schema(request=AcceptIn, responses={201: AcceptOut, 409: OpenApiTypes.OBJECT})
    def post(self, request: Request, assignment_id: str, proposal_id: str) -> Response:
        """Accept the proposal, as is or with the reader's edited ``geometry``: it becomes an annotation
        (source=model) with its provenance. 409 when the read is locked or the proposal accepted already."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_annotation_writer(request.user, assignment)
        proposal = _proposal_or_404(assignment, proposal_id)
        data = _valid(AcceptIn, request.data)
        try:
            annotation, decision = decisions.proposal_accept(
                proposal=proposal,
                assignment=assignment,
                user=request.user,
                geometry=data.get("geometry"),
                opened_at=data.get("opened_at"),
            )
        except annotation_services.Locked as exc:
            return locked_response(exc)
        except decisions.AlreadyDecided as exc:
            return _decided_response(exc)
        except annotation_services.InvalidAnnotation as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        body = {"annotation": AnnotationOut(annotation).data, "provenance": decision.provenance}
        return Response(body, status=status.HTTP_201_CREATED)


class ProposalReject(APIView):
    @extend_schema(request=None, responses={200: RejectOut, 409: OpenApiTypes.OBJECT})
    def post(self, request: Request, assignment_id: str, proposal_id: str) -> Response:
        """Reject the proposal in this read; no annotation changes. 409 when locked or accepted already."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_annotation_writer(request.user, assignment)
        proposal = _proposal_or_404(assignment, proposal_id)
        try:
            decision = decisions.proposal_reject(proposal=proposal, assignment=assignment, user=request.user)
        except annotation_services.Locked as exc:
            return locked_response(exc)
        except decisions.AlreadyDecided as exc:
            return _decided_response(exc)
        return Response({"decision": decision.status})


class ProposalAcceptAbove(APIView):
    @extend_schema(request=AcceptAboveIn, responses={200: AcceptedCountOut, 409: OpenApiTypes.OBJECT})
    def post(self, request: Request, assignment_id: str) -> Response:
        """Accept, unchanged, every pending proposal of the read scoring at least ``score``."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_annotation_writer(request.user, assignment)
        score = _valid(AcceptAboveIn, request.data)["score"]
        try:
            accepted = decisions.proposals_accept_above(assignment=assignment, score=score, user=request.user)
        except annotation_services.Locked as exc:
            return locked_response(exc)
        return Response({"accepted": accepted})
