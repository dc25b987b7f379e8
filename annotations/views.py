"""Server-rendered pages: the worklist, assigning series, reviewing, and reader agreement.

Thin views: projects come through workbench.access (404 to outsiders, 403 to
members without the role), reads through annotations.selectors and metrics,
writes through annotations.services. The annotating page itself,
/assignments/<id>/, is the viewer's (frontend/viewer/); these pages only link to it.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotations import geometry as geo
from annotations import metrics, selectors, services
from annotations.access import ASSIGN_ROLES, QUALITY_ROLES, READER_ROLES, REVIEW_ROLES
from annotations.adjudication import consensus_settings_of
from annotations.models import Assignment, AssignmentStatus, LabelKind, Priority
from annotations.worklist import SORTS, InvalidWorklistFilter, WorklistFilter
from frontend.nav import render_project_page
from workbench.access import get_project_for_user
from workbench.models import Membership, Project

DECIDED_PER_PAGE = 50


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    """The user's assignments across projects in the reading-room order (annotations.worklist),
    narrowed by status, project, modality and priority and sorted by any column."""
    try:
        filters = WorklistFilter.from_params(request.GET)
    except InvalidWorklistFilter as exc:
        messages.error(request, f"{exc} Showing the whole worklist instead.")
        filters = WorklistFilter()
    everything = selectors.assignment_list_mine(user=request.user)
    rows = selectors.assignment_list_mine(user=request.user, filters=filters)
    projects = sorted({(a.project_id, a.project.name) for a in everything}, key=lambda p: p[1])
    modalities = sorted({a.series.modality for a in everything if a.series.modality})
    return render(
        request,
        "annotations/worklist.html",
        {
            "assignments": rows,
            "filters": filters,
            "projects": projects,
            "modalities": modalities,
            "status_choices": [("", "All"), ("open", "Open"), *AssignmentStatus.choices],
            "priority_choices": [(p.name.lower(), p.label) for p in Priority],
            "sort_links": _sort_links(filters),
            "filtered": bool(filters.as_params().keys() - {"sort"}),
            "serving": _projects_serving(request.user),
        },
    )


def _projects_serving(user: Any) -> list[tuple[Any, str, int]]:
    from inference.active_learning import projects_serving  # inference depends on annotations, not back

    return projects_serving(user=user)


_SORT_FIRST_DESCENDING = {"priority", "updated", "assigned"}  # what a reader wants on top first


def _sort_links(filters: WorklistFilter) -> dict[str, dict[str, str]]:
    """Per sortable column: the URL that sorts by it (again: the other way) and its arrow."""
    links = {}
    for key in SORTS:
        current = filters.sort.lstrip("-") == key
        descending = filters.sort.startswith("-")
        if current:
            wanted = key if descending else f"-{key}"
        else:
            wanted = f"-{key}" if key in _SORT_FIRST_DESCENDING else key
        params = {**filters.as_params(), "sort": wanted}
        arrow = ("▼" if descending else "▲") if current else ""
        links[key] = {"url": "?" + urlencode(params), "arrow": arrow}
    return links


class AssignForm(forms.Form):
    # The querysets depend on the project: __init__ sets them.
    series: forms.ModelChoiceField = forms.ModelChoiceField(queryset=None)  # type: ignore[arg-type, var-annotated]
    readers: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(  # type: ignore[var-annotated]
        queryset=None,  # type: ignore[arg-type]
        widget=forms.CheckboxSelectMultiple,
    )
    priority = forms.TypedChoiceField(
        choices=Priority.choices,
        coerce=int,
        initial=Priority.ROUTINE,
        required=False,
        empty_value=Priority.ROUTINE,  # type: ignore[arg-type]  # django-stubs types it as str; any value works
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        series = selectors.series_list_for_assignment(project=project)
        self.fields["series"].queryset = series  # type: ignore[attr-defined]
        self.fields["series"].label_from_instance = lambda s: (  # type: ignore[attr-defined]
            f"{s.study.patient.pseudo_id} · {s.study.study_date} · {s.modality} {s.number or ''} {s.description}"
        )
        members = Membership.objects.filter(project=project, role__in=READER_ROLES).values("user_id")
        readers = get_user_model().objects.filter(pk__in=members).order_by("username")
        self.fields["readers"].queryset = readers  # type: ignore[attr-defined]


@login_required
@require_http_methods(["GET", "POST"])
def assignments_admin(request: HttpRequest, project_id: str) -> HttpResponse:
    """Project admins give a series to one or more readers and see every assignment's status."""
    project = get_project_for_user(request.user, project_id, ASSIGN_ROLES)
    if request.method == "POST" and request.POST.get("action") == "priority":
        _priority_action(request, project)
        return redirect("assignments", project.pk)
    form = AssignForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        created = services.assignment_create(
            series=form.cleaned_data["series"],
            readers=list(form.cleaned_data["readers"]),
            user=request.user,
            priority=form.cleaned_data["priority"],
        )
        messages.success(request, f"Assigned to {', '.join(a.reader_name for a in created)}.")
        return redirect("assignments", project.pk)
    rows = selectors.assignment_list(user=request.user, project=project)
    return render_project_page(
        request,
        "annotations/assignments.html",
        project=project,
        current="assignments",
        form=form,
        assignments=rows,
        priorities=Priority.choices,
    )


