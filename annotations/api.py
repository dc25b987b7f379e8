"""REST API for label schemas, assignments, annotations (with revisions) and agreement.

Thin: objects come through annotations.access / workbench.access, writes through
annotations.services. Errors follow workbench.api.errors; a stale revision answers
409 {"error": "conflict", "message", "current": <the annotation as stored>}.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import metrics, selectors, services
from annotations.access import (
    ASSIGN_ROLES,
    QUALITY_ROLES,
    READER_ROLES,
    REVIEW_ROLES,
    SCHEMA_ROLES,
    get_annotation_for_user,
    get_assignment_for_user,
    require_annotation_writer,
)
from annotations.models import Label, Priority
from annotations.schemas import InvalidSchema
from annotations.serializers import (
    AnnotationFilterIn,
    AnnotationIn,
    AnnotationOut,
    AnnotationPatchIn,
    AssignmentIn,
    AssignmentOut,
    AssignmentPatchIn,
    LabelSchemaIn,
    LabelSchemaOut,
    ReturnIn,
    RevisionIn,
    RevisionOut,
    WorklistIn,
)
from annotations.worklist import InvalidWorklistFilter, WorklistFilter
from workbench.access import get_project_for_user, get_series_for_user, require_role
from workbench.api.pagination import PaginatedList
from workbench.models import Membership, Project

# --- errors ---------------------------------------------------------------------------------------


def conflict_response(exc: services.Conflict) -> Response:
    current = AnnotationOut(exc.current).data
    message = (
        f"The annotation is at revision {exc.current.revision}"
        + (" and was deleted" if exc.current.deleted else "")
        + "; your revision is stale. Apply your change to the current state and save again."
    )
    return Response({"error": "conflict", "message": message, "current": current}, status=status.HTTP_409_CONFLICT)


def locked_response(exc: Exception) -> Response:
    return Response({"error": "locked", "message": str(exc)}, status=status.HTTP_409_CONFLICT)


def transition_response(exc: Exception) -> Response:
    return Response({"error": "invalid_status", "message": str(exc)}, status=status.HTTP_409_CONFLICT)


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _label_in_project(label_id: Any, project_id: Any) -> Label:
    label = Label.objects.select_related("schema").filter(pk=label_id, schema__project_id=project_id).first()
    if label is None:
        raise ValidationError({"label": "No such label in this project's schemas."})
    return label


# --- label schemas --------------------------------------------------------------------------------


class LabelSchemaView(APIView):
    @extend_schema(responses=LabelSchemaOut)
    def get(self, request: Request, project_id: str) -> Response:
        """The project's current label schema (any member)."""
        project = get_project_for_user(request.user, project_id)
        schema = selectors.label_schema_current(project=project)
        if schema is None:
            return Response(
                {"error": "not_found", "message": "This project has no label schema yet; an admin creates one."},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(LabelSchemaOut(schema).data)

    @extend_schema(request=LabelSchemaIn, responses={201: LabelSchemaOut})
    def post(self, request: Request, project_id: str) -> Response:
        """Create the next schema version (project admins); earlier versions stay."""
        project = get_project_for_user(request.user, project_id, SCHEMA_ROLES)
        data = _valid(LabelSchemaIn, request.data)
        try:
            schema = services.label_schema_create(project=project, labels=data["labels"], user=request.user)
        except InvalidSchema as exc:
            raise ValidationError({"labels": str(exc)}) from exc
        return Response(LabelSchemaOut(schema).data, status=status.HTTP_201_CREATED)


class LabelSchemaVersions(PaginatedList, APIView):
    @extend_schema(responses=LabelSchemaOut(many=True))
    def get(self, request: Request, project_id: str) -> Response:
        project = get_project_for_user(request.user, project_id)
        return self.paginated(request, selectors.label_schema_versions(project=project), LabelSchemaOut)


# --- assignments ----------------------------------------------------------------------------------


def _readers(project: Project, names: list[str]) -> list[Any]:
    """Resolve user ids or usernames to members who may read; 400 for anyone else."""
    members = Membership.objects.filter(project=project, role__in=READER_ROLES)
    users = []
    for name in names:
        match = Q(user__username=name) | (Q(user__pk=int(name)) if name.isdigit() else Q(pk__in=[]))
        member = members.filter(match).select_related("user").first()
        if member is None:
            raise ValidationError({"readers": f"'{name}' is not a member of this project who may read."})
        if member.user not in users:
            users.append(member.user)
    return users


class AssignmentListCreate(PaginatedList, APIView):
    @extend_schema(parameters=[OpenApiParameter("status", str)], responses=AssignmentOut(many=True))
    def get(self, request: Request, project_id: str) -> Response:
        """All assignments for reviewers and admins; a reader's own for everyone else."""
        project = get_project_for_user(request.user, project_id)
        qs = selectors.assignment_list(
            user=request.user, project=project, status=request.query_params.get("status", "")
        )
        return self.paginated(request, qs, AssignmentOut)

    @extend_schema(request=AssignmentIn, responses={201: AssignmentOut(many=True)})
    def post(self, request: Request, project_id: str) -> Response:
        """Give a series to one or more readers (project admins); idempotent per reader."""
        project = get_project_for_user(request.user, project_id, ASSIGN_ROLES)
        data = _valid(AssignmentIn, request.data)
        series = get_series_for_user(request.user, data["series"])
        if series.study.project_id != project.pk:
            raise ValidationError({"series": "The series is not in this project."})
        created = services.assignment_create(
            series=series,
            readers=_readers(project, data["readers"]),
            user=request.user,
            priority=Priority[data["priority"].upper()],
        )
        return Response(AssignmentOut(created, many=True).data, status=status.HTTP_201_CREATED)


class AssignmentMine(PaginatedList, APIView):
    @extend_schema(parameters=[WorklistIn], responses=AssignmentOut(many=True))
    def get(self, request: Request) -> Response:
        """The user's worklist across projects, in the worklist page's order (annotations.worklist):
        open work first, the most urgent first, then the oldest; ``status=open`` is what
        "Submit and open next" reads."""
        try:
            filters = WorklistFilter.from_params(request.query_params)
        except InvalidWorklistFilter as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return self.paginated(
            request, selectors.assignment_list_mine(user=request.user, filters=filters), AssignmentOut
        )


class AssignmentDetail(APIView):
    @extend_schema(responses=AssignmentOut)
    def get(self, request: Request, assignment_id: str) -> Response:
        return Response(AssignmentOut(get_assignment_for_user(request.user, assignment_id)).data)

    @extend_schema(request=AssignmentPatchIn, responses=AssignmentOut)
    def patch(self, request: Request, assignment_id: str) -> Response:
        """Change a read's priority (project admins); any status."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_role(request.user, assignment.project, ASSIGN_ROLES)
        data = _valid(AssignmentPatchIn, request.data)
        services.assignment_set_priority(
            assignment=assignment, priority=Priority[data["priority"].upper()], user=request.user
        )
        return Response(AssignmentOut(get_assignment_for_user(request.user, assignment.pk)).data)


class AssignmentAction(APIView):
    """submit: the reader; accept: reviewers and admins (not the reader). 409 from the wrong status."""

    action_name = ""

    @extend_schema(request=None, responses=AssignmentOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        assignment = get_assignment_for_user(request.user, assignment_id)
        try:
            if self.action_name == "submit":
                done = services.assignment_submit(assignment=assignment, user=request.user)
            else:
                require_role(request.user, assignment.project, REVIEW_ROLES)
                done = services.assignment_accept(assignment=assignment, user=request.user)
        except services.InvalidTransition as exc:
            return transition_response(exc)
        return Response(AssignmentOut(get_assignment_for_user(request.user, done.pk)).data)


class AssignmentReturn(APIView):
    @extend_schema(request=ReturnIn, responses=AssignmentOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        """Return a submitted read to its reader with a comment (reviewers and admins, not the reader)."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_role(request.user, assignment.project, REVIEW_ROLES)
        comment = _valid(ReturnIn, request.data)["comment"]
        try:
            done = services.assignment_return(assignment=assignment, user=request.user, comment=comment)
        except services.InvalidTransition as exc:
            return transition_response(exc)
        except services.InvalidAnnotation as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return Response(AssignmentOut(get_assignment_for_user(request.user, done.pk)).data)


# --- annotations ----------------------------------------------------------------------------------


class AnnotationListCreate(PaginatedList, APIView):
    @extend_schema(
        parameters=[AnnotationFilterIn],  # the filters as they are validated: UUIDs, a boolean
        responses=AnnotationOut(many=True),
    )
    def get(self, request: Request) -> Response:
        """Annotations you may see: your own assignments', and every one in projects you review."""
        # A plain dict, not the QueryDict: DRF reads an empty "?label=" from a form as "no filter",
        # which the schema (a UUID) does not allow; here it is refused like any other bad value.
        filters = _valid(AnnotationFilterIn, request.query_params.dict())
        ids = {k: str(v) for k, v in filters.items() if k != "include_deleted"}
        qs = selectors.annotation_list(user=request.user, include_deleted=filters["include_deleted"], **ids)
        return self.paginated(request, qs, AnnotationOut)

    @extend_schema(request=AnnotationIn, responses={201: AnnotationOut, 200: AnnotationOut})
    def post(self, request: Request) -> Response:
        """Create an annotation (the assigned reader or a reviewer); a repeated client_id returns the first (200)."""
        data = _valid(AnnotationIn, request.data)
        assignment = get_assignment_for_user(request.user, data.pop("assignment"))
        require_annotation_writer(request.user, assignment)
        label = _label_in_project(data.pop("label"), assignment.project_id)
        try:
            annotation, created = services.annotation_create(
                assignment=assignment, user=request.user, label=label, **data
            )
        except services.Locked as exc:
            return locked_response(exc)
        except services.InvalidAnnotation as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(AnnotationOut(annotation).data, status=code)


class AnnotationDetail(APIView):
    @extend_schema(responses=AnnotationOut)
    def get(self, request: Request, annotation_id: str) -> Response:
        return Response(AnnotationOut(get_annotation_for_user(request.user, annotation_id)).data)

    @extend_schema(request=AnnotationPatchIn, responses={200: AnnotationOut, 409: OpenApiTypes.OBJECT})
    def patch(self, request: Request, annotation_id: str) -> Response:
        """Save a change against ``revision``; 409 with the current state when it is stale."""
        annotation = get_annotation_for_user(request.user, annotation_id)
        require_annotation_writer(request.user, annotation.assignment)
        data = _valid(AnnotationPatchIn, request.data)
        if "label" in data:
            data["label"] = _label_in_project(data["label"], annotation.assignment.project_id)
        try:
            saved = services.annotation_update(annotation=annotation, user=request.user, **data)
        except services.Conflict as exc:
            return conflict_response(exc)
        except services.Locked as exc:
            return locked_response(exc)
        except services.InvalidAnnotation as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return Response(AnnotationOut(saved).data)

    @extend_schema(parameters=[OpenApiParameter("revision", int, required=True)], responses={204: None})
    def delete(self, request: Request, annotation_id: str) -> Response:
        """Soft-delete against ``?revision=n``; kept in the history. 409 when stale."""
        annotation = get_annotation_for_user(request.user, annotation_id)
        require_annotation_writer(request.user, annotation.assignment)
        revision = _valid(RevisionIn, request.query_params)["revision"]
        try:
            services.annotation_delete(annotation=annotation, user=request.user, revision=revision)
        except services.Conflict as exc:
            return conflict_response(exc)
        except services.Locked as exc:
            return locked_response(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AnnotationHistory(PaginatedList, APIView):
    @extend_schema(responses=RevisionOut(many=True))
    def get(self, request: Request, annotation_id: str) -> Response:
        """Every revision: who, when, create/update/delete, which fields changed and the full state;
        the create revision of an annotation accepted from a proposal carries its ``provenance``."""
        annotation = get_annotation_for_user(request.user, annotation_id)
        # An annotation accepted from a model's proposal shows what the reader changed (inference app).
        from inference.decisions import provenance_for_annotation

        context = {"provenance": provenance_for_annotation(annotation=annotation)}
        return self.paginated(
            request, selectors.annotation_history(annotation=annotation), RevisionOut, context=context
        )


class Agreement(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_id: str) -> Response:
        """Agreement between readers over finished reads (reviewers and admins)."""
        project = get_project_for_user(request.user, project_id, QUALITY_ROLES)
        return Response(metrics.agreement_for_project(project=project))
