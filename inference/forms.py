"""The Models page's forms: import a model file, train a model, as the API takes them.

The forms only shape the input; the rules stay where the API keeps them: the import's fields are
parsed by the API's own input serializer (labels, window, size), and what may be imported or
trained is decided by inference.services, whose InvalidTraining the views turn into form errors.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.forms.utils import pretty_name
from rest_framework import serializers

from datasets.models import DatasetVersion
from inference import selectors
from inference.api_models import MAX_EPOCHS, ModelImportIn
from inference.models import ModelKind, ModelVersion
from inference.services import InvalidTraining
from workbench.models import Project

_SIZE = cast(serializers.IntegerField, ModelImportIn().fields["size"])  # the API's bounds, for the browser


class _ServiceErrors:
    """Mixin: an error of the service becomes the error of the field it names (else of the form)."""

    def add_service_error(self: Any, exc: InvalidTraining) -> None:
        self.add_error(exc.field if exc.field in self.fields else None, str(exc))

    def error_messages_in_words(self: Any) -> list[str]:
        """Every error as one sentence naming its field, for Django's messages."""
        out = []
        for name, errors in self.errors.items():
            field = self.fields.get(name)
            label = (field.label or pretty_name(name)) if field is not None else ""
            out += [f"{label}: {error}" if label else str(error) for error in errors]
        return out


class ModelImportForm(_ServiceErrors, forms.Form):
    file = forms.FileField(
        label="Model file",
        help_text="A TorchScript model (.pt, from torch.jit.save) or a MONAI Bundle zip.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pt,.ts,.zip"}),
        error_messages={"required": "Choose a TorchScript .pt file or a MONAI Bundle .zip to import."},
    )
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ModelKind.choices, initial=ModelKind.SEGMENTATION)
    labels = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Label names in output-channel order, comma-separated (a bundle may name them).",
        widget=forms.TextInput(attrs={"placeholder": "Nodule"}),
    )
    modality = forms.CharField(required=False, max_length=16, widget=forms.TextInput(attrs={"placeholder": "CT"}))
    size = forms.IntegerField(
        required=False,
        label="Input size",
        help_text="Pixels per side the slices are resized to.",
        widget=forms.NumberInput(attrs={"min": _SIZE.min_value, "max": _SIZE.max_value, "placeholder": "256"}),
    )
    window = forms.CharField(
        required=False,
        label="Intensity window",
        help_text="low,high in modality units.",
        widget=forms.TextInput(attrs={"placeholder": "-1000,400"}),
    )

    def clean(self) -> dict[str, Any]:
        """Parse as the API does (ModelImportIn), so page and API accept exactly the same input."""
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        given = {key: value for key, value in cleaned.items() if value not in (None, "")}
        serializer = ModelImportIn(data=given)
        if not serializer.is_valid():
            for name, errors in serializer.errors.items():
                for error in errors:
                    self.add_error(name if name in self.fields else None, str(error))
            return cleaned
        self.import_arguments: dict[str, Any] = dict(serializer.validated_data)
        return cleaned


class _VersionChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: DatasetVersion) -> str:
        when = obj.created_at.strftime("%Y-%m-%d %H:%M")
        return f"{obj.dataset.name} · {obj.pk[:12]} · {obj.samples} series · {when}"


class _ModelChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: ModelVersion) -> str:
        return f"{obj.name} · {obj.pk[:12]} · {', '.join(obj.labels)}"


class TrainingForm(_ServiceErrors, forms.Form):
    dataset_version = _VersionChoice(
        queryset=DatasetVersion.objects.none(),
        label="Dataset version",
        empty_label=None,
        help_text="A frozen version of one of this project's datasets: its train and validation splits.",
        error_messages={
            "required": "Choose a frozen dataset version to train on; freeze one on the Datasets page first.",
            "invalid_choice": "No frozen dataset version with this id in this project.",
        },
    )
    kind = forms.ChoiceField(choices=ModelKind.choices, initial=ModelKind.SEGMENTATION)
    labels = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Mask and area labels of the versions. None ticked: the parent's, or all of the version's.",
    )
    epochs = forms.IntegerField(min_value=1, max_value=MAX_EPOCHS, initial=25)
    parent = _ModelChoice(
        queryset=ModelVersion.objects.none(),
        required=False,
        label="Fine-tune from",
        empty_label="none: train from scratch",
        error_messages={"invalid_choice": "No model version with this id in this project."},
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        versions = selectors.dataset_versions_of(project)
        self.fields["dataset_version"].queryset = versions  # type: ignore[attr-defined]
        self.fields["parent"].queryset = selectors.models_of(project)  # type: ignore[attr-defined]
        names = selectors.area_labels_of(versions)
        self.fields["labels"].choices = [(name, name) for name in names]  # type: ignore[attr-defined]
        self.has_versions = versions.exists()
