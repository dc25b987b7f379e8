"""Create the demo project, one user per role, and ingest synthetic studies through the pipeline."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from annotations.schemas import label_schema_default
from annotations.services import assignment_create
from anonymizer import selectors, services
from anonymizer.intake import Incoming
from anonymizer.models import Source
from workbench.demo import demo_datasets, to_bytes
from workbench.models import Membership, Project, Role, Series

DEMO_USERS = {
    "admin": Role.ADMIN,
    "radiologist": Role.RADIOLOGIST,
    "reviewer": Role.REVIEWER,
    "compliance": Role.COMPLIANCE,
    "mlengineer": Role.ML_ENGINEER,
}


class Command(BaseCommand):
    help = "Create the demo project, users (new passwords each run), labels, studies and a worklist."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--slices", type=int, default=12, help="CT slices per series")

    def handle(self, *args: Any, slices: int, **options: Any) -> None:
        project, _ = Project.objects.get_or_create(slug="demo", defaults={"name": "Demo: chest CT and ultrasound"})
        self.stdout.write(self.style.MIGRATE_HEADING("Demo users (passwords are new on every run):"))
        for username, role in DEMO_USERS.items():
            user, _ = get_user_model().objects.get_or_create(username=username)
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.save()
            Membership.objects.get_or_create(project=project, user=user, role=role)
            token, _ = Token.objects.get_or_create(user=user)
            self.stdout.write(f"  {username:<12} {role.label:<20} password: {password}   API token: {token.key}")
        admin = get_user_model().objects.get(username="admin")
        label_schema_default(project=project)
        if not project.batches.exists():
            self._ingest(project, admin, slices)
        self._assign(project, admin)

    def _ingest(self, project: Project, admin: Any, slices: int) -> None:
        """Through the real pipeline. The items are processed here, in this process, so that
        the demo is ready when the server starts; the tasks they also enqueued find them done
        and skip them (the task is idempotent)."""
        batch = services.batch_create(project=project, source=Source.FOLDER, user=admin)
        files = (Incoming(f"demo-{k:04d}.dcm", to_bytes(ds)) for k, ds in enumerate(demo_datasets(slices=slices)))
        items = services.batch_add(batch=batch, incoming=files)
        self.stdout.write(f"De-identifying {len(items)} synthetic files (batch {batch.pk})...")
        for item in items:
            services.item_deidentify(item_id=str(item.pk))
        counts = selectors.batch_counts(batch)
        self.stdout.write(
            f"  done: {counts['done']}, quarantined: {counts['quarantined']}, rejected: {counts['rejected']}"
        )

    def _assign(self, project: Project, admin: Any) -> None:
        """Every series goes to the demo radiologist's worklist (idempotent)."""
        reader = get_user_model().objects.get(username="radiologist")
        series = Series.objects.filter(study__project=project)
        for one in series:
            assignment_create(series=one, readers=[reader], user=admin)
        self.stdout.write(f"The radiologist's worklist holds {series.count()} series.")
