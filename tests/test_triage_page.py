"""The Models page's "Triage series" button: the triage API's service and roles, from the browser.

Admins and ML engineers see the button on each classifier and queue the scoring there; other
members see no button and get 403, outsiders 404; a refusal of the service is said on the page.
Each classifier's card shows how many series it has scored and when last.
"""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from inference.models import ModelVersion, SeriesScore, TriageRun
from inference.services import model_version_register
from inference.tests.test_models_page import _messages
from tests.annotation_factory import make_series
from workbench.models import AuditEvent, Project, Series

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _model(project: Project, *, kind: str = "classification", name: str = "chest triage") -> ModelVersion:
    # The page never loads the weights: any bytes make a model version here.
    model, _ = model_version_register(
        project=project,
        kind=kind,
        name=name,
        weights=f"{kind} {name}".encode(),
        config={},
        labels=["Finding"],
        input_spec={"modality": "CT", "dims": 2, "size": 32},
    )
    return model


@pytest.fixture
def classifier(project_a: Project) -> ModelVersion:
    return _model(project_a)


def _triage(user: Any, model: ModelVersion) -> Any:
    return _client(user).post(f"/models/{model.pk}/triage/")


@pytest.mark.parametrize("name", ["alice", "dave"])
def test_admins_and_ml_engineers_queue_triage_and_see_how_many(
    project_a: Project,
    classifier: ModelVersion,
    cast: dict[str, Any],
    name: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    series = [make_series(project_a, tag=f"t{i}") for i in range(3)]
    other = make_series(project_a, tag="mr")
    Series.objects.filter(pk=other.pk).update(modality="MR")  # not the model's modality: not queued
    page = _client(cast[name]).get(f"/projects/{project_a.pk}/models/").content.decode()
    assert f'action="/models/{classifier.pk}/triage/"' in page and "Triage series" in page
    assert "No series scored yet" in page
    with mock.patch("inference.tasks.triage_run.delay") as delay:
        with django_capture_on_commit_callbacks() as committed:
            made = _triage(cast[name], classifier)
        delay.assert_not_called()  # sent after the commit, as the API does
        for callback in committed:
            callback()
    assert made.status_code == 302 and made["Location"] == f"/projects/{project_a.pk}/models/"
    run = TriageRun.objects.get()
    delay.assert_called_once_with(str(run.pk))  # the run's id only: it holds the model and the series
    assert (run.model, run.project, run.created_by) == (classifier, project_a, cast[name])
    assert run.series_ids == sorted(str(s.pk) for s in series) and run.series_total == 3
    assert run.status == "queued"
    assert _messages(made) == [
        "Triage queued: 3 series to score with 'chest triage'; "
        "its scored count below grows as the inference worker scores them."
    ]
    assert AuditEvent.objects.filter(action="triage_queued", actor=cast[name], object_id=classifier.pk).count() == 1


def test_the_card_shows_what_the_worker_scored_and_when_last(
    project_a: Project, classifier: ModelVersion, cast: dict[str, Any]
) -> None:
    segmentation = _model(project_a, kind="segmentation", name="lesion unet")
    series = [make_series(project_a, tag=f"s{i}") for i in range(2)]
    for one, score in zip(series, (0.2, 0.8), strict=True):
        SeriesScore.objects.create(model=classifier, series=one, score=score)
    last = SeriesScore.objects.filter(model=classifier).latest("computed_at").computed_at
    for name in ("bob", "dave"):  # any member sees the count; only some get the button
        html = _client(cast[name]).get(f"/projects/{project_a.pk}/models/").content.decode()
        card = re.search(rf'data-model="{classifier.pk}">(.*?)</section>', html, re.S)
        assert card is not None
        assert f"2 series scored, last {last:%Y-%m-%d %H:%M}" in card.group(1)
        other = re.search(rf'data-model="{segmentation.pk}">(.*?)</section>', html, re.S)
        assert other is not None and "Triage" not in other.group(1)  # no triage for a segmentation model
    assert "Triage series" not in _client(cast["bob"]).get(f"/projects/{project_a.pk}/models/").content.decode()


@pytest.mark.parametrize("name", ["bob", "carol", "erin"])
def test_other_members_see_no_button_and_get_403(
    project_a: Project, classifier: ModelVersion, cast: dict[str, Any], name: str
) -> None:
    make_series(project_a, tag="x")
    page = _client(cast[name]).get(f"/projects/{project_a.pk}/models/").content.decode()
    assert f'data-model="{classifier.pk}"' in page and "Triage series" not in page and "/triage/" not in page
    with mock.patch("inference.tasks.triage_run.delay") as delay:
        assert _triage(cast[name], classifier).status_code == 403
    delay.assert_not_called()
    assert not AuditEvent.objects.filter(action="triage_queued").exists()


def test_outsiders_get_404_and_anonymous_the_login(
    project_a: Project, classifier: ModelVersion, cast: dict[str, Any]
) -> None:
    make_series(project_a, tag="x")
    with mock.patch("inference.tasks.triage_run.delay") as delay:
        assert _triage(cast["charlie"], classifier).status_code == 404
        assert _client(cast["dave"]).post("/models/" + "0" * 64 + "/triage/").status_code == 404
        anonymous = Client().post(f"/models/{classifier.pk}/triage/")
        assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
        assert _client(cast["dave"]).get(f"/models/{classifier.pk}/triage/").status_code == 405
    delay.assert_not_called()


def test_the_page_needs_its_csrf_token(project_a: Project, classifier: ModelVersion, cast: dict[str, Any]) -> None:
    make_series(project_a, tag="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["dave"])
    with mock.patch("inference.tasks.triage_run.delay"):
        assert client.post(f"/models/{classifier.pk}/triage/").status_code == 403
        page = client.get(f"/projects/{project_a.pk}/models/").content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None
        made = client.post(f"/models/{classifier.pk}/triage/", {"csrfmiddlewaretoken": token.group(1)})
        assert made.status_code == 302


def test_the_service_refusal_is_said_on_the_page(project_a: Project, cast: dict[str, Any]) -> None:
    segmentation = _model(project_a, kind="segmentation", name="lesion unet")
    classifier = _model(project_a)
    with mock.patch("inference.tasks.triage_run.delay") as delay:
        wrong = _triage(cast["dave"], segmentation)
        assert wrong.status_code == 302
        assert _messages(wrong) == ["Triage needs a classification model; this one is a segmentation model."]
        empty = _triage(cast["dave"], classifier)  # the project has no series yet
        assert _messages(empty) == ["The project has no CT series for this model to score."]
    delay.assert_not_called()
    assert _messages(_client(cast["dave"]).get(f"/projects/{project_a.pk}/models/")) == []  # said once
    assert not AuditEvent.objects.filter(action="triage_queued").exists()
