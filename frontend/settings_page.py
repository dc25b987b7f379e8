"""The project admin's settings page: de-identification options, and the retraining rule."""

from __future__ import annotations

import dataclasses

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from anonymizer import services
from anonymizer.deid import DeidOptions
from datasets.models import Dataset
from frontend.nav import render_project_page
from inference import retraining
from inference.models import RetrainingBase
from workbench.access import get_project_for_user
from workbench.models import Project, Role

# Label and help for each boolean option, in the order the page shows them.
OPTION_LABELS = {
    "clean_pixel_data": "Clean Pixel Data (black out burned-in text)",
    "clean_descriptors": "Clean Descriptors",
    "clean_structured_content": "Clean Structured Content",
    "clean_graphics": "Clean Graphics",
    "retain_longitudinal_modified_dates": (
        "Retain Longitudinal Temporal Information with Modified Dates (one shift per patient)"
    ),
    "dates_year_only": "Reduce dates to the year (strict HIPAA Safe Harbor)",
    "retain_longitudinal_full_dates": "Retain Longitudinal Temporal Information with Full Dates",
    "retain_patient_characteristics": "Retain Patient Characteristics (ages over 89 become 90)",
    "retain_device_identity": "Retain Device Identity",
    "retain_institution_identity": "Retain Institution Identity",
    "retain_safe_private": "Retain Safe Private (allow-list)",
    "retain_uids": "Retain UIDs",
    "ocr_all_images": "Look for burned-in text on every image, not only at-risk ones",
}


class OptionsForm(forms.Form):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for name, label in OPTION_LABELS.items():
            self.fields[name] = forms.BooleanField(label=label, required=False)

    def to_options(self, current: DeidOptions) -> DeidOptions:
        return dataclasses.replace(current, **{name: self.cleaned_data[name] for name in OPTION_LABELS})


class RetrainingForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Retrain when enough new labels are accepted")
    after_labels = forms.IntegerField(
        min_value=1, max_value=1_000_000, label="After how many accepted labels", initial=50
    )
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.none(), required=False, label="Dataset to freeze again", empty_label="(none)"
    )
    base = forms.ChoiceField(choices=RetrainingBase.choices, label="Base model")
    epochs = forms.IntegerField(min_value=1, max_value=retraining.MAX_EPOCHS, label="Epochs", initial=15)

    def __init__(self, *args: object, project: Project, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["dataset"].queryset = Dataset.objects.filter(project=project)  # type: ignore[attr-defined]
        self.prefix = "retraining"


def _retraining_form(project: Project, data: object = None) -> RetrainingForm:
    current = retraining.retraining_settings_of(project)
    initial = {
        "enabled": current.enabled,
        "after_labels": current.after_labels,
        "dataset": current.dataset_id,
        "base": current.base,
        "epochs": current.epochs,
    }
    return RetrainingForm(data, project=project, initial=initial)


def _retraining_save(request: HttpRequest, form: RetrainingForm, project: Project) -> bool:
    if not form.is_valid():
        return False
    try:
        retraining.retraining_settings_update(project=project, user=request.user, **form.cleaned_data)
    except retraining.InvalidRetraining as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return False
    messages.success(request, "Saved. The retraining rule applies from the next accepted read.")
    return True


@login_required
def deid_settings(request: HttpRequest, project_id: str) -> HttpResponse:
    project = get_project_for_user(request.user, project_id, {Role.ADMIN})
    current = services.project_options(project)
    retraining_form = _retraining_form(project)
    if request.method == "POST" and request.POST.get("form") == "retraining":
        retraining_form = _retraining_form(project, request.POST)
        if _retraining_save(request, retraining_form, project):
            return redirect("deid-settings", project.pk)
        form = OptionsForm(initial={name: getattr(current, name) for name in OPTION_LABELS})
    elif request.method == "POST":
        if request.POST.get("preset") in ("research", "safe_harbor"):
            options = (
                DeidOptions.research_default()
                if request.POST["preset"] == "research"
                else (DeidOptions.safe_harbor_strict())
            )
            services.project_options_update(project=project, user=request.user, options=options)
            messages.success(request, "The preset was applied to files de-identified from now on.")
            return redirect("deid-settings", project.pk)
        form = OptionsForm(request.POST)
        if form.is_valid():
            services.project_options_update(project=project, user=request.user, options=form.to_options(current))
            messages.success(request, "Saved. The options apply to files de-identified from now on.")
            return redirect("deid-settings", project.pk)
    else:
        form = OptionsForm(initial={name: getattr(current, name) for name in OPTION_LABELS})
    return render_project_page(
        request,
        "frontend/deid_settings.html",
        project=project,
        current="settings",
        form=form,
        codes=current.method_codes(),
        vocabulary_count=len(current.extra_vocabulary),
        retraining_form=retraining_form,
        retraining=retraining.retraining_settings_of(project),
    )
