"""Active learning: rank unlabelled series by uncertainty, serve each case to one reader at a time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from annotations import services as annotation_services
from annotations.models import Assignment, Priority
from inference import active_learning
from inference.models import CaseReservation, UncertaintyScore
from inference.services import model_version_register
from tests.annotation_factory import make_schema, make_series, sop_uids
from tests.helpers import store_ct
from workbench.models import AuditEvent, Project, Series

pytestmark = pytest.mark.django_db
torch = pytest.importorskip("torch")


def _store_pixels(series: Series, seed: int) -> None:
    """Give each instance of ``series`` a real 32x32 CT file in storage (noise, -1024 to 375 HU)."""
    rng = np.random.default_rng(seed)
    for instance in series.instances.all():
        store_ct(instance, rng.integers(0, 1400, (32, 32)) - 1024.0)


def _tiny_model(project: Project) -> Any:
    from inference.handlers.base import TrainConfig
    from inference.handlers.segmentation import build_network, weights_bytes

    torch.manual_seed(0)
    config = TrainConfig(labels=("Nodule",), size=32, channels=(4, 8))
    model, _ = model_version_register(
        project=project,
        kind="segmentation",
        name="tiny",
        weights=weights_bytes(build_network(config)),
        config=config.to_dict(),
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2, "window": [-1000, 400], "size": 32},
    )
    return model


@pytest.fixture
def ranked(project_a: Project, cast: dict[str, Any]) -> dict[str, Any]:
    """Four series with known scores (0.9, 0.7, 0.5, 0.3) for one model."""
    model = _tiny_model(project_a)
    series = [make_series(project_a, tag=f"s{i}") for i in range(4)]
    for one, score in zip(series, (0.9, 0.7, 0.5, 0.3), strict=True):
        UncertaintyScore.objects.create(model=model, series=one, score=score, slices=2)
    return {"model": model, "series": series}


def test_ranking_scores_every_unlabelled_series_in_a_worker(
    project_a: Project, cast: dict[str, Any], api_as: Any, run_tasks: Any
) -> None:
    model = _tiny_model(project_a)
    series = [make_series(project_a, tag=f"r{i}") for i in range(3)]
    for seed, one in enumerate(series):
        _store_pixels(one, seed)
    # A series a reader has labelled is not a candidate.
    schema = make_schema(project_a)
    (read,) = annotation_services.assignment_create(series=series[2], readers=[cast["bob"]], user=cast["alice"])
    annotation_services.annotation_create(
        assignment=read,
        label=schema.labels.get(name="Lesion"),
        sop_instance_uid=sop_uids(series[2])[0],
        geometry={"x0": 1, "y0": 1, "x1": 3, "y1": 3},
        user=cast["bob"],
    )
    with run_tasks():
        response = api_as("dave").post(
            f"/api/projects/{project_a.pk}/active-learning/rank/", {"model": model.pk}, format="json"
        )
    assert response.status_code == 202, response.content
    assert response.json() == {"model": model.pk, "series": 2}
    scores = {s.series_id: s for s in UncertaintyScore.objects.filter(model=model)}
    assert set(scores) == {series[0].pk, series[1].pk}
    assert all(0.0 <= s.score <= 1.0 and s.slices == 2 for s in scores.values())
    listed = api_as("alice").get(f"/api/projects/{project_a.pk}/active-learning/").json()
    values = [row["score"] for row in listed["results"]]
    assert listed["count"] == 2 and values == sorted(values, reverse=True)
    assert AuditEvent.objects.filter(action="uncertainty_rank_queued").count() == 1


def test_next_best_case_serves_each_case_to_one_reader(
    project_a: Project, cast: dict[str, Any], ranked: dict[str, Any], api_as: Any
) -> None:
    url = f"/api/projects/{project_a.pk}/active-learning/next/"
    first = api_as("bob").post(url, {}, format="json")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["series"] == str(ranked["series"][0].pk) and body["score"] == pytest.approx(0.9)
    assert body["annotator_url"] == f"/assignments/{body['assignment']}/"
    assignment = Assignment.objects.get(pk=body["assignment"])
    assert assignment.reader == cast["bob"] and assignment.priority == Priority.HIGH
    # Asking twice serves the same case; another reader gets the next one.
    assert api_as("bob").post(url, {}, format="json").json()["assignment"] == body["assignment"]
    second = api_as("erin").post(url, {}, format="json").json()
    assert second["series"] == str(ranked["series"][1].pk)
    ranking = api_as("alice").get(f"/api/projects/{project_a.pk}/active-learning/").json()["results"]
    assert [(r["reserved_by"], r["readers"]) for r in ranking[:3]] == [("bob", ["bob"]), ("erin", ["erin"]), (None, [])]
    assert AuditEvent.objects.filter(action="case_served").count() == 2


def test_a_served_case_not_started_in_time_goes_back_to_the_pool(
    project_a: Project, cast: dict[str, Any], ranked: dict[str, Any]
) -> None:
    now = timezone.now()
    bobs = active_learning.next_best_case(project=project_a, reader=cast["bob"], now=now)
    erins = active_learning.next_best_case(project=project_a, reader=cast["erin"], now=now)
    # Erin starts hers; Bob walks away from his.
    schema = make_schema(project_a)
    annotation_services.annotation_create(
        assignment=erins.assignment,
        label=schema.labels.get(name="Lesion"),
        sop_instance_uid=sop_uids(erins.series)[0],
        geometry={"x0": 1, "y0": 1, "x1": 2, "y1": 2},
        user=cast["erin"],
    )
    bobs_read = bobs.assignment_id
    later = now + timedelta(minutes=active_learning.reservation_minutes() + 1)
    served = active_learning.next_best_case(project=project_a, reader=cast["dave"], now=later)
    assert served.series == bobs.series  # the most uncertain case is free again
    assert not Assignment.objects.filter(pk=bobs_read).exists()
    assert Assignment.objects.filter(pk=erins.assignment_id).exists()
    erins.refresh_from_db()
    bobs.refresh_from_db()
    assert erins.claimed_at is not None and bobs.released_at is not None
    withdrawn = AuditEvent.objects.get(action="assignment_withdrawn")
    assert str(withdrawn.object_id) == str(bobs_read) and bobs.assignment_id is None


def test_nothing_left_to_serve_is_a_409_with_a_message(
    project_a: Project, cast: dict[str, Any], ranked: dict[str, Any], api_as: Any
) -> None:
    for one in ranked["series"]:
        annotation_services.assignment_create(series=one, readers=[cast["erin"]], user=cast["alice"])
    response = api_as("bob").post(f"/api/projects/{project_a.pk}/active-learning/next/", {}, format="json")
    assert response.status_code == 409
    assert "rank again" in response.json()["message"]


def test_an_admin_fills_worklists_in_uncertainty_order(
    project_a: Project, cast: dict[str, Any], ranked: dict[str, Any], api_as: Any
) -> None:
    active_learning.next_best_case(project=project_a, reader=cast["dave"])  # holds the top case
    response = api_as("alice").post(
        f"/api/projects/{project_a.pk}/active-learning/fill/",
        {"readers": ["bob", "erin"], "count": 2},
        format="json",
    )
    assert response.status_code == 201, response.content
    given = [(row["reader"], row["series"]) for row in response.json()]
    assert given == [("bob", str(ranked["series"][1].pk)), ("erin", str(ranked["series"][2].pk))]
    assert {a.priority for a in Assignment.objects.filter(reader__in=[cast["bob"], cast["erin"]])} == {Priority.HIGH}
    assert CaseReservation.objects.count() == 1  # filled reads are assigned work, not held cases


def test_roles_and_projects(project_a: Project, cast: dict[str, Any], ranked: dict[str, Any], api_as: Any) -> None:
    base = f"/api/projects/{project_a.pk}/active-learning/"
    model = {"model": ranked["model"].pk}
    assert api_as("bob").post(base + "rank/", model, format="json").status_code == 403
    assert api_as("erin").post(base + "fill/", {"readers": ["bob"], "count": 1}, format="json").status_code == 403
    assert api_as("carol").post(base + "next/", {}, format="json").status_code == 403
    assert api_as("bob").get(base).status_code == 403
    for path in ("", "rank/", "fill/", "next/"):
        assert api_as("charlie").post(base + path, {}, format="json").status_code in (404, 405)
        assert api_as("charlie").get(base + path).status_code in (404, 405)
    from rest_framework.test import APIClient

    assert APIClient().post(base + "next/", {}, format="json").status_code in (401, 403)
    bad = api_as("dave").post(base + "rank/", {"model": "0" * 64}, format="json")
    assert bad.status_code == 400 and "model" in bad.json()["fields"]
    bad = api_as("alice").post(base + "fill/", {"readers": ["carol"], "count": 1}, format="json")
    assert bad.status_code == 400 and "readers" in bad.json()["fields"]


def test_the_worklist_serves_the_next_best_case(
    client: Any, project_a: Project, cast: dict[str, Any], ranked: dict[str, Any]
) -> None:
    client.force_login(cast["bob"])
    page = client.get("/worklist/").content.decode()
    assert "Next best case in Alpha chest CT" in page and "4 unread cases" in page
    response = client.post(f"/projects/{project_a.pk}/next-case/")
    served = Assignment.objects.get(reader=cast["bob"])
    assert response.status_code == 302 and response["Location"] == f"/assignments/{served.pk}/"
    assert served.series == ranked["series"][0]
    assert client.get(f"/projects/{project_a.pk}/next-case/").status_code == 405
    client.force_login(cast["carol"])
    assert "Next best case" not in client.get("/worklist/").content.decode()
    assert client.post(f"/projects/{project_a.pk}/next-case/").status_code == 403
    client.force_login(cast["charlie"])
    assert client.post(f"/projects/{project_a.pk}/next-case/").status_code == 404
