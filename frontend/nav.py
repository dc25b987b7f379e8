"""The per-project navigation bar, showing only the links the user's roles allow."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from annotations.access import ASSIGN_ROLES, QUALITY_ROLES, REVIEW_ROLES
from datasets.access import VIEW_ROLES as DATASET_ROLES
from workbench.access import ANY_ROLE, COMPLIANCE_ROLES, INGEST_ROLES, VAULT_ROLES, roles_for
from workbench.models import Project, Role


@dataclass(frozen=True)
class NavLink:
    key: str
    label: str
    url: str


# (key, label, url name, roles that see the link); the order is the bar's order.
_LINKS: tuple[tuple[str, str, str, Iterable[str]], ...] = (
    ("studies", "Studies", "project", ANY_ROLE),
    ("upload", "Upload", "upload", INGEST_ROLES),
    ("batches", "Batches", "batches", COMPLIANCE_ROLES),
    ("quarantine", "Quarantine", "quarantine", COMPLIANCE_ROLES),
    ("audit", "Audit log", "audit", COMPLIANCE_ROLES),
    ("deid", "De-id report", "deid-report", COMPLIANCE_ROLES),
    ("vault", "Identity vault", "vault", VAULT_ROLES),
    ("vocabulary", "Vocabulary", "vocabulary", COMPLIANCE_ROLES),
    ("settings", "Settings", "deid-settings", frozenset({Role.ADMIN})),
    ("assignments", "Assignments", "assignments", ASSIGN_ROLES),
    ("review", "Review", "review", REVIEW_ROLES),
    ("adjudication", "Adjudication", "adjudication", REVIEW_ROLES),
    ("quality", "Quality", "quality", QUALITY_ROLES),
    ("datasets", "Datasets", "datasets", DATASET_ROLES),
    ("models", "Models", "models", ANY_ROLE),
)


def nav_links(user: Any, project: Project) -> list[NavLink]:
    roles = roles_for(user, project)
    return [
        NavLink(key, label, reverse(url_name, args=[project.pk]))
        for key, label, url_name, allowed in _LINKS
        if roles & frozenset(allowed)
    ]


def render_project_page(
    request: HttpRequest, template: str, *, project: Project, current: str, status: int = 200, **context: Any
) -> HttpResponse:
    """Render a page that belongs to a project, with its navigation bar."""
    context.update(project=project, nav=nav_links(request.user, project), nav_current=current)
    return render(request, template, context, status=status)
