"""Classifiers trained in the app: the training job's config and the registered version's metadata.

Django side of the classification handler (inference.handlers.classification); imports no torch.
"""

from __future__ import annotations

from typing import Any

from datasets.manifest import manifest_load
from datasets.models import DatasetVersion


def classification_job_config(
    *, version: DatasetVersion, labels: list[str] | None, epochs: int, options: dict[str, Any] | None
) -> dict[str, Any]:
    """The job config of a classifier on one of the version's classification labels (ClassifyConfig's fields).

    Raises ValueError (the message says what to choose) when the version has no such label, when
    ``labels`` names more than one or one it lacks, or when the label has fewer than two classes.
    """
    from inference.data import classification_labels

    available = classification_labels(manifest_load(version.pk, version.manifest_path))
    if not available:
        raise ValueError("The version has no image or series classification label to train on.")
    if labels and len(labels) != 1:
        raise ValueError("A classifier predicts one classification label; name exactly one.")
    name = labels[0] if labels else sorted(available)[0]
    if name not in available:
        raise ValueError(f"The version has no classification label {name!r}; it has {', '.join(sorted(available))}.")
    classes = available[name]
    if len(classes) < 2:
        raise ValueError(f"The label {name!r} needs at least two classes (choices of its 'value' attribute).")
    return {"label": name, "classes": classes, "epochs": epochs, **(options or {})}


def classification_register_fields(config: Any, result: Any, modality: str) -> dict[str, Any]:
    """labels, input_spec and metrics of a trained classifier (a ClassifyConfig and its ClassifyResult)."""
    return {
        "labels": [config.label],
        "input_spec": {
            "modality": modality,
            "dims": 2,
            "spacing": None,
            "window": list(config.window),
            "size": config.size,
            "classes": list(config.classes),
            "positive": config.classes[config.positive_index],
            "pooling": config.pooling,
        },
        "metrics": {
            "validation_auc": result.auc,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
        },
    }
