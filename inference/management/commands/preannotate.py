"""``manage.py preannotate --project SLUG --model MODEL_ID [--series ID ...]``: run a model here, print the count."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inference import runs
from inference.models import ModelVersion, RunStatus
from workbench.models import Project


class Command(BaseCommand):
    help = (
        "Pre-annotate series with a model version in this process (no worker needed): proposals, never "
        "annotations. Without --series, every unlabelled series of the model's modality."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--project", required=True, help="the project's slug")
        parser.add_argument("--model", required=True, help="a model version id (or a unique prefix of it)")
        parser.add_argument("--series", nargs="*", default=None, help="series ids; default: every unlabelled one")
        parser.add_argument("--batch-size", type=int, default=runs.BATCH_SIZE)
        parser.add_argument(
            "--uncertainty",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="uncertainty maps on the proposals (about 4x the network work)",
        )

    def handle(
        self,
        *args: Any,
        project: str,
        model: str,
        series: list[str] | None,
        batch_size: int,
        uncertainty: bool = True,
        **o: Any,
    ) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"No project with the slug {project!r}.")
        models = list(ModelVersion.objects.filter(project=found, pk__startswith=model)[:2])
        if len(models) != 1:
            raise CommandError(f"No single model version {model!r} in project {project!r}.")
        try:
            run = runs.inference_run_create(
                project=found,
                model=models[0],
                series_ids=series or None,
                user=None,
                enqueue=False,
                uncertainty=uncertainty,
            )
        except runs.InvalidRun as exc:
            raise CommandError(f"{exc.field}: {exc}") from exc
        except Exception as exc:  # a series id that is not a UUID
            raise CommandError(str(exc)) from exc
        done = runs.inference_run_execute(run_id=str(run.pk), batch_size=batch_size)
        if done is None or done.status != RunStatus.DONE:
            raise CommandError(f"The run did not finish: {done.error if done else 'not claimed'}")
        self.stdout.write(f"{done.proposals_count} proposals on {len(done.series_ids)} series (run {done.pk})")
