"""Pages for compliance officers and project admins: batches, quarantine, audit, reports, vault.

Thin views: objects come through the access helpers (404 to outsiders, 403 to
members without the role), reads through anonymizer.selectors, writes through
anonymizer.services. No page ever shows an incoming file's name or an original
attribute value, except to the compliance officer: the identity vault's answer, the
quarantine's original file names and its redaction previews.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from anonymizer import review, selectors, services
from anonymizer.access import get_batch_for_user, get_item_for_user
from anonymizer.api import deid_report_response, preview_response
from anonymizer.models import IngestItem
from anonymizer.reasons import reason_text
from frontend.nav import render_project_page
from frontend.settings_page import OPTION_LABELS
from workbench.access import (
    COMPLIANCE_ROLES,
    VAULT_ROLES,
    get_project_for_user,
    get_study_for_user,
    require_role,
    roles_for,
)
from workbench.models import Project, Role
from workbench.nostore import no_store_view

BATCHES_PER_PAGE = 50
ITEMS_PER_PAGE = 200
AUDIT_PER_PAGE = 50
AUDIT_FILTERS = ("action", "actor", "since", "until")
# DICOM PS3.15 Annex E action codes, in the order the report shows them.
ACTIONS = (
    ("X", "Removed"),
    ("Z", "Emptied"),
    ("D", "Replaced (dummy)"),
    ("U", "Replaced (UID)"),
    ("C", "Cleaned"),
    ("K", "Kept"),
)


def _page(request: HttpRequest, rows: Any, per_page: int) -> Page[Any]:
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


@login_required
def batch_list(request: HttpRequest, project_id: str) -> HttpResponse:
    project = get_project_for_user(request.user, project_id, COMPLIANCE_ROLES)
    page = _page(request, selectors.batches_for_project(project).order_by("-created_at"), BATCHES_PER_PAGE)
    return render_project_page(request, "frontend/batches.html", project=project, current="batches", page=page)


@login_required
def batch_detail(request: HttpRequest, batch_id: str) -> HttpResponse:
    batch = get_batch_for_user(request.user, batch_id, COMPLIANCE_ROLES)
    counts = selectors.batch_counts(batch)
    items = batch.items.select_related("instance").order_by("index")
    return render_project_page(
        request,
        "frontend/batch.html",
        project=batch.project,
        current="batches",
        batch=batch,
        counts=counts,
        state=selectors.batch_state(counts),
        page=_page(request, items, ITEMS_PER_PAGE),
    )


@no_store_view
@login_required
def quarantine_list(request: HttpRequest, project_id: str) -> HttpResponse:
    """The quarantine: reasons in words; names, previews and options for compliance officers."""
    project = get_project_for_user(request.user, project_id, COMPLIANCE_ROLES)
    items = selectors.quarantine_for_project(project).order_by("created_at")
    can_act = Role.COMPLIANCE in roles_for(request.user, project)
    return render_project_page(
        request,
        "frontend/quarantine.html",
        project=project,
        current="quarantine",
        rows=quarantine_rows(list(items), can_act=can_act),
        can_act=can_act,
    )


@login_required
@require_POST
def quarantine_action(request: HttpRequest, item_id: str, action: str) -> HttpResponse:
    """Re-process (optionally with changed options) or discard a quarantined item; compliance only."""
    item = get_item_for_user(request.user, item_id)
    project = item.batch.project
    require_role(request.user, project, {Role.COMPLIANCE})
    try:
        if action == "reprocess":
            item = review.item_reprocess(item=item, user=request.user, options=posted_options(request))
        else:
            item = review.item_discard(item=item, user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        verb = "sent for re-processing" if action == "reprocess" else "discarded"
        messages.success(
            request,
            f"Item {item.index} of batch {str(item.batch_id)[:8]} was {verb} (now: {item.get_status_display()}).",
        )
    return redirect("quarantine", project.pk)


# --- quarantine review (helper "ops": item 7 of issue 9) -----------------------------------------


def quarantine_rows(items: list[IngestItem], *, can_act: bool) -> list[dict[str, Any]]:
    """One row per item: the reason in words for all; name, preview and options for compliance."""
    rows = []
    for item in items:
        row: dict[str, Any] = {"item": item, "reason_text": reason_text(item.reason_code)}
        if can_act:
            try:
                current = services.item_options(item)
            except ValueError:
                current = services.project_options(item.batch.project)
            row["original_name"] = review.item_original_name(item)
            row["preview"] = item.pixel_flagged and bool(item.raw_path)
            row["options"] = [(name, OPTION_LABELS.get(name, name), getattr(current, name)) for name in OPTION_ORDER]
        rows.append(row)
    return rows


OPTION_ORDER = tuple(name for name in OPTION_LABELS if name in review.BOOLEAN_OPTIONS)


def posted_options(request: HttpRequest) -> dict[str, bool] | None:
    """The options form of the re-process button, or None when it was not sent (keep overrides)."""
    if request.POST.get("with_options") != "1":
        return None
    return {name: request.POST.get(name) == "on" for name in OPTION_ORDER}


@no_store_view
@login_required
def quarantine_preview(request: HttpRequest, item_id: str) -> HttpResponse:
    """Before/after PNG of the pixel redaction: compliance officers only, audited, never cached."""
    item = get_item_for_user(request.user, item_id)
    require_role(request.user, item.batch.project, {Role.COMPLIANCE})
    return preview_response(item, request.user)


# --- end of quarantine review --------------------------------------------------------------------


@login_required
def audit_log(request: HttpRequest, project_id: str) -> HttpResponse:
    project = get_project_for_user(request.user, project_id, COMPLIANCE_ROLES)
    filters = {key: request.GET.get(key, "").strip() for key in AUDIT_FILTERS}
    error = ""
    try:
        events = selectors.audit_events(project=project, **filters)
    except ValueError as exc:
        error, events = str(exc), selectors.audit_events(project=project).none()
    actions = selectors.audit_events(project=project).order_by("action").values_list("action", flat=True).distinct()
    query = urlencode({key: value for key, value in filters.items() if value})
    return render_project_page(
        request,
        "frontend/audit.html",
        project=project,
        current="audit",
        filters=filters,
        error=error,
        actions=list(actions),
        page=_page(request, events, AUDIT_PER_PAGE),
        query=query,
        status=400 if error else 200,
    )


def _studies_with_counts(project: Project) -> Any:
    return project.studies.select_related("patient").annotate(instance_count=Count("series__instances"))


@login_required
def deid_report(request: HttpRequest, project_id: str) -> HttpResponse:
    project = get_project_for_user(request.user, project_id, COMPLIANCE_ROLES)
    return render_project_page(
        request, "frontend/deid_report.html", project=project, current="deid", studies=_studies_with_counts(project)
    )


@login_required
def deid_report_download(request: HttpRequest, project_id: str) -> HttpResponse:
    """The project's report as CSV or JSON, audited exactly like the API's download."""
    project = get_project_for_user(request.user, project_id, COMPLIANCE_ROLES)
    fmt = request.GET.get("format", "json")
    if fmt not in ("json", "csv"):
        return HttpResponseBadRequest("Use format=json or format=csv.", content_type="text/plain")
    rows = services.deid_report_rows_for_download(project=project, user=request.user, fmt=fmt)
    return deid_report_response(project.slug, rows, fmt)


def _attribute_rows(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"tag": a["tag"], "keyword": a["keyword"], "counts": [a["actions"].get(code, 0) for code, _ in ACTIONS]}
        for a in attributes
    ]


@login_required
def study_deid_report(request: HttpRequest, study_id: str) -> HttpResponse:
    study = get_study_for_user(request.user, study_id, COMPLIANCE_ROLES)
    report = selectors.study_deid_report(study)
    instances = report["instances"]
    summary = {
        "instances": len(instances),
        "pixel_cleaned": sum(1 for i in instances if i["pixel_cleaned"]),
        "text_regions": sum(i["text_regions"] for i in instances),
        "verifier_leaks": sum(i["verifier_leaks"] for i in instances),
    }
    totals = [(label, report["action_totals"].get(code, 0)) for code, label in ACTIONS]
    return render_project_page(
        request,
        "frontend/study_report.html",
        project=study.project,
        current="deid",
        study=study,
        report=report,
        summary=summary,
        totals=totals,
        actions=ACTIONS,
        rows=_attribute_rows(report["attributes"]),
    )


class VaultLookupForm(forms.Form):
    pseudonym = forms.CharField(max_length=64, label="Pseudonym (patient id or study UID)")
    reason = forms.CharField(
        min_length=10,
        max_length=2000,
        label="Reason for this look-up (recorded in the audit log)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@no_store_view
@login_required
def vault(request: HttpRequest, project_id: str) -> HttpResponse:
    """Compliance officers reveal an identity; the answer is shown once and never cached or stored."""
    project = get_project_for_user(request.user, project_id, VAULT_ROLES)
    form = VaultLookupForm(request.POST if request.method == "POST" else None)
    identity: dict[str, Any] | None = None
    error = ""
    if form.is_bound and form.is_valid():
        try:
            identity = services.vault_lookup(project=project, user=request.user, **form.cleaned_data)
        except services.VaultError as exc:
            error = str(exc)
        else:
            form = VaultLookupForm()  # an empty form: the next look-up needs its own reason
    return render_project_page(
        request,
        "frontend/vault.html",
        project=project,
        current="vault",
        form=form,
        identity=identity,
        error=error,
        status=400 if form.errors else 200,
    )
