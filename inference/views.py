"""Server-rendered actions of the inference app."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from annotations.access import READER_ROLES
from inference import active_learning
from workbench.access import get_project_for_user


@login_required
@require_POST
def next_case(request: HttpRequest, project_id: str) -> HttpResponse:
    """Serve the reader the next best case of the project and open it in the annotator."""
    project = get_project_for_user(request.user, project_id, READER_ROLES)
    try:
        reservation = active_learning.next_best_case(project=project, reader=request.user)
    except (active_learning.NothingToServe, active_learning.InvalidActiveLearning) as exc:
        messages.error(request, str(exc))
        return redirect("worklist")
    return redirect("assignment", reservation.assignment_id)
