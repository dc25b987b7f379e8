"""Server-rendered adjudication pages (reviewers and admins; the settings: project admins).

Thin: the project comes through workbench.access (404 to outsiders, 403 to other members),
reads through annotations.selectors and review_data, decisions through annotations.adjudication.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from annotations import adjudication, review_data, selectors, services
from annotations.access import ASSIGN_ROLES, REVIEW_ROLES
from annotations.models import Assignment, AssignmentKind, ConsensusState
from frontend.nav import render_project_page
from workbench.access import get_project_for_user
from workbench.models import Project, Series


def _series_or_404(project: Project, series_id: str) -> Series:
    series = Series.objects.select_related("study__patient").filter(pk=series_id, study__project=project).first()
    if series is None:
        raise Http404("Not found.")
    return series


@login_required
def adjudication_list(request: HttpRequest, project_id: str) -> HttpResponse:
    """Series waiting for an adjudicator (or ?state=), lowest agreement first."""
    project = get_project_for_user(request.user, project_id, REVIEW_ROLES)
    state = request.GET.get("state", "")
    state = state if state in ConsensusState.values else ""
    rows = list(selectors.consensus_list(project=project, state=state)[:200])
    for row in rows:
        row.reopened_entry = adjudication.reopened_of(row)  # type: ignore[attr-defined]  # for the template
    return render_project_page(
        request,
        "annotations/adjudication.html",
        project=project,
        current="adjudication",
        rows=rows,
        state=state,
        states=ConsensusState.choices,
        rules=adjudication.consensus_settings_of(project),
    )


@login_required
@require_http_methods(["GET", "POST"])
def adjudication_detail(request: HttpRequest, project_id: str, series_id: str) -> HttpResponse:
    """One series: the readers' labels side by side, the heat map, and the decision form."""
    project = get_project_for_user(request.user, project_id, REVIEW_ROLES)
    series = _series_or_404(project, series_id)
    if request.method == "POST":
        _decide(request, series)
        return redirect("adjudication-series", project.pk, series.pk)
    summary = review_data.consensus_summary(series)
    slices = review_data.slices_of(series)
    marked = review_data.marked_slices(series)
    try:
        index = int(request.GET.get("slice", marked[0] if marked else 0))
    except ValueError:
        index = 0
    index = min(max(index, 0), max(len(slices) - 1, 0))
    return render_project_page(
        request,
        "annotations/adjudication_series.html",
        project=project,
        current="adjudication",
        series=series,
        summary=summary,
        slice_index=index,
        slice_count=len(slices),
        marked=marked,
        open=summary["state"] in adjudication.OPEN_STATES,
    )


def _decide(request: HttpRequest, series: Series) -> None:
    row = selectors.consensus_of(series=series)
    if row is None:
        messages.error(request, "This series has no consensus yet: its reads are not all finished.")
        return
    choice = request.POST.get("final", "")
    read = None
    if choice != "consensus":
        chosen = _uuid(choice)
        reads = Assignment.objects.filter(series=series, kind=AssignmentKind.READ)
        read = reads.filter(pk=chosen).first() if chosen else None
        if read is None:
            messages.error(request, "Choose a reader's read or the consensus as the final read.")
            return
    try:
        adjudication.consensus_decide(
            consensus=row,
            user=request.user,
            source="consensus" if read is None else "reader",
            reason=request.POST.get("reason", ""),
            read=read,
        )
    except (adjudication.InvalidDecision, services.InvalidTransition, PermissionDenied) as exc:
        messages.error(request, str(exc))
        return
    messages.success(request, "Decided: the final read of this series is stored.")


def _uuid(value: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@login_required
def adjudication_layer(request: HttpRequest, project_id: str, series_id: str) -> HttpResponse:
    """PNG of one slice: ?layer=<read id>|consensus|heat&slice=<index>."""
    project = get_project_for_user(request.user, project_id, REVIEW_ROLES)
    series = _series_or_404(project, series_id)
    try:
        index = int(request.GET.get("slice", "0"))
    except ValueError:
        index = -1
    png = review_data.layer_png(series, index, request.GET.get("layer", "heat"))
    if png is None:
        raise Http404("No such slice or read.")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response


class SettingsForm(forms.Form):
    agreement_threshold = forms.FloatField(
        min_value=0.0, max_value=1.0, help_text="0 to 1: below it, a series goes to an adjudicator."
    )
    auto_accept = forms.BooleanField(required=False, help_text="At or above the threshold, accept the consensus.")
    surface_tolerance_mm = forms.FloatField(
        min_value=0.01, max_value=100.0, help_text="Surface Dice tolerance in mm (quality page)."
    )


@login_required
@require_http_methods(["GET", "POST"])
def adjudication_settings(request: HttpRequest, project_id: str) -> HttpResponse:
    """The project admin sets the agreement threshold, auto-accept and the surface tolerance."""
    project = get_project_for_user(request.user, project_id, ASSIGN_ROLES)
    current = adjudication.consensus_settings_of(project)
    form = SettingsForm(
        request.POST or None,
        initial={
            "agreement_threshold": current.agreement_threshold,
            "auto_accept": current.auto_accept,
            "surface_tolerance_mm": current.surface_tolerance_mm,
        },
    )
    if request.method == "POST" and form.is_valid():
        adjudication.consensus_settings_update(project=project, user=request.user, **form.cleaned_data)
        messages.success(request, "Saved. Series are routed with these rules from their next finished read.")
        return redirect("adjudication-settings", project.pk)
    return render_project_page(
        request, "annotations/adjudication_settings.html", project=project, current="adjudication", form=form
    )
