"""The compliance officer's page for the project's free-text vocabulary.

Compliance officers and project admins see the words; only compliance officers add or
remove them (anonymizer.vocabulary checks the role again and audits every change).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from anonymizer import vocabulary
from anonymizer.models import VocabularyTerm
from frontend.nav import render_project_page
from workbench.access import COMPLIANCE_ROLES, get_project_for_user, roles_for
from workbench.models import Project


class VocabularyTermForm(forms.Form):
    term = forms.CharField(max_length=200, label="Word to keep in free text (letters, digits and hyphens)")


def _render(request: HttpRequest, project: Project, form: VocabularyTermForm, status: int = 200) -> HttpResponse:
    terms = VocabularyTerm.objects.filter(project=project).select_related("added_by").order_by("term")
    can_edit = bool(roles_for(request.user, project) & vocabulary.VOCABULARY_EDIT_ROLES)
    return render_project_page(
        request,
        "frontend/vocabulary.html",
        project=project,
        current="vocabulary",
        terms=terms,
        form=form,
        can_edit=can_edit,
        status=status,
    )


@login_required
def vocabulary_page(request: HttpRequest, project_id: str) -> HttpResponse:
    """List the words; a compliance officer's POST adds one."""
    if request.method != "POST":
        project = get_project_for_user(request.user, project_id, COMPLIANCE_ROLES)
        return _render(request, project, VocabularyTermForm())
    project = get_project_for_user(request.user, project_id, vocabulary.VOCABULARY_EDIT_ROLES)
    form = VocabularyTermForm(request.POST)
    if form.is_valid():
        try:
            entry = vocabulary.vocabulary_term_add(project=project, user=request.user, term=form.cleaned_data["term"])
        except vocabulary.VocabularyError as exc:
            form.add_error("term", str(exc))
        else:
            messages.success(request, f"'{entry.term}' is kept in free text from now on.")
            return redirect("vocabulary", project.pk)
    return _render(request, project, form, status=400)


@login_required
@require_POST
def vocabulary_remove(request: HttpRequest, project_id: str) -> HttpResponse:
    """A compliance officer removes one word (the POST field ``term``)."""
    project = get_project_for_user(request.user, project_id, vocabulary.VOCABULARY_EDIT_ROLES)
    try:
        vocabulary.vocabulary_term_remove(project=project, user=request.user, term=request.POST.get("term", ""))
    except vocabulary.VocabularyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The word was removed; files de-identified from now on no longer keep it.")
    return redirect("vocabulary", project.pk)
