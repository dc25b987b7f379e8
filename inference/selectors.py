"""Reads of the model registry: lists for the API and the page, and the model card."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, OuterRef, QuerySet, Subquery

from datasets.models import DatasetVersion
from inference.models import InferenceRun, ModelKind, ModelVersion, RunStatus, SeriesScore, TrainingJob, TriageRun
from workbench.models import Project


def models_of(project: Project) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(project=project).select_related("parent").order_by("-created_at", "pk")


def training_jobs_of(project: Project) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.filter(project=project).select_related("parent", "result").order_by("-created_at")


def inference_runs_of(project: Project) -> QuerySet[InferenceRun]:
    """The project's pre-annotation runs, newest first, with their models."""
    return InferenceRun.objects.filter(project=project).select_related("model").order_by("-created_at", "pk")


def triage_runs_latest(models: list[ModelVersion]) -> dict[str, TriageRun]:
    """Per classifier among ``models``: its newest triage run (one query); classifiers never triaged are absent."""
    ids = [model.pk for model in models if model.kind == ModelKind.CLASSIFICATION]
    newest = TriageRun.objects.filter(model=OuterRef("model")).order_by("-created_at", "-pk").values("pk")[:1]
    return {run.model_id: run for run in TriageRun.objects.filter(model_id__in=ids, pk=Subquery(newest))}


def triage_pending(project: Project) -> bool:
    """Whether a triage run of the project is queued or running (of any model, shown or not)."""
    return TriageRun.objects.filter(project=project, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()


def triage_scores_of(models: list[ModelVersion]) -> dict[str, dict[str, Any]]:
    """Per classifier among ``models``: how many series it has scored and when last (one query).

    What the Models page shows once a triage worker has run; classifiers that scored nothing are absent.
    """
    ids = [model.pk for model in models if model.kind == ModelKind.CLASSIFICATION]
    rows = (
        SeriesScore.objects.filter(model_id__in=ids)
        .values("model_id")
        .annotate(series=Count("id"), last=Max("computed_at"))
        .order_by()
    )
    return {row["model_id"]: {"series": row["series"], "last": row["last"]} for row in rows}


def dataset_versions_of(project: Project) -> QuerySet[DatasetVersion]:
    """The project's frozen dataset versions, newest first: what a training job may be given."""
    return DatasetVersion.objects.filter(dataset__project=project).select_related("dataset").order_by("-created_at")


def area_labels_of(versions: QuerySet[DatasetVersion]) -> list[str]:
    """The mask and area labels the versions hold, from their summaries, in first-seen order.

    A summary from before labels kept their kinds offers every label; the training service
    checks the chosen ones against the version's manifest either way.
    """
    from annotations.geometry import AREA_KINDS

    names: dict[str, None] = {}
    for summary in versions.values_list("summary", flat=True):
        for label in summary.get("labels", []):
            if label.get("kind", "mask") in AREA_KINDS:
                names.setdefault(label["name"], None)
    return list(names)


def model_card(model: ModelVersion) -> dict[str, Any]:
    """What a reader needs before trusting the model: data, splits, metrics per label, use, limits, provenance."""
    imported = model.config.get("provenance") == "imported"
    metadata = model.config.get("metadata", {}) if imported else {}
    data: dict[str, Any] = {"dataset_version": model.dataset_version or None, "dataset": None, "splits": {}}
    if model.dataset_version:
        data.update(_data_of(model.dataset_version))
    metrics = dict(model.metrics)
    per_label = metrics.get("per_label") or (
        {model.labels[0]: metrics["validation_dice"]} if len(model.labels) == 1 and "validation_dice" in metrics else {}
    )
    spec = model.input_spec
    where = f"{spec.get('modality') or 'any modality'}, {spec.get('dims', 2)}-D slices"
    limits = [
        f"Runs on {where}, resized to {spec.get('size') or 'their own'} pixels, "
        f"intensity window {spec.get('window') or 'none'}.",
        "Validated only on the validation split of its dataset version; not on other scanners or sites."
        if not imported
        else "Imported: its training data and validation were not seen by Workbench.",
    ]
    if model.config.get("imported_from"):
        limits.append("Fine-tuned from an imported model: the data it was first trained on were not seen by Workbench.")
    return {
        "data": data,
        "metrics": metrics,
        "metrics_per_label": per_label,
        "intended_use": metadata.get("description")
        or f"Pre-annotation: proposals of {', '.join(model.labels)} for a reader to accept, edit or reject. "
        "Not for diagnosis.",
        "limits": limits,
        "provenance": {
            "source": "imported" if imported else ("fine-tuned" if model.parent_id else "trained"),
            "format": model.config.get("format", "monai_unet"),
            "dataset_version": model.dataset_version or None,
            "parent": model.parent_id,
            "imported_from": model.config.get("imported_from"),  # the imported model it descends from
            "code_version": model.code_version,
            "seed": model.seed,
            "weights_sha256": model.weights_sha256,
            "bundle": metadata or None,
        },
    }


def _data_of(version_id: str) -> dict[str, Any]:
    from datasets.manifest import manifest_load
    from datasets.models import DatasetVersion

    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None:
        return {}
    splits: dict[str, int] = {}
    for sample in manifest_load(version.pk, version.manifest_path)["samples"]:
        splits[sample.get("split", "")] = splits.get(sample.get("split", ""), 0) + 1
    return {"dataset": {"id": str(version.dataset_id), "name": version.dataset.name}, "splits": splits}
