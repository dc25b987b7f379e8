"""Create the demo project, one user per role, and ingest synthetic studies through the pipeline.

Besides the radiologist's worklist (every demo study, to label in the viewer), the demo holds
data an ML team can train on: extra synthetic CT patients, and the phantom lesion's ground truth
on every CT series as accepted mask annotations by the demo ``reader``, made through the real
annotation services and accepted by the demo ``reviewer``. From these the demo ``mlengineer``
gets a dataset, "Lesion segmentation (demo)", with one frozen version to export and train on
(examples/train_unet.py).
"""

from __future__ import annotations

import argparse
import secrets
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pydicom
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand
from django.db import transaction
from pydicom import Dataset
from rest_framework.authtoken.models import Token

from annotations.geometry import rle_encode
from annotations.models import Annotation, Assignment, AssignmentStatus, Label, LabelSchema
from annotations.schemas import label_schema_default
from annotations.services import annotation_create, assignment_accept, assignment_create, assignment_submit
from anonymizer import selectors, services
from anonymizer.intake import Incoming
from anonymizer.models import IngestItem, Source
from datasets.models import Dataset as TrainingDataset
from datasets.models import DatasetVersion
from datasets.services import InvalidDataset, dataset_create, version_freeze
from workbench.demo import PATIENTS, DemoPatient, demo_datasets, lesion_mask, phantom_of, to_bytes, training_datasets
from workbench.demo import training_patients as make_training_patients
from workbench.models import Membership, Project, Role, Series

DEMO_USERS = {
    "admin": Role.ADMIN,
    "radiologist": Role.RADIOLOGIST,
    "reader": Role.RADIOLOGIST,  # draws the demo's ground truth; keeps out of the radiologist's worklist
    "reviewer": Role.REVIEWER,
    "compliance": Role.COMPLIANCE,
    "mlengineer": Role.ML_ENGINEER,
}
GROUND_TRUTH_READER = "reader"
GROUND_TRUTH_REVIEWER = "reviewer"
# client ids of the ground-truth annotations: one per (series, slice), so a re-run finds them
_GROUND_TRUTH_NAMESPACE = uuid.UUID("6c1f6f0e-6a57-4a8e-9a52-0d7d1f1c2b10")
DEMO_DATASET = "Lesion segmentation (demo)"
DEMO_DATASET_OWNER = "mlengineer"
DEMO_EPOCHS = 25  # what tests/test_model_train.py trains to Dice >= 0.8; a few minutes on the CPU
DEMO_SPLIT = {"seed": 0, "ratios": {"train": 0.7, "validation": 0.15, "test": 0.15}}
# Applied on the fly by the training loop (not materialized): mirror images of a chest are chests,
# and small rotations and HU shifts stand in for positioning and calibration differences.
DEMO_AUGMENTATION = {
    "seed": 0,
    "transforms": [
        {"name": "flip", "spatial_axes": [0], "prob": 0.5},
        {"name": "rotate", "range_degrees": 10.0, "prob": 0.3},
        {"name": "intensity_shift", "offsets": 20.0, "prob": 0.3},
    ],
}


def demo_users_create(*, project: Project) -> list[tuple[str, Role, str, str]]:
    """One ordinary user per demo role in ``project``: (username, role, new password, API token key).

    Idempotent apart from the passwords, which are new on every call. Demo users are never
    staff or superusers, even one an earlier version made so: Django's admin sees every project,
    so it is only for a superuser made on purpose (``manage.py createsuperuser``).
    """
    out = []
    for username, role in DEMO_USERS.items():
        user, _ = get_user_model().objects.get_or_create(username=username)
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = user.is_superuser = False
        user.save()
        Membership.objects.get_or_create(project=project, user=user, role=role)
        token, _ = Token.objects.get_or_create(user=user)
        out.append((username, role, password, token.key))
    return out


