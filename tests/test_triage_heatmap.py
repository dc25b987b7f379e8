"""A read's triage score and heat map for the annotator: GET /api/assignments/<id>/triage/ (issue 11).

No torch: the SeriesScore rows are made directly, as a triage run in a worker would store them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotations import services as annotation_services
from annotations.geometry import rle_decode, rle_encode
from inference.models import ModelVersion, SeriesScore
from tests.annotation_factory import make_series
from workbench.models import Membership, Project, Role

pytestmark = pytest.mark.django_db


def _classifier(project: Project, name: str, digit: str, **extra: Any) -> ModelVersion:
    return ModelVersion.objects.create(
        id=digit * 64,
        project=project,
        kind="classification",
        name=name,
        labels=["Finding"],
        weights_path="models/none.pt",
        weights_sha256=digit * 64,
        **extra,
    )


def _heatmap(sop_uid: str) -> dict[str, Any]:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:5, 3:7] = True
    return {"sop_uid": sop_uid, "frame": 0, "rows": 8, "columns": 8, "rle": rle_encode(mask)}


@pytest.fixture
def read(project_a: Project, cast: dict[str, Any]) -> Any:
    series = make_series(project_a, tag="heat")
    (assignment,) = annotation_services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return assignment


def _url(assignment: Any) -> str:
    return f"/api/assignments/{assignment.pk}/triage/"


def test_the_reader_gets_the_newest_classifiers_score_and_heat_map(read: Any, api_as: Any) -> None:
    project = read.project
    sop = read.series.instances.order_by("number").last().sop_uid
    older = _classifier(project, "Old triage", "a", input_spec={"classes": ["normal", "abnormal"]})
    SeriesScore.objects.create(model=older, series=read.series, score=0.2, heatmap_rle=None)
    newer = _classifier(project, "Chest triage v2", "b", input_spec={"positive": "nodule"})
    newer.created_at = older.created_at + timedelta(days=1)
    newer.save(update_fields=["created_at"])
    SeriesScore.objects.create(model=newer, series=read.series, score=0.87, heatmap_rle=_heatmap(sop))

    response = api_as("bob").get(_url(read))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["scored"] is True
    assert body["model_id"] == "b" * 64 and body["model_name"] == "Chest triage v2"
    assert body["score"] == pytest.approx(0.87)
    assert body["positive_class"] == "nodule"
    assert body["computed_at"]
    heat = body["heatmap"]
    assert (heat["sop_uid"], heat["frame"], heat["rows"], heat["columns"]) == (sop, 0, 8, 8)
    assert rle_decode(heat["rle"], 8, 8).sum() == 12
    # the older classifier alone: its positive class is the last of its classes, and it has no map
    newer.delete()
    body = api_as("bob").get(_url(read)).json()
    assert body["model_name"] == "Old triage" and body["positive_class"] == "abnormal" and body["heatmap"] is None


def test_none_scored_is_an_empty_answer_not_an_error(read: Any, api_as: Any) -> None:
    empty = {
        "scored": False,
        "model_id": None,
        "model_name": None,
        "score": None,
        "positive_class": None,
        "computed_at": None,
        "heatmap": None,
    }
    assert api_as("bob").get(_url(read)).json() == empty
    # another series' score is not this one's; nor is a score by a classifier the worklist no longer uses
    old = _classifier(read.project, "Old triage", "c")
    SeriesScore.objects.create(model=old, series=make_series(read.project, tag="other"), score=0.9)
    assert api_as("bob").get(_url(read)).json() == empty
    SeriesScore.objects.create(model=old, series=read.series, score=0.4)
    assert api_as("bob").get(_url(read)).json()["score"] == pytest.approx(0.4)
    newer = _classifier(read.project, "New triage", "d")
    newer.created_at = old.created_at + timedelta(days=1)
    newer.save(update_fields=["created_at"])
    SeriesScore.objects.create(model=newer, series=make_series(read.project, tag="third"), score=0.1)
    response = api_as("bob").get(_url(read))
    assert response.status_code == 200 and response.json() == empty


def test_who_may_read_it(read: Any, api_as: Any, cast: dict[str, Any], project_a: Project) -> None:
    model = _classifier(project_a, "Triage", "e")
    SeriesScore.objects.create(model=model, series=read.series, score=0.5, heatmap_rle=_heatmap("1.2.3"))
    for name in ("bob", "alice", "erin"):  # the reader, the admin, the reviewer
        assert api_as(name).get(_url(read)).json()["score"] == pytest.approx(0.5), name
    for name in ("carol", "dave", "charlie"):  # blinded members, an outsider: as if it did not exist
        response = api_as(name).get(_url(read))
        assert response.status_code == 404, name
        assert response.json()["message"], name
    assert APIClient().get(_url(read)).status_code in (401, 403)
    # another radiologist of the project is blinded to bob's read
    other = type(cast["bob"]).objects.create_user(username="frank", password="x")
    Membership.objects.create(project=project_a, user=other, role=Role.RADIOLOGIST)
    client = APIClient()
    client.force_authenticate(other)
    assert client.get(_url(read)).status_code == 404
    assert api_as("bob").get("/api/assignments/00000000-0000-0000-0000-000000000000/triage/").status_code == 404
