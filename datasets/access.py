"""Access chokepoints for datasets, versions and exports (404 to outsiders, 403 to wrong roles).

Datasets gather every reader's labels, so readers (blinded to each other) do not see them:
ML engineers and admins make and export datasets; reviewers and compliance officers may look.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.http import Http404

from datasets.models import Dataset, DatasetVersion, Export
from workbench.access import _member_or_404, as_uuid
from workbench.models import Role

VIEW_ROLES = frozenset({Role.ML_ENGINEER, Role.ADMIN, Role.REVIEWER, Role.COMPLIANCE})
EXPORT_ROLES = frozenset({Role.ML_ENGINEER, Role.ADMIN})
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")


def get_dataset_for_user(user: Any, dataset_id: object, roles: Iterable[str] = VIEW_ROLES) -> Dataset:
    try:
        dataset = Dataset.objects.select_related("project").get(pk=as_uuid(dataset_id))
    except Dataset.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    _member_or_404(user, dataset.project, roles)
    return dataset


def get_version_for_user(user: Any, version_id: object, roles: Iterable[str] = VIEW_ROLES) -> DatasetVersion:
    if not isinstance(version_id, str) or not _VERSION_ID.match(version_id):
        raise Http404("Not found.")
    try:
        version = DatasetVersion.objects.select_related("dataset__project", "parent").get(pk=version_id)
    except DatasetVersion.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    _member_or_404(user, version.dataset.project, roles)
    return version


def get_export_for_user(user: Any, export_id: object, roles: Iterable[str] = EXPORT_ROLES) -> Export:
    try:
        export = Export.objects.select_related("version__dataset__project").get(pk=as_uuid(export_id))
    except Export.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    _member_or_404(user, export.version.dataset.project, roles)
    return export
