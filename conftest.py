"""The shared cast and fixtures.

Project A ("alpha"): alice is its admin, bob a radiologist, carol the
compliance officer, dave an ML engineer, erin a reviewer. charlie is an
outsider: admin of project B ("beta") only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from workbench.celery import app as celery_app
from workbench.models import Membership, Project, Role

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _isolated_storage(settings: Any, tmp_path: Path) -> None:
    """Each test writes its de-identified store and quarantine under its own tmp dir."""
    # Hashing the cast's passwords with PBKDF2 would cost seconds per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "store"},
        },
        "quarantine": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "quarantine"},
        },
    }


# --- audit chain (issue 10, finding 6) ---
@pytest.fixture(autouse=True)
def _isolated_audit_checkpoints(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test appends audit checkpoints to its own file, outside its ``tmp_path``: a test that
    ingests its ``tmp_path`` as a folder must find only the files it put there."""
    settings.AUDIT_CHECKPOINT_PATH = tmp_path_factory.mktemp("audit-checkpoints") / "checkpoints.jsonl"


# --- end audit chain ---


# --- issue 10 ("shield"): DRF throttles count in process memory; start each test at zero,
# or a suite's many requests by the same user id would trip a rate meant for one person.
@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    from django.core.cache import caches

    caches["throttle"].clear()


@pytest.fixture(autouse=True, scope="session")
def _eager_celery() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


def _user(username: str) -> Any:
    return get_user_model().objects.create_user(username=username, password=PASSWORD)


@pytest.fixture
def project_a(db: None) -> Project:
    return Project.objects.create(name="Alpha chest CT", slug="alpha")


@pytest.fixture
def project_b(db: None) -> Project:
    return Project.objects.create(name="Beta ultrasound", slug="beta")


@pytest.fixture
def cast(project_a: Project, project_b: Project) -> dict[str, Any]:
    roles = {
        "alice": Role.ADMIN,
        "bob": Role.RADIOLOGIST,
        "carol": Role.COMPLIANCE,
        "dave": Role.ML_ENGINEER,
        "erin": Role.REVIEWER,
    }
    users = {}
    for name, role in roles.items():
        users[name] = _user(name)
        Membership.objects.create(project=project_a, user=users[name], role=role)
    users["charlie"] = _user("charlie")
    Membership.objects.create(project=project_b, user=users["charlie"], role=Role.ADMIN)
    return users


@pytest.fixture
def api_as(cast: dict[str, Any]) -> Callable[[str], APIClient]:
    """api_as("bob") -> an APIClient authenticated with bob's token."""

    def make(name: str) -> APIClient:
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=cast[name])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """with run_tasks(): ... runs the tasks enqueued on commit, eagerly, when the block ends."""

    def context() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return context