class Command(BaseCommand):
    help = "Create the demo project, users (new passwords each run), labels, studies and a worklist."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--slices", type=int, default=12, help="CT slices per series")
        parser.add_argument("--size", type=int, default=512, help="CT rows and columns")
        parser.add_argument(
            "--training-patients", type=int, default=8, help="extra synthetic CT patients with lesion masks"
        )
        parser.add_argument(
            "--model",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="queue the demo model: trained on the demo dataset, then run on the unlabelled series",
        )

    def handle(
        self, *args: Any, slices: int, size: int, training_patients: int, model: bool = True, **options: Any
    ) -> None:
        project, _ = Project.objects.get_or_create(slug="demo", defaults={"name": "Demo: chest CT and ultrasound"})
        self.stdout.write(self.style.MIGRATE_HEADING("Demo users (passwords are new on every run):"))
        for username, role, password, token_key in demo_users_create(project=project):
            self.stdout.write(f"  {username:<12} {role.label:<20} password: {password}   API token: {token_key}")
        users = get_user_model().objects
        admin, reader = users.get(username="admin"), users.get(username=GROUND_TRUTH_READER)
        schema = label_schema_default(project=project)
        if not project.batches.exists():
            self._ingest(project, admin, demo_datasets(slices=slices, size=size))
        # The training patients are the batch the reader ingested: that is how a re-run finds them.
        training_batches = project.batches.filter(created_by=reader)
        if not training_batches.exists():
            patients = make_training_patients(training_patients)
            self._ingest(project, reader, training_datasets(patients, slices=slices, size=size))
        training = set(
            Series.objects.filter(
                instances__pk__in=IngestItem.objects.filter(batch__in=training_batches).values("instance")
            ).values_list("pk", flat=True)
        )
        self._assign(project, admin, exclude=training)
        label = self._ground_truth(project, admin, schema, training, make_training_patients(training_patients))
        if label is not None:
            version = self._dataset(project, label)
            if model and version is not None:
                self._model(project, version)

    def _ingest(self, project: Project, admin: Any, datasets: Iterable[Dataset]) -> None:
        """Through the real pipeline. The items are processed here, in this process, so that
        the demo is ready when the server starts; the tasks they also enqueued find them done
        and skip them (the task is idempotent)."""
        batch = services.batch_create(project=project, source=Source.FOLDER, user=admin)
        files = (Incoming(f"demo-{k:04d}.dcm", to_bytes(ds)) for k, ds in enumerate(datasets))
        items = services.batch_add(batch=batch, incoming=files)
        self.stdout.write(f"De-identifying {len(items)} synthetic files (batch {batch.pk})...")
        for item in items:
            services.item_deidentify(item_id=str(item.pk))
        counts = selectors.batch_counts(batch)
        self.stdout.write(
            f"  done: {counts['done']}, quarantined: {counts['quarantined']}, rejected: {counts['rejected']}"
        )

    def _assign(self, project: Project, admin: Any, *, exclude: set[Any]) -> None:
        """Every series but the training patients' goes to the demo radiologist's worklist (idempotent)."""
        reader = get_user_model().objects.get(username="radiologist")
        series = Series.objects.filter(study__project=project).exclude(pk__in=exclude)
        for one in series:
            assignment_create(series=one, readers=[reader], user=admin)
        self.stdout.write(f"The radiologist's worklist holds {series.count()} series.")

    def _ground_truth(
        self,
        project: Project,
        admin: Any,
        schema: LabelSchema,
        training: set[Any],
        training_patients: tuple[DemoPatient, ...],
    ) -> Label | None:
        """The lesion on every slice that shows it, as the reader's accepted masks (idempotent).

        Each CT series is matched to the phantom it was made from by its pixels (demo.phantom_of);
        one that matches none (a real upload; a series too short to show its lesion) is left out.
        Uses the schema's first mask label (the default chest schema's "Nodule"). A series whose
        ground truth was accepted on an earlier run is not read again. Returns the label used.
        """
        label = Label.objects.filter(schema=schema, kind="mask").order_by("order").first()
        if label is None:
            self.stdout.write(self.style.WARNING("No mask label in the project's schema: no lesion ground truth."))
            return None
        users = get_user_model().objects
        reader, reviewer = users.get(username=GROUND_TRUTH_READER), users.get(username=GROUND_TRUTH_REVIEWER)
        done = Assignment.objects.filter(project=project, reader=reader, status=AssignmentStatus.ACCEPTED)
        todo = Series.objects.filter(study__project=project, modality="CT").exclude(pk__in=done.values("series"))
        for series in todo.order_by("pk"):
            candidates = training_patients if series.pk in training else PATIENTS
            slices = _slices(series)
            patient = _phantom(slices, candidates)
            if patient is None:
                continue
            (assignment,) = assignment_create(series=series, readers=[reader], user=admin)
            if assignment.status != AssignmentStatus.SUBMITTED:
                for sop_uid, mask in _lesion(slices, patient):
                    annotation_create(
                        assignment=assignment,
                        user=reader,
                        label=label,
                        sop_instance_uid=sop_uid,
                        geometry={"rows": mask.shape[0], "columns": mask.shape[1], "rle": rle_encode(mask)},
                        client_id=uuid.uuid5(_GROUND_TRUTH_NAMESPACE, f"{series.pk}/{sop_uid}"),
                    )
                assignment = assignment_submit(assignment=assignment, user=reader)
            assignment_accept(assignment=assignment, user=reviewer)
        accepted = Annotation.objects.filter(assignment__in=done, deleted=False)
        self.stdout.write(
            f"Ground truth: {accepted.count()} accepted '{label.name}' masks on {done.count()} CT series "
            f"(reader '{GROUND_TRUTH_READER}', reviewer '{GROUND_TRUTH_REVIEWER}')."
        )
        return label

    def _dataset(self, project: Project, label: Label) -> DatasetVersion | None:
        """The ML engineer's demo dataset: accepted CT series with their masks of ``label``, one frozen version.

        Idempotent, and never touches a dataset that exists already: made (and frozen) on the run
        that first finds ground truth, later runs only report it. Made through the dataset services,
        as the API makes them, by the demo ``mlengineer``.
        """
        dataset = TrainingDataset.objects.filter(project=project, name=DEMO_DATASET).first()
        if dataset is None:
            owner = get_user_model().objects.get(username=DEMO_DATASET_OWNER)
            try:
                with transaction.atomic():  # no dataset without its first version
                    dataset = dataset_create(
                        project=project,
                        user=owner,
                        name=DEMO_DATASET,
                        selection={"modalities": ["CT"], "labels": [label.name]},
                        description=f"Demo: segment the phantom lesion ('{label.name}' masks) in synthetic chest CT.",
                    )
                    version_freeze(
                        dataset=dataset,
                        user=owner,
                        note="Demo ground truth",
                        split=DEMO_SPLIT,
                        augmentation=DEMO_AUGMENTATION,
                    )
            except InvalidDataset as exc:  # e.g. series too short to show a lesion: nothing to select
                self.stdout.write(self.style.WARNING(f"No demo dataset: {exc}"))
                return None
        version = dataset.versions.order_by("-created_at").first()
        self.stdout.write(
            f"Dataset '{dataset.name}' (id {dataset.pk}), latest version {version.pk if version else '(none)'}.\n"
            f"  Train on it: .venv/bin/python examples/train_unet.py --dataset {dataset.pk} "
            f"--token <{DEMO_DATASET_OWNER}'s API token>"
        )
        return version

    def _model(self, project: Project, version: DatasetVersion) -> None:
        """Queue the demo model once: trained on ``version`` in the background (the ``training``
        queue of the worker ``make run`` starts), then run on the CT series of the radiologist's
        worklist (their reads are empty; the ground truth is another reader's), so the worklist
        opens with proposals. Idempotent: a later run only reports it."""
        from inference.models import TrainingJob
        from inference.services import training_job_create

        job = TrainingJob.objects.filter(project=project, dataset_version=version.pk).order_by("created_at").first()
        if job is None:
            owner = get_user_model().objects.get(username=DEMO_DATASET_OWNER)
            worklist = Assignment.objects.filter(
                project=project, reader__username="radiologist", series__modality="CT", annotations__isnull=True
            ).values_list("series_id", flat=True)
            series = [str(pk) for pk in worklist.distinct()]
            job = training_job_create(
                project=project,
                version=version,
                user=owner,
                epochs=DEMO_EPOCHS,
                options={"then_preannotate": series or True},
            )
        self.stdout.write(
            f"Demo model: training job {job.pk} ({job.status}); once trained it pre-annotates the unlabelled "
            "series (the worker of `make run` does both in the background)."
        )


