"""The retraining rule's API and its form on the project's Settings page (inference.retraining)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import PASSWORD
from datasets.models import Dataset
from inference.models import RetrainingSettings
from workbench.models import AuditEvent, Project

# --- the API --------------------------------------------------------------------------------------


def _url(project: Project) -> str:
    return reverse("api-retraining", args=[project.pk])


@pytest.mark.parametrize("name", ["alice", "dave"])
def test_admins_and_ml_engineers_read_and_set_the_rule(api_as: Any, project_a: Project, name: str) -> None:
    dataset = Dataset.objects.create(project=project_a, name="Lesions")
    assert api_as(name).get(_url(project_a)).json()["enabled"] is False
    body = {"enabled": True, "after_labels": 20, "dataset": str(dataset.pk), "base": "scratch", "epochs": 5}
    response = api_as(name).put(_url(project_a), body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["enabled"] and data["after_labels"] == 20 and data["dataset"] == str(dataset.pk)
    assert data["base"] == "scratch" and data["epochs"] == 5 and data["cutoff"] is None
    assert data["labels_since_cutoff"] == 0
    row = RetrainingSettings.objects.get(project=project_a)
    assert row.enabled and row.updated_by.username == name
    assert AuditEvent.objects.filter(action="retraining_settings_updated").exists()


@pytest.mark.parametrize("name", ["bob", "carol", "erin"])
def test_other_members_get_403(api_as: Any, project_a: Project, name: str) -> None:
    assert api_as(name).get(_url(project_a)).status_code == 403
    assert api_as(name).put(_url(project_a), {"enabled": False, "after_labels": 5}, format="json").status_code == 403


def test_outsiders_get_404_and_anonymous_is_refused(api_as: Any, project_a: Project) -> None:
    assert api_as("charlie").get(_url(project_a)).status_code == 404
    body = {"enabled": False, "after_labels": 5}
    assert api_as("charlie").put(_url(project_a), body, format="json").status_code == 404
    assert APIClient().get(_url(project_a)).status_code in (401, 403)


def test_errors_name_the_field(api_as: Any, project_a: Project, project_b: Project) -> None:
    other = Dataset.objects.create(project=project_b, name="Theirs")
    client = api_as("dave")
    cases = [
        ({"enabled": True, "after_labels": 5}, "dataset"),
        ({"enabled": True, "after_labels": 5, "dataset": str(other.pk)}, "dataset"),
        ({"enabled": False, "after_labels": 0}, "after_labels"),
        ({"enabled": False, "after_labels": 5, "epochs": 0}, "epochs"),
        ({"enabled": False, "after_labels": 5, "base": "oldest"}, "base"),
    ]
    for body, field in cases:
        response = client.put(_url(project_a), body, format="json")
        assert response.status_code == 400, body
        assert field in response.json()["fields"], response.json()
    assert not RetrainingSettings.objects.exists()


# --- the page -------------------------------------------------------------------------------------


def test_the_settings_page_saves_the_rule(client: Any, project_a: Project, cast: dict[str, Any]) -> None:
    dataset = Dataset.objects.create(project=project_a, name="Lesions")
    assert client.login(username="alice", password=PASSWORD)
    url = reverse("deid-settings", args=[project_a.pk])
    page = client.get(url)
    assert b'id="retraining-form"' in page.content and b"Lesions" in page.content
    form = {
        "form": "retraining",
        "retraining-enabled": "on",
        "retraining-after_labels": "30",
        "retraining-dataset": str(dataset.pk),
        "retraining-base": "newest",
        "retraining-epochs": "12",
    }
    response = client.post(url, form)
    assert response.status_code == 302
    row = RetrainingSettings.objects.get(project=project_a)
    assert row.enabled and row.after_labels == 30 and row.dataset_id == dataset.pk and row.epochs == 12


def test_the_settings_page_shows_what_to_fix(client: Any, project_a: Project, cast: dict[str, Any]) -> None:
    assert client.login(username="alice", password=PASSWORD)
    url = reverse("deid-settings", args=[project_a.pk])
    form = {"form": "retraining", "retraining-enabled": "on", "retraining-after_labels": "30"}
    form |= {"retraining-base": "newest", "retraining-epochs": "12"}
    response = client.post(url, form)
    assert response.status_code == 200
    assert b"Choose the dataset to freeze again" in response.content
    assert not RetrainingSettings.objects.exists()


def test_the_models_page_shows_the_rule_to_those_who_train(
    client: Any, project_a: Project, cast: dict[str, Any]
) -> None:
    dataset = Dataset.objects.create(project=project_a, name="Lesions")
    RetrainingSettings.objects.create(project=project_a, enabled=True, after_labels=40, dataset=dataset)
    url = reverse("models", args=[project_a.pk])
    assert client.login(username="dave", password=PASSWORD)
    page = client.get(url).content.decode()
    assert "Retraining: on, after 40 newly accepted labels (0 so far) on a new version of Lesions" in page
    assert "#retraining" not in page  # the Settings page is the admins'
    assert client.login(username="bob", password=PASSWORD)
    assert 'id="retraining-status"' not in client.get(url).content.decode()