def _priority_action(request: HttpRequest, project: Project) -> None:
    assignment_id = _uuid_or_none(request.POST.get("assignment"))
    assignment = Assignment.objects.filter(project=project, pk=assignment_id).first() if assignment_id else None
    try:
        priority = Priority(int(request.POST.get("priority", "")))
    except ValueError:
        priority = None
    if assignment is None or priority is None:
        messages.error(request, "Choose an assignment and a priority.")
        return
    services.assignment_set_priority(assignment=assignment, priority=priority, user=request.user)
    messages.success(request, f"{assignment.reader_name}'s read is now {priority.label.lower()} priority.")


@login_required
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest, project_id: str) -> HttpResponse:
    """Reviewers and admins accept submitted reads or return them with a comment; the reads
    already decided stay listed below (?decided=accepted|returned narrows them), newest first."""
    project = get_project_for_user(request.user, project_id, REVIEW_ROLES)
    if request.method == "POST":
        _review_action(request, project)
        return redirect("review", project.pk)
    rows = selectors.assignment_list_to_review(project=project)
    decision = request.GET.get("decided", "")
    decision = decision if decision in selectors.DECISIONS else ""
    decided = selectors.assignment_list_decided(project=project, decision=decision)
    page = Paginator(decided, DECIDED_PER_PAGE).get_page(request.GET.get("page"))
    return render_project_page(
        request,
        "annotations/review.html",
        project=project,
        current="review",
        assignments=rows,
        decision=decision,
        page=page,
        query=f"decided={decision}" if decision else "",
    )


def _review_action(request: HttpRequest, project: Project) -> None:
    assignment_id = _uuid_or_none(request.POST.get("assignment"))
    assignment = Assignment.objects.filter(project=project, pk=assignment_id).first() if assignment_id else None
    action = request.POST.get("action")
    if assignment is None or action not in ("accept", "return"):
        messages.error(request, "Choose a submitted assignment and Accept or Return.")
        return
    try:
        if action == "accept":
            services.assignment_accept(assignment=assignment, user=request.user)
        else:
            services.assignment_return(
                assignment=assignment, user=request.user, comment=request.POST.get("comment", "")
            )
    except (services.InvalidTransition, services.InvalidAnnotation, PermissionDenied) as exc:
        messages.error(request, str(exc))
        return
    verb = "Accepted" if action == "accept" else "Returned"
    messages.success(request, f"{verb} {assignment.reader_name}'s read.")


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


@login_required
def quality(request: HttpRequest, project_id: str) -> HttpResponse:
    """Agreement per label and the series where readers disagree most (reviewers and admins)."""
    project = get_project_for_user(request.user, project_id, QUALITY_ROLES)
    result = metrics.agreement_for_project(project=project)
    finished = selectors.assignment_list_finished(project=project).count()
    kinds = dict(LabelKind.choices)
    labels = [
        {**row, "kind_words": kinds.get(row["kind"], row["kind"]), "is_class": row["kind"] in geo.CLASS_KINDS}
        for row in result["labels"]
    ]
    return render_project_page(
        request,
        "annotations/quality.html",
        project=project,
        current="quality",
        labels=labels,
        tolerance=consensus_settings_of(project).surface_tolerance_mm,
        series=result["series"][:50],
        finished=finished,
    )