def _slices(series: Series) -> list[tuple[str, np.ndarray]]:
    """(SOP instance UID, stored pixel values) of a phantom-shaped series, in InstanceNumber order; else []."""
    instances = list(series.instances.order_by("number", "slice_position"))
    if not 2 <= len(instances) <= 64 or any(i.frames > 1 or i.rows != i.columns for i in instances):
        return []  # not shaped like a phantom: do not read a real series' pixels
    out = []
    for instance in instances:
        with default_storage.open(instance.storage_path, "rb") as stream:
            out.append((instance.sop_uid, pydicom.dcmread(stream).pixel_array))
    return out


def _phantom(slices: list[tuple[str, np.ndarray]], candidates: tuple[DemoPatient, ...]) -> DemoPatient | None:
    if not slices or len({pixels.shape for _, pixels in slices}) != 1:
        return None
    return phantom_of(np.stack([pixels for _, pixels in slices]), candidates)


def _lesion(slices: list[tuple[str, np.ndarray]], patient: DemoPatient) -> Iterator[tuple[str, np.ndarray]]:
    for k, (sop_uid, pixels) in enumerate(slices):
        mask = lesion_mask(pixels.shape[0], k / (len(slices) - 1), patient.lesion)
        if mask.any():
            yield sop_uid, mask
