"""Server-rendered pages. Thin: every object comes through workbench.access."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import salted_hmac

from frontend.nav import render_project_page
from workbench.access import (
    COMPLIANCE_ROLES,
    INGEST_ROLES,
    get_project_for_user,
    get_series_for_user,
    projects_for_user,
    roles_for,
)
from workbench.middleware import wants_json
from workbench.models import Instance, Series

# Any valid UUID: the upload page's script swaps in each batch's id.
_ID_SLOT = "00000000-0000-0000-0000-000000000000"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return JsonResponse(
            {"error": "not_found", "message": "Not found, or you are not a member of its project."}, status=404
        )
    return render(
        request,
        "frontend/error.html",
        {"title": "Not found", "message": "This page does not exist, or you are not a member of its project."},
        status=404,
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's own refusals (too many files or fields, a malformed body) in the app's error shape."""
    message = "The request could not be read (too many files or fields, or a malformed body)."
    if wants_json(request):
        return JsonResponse({"error": "bad_request", "message": message}, status=400)
    return render(request, "frontend/error.html", {"title": "Bad request", "message": message}, status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return JsonResponse(
            {"error": "server_error", "message": "The server failed on this request; it was logged. Try again later."},
            status=500,
        )
    return render(
        request,
        "frontend/error.html",
        {"title": "Server error", "message": "Something failed on our side; it was logged."},
        status=500,
    )


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = projects_for_user(request.user).annotate(study_count=Count("studies", distinct=True))
    return render(request, "frontend/home.html", {"projects": projects})


@login_required
def project_detail(request: HttpRequest, project_id: str) -> HttpResponse:
    project = get_project_for_user(request.user, project_id)
    first_instance = Prefetch("instances", queryset=Instance.objects.order_by("number", "sop_uid"))
    series = Series.objects.annotate(instance_count=Count("instances")).prefetch_related(first_instance)
    studies = project.studies.select_related("patient").prefetch_related(Prefetch("series", queryset=series))
    can_report = bool(roles_for(request.user, project) & COMPLIANCE_ROLES)
    return render_project_page(
        request, "frontend/project.html", project=project, current="studies", studies=studies, can_report=can_report
    )


@login_required
def series_detail(request: HttpRequest, series_id: str) -> HttpResponse:
    series = get_series_for_user(request.user, series_id)
    instances = list(series.instances.all())
    return render_project_page(
        request,
        "frontend/series.html",
        project=series.study.project,
        current="studies",
        series=series,
        study=series.study,
        instances=instances,
    )


@login_required
def upload(request: HttpRequest, project_id: str) -> HttpResponse:
    """Choose files, a folder or zips; upload.js sends them as resumable uploads and polls the batches."""
    project = get_project_for_user(request.user, project_id, INGEST_ROLES)
    urls = {
        "endpoint": reverse("api-batches", args=[project.pk]),
        "uploads": reverse("api-uploads", args=[project.pk]),
        "batch_api": reverse("api-batch-detail", args=[_ID_SLOT]),
        "batch_page": reverse("batch", args=[_ID_SLOT]),
    }
    # upload.js keys its resume records (localStorage) by a digest of the file salted with
    # this: no file name is stored in the clear, and another user of the browser finds none.
    salt = salted_hmac("frontend.upload-resume", str(request.user.pk)).hexdigest()
    return render_project_page(
        request,
        "frontend/upload.html",
        project=project,
        current="upload",
        urls=urls,
        id_slot=_ID_SLOT,
        resume_salt=salt,
        expiry_hours=settings.UPLOAD_EXPIRY_HOURS,
    )
