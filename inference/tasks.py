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
