"""The chokepoints through which every view and API endpoint reaches data.

Each ``get_<entity>_for_user`` answers ``Http404`` both when the object does not
exist and when the user is not a member of its project, so outsiders learn
nothing. A member without a required role gets ``PermissionDenied`` (403).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.signals import request_started
from django.db.models import QuerySet
from django.http import Http404

from workbench.models import Instance, Membership, Project, Role, Series, Study

ANY_ROLE = frozenset(Role.values)
CATALOG_ROLES = ANY_ROLE
INGEST_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE})
COMPLIANCE_ROLES = frozenset({Role.COMPLIANCE, Role.ADMIN})
VAULT_ROLES = frozenset({Role.COMPLIANCE})


# Bumped when any request starts. Roles cached on a user object are only trusted within the
# generation they were read in, so a user object that outlives its request (a test client's
# force_authenticate, a custom authentication backend that caches users) never carries a
# removed membership into the next request. Another thread's request only costs a re-read.
_generations = itertools.count(1)  # next() on a count is atomic in CPython: no lost bump
_generation = 0


def _new_generation(**_: Any) -> None:
    global _generation
    _generation = next(_generations)


request_started.connect(_new_generation, dispatch_uid="workbench.access.roles_generation")


def roles_for(user: Any, project: Project) -> frozenset[str]:
    """The user's CURRENT roles in the project (empty for anonymous users, outsiders, former members).

    Read from the database once per request and project: never older than the request.
    """
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    generation, cache = getattr(user, "_workbench_roles", (None, None))
    if generation != _generation or cache is None:
        cache = {}
        user._workbench_roles = (_generation, cache)
    if project.pk not in cache:
        cache[project.pk] = frozenset(
            Membership.objects.filter(user=user, project=project).values_list("role", flat=True)
        )
    return cache[project.pk]


def require_role(user: Any, project: Project, roles: Iterable[str]) -> None:
    if not roles_for(user, project) & frozenset(roles):
        raise PermissionDenied("Your role in this project does not allow this action.")


def projects_for_user(user: Any) -> QuerySet[Project]:
    if not getattr(user, "is_authenticated", False):
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user).distinct()


def _member_or_404(user: Any, project: Project, roles: Iterable[str]) -> None:
    if not roles_for(user, project):
        raise Http404("Not found.")
    require_role(user, project, roles)


def member_roles_or_404(user: Any, project: Project) -> frozenset[str]:
    """The user's current roles in the project; Http404 for an outsider or a former member.

    For objects whose visibility depends on more than a role (an assignment is its reader's):
    the caller decides with the roles, but membership itself is always checked here.
    """
    roles = roles_for(user, project)
    if not roles:
        raise Http404("Not found.")
    return roles


def as_uuid(value: object) -> uuid.UUID:
    """A public id from a URL or a request body; anything that is not a UUID is a 404."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise Http404("Not found.") from exc


def get_project_for_user(user: Any, project_id: object, roles: Iterable[str] = ANY_ROLE) -> Project:
    try:
        project = Project.objects.get(pk=as_uuid(project_id))
    except Project.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    _member_or_404(user, project, roles)
    return project


def _get(queryset: QuerySet[Any], pk: object, project_of: Any, user: Any, roles: Iterable[str]) -> Any:
    try:
        obj = queryset.get(pk=as_uuid(pk))
    except queryset.model.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    _member_or_404(user, project_of(obj), roles)
    return obj


def get_study_for_user(user: Any, study_id: object, roles: Iterable[str] = CATALOG_ROLES) -> Study:
    qs = Study.objects.select_related("project", "patient")
    return _get(qs, study_id, lambda s: s.project, user, roles)


def get_series_for_user(user: Any, series_id: object, roles: Iterable[str] = CATALOG_ROLES) -> Series:
    qs = Series.objects.select_related("study__project", "study__patient")
    return _get(qs, series_id, lambda s: s.study.project, user, roles)


def get_instance_for_user(user: Any, instance_id: object, roles: Iterable[str] = CATALOG_ROLES) -> Instance:
    qs = Instance.objects.select_related("series__study__project")
    return _get(qs, instance_id, lambda i: i.series.study.project, user, roles)
