"""POST /api/projects/<id>/training-jobs/ refuses a fine-tuning parent it may not use, naming ``parent``.

No torch and no training: the refusal comes before a job row is written or a task is queued.
Cast (conftest.py): dave is an ML engineer of project A; project B is another project.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from annotations import services as annotation_services
from datasets.services import dataset_create, version_freeze
from inference.models import ModelVersion, TrainingJob
from tests.annotation_factory import make_schema, make_series
from tests.helpers import store_ct
from workbench.models import Project

pytestmark = pytest.mark.django_db

CLASSES = ["normal", "abnormal"]  # the Finding label's choices (tests.annotation_factory)


@pytest.fixture
def version(project_a: Project, cast: dict[str, Any]) -> Any:
    """A frozen version of project A whose one series bob classified as Finding (accepted by erin)."""
    finding = make_schema(project_a).labels.get(name="Finding")
    series = make_series(project_a, tag="ft")
    for instance in series.instances.all():
        store_ct(instance, np.full((8, 8), -1000.0))  # freezing reads the stored files
    (read,) = annotation_services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    annotation_services.annotation_create(
        assignment=read, user=cast["bob"], label=finding, attributes={"value": "abnormal"}
    )
    read = annotation_services.assignment_submit(assignment=read, user=cast["bob"])
    annotation_services.assignment_accept(assignment=read, user=cast["erin"])
    dataset = dataset_create(project=project_a, user=cast["dave"], name="Findings", selection={})
    frozen, _ = version_freeze(dataset=dataset, user=cast["dave"], split={"seed": 1})
    return frozen


def _model(project: Project, kind: str, digit: str) -> ModelVersion:
    """A model row as training in the app registers it (no weights are read before the refusal)."""
    config: dict[str, Any] = {"label": "Finding", "classes": CLASSES} if kind == "classification" else {}
    return ModelVersion.objects.create(
        id=digit * 64,
        project=project,
        kind=kind,
        name=f"{kind} {digit}",
        labels=["Finding"] if kind == "classification" else ["Nodule"],
        config=config,
        weights_path="models/none.pt",
        weights_sha256=digit * 64,
    )


def _fine_tune(api_as: Any, project: Project, version: Any, parent: ModelVersion, capture: Any) -> Any:
    body = {"dataset_version": version.pk, "kind": "classification", "epochs": 1, "parent": parent.pk}
    with capture() as queued:
        response = api_as("dave").post(f"/api/projects/{project.pk}/training-jobs/", body, format="json")
    assert queued == [], "nothing may be queued for a refused job"
    return response


def test_a_parent_of_another_project_is_refused_naming_parent(
    api_as: Any, project_a: Project, project_b: Project, version: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # Refused twice over: the API looks parents up in the URL's project only, and the service
    # (_fine_tuning_config) checks the parent's project again; this fails only when both are gone.
    elsewhere = _model(project_b, "classification", "b")
    response = _fine_tune(api_as, project_a, version, elsewhere, django_capture_on_commit_callbacks)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid" and set(body["fields"]) == {"parent"}
    assert "project" in str(body["fields"]["parent"]) and "parent" in body["message"]
    assert not TrainingJob.objects.exists()


def test_a_parent_of_another_kind_is_refused_naming_parent(
    api_as: Any, project_a: Project, version: Any, django_capture_on_commit_callbacks: Any
) -> None:
    segmentation = _model(project_a, "segmentation", "c")
    response = _fine_tune(api_as, project_a, version, segmentation, django_capture_on_commit_callbacks)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid" and set(body["fields"]) == {"parent"}
    assert "segmentation model" in str(body["fields"]["parent"])
    assert "classification model is fine-tuned from a classification model" in body["message"]
    assert not TrainingJob.objects.exists()


def test_a_classifier_parent_of_the_project_is_accepted(
    api_as: Any, project_a: Project, version: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The control: the same request with a fitting parent is queued (captured here, never run)."""
    parent = _model(project_a, "classification", "d")
    body = {"dataset_version": version.pk, "kind": "classification", "epochs": 1, "parent": parent.pk}
    with django_capture_on_commit_callbacks() as queued:
        response = api_as("dave").post(f"/api/projects/{project_a.pk}/training-jobs/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["parent"] == parent.pk and len(queued) == 1
    assert TrainingJob.objects.get().parent == parent
