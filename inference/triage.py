"""Triage: a classifier scores series so that worklists can put likely-abnormal cases first.

Services (HackSoft style): :func:`triage_run_create` validates and queues (web side, no torch);
:func:`triage_run` scores in an ``inference`` worker (imports torch through inference.handlers).
The newest classifier that scored a project's series is the one worklists order by
(:func:`triage_score_subquery`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery

from annotations.geometry import rle_encode
from inference.models import ModelKind, ModelVersion, SeriesScore
from inference.runs import instance_slices
from workbench.audit import audit_record
from workbench.models import Project, Series

HEATMAP_THRESHOLD = 0.5  # the stored heat map: GradCAM at or above this, on the highest-scoring slice


class InvalidTriage(ValueError):
    """The triage request cannot run; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def triage_run_create(
    *, project: Project, model: ModelVersion, user: Any, series_ids: list[str] | None = None
) -> list[str]:
    """Queue the scoring of the project's series (``series_ids``, or all of the model's modality); their ids.

    The caller has checked that ``user`` is a project admin or ML engineer. Raises InvalidTriage
    for a model of another project or kind, or nothing to score. Audited; sent after the commit.
    """
    if model.project_id != project.pk:
        raise InvalidTriage("This model belongs to another project.", field="model")
    if model.kind != ModelKind.CLASSIFICATION:
        raise InvalidTriage(f"Triage needs a classification model; this one is a {model.kind} model.", field="model")
    series = Series.objects.filter(study__project=project)
    if series_ids is not None:
        series = series.filter(pk__in=series_ids)
    modality = str(model.input_spec.get("modality") or "")
    if modality and "," not in modality:
        series = series.filter(modality=modality)
    ids = [str(pk) for pk in series.order_by("pk").values_list("pk", flat=True)]
    if not ids:
        raise InvalidTriage(
            f"The project has no {modality + ' ' if modality else ''}series for this model to score.", field="series"
        )
    audit_record(
        action="triage_queued",
        actor=user,
        project=project,
        object_type="model_version",
        object_id=model.pk,
        details={"series": len(ids)},
    )
    from inference import tasks

    transaction.on_commit(lambda: tasks.triage_run.delay(model.pk, ids))
    return ids


def triage_run(*, model_id: str, series_ids: list[str], batch_size: int = 32) -> int:
    """Score each series and keep the top slice's heat map (worker side). Idempotent: a score is replaced."""
    from inference.handlers import handler_class, handler_name
    from inference.handlers.classification import series_score
    from inference.services import model_weights

    model = ModelVersion.objects.get(pk=model_id)
    handler = handler_class(handler_name(model.kind, model.config))(model_weights(model), model.config)
    positive, pooling = handler.config.positive_index, handler.config.pooling
    done = 0
    for series in Series.objects.filter(pk__in=series_ids):
        slices = [
            one for instance in series.instances.order_by("number", "sop_uid") for one in instance_slices(instance)
        ]
        if not slices:
            continue
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, one in enumerate(slices):
            by_shape.setdefault(one.pixels.shape, []).append(index)
        probabilities = np.zeros((len(slices), len(handler.config.classes)), dtype=np.float32)
        for indexes in by_shape.values():
            probabilities[indexes] = handler.predict([slices[i].pixels for i in indexes], batch_size=batch_size)
        top = slices[int(probabilities[:, positive].argmax())]
        heat = handler.explain(top.pixels) >= HEATMAP_THRESHOLD
        heatmap = {
            "sop_uid": top.sop_instance_uid,
            "frame": top.frame,
            "rows": int(heat.shape[0]),
            "columns": int(heat.shape[1]),
            "rle": rle_encode(heat),
        }
        SeriesScore.objects.update_or_create(
            model=model,
            series=series,
            defaults={"score": series_score(probabilities, positive=positive, pooling=pooling), "heatmap_rle": heatmap},
        )
        done += 1
    return done


def triage_model(*, project_id: Any) -> QuerySet[ModelVersion, Any]:
    """The project's newest classifier that has scored series (a one-row queryset, for subqueries)."""
    return (
        ModelVersion.objects.filter(project_id=project_id, kind=ModelKind.CLASSIFICATION, series_scores__isnull=False)
        .order_by("-created_at", "pk")
        .values("pk")[:1]
    )


def series_triage_get(*, series: Series) -> SeriesScore | None:
    """The series' score by its project's triage model (:func:`triage_model`), with that model; or None.

    The same classifier the worklist orders by, so that the annotator's badge and the worklist's
    score agree: when a newer classifier has scored the project but not this series, there is none.
    Read-only; the caller has checked that the user may see the series (an assignment of it).
    """
    model = triage_model(project_id=series.study.project_id)
    return SeriesScore.objects.select_related("model").filter(series=series, model=Subquery(model)).first()


def positive_class(model: ModelVersion) -> str:
    """The class whose probability the score is: the registered ``positive``, else the config's, else the last."""
    spec, config = model.input_spec or {}, model.config or {}
    named = spec.get("positive") or config.get("positive")
    if named:
        return str(named)
    classes = spec.get("classes") or config.get("classes") or []
    return str(classes[-1]) if classes else ""


def triage_score_subquery(series_ref: str = "series", project_ref: str = "project") -> Subquery:
    """The score of the outer row's series by its project's triage model, or NULL (for ``annotate``)."""
    scores = SeriesScore.objects.filter(
        series=OuterRef(series_ref), model=Subquery(triage_model(project_id=OuterRef(OuterRef(project_ref))))
    )
    return Subquery(scores.values("score")[:1])
