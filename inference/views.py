"""Server-rendered pages of the inference app: the Models page and serving the next best case.

Thin: the project comes through workbench.access (404 to outsiders). On the Models page any member
may look; training and imports go through the API (docs/inference-api.md). While a job runs, the
page reloads itself every few seconds (a meta refresh: no script).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from annotations.access import READER_ROLES
from frontend.nav import render_project_page
from inference import active_learning, retraining, selectors
from inference.access import TRAIN_ROLES, VIEW_ROLES
from inference.chart import training_chart
from inference.models import JobStatus
from workbench.access import get_project_for_user, roles_for
from workbench.models import Role

REFRESH_SECONDS = 5
SHOWN = 20  # the newest models and jobs; the API lists them all


@login_required
def model_list(request: HttpRequest, project_id: str) -> HttpResponse:
    """Any member: model cards and training progress. Admins and ML engineers see how to train."""
    project = get_project_for_user(request.user, project_id, VIEW_ROLES)
    models = [(model, selectors.model_card(model)) for model in selectors.models_of(project)[:SHOWN]]
    jobs = [
        (job, training_chart(job.progress, epochs=int(job.config.get("epochs", 1))))
        for job in selectors.training_jobs_of(project)[:SHOWN]
    ]
    running = any(job.status in (JobStatus.QUEUED, JobStatus.RUNNING) for job, _ in jobs)
    can_train = bool(roles_for(request.user, project) & TRAIN_ROLES)
    rule = retraining.retraining_settings_of(project) if can_train else None
    return render_project_page(
        request,
        "inference/models.html",
        project=project,
        current="models",
        models=models,
        jobs=jobs,
        refresh=REFRESH_SECONDS if running else None,
        can_train=can_train,
        retraining=rule,
        retraining_labels=(
            retraining.labels_accepted_since(project=project, since=retraining.retraining_cutoff(rule))
            if rule is not None and rule.enabled
            else None
        ),
        is_admin=Role.ADMIN in roles_for(request.user, project),
    )


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
