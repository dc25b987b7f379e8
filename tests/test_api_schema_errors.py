"""The schema documents every error the API answers, and the API refuses what the schema does not allow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from datasets import services as dataset_services

SCHEMA = yaml.safe_load((Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml").read_text())
ERROR_REF = {"$ref": "#/components/schemas/Error"}
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, item in SCHEMA["paths"].items()
    for method, operation in item.items()
    if method in {"get", "post", "put", "patch", "delete"}
]


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=[label for label, _ in OPERATIONS])
def test_every_operation_documents_its_errors(label: str, operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    expected = {"400", "500"}
    if {} not in operation.get("security", [{}]):
        expected |= {"401", "403", "404", "429"}
    if "requestBody" in operation:
        expected.add("415")
    assert expected <= set(responses), f"{label} does not document {sorted(expected - set(responses))}"
    for code in expected:
        assert responses[code]["content"]["application/json"]["schema"] == ERROR_REF


def test_the_error_shape_is_a_component() -> None:
    error = SCHEMA["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]


def test_render_documents_422_and_download_416() -> None:
    assert "422" in SCHEMA["paths"]["/api/instances/{instance_id}/render.png"]["get"]["responses"]
    assert {"409", "416"} <= set(SCHEMA["paths"]["/api/exports/{export_id}/download/"]["get"]["responses"])


def test_string_parameters_declare_that_control_characters_are_refused() -> None:
    status = next(
        p
        for p in SCHEMA["paths"]["/api/projects/{project_id}/assignments/"]["get"]["parameters"]
        if p["name"] == "status"
    )
    assert status["schema"]["pattern"] == "^[^\\x00-\\x1f\\x7f]*$"


def test_json_operations_declare_json_bodies_only() -> None:
    freeze = SCHEMA["paths"]["/api/datasets/{dataset_id}/versions/"]["post"]
    assert set(freeze["requestBody"]["content"]) == {"application/json"}
    upload = SCHEMA["paths"]["/api/projects/{project_id}/batches/"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]


@pytest.fixture
def dataset(project_a: Any, cast: Any) -> Any:
    return dataset_services.dataset_create(project=project_a, user=cast["alice"], name="all", selection={})


@pytest.mark.django_db
def test_freeze_refuses_a_multipart_body(api_as: Any, dataset: Any) -> None:
    url = f"/api/datasets/{dataset.pk}/versions/"
    response = api_as("alice").post(url, {"note": "x"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [[], "[]", 3, None])
def test_freeze_refuses_a_body_that_is_not_an_object(api_as: Any, dataset: Any, body: Any) -> None:
    response = api_as("alice").post(f"/api/datasets/{dataset.pk}/versions/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid"
