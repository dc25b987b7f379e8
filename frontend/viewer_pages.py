"""The series viewer pages; the bundle in frontend/static/viewer/ (built from frontend/viewer/) does the work."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotations.access import get_assignment_for_user
from annotations.models import AssignmentStatus, LabelKind
from frontend.nav import render_project_page
from workbench.access import get_series_for_user

# What the page shows for the server's codes (viewer/src/labels.ts): the models' own labels.
CHOICE_LABELS = {"status": dict(AssignmentStatus.choices), "kind": dict(LabelKind.choices)}


@login_required
def series_view(request: HttpRequest, series_id: str) -> HttpResponse:
    """Read-only viewer of one series (any member of its project)."""
    series = get_series_for_user(request.user, series_id)
    return render_project_page(
        request,
        "frontend/viewer.html",
        project=series.study.project,
        current="studies",
        series_id=series.pk,
        choice_labels=CHOICE_LABELS,
    )


@login_required
def assignment_view(request: HttpRequest, assignment_id: str) -> HttpResponse:
    """The annotation task page: the assignment's reader, reviewers and admins; 404 to anyone else.

    The data comes from /api/assignments/<id>/ in the page's script; checking here too means
    an outsider gets a real 404, not an empty page.
    """
    assignment = get_assignment_for_user(request.user, assignment_id)
    # No project bar here: the task page gives the image all the height there is.
    return render(request, "frontend/viewer.html", {"assignment_id": assignment.pk, "choice_labels": CHOICE_LABELS})
