"""Triage: a classifier scores series in a worker; worklists put likely-abnormal cases first."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotations import services as annotation_services
from inference.models import SeriesScore, TriageRun
from inference.services import model_version_register
from tests.annotation_factory import make_series
from tests.test_active_learning import _store_pixels, _tiny_model
from workbench.models import AuditEvent, Project

pytestmark = pytest.mark.django_db
torch = pytest.importorskip("torch")

MINE = "/api/assignments/mine/"


def _classifier(project: Project, name: str = "triage", seed: int = 0) -> Any:
    from inference.handlers.base import ClassifyConfig
    from inference.handlers.classification import build_network
    from inference.handlers.segmentation import weights_bytes

    torch.manual_seed(0)
    config = ClassifyConfig(label="Finding", size=32, seed=seed)  # content-addressed: the seed tells them apart
    model, _ = model_version_register(
        project=project,
        kind="classification",
        name=name,
        weights=weights_bytes(build_network(config)),
        config=config.to_dict(),
        labels=["Finding"],
        input_spec={"modality": "CT", "dims": 2, "window": [-1000, 400], "size": 32, "classes": list(config.classes)},
    )
    return model


def test_triage_scores_every_series_in_a_worker_with_a_heat_map(
    project_a: Project, api_as: Any, run_tasks: Any
) -> None:
    model = _classifier(project_a)
    series = [make_series(project_a, tag=f"t{i}") for i in range(2)]
    for seed, one in enumerate(series):
        _store_pixels(one, seed)
    with run_tasks():
        response = api_as("dave").post(f"/api/projects/{project_a.pk}/triage/", {"model": model.pk}, format="json")
    assert response.status_code == 202, response.content
    run = TriageRun.objects.get()
    assert response.json() == {"model": model.pk, "series": 2, "run": str(run.pk)}
    assert (run.status, run.series_done, run.series_total) == ("done", 2, 2)
    scores = {s.series_id: s for s in SeriesScore.objects.filter(model=model)}
    assert set(scores) == {s.pk for s in series}
    for one in scores.values():
        assert 0.0 <= one.score <= 1.0
        heat = one.heatmap_rle
        assert heat["rows"] == heat["columns"] == 32 and isinstance(heat["rle"], list)
        assert heat["sop_uid"] in set(one.series.instances.values_list("sop_uid", flat=True))
    assert AuditEvent.objects.filter(action="triage_queued").count() == 1
    # Idempotent: scoring again replaces the rows.
    with run_tasks():
        api_as("alice").post(f"/api/projects/{project_a.pk}/triage/", {"model": model.pk}, format="json")
    assert SeriesScore.objects.filter(model=model).count() == 2


def test_triage_needs_a_classifier_of_the_project_and_the_role(
    project_a: Project, project_b: Project, api_as: Any
) -> None:
    url = f"/api/projects/{project_a.pk}/triage/"
    model = _classifier(project_a)
    make_series(project_a, tag="x")
    assert api_as("bob").post(url, {"model": model.pk}, format="json").status_code == 403
    assert api_as("erin").post(url, {"model": model.pk}, format="json").status_code == 403
    assert api_as("charlie").post(url, {"model": model.pk}, format="json").status_code == 404
    assert APIClient().post(url, {"model": model.pk}, format="json").status_code in (401, 403)
    segmentation = _tiny_model(project_a)
    wrong = api_as("dave").post(url, {"model": segmentation.pk}, format="json")
    assert wrong.status_code == 400 and "classification model" in str(wrong.json()["fields"]["model"])
    other = _classifier(project_b, name="elsewhere", seed=1)
    assert api_as("dave").post(url, {"model": other.pk}, format="json").status_code == 400
    assert api_as("dave").post(url, {}, format="json").status_code == 400
    assert not SeriesScore.objects.exists()


def test_the_worklist_sorts_likely_abnormal_first_by_the_newest_classifier(
    project_a: Project, cast: dict[str, Any], api_as: Any
) -> None:
    model = _classifier(project_a)
    series = [make_series(project_a, tag=f"w{i}") for i in range(4)]
    reads = {}
    for one in series:
        (reads[one.pk],) = annotation_services.assignment_create(series=one, readers=[cast["bob"]], user=cast["alice"])
    for one, score in zip(series[:3], (0.2, 0.9, 0.5), strict=True):
        SeriesScore.objects.create(model=model, series=one, score=score)
    body = api_as("bob").get(MINE, {"sort": "score"}).json()
    rows = body["results"]
    assert [r["series"] for r in rows] == [str(series[i].pk) for i in (1, 2, 0, 3)]
    assert [r["triage_score"] for r in rows] == [pytest.approx(0.9), pytest.approx(0.5), pytest.approx(0.2), None]
    reverse = api_as("bob").get(MINE, {"sort": "-score"}).json()["results"]
    assert [r["series"] for r in reverse] == [str(series[i].pk) for i in (0, 2, 1, 3)]
    # Unsorted, the score is still shown.
    assert {r["series"]: r["triage_score"] for r in api_as("bob").get(MINE).json()["results"]}[
        str(series[1].pk)
    ] == pytest.approx(0.9)
    # A newer classifier that scored series replaces the older one's order.
    newer = _classifier(project_a, name="newer", seed=2)
    newer.created_at = model.created_at.replace(year=model.created_at.year + 1)
    newer.save(update_fields=["created_at"])
    SeriesScore.objects.create(model=newer, series=series[3], score=0.99)
    rows = api_as("bob").get(MINE, {"sort": "score"}).json()["results"]
    assert rows[0]["series"] == str(series[3].pk) and [r["triage_score"] for r in rows[1:]] == [None] * 3
    assert api_as("bob").get(MINE, {"sort": "bogus"}).status_code == 400
    # The worklist page shows the score and orders by it the same way.
    client = Client()
    client.force_login(cast["bob"])
    page = client.get("/worklist/", {"sort": "score"})
    html = page.content.decode()
    assert page.status_code == 200 and "Triage" in html and '<td class="triage-score">0.99</td>' in html
    assert html.index(str(reads[series[3].pk].pk)) < html.index(str(reads[series[0].pk].pk))
