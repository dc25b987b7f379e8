"""Services of the model registry and training (HackSoft style: validate, do, then notify).

Torch is imported only inside the functions that run in a worker (through inference.handlers).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from datasets.models import DatasetVersion
from inference.models import JobStatus, ModelKind, ModelVersion, TrainingJob
from workbench.models import Project


class InvalidTraining(ValueError):
    """The training request cannot run; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def code_version() -> str:
    """The package versions that decide what the code does (no git at run time in a wheel install)."""
    from importlib.metadata import version

    return f"torch {version('torch')}, monai {version('monai')}"


def model_version_id(weights: bytes, config: dict[str, Any]) -> str:
    """sha256 over the weights' sha256 and the canonical config: equal content, equal id."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(hashlib.sha256(weights).digest() + canonical).hexdigest()


def model_version_register(
    *,
    project: Project,
    kind: str,
    name: str,
    weights: bytes,
    config: dict[str, Any],
    labels: list[str],
    input_spec: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    dataset_version: str = "",
    parent: ModelVersion | None = None,
    seed: int | None = None,
    user: Any = None,
) -> tuple[ModelVersion, bool]:
    """Store the weights (content-addressed, through Django's storage) and register the version.

    Idempotent: the same weights and config in the same project return the existing row
    (created=False); a stored version is never changed. Transactional.
    """
    if kind not in ModelKind.values:
        raise InvalidTraining(
            f"Unknown model kind {kind!r}; choose one of {', '.join(ModelKind.values)}.", field="kind"
        )
    full_config = {"kind": kind, "labels": labels, "input_spec": input_spec, "handler": config}
    version_id = model_version_id(weights, full_config)
    existing = ModelVersion.objects.filter(pk=version_id).first()
    if existing is not None:
        return existing, False
    path = f"models/{version_id}/weights.pt"
    if not default_storage.exists(path):
        default_storage.save(path, ContentFile(weights))
    with transaction.atomic():
        row, created = ModelVersion.objects.get_or_create(
            pk=version_id,
            defaults={
                "project": project,
                "kind": kind,
                "name": name,
                "labels": labels,
                "input_spec": input_spec,
                "config": config,
                "metrics": metrics or {},
                "weights_path": path,
                "weights_sha256": hashlib.sha256(weights).hexdigest(),
                "dataset_version": dataset_version,
                "parent": parent,
                "code_version": code_version(),
                "seed": seed,
                "created_by": user,
            },
        )
    return row, created


def model_weights(model: ModelVersion) -> bytes:
    """The stored weights, checked against their sha256."""
    with default_storage.open(model.weights_path, "rb") as stream:
        weights = stream.read()
    if hashlib.sha256(weights).hexdigest() != model.weights_sha256:
        raise RuntimeError(f"The weights of model {model.pk} do not match their checksum; restore them from backup.")
    return weights


def training_job_create(
    *,
    project: Project,
    version: DatasetVersion,
    user: Any,
    kind: str = ModelKind.SEGMENTATION,
    labels: list[str] | None = None,
    epochs: int = 25,
    parent: ModelVersion | None = None,
    options: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> TrainingJob:
    """A queued training job; enqueued on the ``training`` queue after commit. The caller checked the role."""
    if version.dataset.project_id != project.pk:
        raise InvalidTraining("The dataset version belongs to another project.", field="version")
    if parent is not None and parent.kind != kind:
        raise InvalidTraining(
            f"The parent is a {parent.kind} model; a {kind} model is fine-tuned from a {kind} model.", field="parent"
        )
    if kind == ModelKind.CLASSIFICATION:
        return _classifier_job_create(
            project=project,
            version=version,
            user=user,
            labels=labels,
            epochs=epochs,
            parent=parent,
            options=options,
            enqueue=enqueue,
        )
    if kind != ModelKind.SEGMENTATION:
        raise InvalidTraining("Only segmentation and classification models are trained in the app.", field="kind")
    available = _area_labels(version)
    if not available:
        raise InvalidTraining("The version has no mask or area label to train on.", field="labels")
    chosen = list(labels or (parent.labels if parent is not None else available))
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise InvalidTraining(
            f"The version has no mask or area label {', '.join(map(repr, unknown))}; it has {', '.join(available)}.",
            field="labels",
        )
    config = {"labels": chosen, "epochs": epochs, **(options or {})}
    if parent is not None:
        config = _fine_tuning_config(project=project, parent=parent, config=config)
    return _job_queue(
        project=project, version=version, kind=kind, config=config, parent=parent, user=user, enqueue=enqueue
    )


def _job_queue(
    *,
    project: Project,
    version: DatasetVersion,
    kind: str,
    config: dict[str, Any],
    parent: ModelVersion | None,
    user: Any,
    enqueue: bool,
) -> TrainingJob:
    job = TrainingJob.objects.create(
        project=project, dataset_version=version.pk, kind=kind, config=config, parent=parent, created_by=user
    )
    if enqueue:
        from inference import tasks

        transaction.on_commit(lambda: tasks.training_job_run.delay(str(job.pk)))
    return job


def _classifier_job_create(
    *,
    project: Project,
    version: DatasetVersion,
    user: Any,
    labels: list[str] | None,
    epochs: int,
    parent: ModelVersion | None,
    options: dict[str, Any] | None,
    enqueue: bool = True,
) -> TrainingJob:
    from inference.classification import classification_job_config

    try:
        config = classification_job_config(
            version=version, labels=labels or (list(parent.labels) if parent else None), epochs=epochs, options=options
        )
    except ValueError as exc:
        raise InvalidTraining(str(exc), field="labels") from exc
    if parent is not None:
        config = _fine_tuning_config(project=project, parent=parent, config=config, kind=ModelKind.CLASSIFICATION)
    return _job_queue(
        project=project,
        version=version,
        kind=ModelKind.CLASSIFICATION,
        config=config,
        parent=parent,
        user=user,
        enqueue=enqueue,
    )


# What shapes the network or its input: a fine-tuned model keeps its parent's, or the weights do not fit.
_INHERITED: dict[str, tuple[str, ...]] = {
    ModelKind.SEGMENTATION: ("channels", "network", "size", "window"),
    ModelKind.CLASSIFICATION: ("network", "size", "window", "positive", "pooling", "target_layer"),
}


def _fine_tuning_config(
    *, project: Project, parent: ModelVersion, config: dict[str, Any], kind: str = ModelKind.SEGMENTATION
) -> dict[str, Any]:
    if parent.project_id != project.pk:
        raise InvalidTraining("The parent model belongs to another project.", field="parent")
    if parent.config.get("handler") and kind != ModelKind.SEGMENTATION:
        raise InvalidTraining(
            f"Only imported segmentation models can be fine-tuned, not an imported {kind} model.", field="parent"
        )
    inherited = {k: parent.config[k] for k in _INHERITED[kind] if k in parent.config}
    if kind == ModelKind.CLASSIFICATION:
        classes = list(parent.config.get("classes") or [])
        if list(config["classes"]) != classes:
            raise InvalidTraining(
                f"The parent classifies into {', '.join(classes)}; the label {config['label']!r} of this version has "
                f"{', '.join(config['classes'])}. Fine-tuning keeps the parent's classes, in its order.",
                field="labels",
            )
        return {**config, **inherited}
    labels = config["labels"]
    if len(labels) != len(parent.labels):
        raise InvalidTraining(
            f"The parent predicts {len(parent.labels)} label(s) ({', '.join(parent.labels)}); "
            f"fine-tuning keeps that number, not {len(labels)}.",
            field="labels",
        )
    if parent.config.get("handler"):
        return _imported_fine_tuning_config(parent=parent, config=config)
    return {**config, **inherited}


# What the child of an imported model keeps of its parent's config, so that the parent's handler
# (``torchscript``) trains it from the stored file and then runs it as it ran the parent.
_ARTIFACT_FIELDS = ("handler", "format", "root", "network_def")


def _imported_fine_tuning_config(*, parent: ModelVersion, config: dict[str, Any]) -> dict[str, Any]:
    if parent.config.get("handler") != "torchscript":
        raise InvalidTraining(
            f"The parent runs with the {parent.config.get('handler')!r} handler, which cannot fine-tune it.",
            field="parent",
        )
    if parent.config.get("trainable") is False:  # found at import (handlers.artifacts); older imports: by the worker
        from inference.handlers.artifacts import UNTRAINABLE

        raise InvalidTraining(UNTRAINABLE, field="parent")
    if not parent.config.get("size"):
        raise InvalidTraining(
            "The imported parent declares no input size, and fine-tuning trains on slices resized to one size; "
            "import it again with its input size.",
            field="parent",
        )
    window = parent.config.get("window")
    imported = parent.pk if parent.config.get("provenance") == "imported" else parent.config.get("imported_from")
    return {
        **config,
        **{k: parent.config[k] for k in _ARTIFACT_FIELDS if k in parent.config},
        # The parent's input spec; whole slices (crop 0): an imported network may take only its own size.
        "size": int(parent.config["size"]),
        "window": list(window) if window else None,
        "crop": 0,
        "imported_from": imported,
    }


def model_version_import(
    *,
    project: Project,
    user: Any,
    name: str,
    kind: str,
    data: bytes,
    labels: list[str] | None = None,
    window: tuple[float, float] | None = None,
    size: int | None = None,
    modality: str = "",
) -> tuple[ModelVersion, bool]:
    """Register an uploaded TorchScript model or MONAI Bundle zip as a model version.

    Checked without torch (handlers.artifacts) before anything is stored; raises InvalidTraining
    naming the field at fault. Content-addressed and idempotent like model_version_register; the
    provenance is "imported" (no dataset version, parent or seed). The caller checked the role.
    """
    from inference.handlers.artifacts import InvalidArtifact, inspect_artifact

    if kind != ModelKind.SEGMENTATION:
        raise InvalidTraining("Only segmentation models can be imported so far.", field="kind")
    try:
        artifact = inspect_artifact(data, labels=labels, window=window, size=size, modality=modality)
    except InvalidArtifact as exc:
        raise InvalidTraining(str(exc), field="file") from exc
    config = {**artifact.config, "provenance": "imported", "metadata": artifact.metadata}
    return model_version_register(
        project=project,
        kind=kind,
        name=name,
        weights=data,
        config=config,
        labels=artifact.labels,
        input_spec=artifact.input_spec,
        user=user,
    )


def _area_labels(version: DatasetVersion) -> list[str]:
    from annotations.geometry import AREA_KINDS
    from datasets.manifest import manifest_load

    manifest = manifest_load(version.pk, version.manifest_path)
    return [one["name"] for one in manifest["labels"]["labels"] if one["kind"] in AREA_KINDS]


def training_job_cancel(*, job: TrainingJob) -> TrainingJob:
    """Ask the job to stop after its current epoch (a queued job is cancelled at once). Idempotent."""
    TrainingJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )
    TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def work_dir(job: TrainingJob) -> Path:
    return Path(settings.VAR_DIR) / "training" / str(job.pk)


def training_job_run(*, job_id: str) -> TrainingJob | None:
    """Run the job in this worker: claim it (queued, or running after a lost worker), train, register.

    Idempotent: a finished or cancelled job is skipped. A job left ``running`` by a worker that died
    resumes from its last per-epoch checkpoint (same work folder). Progress is stored after each epoch.
    """
    from inference.handlers import handler_class
    from inference.handlers.base import ClassifyConfig, EpochReport, TrainConfig

    claimed = TrainingJob.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = TrainingJob.objects.select_related("project", "parent").get(pk=job_id)
    version = DatasetVersion.objects.get(pk=job.dataset_version)
    folder = work_dir(job)
    classifier = job.kind == ModelKind.CLASSIFICATION
    config: Any = ClassifyConfig.from_dict(job.config) if classifier else TrainConfig.from_dict(job.config)

    def progress(report: EpochReport) -> bool:
        # "dice" is the chart's 0..1 validation line; a classifier's is its AUC, also kept as "auc".
        entry: dict[str, Any] = {"epoch": report.epoch, "loss": report.loss, "dice": report.dice}
        if report.auc is not None:
            entry["auc"] = report.auc
        current = TrainingJob.objects.get(pk=job.pk)
        history = [e for e in current.progress if e["epoch"] < report.epoch] + [entry]
        TrainingJob.objects.filter(pk=job.pk).update(progress=history)
        return not current.cancel_requested

    try:
        data = folder / "data"
        if not (folder / "data.done").exists():
            shutil.rmtree(data, ignore_errors=True)
            from inference.data import version_class_slices_write, version_slices_write

            if classifier:
                version_class_slices_write(version=version, label=config.label, classes=list(config.classes), root=data)
            else:
                version_slices_write(version=version, labels=list(config.labels), root=data)
            (folder / "data.done").write_text("ok")
        parent_weights = model_weights(job.parent) if job.parent else None
        if job.config.get("handler"):  # an imported parent: its handler fine-tunes it and stores it its way
            result = handler_class(job.config["handler"]).train(
                data, config, folder / "run", parent_weights=parent_weights, artifact=job.config, progress=progress
            )
        else:
            result = handler_class(job.kind).train(
                data, config, folder / "run", parent_weights=parent_weights, progress=progress
            )
    except Exception as exc:
        TrainingJob.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED, error=str(exc), finished_at=timezone.now()
        )
        raise
    job.refresh_from_db()
    if classifier:
        from inference.classification import classification_register_fields

        fields = classification_register_fields(config, result, _modality(version))
    else:
        fields = _segmentation_register_fields(config, result, _modality(version))
    model, _ = model_version_register(
        project=job.project,
        kind=job.kind,
        name=f"{job.kind} from {version.dataset.name}",
        weights=result.weights,
        config={**config.to_dict(), **_imported_fields(job.config)},
        **fields,
        dataset_version=version.pk,
        parent=job.parent,
        seed=config.seed,
        user=job.created_by,
    )
    status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.DONE
    TrainingJob.objects.filter(pk=job.pk).update(status=status, result=model, finished_at=timezone.now())
    job.refresh_from_db()
    if status == JobStatus.DONE and job.config.get("then_preannotate"):
        _preannotate_after(job, model)
    return job


def _imported_fields(config: dict[str, Any]) -> dict[str, Any]:
    """A fine-tuned imported model's stored format and the imported model it descends from; {} for others."""
    if not config.get("handler"):
        return {}
    kept = {k: config[k] for k in _ARTIFACT_FIELDS if k in config}
    return {**kept, "provenance": "fine-tuned", "imported_from": config.get("imported_from")}


def _preannotate_after(job: TrainingJob, model: ModelVersion) -> None:
    """The demo's second step: run the new model on the series the job names (``then_preannotate``:
    a list of series ids, or true for every series nobody has labelled), once per model."""
    from inference.models import InferenceRun
    from inference.runs import InvalidRun, inference_run_create

    if InferenceRun.objects.filter(project=job.project, model=model).exists():
        return  # a redelivered job does not run the model twice
    try:
        wanted = job.config["then_preannotate"]
        series = list(wanted) if isinstance(wanted, list) else None
        inference_run_create(project=job.project, model=model, series_ids=series, user=job.created_by)
    except InvalidRun:
        pass  # nothing unlabelled is left: the demo has nothing to propose


def _segmentation_register_fields(config: Any, result: Any, modality: str) -> dict[str, Any]:
    return {
        "labels": list(config.labels),
        "input_spec": {
            "modality": modality,
            "dims": 2,
            "spacing": None,
            "window": list(config.window) if config.window else None,
            "size": config.size,
        },
        "metrics": {
            "validation_dice": result.dice,
            "per_label": _per_label(result, list(config.labels)),
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
        },
    }


def _per_label(result: Any, labels: list[str]) -> dict[str, float]:
    """The best epoch's validation Dice per label, from the training history."""
    best: dict[str, Any] = next((h for h in result.history if h["epoch"] == result.best_epoch), {})
    values = best.get("per_label") or []
    return dict(zip(labels, values, strict=False)) if len(values) == len(labels) else {}


def _modality(version: DatasetVersion) -> str:
    from datasets.manifest import manifest_load

    modalities = sorted({s["modality"] for s in manifest_load(version.pk, version.manifest_path)["samples"]})
    return modalities[0] if len(modalities) == 1 else ",".join(modalities)
