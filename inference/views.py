"""Server-rendered pages of the inference app: the Models page and serving the next best case.

Thin: the project comes through workbench.access (404 to outsiders). On the Models page any member
may look; project admins and ML engineers also import, train, cancel and start triage there,
through the same services as the API (docs/inference-api.md); others get 403. While a training
job, a shown pre-annotation run or a triage run of the project is queued or running, the page
reloads itself every few seconds unless a form on it is being filled in (models.js; a meta
refresh without script).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from annotations.access import READER_ROLES
from frontend.nav import render_project_page
from inference import active_learning, retraining, selectors, services, triage
from inference.access import TRAIN_ROLES, VIEW_ROLES, get_model_for_user, get_training_job_for_user
from inference.api_active import RANK_ROLES
from inference.chart import training_chart
from inference.forms import ModelImportForm, TrainingForm
from inference.models import JobStatus
from inference.uploads import ModelUploadHandler
from workbench.access import get_project_for_user, roles_for
from workbench.models import Project, Role

REFRESH_SECONDS = 5
SHOWN = 20  # the newest models, jobs and runs; the API lists them all
PENDING = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})  # the same values in RunStatus


def _models_page(
    request: HttpRequest,
    project: Project,
    *,
    import_form: ModelImportForm | None = None,
    train_form: TrainingForm | None = None,
    refresh: bool = True,
) -> HttpResponse:
    """The Models page; a POST that failed passes its bound form back (and no refresh that would lose it)."""
    shown = list(selectors.models_of(project)[:SHOWN])
    scored = selectors.triage_scores_of(shown)
    triages = selectors.triage_runs_latest(shown)
    models = [(model, selectors.model_card(model), scored.get(model.pk), triages.get(model.pk)) for model in shown]
    jobs = [
        (job, training_chart(job.progress, epochs=int(job.config.get("epochs", 1)), kind=job.kind))
        for job in selectors.training_jobs_of(project)[:SHOWN]
    ]
    runs = list(selectors.inference_runs_of(project)[:SHOWN])
    running = (
        any(job.status in PENDING for job, _ in jobs)
        or any(run.status in PENDING for run in runs)
        or selectors.triage_pending(project)
    )
    roles = roles_for(request.user, project)
    can_train = bool(roles & TRAIN_ROLES)
    rule = retraining.retraining_settings_of(project) if can_train else None
    if can_train:
        import_form = import_form or ModelImportForm()
        train_form = train_form or TrainingForm(project=project)
    return render_project_page(
        request,
        "inference/models.html",
        project=project,
        current="models",
        models=models,
        jobs=jobs,
        runs=runs,
        refresh=REFRESH_SECONDS if running and refresh else None,
        can_train=can_train,
        can_triage=bool(roles & RANK_ROLES),  # the triage API's roles
        import_form=import_form if can_train else None,
        train_form=train_form if can_train else None,
        retraining=rule,
        retraining_labels=(
            retraining.labels_accepted_since(project=project, since=retraining.retraining_cutoff(rule))
            if rule is not None and rule.enabled
            else None
        ),
        is_admin=Role.ADMIN in roles,
    )


def _refused(request: HttpRequest, form: ModelImportForm | TrainingForm) -> None:
    for message in form.error_messages_in_words():
        messages.error(request, message)


@login_required
def model_list(request: HttpRequest, project_id: str) -> HttpResponse:
    """Any member: model cards and training progress. Admins and ML engineers also get the forms."""
    return _models_page(request, get_project_for_user(request.user, project_id, VIEW_ROLES))


@csrf_exempt  # checked below, once the model's upload handler is in place (the check reads the body)
@login_required
@require_POST
def model_import(request: HttpRequest, project_id: str) -> HttpResponse:
    """Admins and ML engineers: import a TorchScript file or MONAI Bundle zip, as the API does."""
    request.upload_handlers = [ModelUploadHandler(request)]
    return _model_import(request, project_id)


@csrf_protect
def _model_import(request: HttpRequest, project_id: str) -> HttpResponse:
    project = get_project_for_user(request.user, project_id, TRAIN_ROLES)
    form = ModelImportForm(request.POST, request.FILES)
    if form.is_valid():
        arguments = dict(form.import_arguments)
        upload = arguments.pop("file")
        try:
            model, created = services.model_version_import(
                project=project, user=request.user, data=upload.read(), **arguments
            )
        except services.InvalidTraining as exc:
            form.add_service_error(exc)
        else:
            if created:
                messages.success(request, f"Imported {model.name!r} as model version {model.pk[:12]}.")
            else:
                messages.info(request, f"This model is already here as version {model.pk[:12]} ({model.name!r}).")
            return redirect("models", project.pk)
    _refused(request, form)
    return _models_page(request, project, import_form=form, refresh=False)


@login_required
@require_POST
def training_job_create(request: HttpRequest, project_id: str) -> HttpResponse:
    """Admins and ML engineers: queue a training job on a frozen dataset version, as the API does."""
    project = get_project_for_user(request.user, project_id, TRAIN_ROLES)
    form = TrainingForm(request.POST, project=project)
    if form.is_valid():
        data = form.cleaned_data
        try:
            job = services.training_job_create(
                project=project,
                version=data["dataset_version"],
                user=request.user,
                kind=data["kind"],
                labels=data["labels"] or None,
                epochs=data["epochs"],
                parent=data["parent"],
            )
        except services.InvalidTraining as exc:
            form.add_service_error(exc)
        else:
            what = ", ".join(job.config["labels"])
            messages.success(request, f"Training job queued: {job.config['epochs']} epochs of {what}.")
            return redirect("models", project.pk)
    _refused(request, form)
    return _models_page(request, project, train_form=form, refresh=False)


@login_required
@require_POST
def training_job_cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    """Admins and ML engineers: a queued job stops at once, a running one after its current epoch."""
    job = get_training_job_for_user(request.user, job_id, TRAIN_ROLES)
    was = job.status
    job = services.training_job_cancel(job=job)
    if was == JobStatus.QUEUED and job.status == JobStatus.CANCELLED:
        messages.success(request, "Training job cancelled.")
    elif job.status == JobStatus.RUNNING:
        messages.success(request, "The training job stops after its current epoch.")
    else:
        messages.info(request, f"The training job had already ended ({job.get_status_display().lower()}).")
    return redirect("models", job.project_id)


@login_required
@require_POST
def triage_create(request: HttpRequest, model_id: str) -> HttpResponse:
    """Admins and ML engineers: score the project's series with a classifier for the worklists, as the API does."""
    model = get_model_for_user(request.user, model_id, RANK_ROLES)
    try:
        run = triage.triage_run_create(project=model.project, model=model, user=request.user)
    except triage.InvalidTriage as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Triage queued: {run.series_total} series to score with {model.name!r}; "
            "its scored count below grows as the inference worker scores them.",
        )
    return redirect("models", model.project_id)


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
