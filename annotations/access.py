"""Access chokepoints for assignments and annotations, built on workbench.access.

Readers are blinded to each other: an assignment and its annotations are visible
only to its reader and to the project's reviewers and admins. Everyone else,
members included, gets 404, the same answer as for an object that does not exist,
so a reader cannot even learn that another reader's annotation exists.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotations.models import Annotation, Assignment
from workbench.access import as_uuid, roles_for
from workbench.models import Role

REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})
ASSIGN_ROLES = frozenset({Role.ADMIN})
SCHEMA_ROLES = frozenset({Role.ADMIN})
QUALITY_ROLES = REVIEW_ROLES
# Who may be given a series to read (an ML engineer too, to import a model's or a team's labels).
READER_ROLES = frozenset({Role.RADIOLOGIST, Role.REVIEWER, Role.ML_ENGINEER, Role.ADMIN})


def can_see_assignment(user: Any, assignment: Assignment) -> bool:
    if assignment.reader_id == getattr(user, "pk", None):
        return True
    return bool(roles_for(user, assignment.project) & REVIEW_ROLES)


def can_write_assignment(user: Any, assignment: Assignment) -> bool:
    """The assigned reader, and the project's reviewers, write annotations."""
    if assignment.reader_id == getattr(user, "pk", None):
        return True
    return Role.REVIEWER in roles_for(user, assignment.project)


def require_annotation_writer(user: Any, assignment: Assignment) -> None:
    if not can_write_assignment(user, assignment):
        raise PermissionDenied("Only the assigned reader and reviewers edit these annotations.")


def get_assignment_for_user(user: Any, assignment_id: object) -> Assignment:
    try:
        assignment = Assignment.objects.select_related("project", "series__study__patient", "reader").get(
            pk=as_uuid(assignment_id)
        )
    except Assignment.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    if not can_see_assignment(user, assignment):
        raise Http404("Not found.")
    return assignment


def get_annotation_for_user(user: Any, annotation_id: object) -> Annotation:
    try:
        related = ("assignment__project", "label__schema", "author")
        annotation = Annotation.objects.select_related(*related).get(pk=as_uuid(annotation_id))
    except Annotation.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    if not can_see_assignment(user, annotation.assignment):
        raise Http404("Not found.")
    return annotation
