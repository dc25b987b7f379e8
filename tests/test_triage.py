"""Triage: a classifier scores series in a worker; worklists put likely-abnormal cases first."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotations import services as annotation_services
from inference import tasks, triage
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


# --- the triage run: its progress and end state, for the Models page ---------------------------------


def _queued(project: Project, cast: dict[str, Any], count: int = 2) -> tuple[Any, list[Any], TriageRun]:
    model = _classifier(project)
    series = [make_series(project, tag=f"r{i}") for i in range(count)]
    for seed, one in enumerate(series):
        _store_pixels(one, seed)
    with mock.patch("inference.tasks.triage_run.delay"):  # no worker: the test plays it
        run = triage.triage_run_create(project=project, model=model, user=cast["dave"])
    return model, series, run


def _models_page(user: Any, project: Project) -> str:
    client = Client()
    client.force_login(user)
    return client.get(f"/projects/{project.pk}/models/").content.decode()


def test_the_task_marks_the_run_running_counts_each_series_and_ends_done(
    project_a: Project, cast: dict[str, Any]
) -> None:
    model, series, run = _queued(project_a, cast, count=3)
    seen: list[tuple[str, int]] = []
    real = triage._series_score

    def spy(*args: Any) -> bool:
        now = TriageRun.objects.get(pk=run.pk)
        seen.append((now.status, now.series_done))
        return real(*args)

    with mock.patch("inference.triage._series_score", spy):
        assert tasks.triage_run(str(run.pk)) == 3
    assert seen == [("running", 0), ("running", 1), ("running", 2)]
    run.refresh_from_db()
    assert (run.status, run.series_done, run.series_total, run.error) == ("done", 3, 3, "")
    assert run.started_at is not None and run.finished_at is not None
    assert SeriesScore.objects.filter(model=model).count() == 3
    assert tasks.triage_run(str(run.pk)) is None  # redelivered after the end: skipped
    html = _models_page(cast["bob"], project_a)
    assert "3 of 3 series scored." in html and 'data-status="done"' in html and "data-refresh" not in html


def test_unreadable_weights_end_the_run_failed_with_what_to_do_and_the_page_says_it(
    project_a: Project, cast: dict[str, Any]
) -> None:
    from django.core.files.storage import default_storage

    model, _, run = _queued(project_a, cast)
    with default_storage.open(model.weights_path, "wb") as stream:
        stream.write(b"not the weights")
    with pytest.raises(RuntimeError, match="do not match their checksum"):
        tasks.triage_run(str(run.pk))  # re-raised, as a pre-annotation run does, for the worker's log
    run.refresh_from_db()
    assert run.status == "failed" and run.series_done == 0 and run.finished_at is not None
    assert run.error.startswith("The model could not be loaded (RuntimeError: The weights of model")
    assert "re-import or retrain it if not), then start the triage again." in run.error
    assert not SeriesScore.objects.exists()
    html = _models_page(cast["bob"], project_a)
    assert 'class="triage-run" data-status="failed"' in html and "The model could not be loaded" in html
    assert "data-refresh" not in html and 'http-equiv="refresh"' not in html
    assert tasks.triage_run(str(run.pk)) is None  # a failed run is not retried by a redelivery


def test_a_series_that_fails_ends_the_run_failed_and_keeps_the_scores_before_it(
    project_a: Project, cast: dict[str, Any]
) -> None:
    model, series, run = _queued(project_a, cast, count=3)
    real = triage._series_score
    calls = []

    def second_fails(*args: Any) -> bool:
        calls.append(args)
        if len(calls) == 2:
            raise ValueError("pixel data truncated")
        return real(*args)

    with mock.patch("inference.triage._series_score", second_fails), pytest.raises(ValueError):
        tasks.triage_run(str(run.pk))
    run.refresh_from_db()
    assert (run.status, run.series_done) == ("failed", 1)
    assert run.error == (
        f"Scoring series 2 of 3 ({run.series_ids[1]}) failed (ValueError: pixel data truncated). The 1 series "
        "scored before it keep their scores; start the triage again once the series' images or the model are fixed."
    )
    assert SeriesScore.objects.filter(model=model).count() == 1
    assert "Last triage failed" in _models_page(cast["dave"], project_a)


def test_a_message_queued_before_triage_runs_were_kept_still_scores(project_a: Project, cast: dict[str, Any]) -> None:
    model = _classifier(project_a)
    series = [make_series(project_a, tag=f"o{i}") for i in range(2)]
    for seed, one in enumerate(series):
        _store_pixels(one, seed)
    ids = [str(one.pk) for one in series]
    assert tasks.triage_run(model.pk, ids) == 2  # the old message: (model id, series ids)
    run = TriageRun.objects.get()
    assert (run.project, run.model, run.series_ids, run.status, run.series_done) == (project_a, model, ids, "done", 2)
    assert tasks.triage_run("0" * 64, ids) is None  # its model was deleted since: nothing to score with
    assert TriageRun.objects.count() == 1
