"""``manage.py model_train --project SLUG --version VERSION_ID [--kind classification] [--parent MODEL_ID]``.

Trains here (fine-tuning ``--parent`` when given) and prints the model and its validation metric
(Dice for segmentation, AUC for classification)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from datasets.models import DatasetVersion
from inference import services
from inference.handlers.base import UntrainableModel
from inference.models import JobStatus, ModelVersion
from workbench.models import Project


class Command(BaseCommand):
    help = "Train a model on a frozen dataset version in this process; prints the model version id and its Dice."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        # Our --version names the dataset version; it replaces Django's --version (the program's).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--project", required=True, help="the project's slug")
        parser.add_argument("--version", required=True, help="a frozen dataset version id")
        parser.add_argument("--kind", default="segmentation", help="segmentation or classification")
        parser.add_argument("--label", default="", help="classification: the label to predict (default: the first)")
        parser.add_argument("--epochs", type=int, default=25)
        parser.add_argument("--size", type=int, default=128, help="slices are resized to size x size to train")
        parser.add_argument(
            "--parent", default="", help="fine-tune this model version (its weights, network, size and window)"
        )

    def handle(
        self,
        *args: Any,
        project: str,
        version: str,
        kind: str,
        epochs: int,
        size: int,
        label: str,
        parent: str,
        **o: Any,
    ) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"No project with the slug {project!r}.")
        frozen = DatasetVersion.objects.filter(pk=version, dataset__project=found).first()
        if frozen is None:
            raise CommandError(f"No dataset version {version!r} in project {project!r}.")
        parent_model = ModelVersion.objects.filter(pk=parent, project=found).first() if parent else None
        if parent and parent_model is None:
            raise CommandError(f"No model version {parent!r} in project {project!r}.")
        try:
            job = services.training_job_create(
                project=found,
                version=frozen,
                user=None,
                kind=kind,
                labels=[label] if label else None,
                epochs=epochs,
                options={"size": size},
                parent=parent_model,
                enqueue=False,
            )
        except services.InvalidTraining as exc:
            raise CommandError(f"{exc.field}: {exc}") from exc
        try:
            done = services.training_job_run(job_id=str(job.pk))
        except UntrainableModel as exc:  # found only once the worker loads the imported parent
            raise CommandError(f"parent: {exc}") from exc
        if done is None or done.status != JobStatus.DONE or done.result is None:
            raise CommandError(f"The training did not finish: {done.error if done else 'not claimed'}")
        metric = "validation_auc" if "validation_auc" in done.result.metrics else "validation_dice"
        self.stdout.write(f"{done.result.pk} {metric}={done.result.metrics[metric]:.3f}")
