"""Celery tasks: thin wrappers over inference.services, on the ``training`` and ``inference`` queues."""

from __future__ import annotations

from celery import shared_task

from inference import runs, services


@shared_task(name="inference.training_job_run", queue="training", acks_late=True, reject_on_worker_lost=True)
def training_job_run(job_id: str) -> str | None:
    job = services.training_job_run(job_id=job_id)
    return job.status if job else None


@shared_task(name="inference.inference_run_execute", queue="inference", acks_late=True, reject_on_worker_lost=True)
def inference_run_execute(run_id: str) -> str | None:
    run = runs.inference_run_execute(run_id=run_id)
    return run.status if run else None


@shared_task(name="inference.uncertainty_rank_run", queue="inference", acks_late=True, reject_on_worker_lost=True)
def uncertainty_rank_run(model_id: str, series_ids: list[str]) -> int:
    from inference import active_learning

    return active_learning.uncertainty_rank_run(model_id=model_id, series_ids=series_ids)


@shared_task(name="inference.retraining_check", queue="default", acks_late=True, reject_on_worker_lost=True)
def retraining_check(project_id: str) -> str | None:
    """Idempotent (inference.retraining.retraining_check claims with a compare-and-set); on the
    default queue, as it only counts rows and queues the training job on the ``training`` queue."""
    from inference import retraining
    from workbench.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    job = retraining.retraining_check(project=project)
    return str(job.pk) if job else None


@shared_task(name="inference.triage_run", queue="inference", acks_late=True, reject_on_worker_lost=True)
def triage_run(run_id: str, series_ids: list[str] | None = None) -> int | None:
    """Idempotent (inference.triage.triage_run_execute claims the run with a compare-and-set); the
    number of series scored, or None for a run already ended. A message queued before triage runs
    were kept carries ``(model_id, series_ids)``: it gets its run row first."""
    from inference import triage

    if series_ids is not None:
        adopted = triage.triage_run_adopt(model_id=run_id, series_ids=series_ids)
        if adopted is None:
            return None
        run_id = str(adopted.pk)
    run = triage.triage_run_execute(run_id=run_id)
    return run.series_done if run else None
