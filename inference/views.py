"""The Models page: the project's model versions with their cards, and training jobs with their charts.

Thin: the project comes through workbench.access (404 to outsiders); any member may look.
Training and imports go through the API (docs/inference-api.md). While a job runs, the page
reloads itself every few seconds (a meta refresh: no script).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse

from frontend.nav import render_project_page
from inference import selectors
from inference.access import TRAIN_ROLES, VIEW_ROLES
from inference.chart import training_chart
from inference.models import JobStatus
from workbench.access import get_project_for_user, roles_for

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
    return render_project_page(
        request,
        "inference/models.html",
        project=project,
        current="models",
        models=models,
        jobs=jobs,
        refresh=REFRESH_SECONDS if running else None,
        can_train=bool(roles_for(request.user, project) & TRAIN_ROLES),
    )
