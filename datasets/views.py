"""Server-rendered dataset pages: the project's datasets, and one dataset with its versions.

Thin views: objects come through datasets.access (404 to outsiders, 403 to other roles), writes
through datasets.services. Export progress on the page is polled from the API (exports.js).
"""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import ValidationError

from annotations.models import AssignmentStatus
from annotations.selectors import label_schema_current
from datasets import selectors, services
from datasets.access import EXPORT_ROLES, VIEW_ROLES, get_dataset_for_user, get_version_for_user
from datasets.card import export_warnings
from datasets.chart import split_chart
from datasets.exporters import FORMATS, get_exporter
from datasets.labelsource import DEFAULT, MODES, RULES
from datasets.manifest import manifest_load
from datasets.models import DatasetVersion
from datasets.serializers import ExportIn
from frontend.nav import render_project_page
from workbench.access import get_project_for_user, roles_for
from workbench.models import Project


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Intended use")
    modalities = forms.CharField(required=False, help_text="Comma-separated, e.g. CT, MR. Empty: all.")
    labels = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, help_text="Empty: all.")
    statuses = forms.MultipleChoiceField(
        choices=AssignmentStatus.choices,
        initial=[AssignmentStatus.ACCEPTED],
        widget=forms.CheckboxSelectMultiple,
        label="Reads with status",
    )
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    origin = forms.ChoiceField(
        choices=[
            ("any", "any: every label of the chosen reads"),
            ("verified", "human-verified: drawn, edited or accepted by a person (no automatic consensus)"),
            ("human", "human-drawn only: no model proposal, even accepted, and no fused consensus"),
        ],
        initial="any",
        required=False,
        label="Labels made by",
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = label_schema_current(project=project)
        names = [label.name for label in schema.labels.all()] if schema else []
        self.fields["labels"].choices = [(n, n) for n in names]  # type: ignore[attr-defined]

    def selection(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "modalities": [m.strip().upper() for m in data["modalities"].split(",") if m.strip()],
            "labels": data["labels"],
            "statuses": data["statuses"],
            "date_from": data["date_from"].isoformat() if data["date_from"] else "",
            "date_to": data["date_to"].isoformat() if data["date_to"] else "",
            "origin": data["origin"] or "any",
        }


class FreezeForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000)
    seed = forms.IntegerField(min_value=0, initial=0)
    train = forms.IntegerField(min_value=0, max_value=100, initial=70, label="Train %")
    validation = forms.IntegerField(min_value=0, max_value=100, initial=15, label="Validation %")
    test = forms.IntegerField(min_value=0, max_value=100, initial=15, label="Test %")
    folds = forms.IntegerField(
        required=False, min_value=2, max_value=20, help_text="k folds instead of a validation share"
    )
    label_source = forms.ChoiceField(
        choices=[(mode, f"{mode.replace('_', ' ')}: {RULES[mode]}") for mode in MODES],
        initial=DEFAULT,
        required=False,  # empty: the default
        widget=forms.RadioSelect,
        label="Labels from",
    )
    reader = forms.CharField(required=False, max_length=150, help_text="The reader's username, for “reader”.")

    def split(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["folds"]:
            return {"seed": data["seed"], "folds": data["folds"], "test": data["test"] / 100}
        shares = {k: data[k] / 100 for k in ("train", "validation", "test")}
        return {"seed": data["seed"], "ratios": shares}


# One form control per export option of any format; the option's formats and text come from
# the exporters (test_pages checks every option there is has a control here).
_OPTION_FIELDS: dict[str, forms.Field] = {
    "frames": forms.ChoiceField(required=False, choices=[("", "all (default)"), ("annotated", "annotated only")]),
    "bit_depth": forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=[("", "8 (default)"), ("16", "16")]
    ),
    "window": forms.ChoiceField(required=False, choices=[("", "file (default)"), ("minmax", "minmax")]),
    "task": forms.ChoiceField(required=False, choices=[("", "detect (default)"), ("segment", "segment")]),
    "dataset_id": forms.IntegerField(required=False, widget=forms.NumberInput(attrs={"placeholder": "1"})),
    "name": forms.CharField(
        required=False, max_length=64, widget=forms.TextInput(attrs={"placeholder": "from the dataset"})
    ),
}


class ExportForm(forms.Form):
    """The format and its options as the page sends them; values are checked by ExportIn and
    services.export_request, as for the API. An option left blank is not sent (the default)."""

    format = forms.ChoiceField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exporters = [get_exporter(name) for name in FORMATS]
        self.fields["format"].choices = [(one.name, one.title) for one in exporters]  # type: ignore[attr-defined]
        self.option_formats: dict[str, list[str]] = {}
        for key, field in _OPTION_FIELDS.items():
            users = [one for one in exporters if key in one.options]
            self.fields[key] = copy.deepcopy(field)
            self.fields[key].help_text = users[0].options[key] if users else ""
            self.option_formats[key] = [one.name for one in users]

    def options(self) -> dict[str, Any]:
        return {key: self.cleaned_data[key] for key in _OPTION_FIELDS if self.cleaned_data[key] not in (None, "")}

    def option_rows(self) -> list[tuple[forms.BoundField, list[str]]]:
        return [(self[key], self.option_formats[key]) for key in _OPTION_FIELDS]


