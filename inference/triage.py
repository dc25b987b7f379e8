"""Triage: a classifier scores series so that worklists can put likely-abnormal cases first.

Services (HackSoft style): :func:`triage_run_create` validates, keeps a
:class:`~inference.models.TriageRun` and queues it (web side, no torch); :func:`triage_run_execute`
scores in an ``inference`` worker (imports torch through inference.handlers) and keeps the run's
progress and end state, so that the Models page can say what is pending and why a run failed.
The newest classifier that scored a project's series is the one worklists order by
(:func:`triage_score_subquery`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from annotations.geometry import rle_encode
from inference.models import ModelKind, ModelVersion, RunStatus, SeriesScore, TriageRun
from inference.runs import instance_slices
from workbench.audit import audit_record
from workbench.models import Project, Series

logger = logging.getLogger(__name__)

HEATMAP_THRESHOLD = 0.5  # the stored heat map: GradCAM at or above this, on the highest-scoring slice


class InvalidTriage(ValueError):
    """The triage request cannot run; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def triage_run_create(
    *, project: Project, model: ModelVersion, user: Any, series_ids: list[str] | None = None
) -> TriageRun:
    """A queued triage run over the project's series (``series_ids``, or all of the model's modality).

    The caller has checked that ``user`` is a project admin or ML engineer. Raises InvalidTriage
    for a model of another project or kind, or nothing to score. The row, its audit event and the
    task message are one transaction; the task is sent after the commit.
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
    from inference import tasks

    with transaction.atomic():
        run = TriageRun.objects.create(
            project=project, model=model, series_ids=ids, series_total=len(ids), created_by=user
        )
        audit_record(
            action="triage_queued",
            actor=user,
            project=project,
            object_type="model_version",
            object_id=model.pk,
            details={"series": len(ids), "run": str(run.pk)},
        )
        tasks.triage_run.delay_on_commit(str(run.pk))
    return run


# --- the worker part --------------------------------------------------------------------------------


def triage_run_adopt(*, model_id: str, series_ids: list[str]) -> TriageRun | None:
    """A run row for a task message queued before triage runs were kept (it carries the model and the series).

    None when the model is gone: there is nothing left to score with.
    """
    model = ModelVersion.objects.filter(pk=model_id).first()
    if model is None:
        logger.warning("triage message for model %s dropped: the model no longer exists", model_id)
        return None
    ids = [str(one) for one in series_ids]
    return TriageRun.objects.create(project_id=model.project_id, model=model, series_ids=ids, series_total=len(ids))


def _claim(run_id: str) -> bool:
    # A run left ``running`` by a lost worker (acks_late redelivers it) is claimed again and scores
    # every series again from the first: a score is replaced, so the count restarts at zero.
    return bool(
        TriageRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
            status=RunStatus.RUNNING, started_at=timezone.now(), error="", series_done=0
        )
    )


def _fail(run: TriageRun, message: str) -> None:
    logger.exception("triage run %s failed", run.pk)
    TriageRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, error=message[:2000], finished_at=timezone.now()
    )


def triage_run_execute(*, run_id: str, batch_size: int = 32) -> TriageRun | None:
    """Score each series of the run and keep its top slice's heat map (worker side).

    Idempotent: a done or failed run is skipped (None), and a score is replaced, never added.
    ``series_done`` grows as each series is scored (a series without an image is passed over).
    Ends ``done``, or ``failed`` with what went wrong and what to do (and re-raises, as
    inference.runs.inference_run_execute does).
    """
    if not _claim(run_id):
        return None
    run = TriageRun.objects.select_related("model").get(pk=run_id)
    try:
        from inference.handlers import handler_class, handler_name
        from inference.services import model_weights

        model = run.model
        handler = handler_class(handler_name(model.kind, model.config))(model_weights(model), model.config)
    except Exception as exc:
        _fail(
            run,
            f"The model could not be loaded ({type(exc).__name__}: {exc}). Check that its weights are in the "
            "store and match the model version (re-import or retrain it if not), then start the triage again.",
        )
        raise
    for position, series_id in enumerate(run.series_ids, start=1):
        series = Series.objects.filter(pk=series_id).first()
        if series is None:
            continue  # deleted since the run was queued
        try:
            scored = _series_score(model, series, handler, batch_size)
        except Exception as exc:
            done = TriageRun.objects.values_list("series_done", flat=True).get(pk=run.pk)
            _fail(
                run,
                f"Scoring series {position} of {len(run.series_ids)} ({series_id}) failed ({type(exc).__name__}: "
                f"{exc}). The {done} series scored before it keep their scores; start the triage again "
                "once the series' images or the model are fixed.",
            )
            raise
        if scored:
            TriageRun.objects.filter(pk=run.pk).update(series_done=F("series_done") + 1)
    TriageRun.objects.filter(pk=run.pk).update(status=RunStatus.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _series_score(model: ModelVersion, series: Series, handler: Any, batch_size: int) -> bool:
    """Score one series and store it with its heat map; False when it has no image to score."""
    from inference.handlers.classification import series_score

    positive, pooling = handler.config.positive_index, handler.config.pooling
    slices = [one for instance in series.instances.order_by("number", "sop_uid") for one in instance_slices(instance)]
    if not slices:
        return False
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
    return True


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
