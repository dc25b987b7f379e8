"""The models and training-jobs API: works, needs login, hides other projects, needs the role."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from datasets.models import Dataset, DatasetVersion
from inference.models import JobStatus, ModelVersion, TrainingJob
from inference.services import model_version_register
from inference.tests.test_model_import import bundle_bytes, torchscript_bytes, trainable_torchscript_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(project_a: Any, cast: Any, monkeypatch: pytest.MonkeyPatch) -> DatasetVersion:
    # A version row without a stored manifest: its mask labels are what the manifest would list.
    monkeypatch.setattr("inference.services._area_labels", lambda version: ["Nodule"])
    dataset = Dataset.objects.create(project=project_a, name="lesions", created_by=cast["dave"])
    return DatasetVersion.objects.create(
        id="ab" * 32, dataset=dataset, manifest_path="x", samples=1, instances=1, annotations=1, label_source="accepted"
    )


@pytest.fixture
def model(project_a: Any, cast: Any) -> ModelVersion:
    row, _ = model_version_register(
        project=project_a,
        kind="segmentation",
        name="lesion unet",
        weights=b"weights",
        config={"labels": ["Nodule"], "size": 64},
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2, "window": [-1000, 400], "size": 64},
        metrics={"validation_dice": 0.9},
        seed=0,
        user=cast["dave"],
    )
    return row


def test_any_member_lists_and_reads_models_with_their_card(api_as: Any, project_a: Any, model: ModelVersion) -> None:
    listed = api_as("bob").get(f"/api/projects/{project_a.pk}/models/")
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 1 and body["results"][0]["id"] == model.pk and "next" in body
    detail = api_as("erin").get(f"/api/models/{model.pk}/")
    assert detail.status_code == 200
    card = detail.json()["card"]
    assert card["metrics_per_label"] == {"Nodule": 0.9} and card["provenance"]["source"] == "trained"
    assert "Not for diagnosis" in card["intended_use"] and card["limits"]


def test_models_need_login_and_hide_other_projects(api_as: Any, project_a: Any, model: ModelVersion) -> None:
    anonymous = APIClient()
    assert anonymous.get(f"/api/projects/{project_a.pk}/models/").status_code in (401, 403)
    assert anonymous.get(f"/api/models/{model.pk}/").status_code in (401, 403)
    outsider = api_as("charlie")
    assert outsider.get(f"/api/projects/{project_a.pk}/models/").status_code == 404
    assert outsider.get(f"/api/models/{model.pk}/").status_code == 404
    assert outsider.get("/api/models/not-a-model-id/").status_code == 404


def test_a_former_member_gets_404(api_as: Any, cast: Any, project_a: Any, model: ModelVersion) -> None:
    client = api_as("bob")
    cast["bob"].memberships.all().delete()
    assert client.get(f"/api/models/{model.pk}/").status_code == 404


def _import(client: APIClient, project: Any, data: bytes, **form: Any) -> Any:
    upload = SimpleUploadedFile("model.zip", data, content_type="application/zip")
    return client.post(f"/api/projects/{project.pk}/models/import/", {"file": upload, **form}, format="multipart")


def test_ml_engineers_import_torchscript_and_bundles(api_as: Any, project_a: Any) -> None:
    client, model = api_as("dave"), torchscript_bytes()
    made = _import(client, project_a, model, name="ts", labels="Nodule", window="-1000,400", size="32")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["provenance"] == "imported" and body["labels"] == ["Nodule"] and len(body["id"]) == 64
    assert body["input_spec"]["window"] == [-1000.0, 400.0] and body["card"]["provenance"]["format"] == "torchscript"
    again = _import(client, project_a, model, name="ts", labels="Nodule", window="-1000,400", size="32")
    assert again.status_code == 200 and again.json()["id"] == body["id"]  # content-addressed
    bundle = _import(api_as("alice"), project_a, bundle_bytes(), name="bundle")
    assert bundle.status_code == 201, bundle.json()
    assert bundle.json()["input_spec"]["modality"] == "CT" and bundle.json()["card"]["provenance"]["bundle"]["task"]
    assert ModelVersion.objects.filter(project=project_a).count() == 2


def test_an_invalid_upload_is_a_400_that_says_why(api_as: Any, project_a: Any) -> None:
    refused = _import(api_as("dave"), project_a, b"just text", name="bad")
    assert refused.status_code == 400
    assert "not a zip archive" in refused.json()["message"] and "file" in refused.json()["message"]
    no_labels = _import(api_as("dave"), project_a, torchscript_bytes(), name="ts")
    assert no_labels.status_code == 400 and "labels" in no_labels.json()["message"]
    bad_window = _import(api_as("dave"), project_a, torchscript_bytes(), name="ts", labels="Nodule", window="4,1")
    assert bad_window.status_code == 400 and "window" in bad_window.json()["message"]
    assert not ModelVersion.objects.exists()


def test_import_needs_the_role_and_membership(api_as: Any, project_a: Any) -> None:
    assert _import(api_as("bob"), project_a, torchscript_bytes(), name="ts", labels="N").status_code == 403
    assert _import(api_as("charlie"), project_a, torchscript_bytes(), name="ts", labels="N").status_code == 404
    assert _import(APIClient(), project_a, torchscript_bytes(), name="ts", labels="N").status_code in (401, 403)


def test_training_jobs_are_queued_listed_read_and_cancelled(
    api_as: Any, project_a: Any, version: DatasetVersion, model: ModelVersion
) -> None:
    client = api_as("dave")
    body = {"dataset_version": version.pk, "labels": ["Nodule"], "epochs": 3, "parent": model.pk}
    made = client.post(f"/api/projects/{project_a.pk}/training-jobs/", body, format="json")
    assert made.status_code == 201, made.json()
    job = made.json()
    assert job["status"] == "queued" and job["parent"] == model.pk and job["config"]["size"] == 64
    listed = api_as("bob").get(f"/api/projects/{project_a.pk}/training-jobs/")
    assert listed.status_code == 200 and [j["id"] for j in listed.json()["results"]] == [job["id"]]
    TrainingJob.objects.filter(pk=job["id"]).update(progress=[{"epoch": 1, "loss": 0.5, "dice": 0.4}])
    read = api_as("erin").get(f"/api/training-jobs/{job['id']}/")
    assert read.status_code == 200 and read.json()["progress"][0]["dice"] == 0.4
    assert api_as("bob").post(f"/api/training-jobs/{job['id']}/cancel/").status_code == 403
    cancelled = client.post(f"/api/training-jobs/{job['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == JobStatus.CANCELLED


def test_training_jobs_need_login_role_and_membership(api_as: Any, project_a: Any, version: DatasetVersion) -> None:
    url = f"/api/projects/{project_a.pk}/training-jobs/"
    body = {"dataset_version": version.pk, "labels": ["Nodule"]}
    assert APIClient().post(url, body, format="json").status_code in (401, 403)
    assert APIClient().get(url).status_code in (401, 403)
    assert api_as("bob").post(url, body, format="json").status_code == 403
    assert api_as("carol").post(url, body, format="json").status_code == 403
    assert api_as("charlie").post(url, body, format="json").status_code == 404
    assert api_as("charlie").get(url).status_code == 404
    job = api_as("alice").post(url, body, format="json").json()
    assert api_as("charlie").get(f"/api/training-jobs/{job['id']}/").status_code == 404
    assert api_as("charlie").post(f"/api/training-jobs/{job['id']}/cancel/").status_code == 404
    assert APIClient().get(f"/api/training-jobs/{job['id']}/").status_code in (401, 403)


def test_bad_training_requests_name_the_field(api_as: Any, project_a: Any, version: DatasetVersion) -> None:
    url = f"/api/projects/{project_a.pk}/training-jobs/"
    client = api_as("dave")
    unknown = client.post(url, {"dataset_version": "cd" * 32}, format="json")
    assert unknown.status_code == 400 and "dataset_version" in unknown.json()["message"]
    no_parent = client.post(url, {"dataset_version": version.pk, "parent": "ef" * 32}, format="json")
    assert no_parent.status_code == 400 and "parent" in no_parent.json()["message"]
    unknown_label = client.post(url, {"dataset_version": version.pk, "labels": ["Liver"]}, format="json")
    assert unknown_label.status_code == 400 and "'Liver'; it has Nodule" in unknown_label.json()["message"]
    too_long = client.post(url, {"dataset_version": version.pk, "epochs": 100000}, format="json")
    assert too_long.status_code == 400 and "epochs" in too_long.json()["message"]
    imported = _import(client, project_a, trainable_torchscript_bytes(), name="ts", labels="Nodule").json()
    refused = client.post(url, {"dataset_version": version.pk, "labels": ["Nodule"], "parent": imported["id"]})
    assert refused.status_code == 400 and "input size" in refused.json()["message"]
    assert "parent: The imported parent" in refused.json()["message"]
    two = _import(
        client, project_a, trainable_torchscript_bytes(), name="ts2", labels="Nodule,Vessel", size="32"
    ).json()
    wrong = client.post(url, {"dataset_version": version.pk, "parent": two["id"]}, format="json")
    assert wrong.status_code == 400 and "'Vessel'; it has Nodule" in wrong.json()["message"]
    as_classifier = client.post(
        url, {"dataset_version": version.pk, "kind": "classification", "parent": two["id"]}, format="json"
    )
    assert (
        as_classifier.status_code == 400 and "parent: The parent is a segmentation" in as_classifier.json()["message"]
    )


def test_an_imported_model_is_fine_tuned_through_the_api(api_as: Any, project_a: Any, version: DatasetVersion) -> None:
    client = api_as("dave")
    imported = _import(client, project_a, trainable_torchscript_bytes(), name="ts", labels="Nodule", size="32").json()
    url = f"/api/projects/{project_a.pk}/training-jobs/"
    made = client.post(url, {"dataset_version": version.pk, "parent": imported["id"], "epochs": 2}, format="json")
    assert made.status_code == 201, made.json()
    job = TrainingJob.objects.get(pk=made.json()["id"])
    assert job.parent_id == imported["id"] and job.config["handler"] == "torchscript" and job.config["size"] == 32
    assert job.config["imported_from"] == imported["id"] and job.config["labels"] == ["Nodule"]
