"""Access chokepoints for assignments and annotations, built on workbench.access.

Readers are blinded to each other: an assignment and its annotations are visible
only to its reader and to the project's reviewers and admins. Everyone else,
members included, gets 404, the same answer as for an object that does not exist,
so a reader cannot even learn that another reader's annotation exists.

Being an assignment's reader is not enough on its own: the reader must still be a member
of the project with a role that reads (READER_ROLES), checked against the CURRENT memberships
on every request (workbench.access.roles_for). A reader removed from the project, or moved
to a role that does not read, gets 404 for the assignment and everything reached through it,
and their assignments leave their lists. Their work stays as data: reviewers and admins still
list, review and measure it, as they do for any finished read.

A consensus read (Assignment.kind consensus) has no reader: only reviewers and admins see
it and write it (the adjudicators, docs/decisions/0012); to readers it does not exist.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotations.models import Annotation, Assignment, AssignmentKind
from workbench.access import as_uuid, member_roles_or_404, roles_for
from workbench.models import Role

REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})
ASSIGN_ROLES = frozenset({Role.ADMIN})
SCHEMA_ROLES = frozenset({Role.ADMIN})
QUALITY_ROLES = REVIEW_ROLES
# Who may be given a series to read (an ML engineer too, to import a model's or a team's labels).
READER_ROLES = frozenset({Role.RADIOLOGIST, Role.REVIEWER, Role.ML_ENGINEER, Role.ADMIN})


def _is_current_reader(user: Any, assignment: Assignment, roles: frozenset[str]) -> bool:
    return assignment.reader_id == getattr(user, "pk", None) and bool(roles & READER_ROLES)


def reader_is_active(assignment: Assignment) -> bool:
    """Whether the assignment's reader is still a member of its project with a role that reads."""
    if assignment.reader is None:
        return True  # a consensus read: nobody's, adjudicators act on it
    return bool(roles_for(assignment.reader, assignment.project) & READER_ROLES)


def can_see_assignment(user: Any, assignment: Assignment) -> bool:
    """Its reader while still a member who reads; the project's reviewers and admins."""
    roles = roles_for(user, assignment.project)
    return bool(roles & REVIEW_ROLES) or _is_current_reader(user, assignment, roles)


def can_write_assignment(user: Any, assignment: Assignment) -> bool:
    """The assigned reader (while a member who reads), and the project's reviewers, write annotations."""
    roles = roles_for(user, assignment.project)
    if assignment.kind == AssignmentKind.CONSENSUS:
        return bool(roles & REVIEW_ROLES)  # the adjudicators: reviewers and admins
    return Role.REVIEWER in roles or _is_current_reader(user, assignment, roles)


def require_annotation_writer(user: Any, assignment: Assignment) -> None:
    if not can_write_assignment(user, assignment):
        raise PermissionDenied("Only the assigned reader and reviewers edit these annotations.")


def _visible_or_404(user: Any, assignment: Assignment) -> None:
    member_roles_or_404(user, assignment.project)  # outsiders and former members first
    if not can_see_assignment(user, assignment):
        raise Http404("Not found.")  # blinded: another reader's work does not exist for you


def get_assignment_for_user(user: Any, assignment_id: object) -> Assignment:
    try:
        assignment = Assignment.objects.select_related("project", "series__study__patient", "reader").get(
            pk=as_uuid(assignment_id)
        )
    except Assignment.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    _visible_or_404(user, assignment)
    return assignment


def get_annotation_for_user(user: Any, annotation_id: object) -> Annotation:
    try:
        related = ("assignment__project", "label__schema", "author")
        annotation = Annotation.objects.select_related(*related).get(pk=as_uuid(annotation_id))
    except Annotation.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    _visible_or_404(user, annotation.assignment)
    return annotation