@login_required
@require_http_methods(["GET", "POST"])
def dataset_list(request: HttpRequest, project_id: str) -> HttpResponse:
    """The project's datasets; ML engineers and admins create new ones here."""
    project = get_project_for_user(request.user, project_id, VIEW_ROLES)
    can_edit = bool(roles_for(request.user, project) & EXPORT_ROLES)
    form = DatasetForm(request.POST or None, project=project)
    if request.method == "POST":
        project = get_project_for_user(request.user, project_id, EXPORT_ROLES)
        if form.is_valid():
            try:
                dataset = services.dataset_create(
                    project=project,
                    user=request.user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    selection=form.selection(),
                )
            except services.InvalidDataset as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Dataset {dataset.name!r} created; freeze a version to export it.")
                return redirect("dataset", dataset.pk)
    return render_project_page(
        request,
        "datasets/list.html",
        project=project,
        current="datasets",
        datasets=selectors.datasets_of(project).prefetch_related("versions"),
        form=form,
        can_edit=can_edit,
    )


def _label_kinds(version: DatasetVersion) -> list[dict[str, Any]]:
    """The version's labels with their kinds: from the summary, or for versions frozen before
    the summary kept kinds, from the manifest."""
    labels = version.summary.get("labels", [])
    if labels and all("kind" in one for one in labels):
        return labels
    return manifest_load(version.pk, version.manifest_path)["labels"]["labels"]


@login_required
@require_http_methods(["GET", "POST"])
def dataset_detail(request: HttpRequest, dataset_id: str) -> HttpResponse:
    """A dataset's versions; the chosen one (?version=, else the latest) with its split chart,
    leakage check, changes against its parent, and exports."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    can_edit = bool(roles_for(request.user, dataset.project) & EXPORT_ROLES)
    form = FreezeForm(request.POST or None)
    if request.method == "POST":
        dataset = get_dataset_for_user(request.user, dataset_id, EXPORT_ROLES)
        if form.is_valid():
            try:
                version, created = services.version_freeze(
                    dataset=dataset,
                    user=request.user,
                    note=form.cleaned_data["note"],
                    split=form.split(),
                    label_source=form.cleaned_data["label_source"],
                    reader=form.cleaned_data["reader"],
                )
            except services.InvalidDataset as exc:
                form.add_error(None, str(exc))
            else:
                word = "Froze version" if created else "Nothing changed since version"
                messages.success(request, f"{word} {version.pk[:12]}.")
                return redirect(f"{reverse('dataset', args=[dataset.pk])}?version={version.pk}")
    versions = list(selectors.versions_of(dataset))
    chosen = _chosen(request, versions)
    context: dict[str, Any] = {"dataset": dataset, "versions": versions, "version": chosen, "form": form}
    if chosen is not None:
        summary = chosen.summary
        colors = {one["name"]: one["color"] for one in summary.get("labels", [])}
        context |= {
            "chart": split_chart(summary.get("splits", {}), colors),
            "leakage": summary.get("leakage", {}),
            "splits": summary.get("splits", {}),
            "exports": selectors.exports_of(chosen),
            "export_form": ExportForm(),
            "export_warnings": export_warnings(_label_kinds(chosen), summary.get("splits", {})),
            "changes": _changes(chosen),
        }
    return render_project_page(
        request, "datasets/detail.html", project=dataset.project, current="datasets", can_edit=can_edit, **context
    )


@login_required
@require_POST
def export_create(request: HttpRequest, version_id: str) -> HttpResponse:
    """Ask for an archive from the page; the job runs on the worker and the page polls it."""
    version = get_version_for_user(request.user, version_id, EXPORT_ROLES)
    form = ExportForm(request.POST)
    if not form.is_valid():
        problems = (f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items())
        messages.error(request, "; ".join(problems))
    else:
        try:
            data = ExportIn(data={"format": form.cleaned_data["format"], "options": form.options()})
            data.is_valid(raise_exception=True)
            export, queued = services.export_request(
                version=version,
                user=request.user,
                export_format=data.validated_data["format"],
                options=data.validated_data["options"],
            )
        except services.InvalidDataset as exc:
            messages.error(request, str(exc))
        except ValidationError as exc:
            messages.error(request, str(exc.detail))
        else:
            state = "queued" if queued else "already " + export.status
            messages.success(request, f"{export.format} export {state}.")
    return redirect(f"{reverse('dataset', args=[version.dataset_id])}?version={version.pk}#exports")


def _chosen(request: HttpRequest, versions: list[DatasetVersion]) -> DatasetVersion | None:
    wanted = request.GET.get("version")
    for version in versions:
        if version.pk == wanted:
            return version
    return versions[0] if versions else None


def _changes(version: DatasetVersion) -> dict[str, Any] | None:
    parent = version.parent
    if parent is None:
        return None
    diff = selectors.version_compare(
        manifest_load(parent.pk, parent.manifest_path), manifest_load(version.pk, version.manifest_path)
    )
    return {"parent": parent, **diff}
