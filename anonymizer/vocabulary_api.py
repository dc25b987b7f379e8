"""API for a project's free-text vocabulary: list (compliance officers and admins), add and
remove (compliance officers only; audited). Errors are JSON (workbench.api.errors)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anonymizer import vocabulary
from anonymizer.models import VocabularyTerm
from workbench.access import COMPLIANCE_ROLES, get_project_for_user


class VocabularyTermOut(serializers.ModelSerializer):
    added_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = VocabularyTerm
        fields = ["term", "added_by", "added_at"]


class VocabularyTermIn(serializers.Serializer):
    term = serializers.CharField(max_length=200, help_text="One word: letters, digits and hyphens.")


class VocabularyList(generics.ListAPIView):
    """The project's own words kept in free text on top of the shipped vocabulary."""

    serializer_class = VocabularyTermOut

    def get_queryset(self):  # type: ignore[no-untyped-def]
        project = get_project_for_user(self.request.user, self.kwargs["project_id"], COMPLIANCE_ROLES)
        return VocabularyTerm.objects.filter(project=project).select_related("added_by").order_by("term")

    @extend_schema(request=VocabularyTermIn, responses={201: VocabularyTermOut})
    def post(self, request: Request, project_id: str) -> Response:
        """Add a word (compliance officers only; audited). Applies to files de-identified from now on."""
        project = get_project_for_user(request.user, project_id, vocabulary.VOCABULARY_EDIT_ROLES)
        data = VocabularyTermIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            entry = vocabulary.vocabulary_term_add(project=project, user=request.user, term=data.validated_data["term"])
        except vocabulary.VocabularyError as exc:
            raise ValidationError({"term": str(exc)}) from exc
        return Response(VocabularyTermOut(entry).data, status=status.HTTP_201_CREATED)


class VocabularyTermDetail(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, project_id: str, term: str, **kwargs: Any) -> Response:
        """Remove a word (compliance officers only; audited); 404 when the project does not have it."""
        project = get_project_for_user(request.user, project_id, vocabulary.VOCABULARY_EDIT_ROLES)
        try:
            vocabulary.vocabulary_term_remove(project=project, user=request.user, term=term)
        except vocabulary.VocabularyError as exc:
            raise Http404(str(exc)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
