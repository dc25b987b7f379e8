"""Chokepoints for model versions and training jobs: 404 to outsiders and former members, as everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.http import Http404

from inference.models import ModelVersion, TrainingJob
from workbench.access import ANY_ROLE, as_uuid, member_roles_or_404, require_role
from workbench.models import Role

VIEW_ROLES = ANY_ROLE
TRAIN_ROLES = frozenset({Role.ADMIN, Role.ML_ENGINEER})  # train, import, cancel
_MODEL_ID = re.compile(r"[0-9a-f]{64}")


def _check(user: Any, project: Any, roles: Iterable[str]) -> None:
    member_roles_or_404(user, project)
    require_role(user, project, roles)


def get_model_for_user(user: Any, model_id: object, roles: Iterable[str] = VIEW_ROLES) -> ModelVersion:
    """A model version by its content address (64 hex digits); Http404 when absent or not the user's."""
    if not _MODEL_ID.fullmatch(str(model_id)):
        raise Http404("Not found.")
    model = ModelVersion.objects.select_related("project", "parent").filter(pk=str(model_id)).first()
    if model is None:
        raise Http404("Not found.")
    _check(user, model.project, roles)
    return model


def get_training_job_for_user(user: Any, job_id: object, roles: Iterable[str] = VIEW_ROLES) -> TrainingJob:
    job = TrainingJob.objects.select_related("project", "parent", "result").filter(pk=as_uuid(job_id)).first()
    if job is None:
        raise Http404("Not found.")
    _check(user, job.project, roles)
    return job
