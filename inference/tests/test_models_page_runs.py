"""The Models page's pre-annotation runs and triage state, and its refresh while any of them is pending.

Any member sees the runs table and each classifier's latest triage; the page reloads itself
(``data-refresh`` for models.js, a ``<noscript>`` meta refresh) only while a training job, a shown
pre-annotation run or a triage run of the project is queued or running. Outsiders and former
members get 404, and nothing of another project is listed.
"""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inference.models import InferenceRun, ModelVersion, RunStatus, TriageRun
from inference.services import model_version_register
from tests.annotation_factory import make_series
from workbench.models import Membership, Project

pytestmark = pytest.mark.django_db

REFRESH_NOTE = "This page refreshes every 5 s while a job or run is queued or running."


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(user: Any, project: Project) -> str:
    response = _client(user).get(f"/projects/{project.pk}/models/")
    assert response.status_code == 200
    return response.content.decode()


def _model(project: Project, *, kind: str = "segmentation", name: str = "lesion unet") -> ModelVersion:
    # The page never loads the weights: any bytes make a model version here.
    model, _ = model_version_register(
        project=project,
        kind=kind,
        name=name,
        weights=f"{kind} {name} {project.pk}".encode(),
        config={},
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2, "size": 32},
    )
    return model


def _run(project: Project, model: ModelVersion, **fields: Any) -> InferenceRun:
    defaults: dict[str, Any] = {"series_ids": ["a", "b"], "slices_total": 10}
    return InferenceRun.objects.create(project=project, model=model, **{**defaults, **fields})


def _row(html: str, attribute: str, pk: Any) -> str:
    found = re.search(rf'<tr {attribute}="{pk}"[^>]*>(.*?)</tr>', html, re.S)
    assert found is not None, f"no row {attribute}={pk}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def _triage_line(html: str, model: ModelVersion) -> str | None:
    card = re.search(rf'data-model="{model.pk}">(.*?)</section>', html, re.S)
    assert card is not None
    line = re.search(
        r'<span class="triage-run" data-status="(\w+)">(.*?)</span>\s*(?:<form|</dd>)', card.group(1), re.S
    )
    if line is None:
        return None
    return line.group(1) + ": " + re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", line.group(2))).strip()


def _refreshes(html: str) -> bool:
    hooks = ("data-refresh=", 'http-equiv="refresh"', "frontend/models.js", REFRESH_NOTE)
    present = [hook in html for hook in hooks]
    assert all(present) or not any(present), dict(zip(hooks, present, strict=True))  # all or none
    return all(present)


def test_a_member_sees_a_queued_run_and_its_progress_and_the_page_refreshes(
    project_a: Project, cast: dict[str, Any]
) -> None:
    model = _model(project_a)
    run = _run(project_a, model, status=RunStatus.RUNNING, slices_done=3, proposals_count=7, device="cuda")
    for name in ("alice", "bob", "carol", "dave", "erin"):  # any member, as for the rest of the page
        html = _page(cast[name], project_a)
        assert "Pre-annotation runs" in html
        row = _row(html, "data-run", run.pk)
        when = timezone.localtime(run.created_at)
        assert row == f"{when:%Y-%m-%d %H:%M} lesion unet {model.pk[:12]} 2 Running 3 of 10 slices 7 cuda"
        assert _refreshes(html)
    InferenceRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, slices_done=0, proposals_count=0, device="")
    html = _page(cast["bob"], project_a)
    assert _row(html, "data-run", run.pk).endswith("2 Queued 0 of 10 slices 0 —")
    assert f'<tr data-run="{run.pk}" data-status="queued">' in html and _refreshes(html)


def test_a_done_run_leaves_no_refresh_and_a_failed_one_says_why(project_a: Project, cast: dict[str, Any]) -> None:
    model = _model(project_a)
    done = _run(project_a, model, status=RunStatus.DONE, slices_done=10, proposals_count=4, device="cpu")
    failed = _run(
        project_a, model, status=RunStatus.FAILED, slices_done=2, error="RuntimeError: the weights do not match"
    )
    html = _page(cast["bob"], project_a)
    assert not _refreshes(html)
    assert _row(html, "data-run", done.pk).endswith("Done 10 of 10 slices 4 cpu")
    assert "Failed RuntimeError: the weights do not match 2 of 10 slices" in _row(html, "data-run", failed.pk)
    assert "RuntimeError" not in _row(html, "data-run", done.pk)


def test_no_runs_yet_says_how_to_start_one(project_a: Project, cast: dict[str, Any]) -> None:
    assert "No pre-annotation runs yet. Start one with" in _page(cast["dave"], project_a)
    html = _page(cast["bob"], project_a)
    assert "No pre-annotation runs yet." in html and "manage.py preannotate" not in html
    assert not _refreshes(html)


def test_triage_from_the_page_keeps_a_queued_run_and_the_page_refreshes(
    project_a: Project, cast: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    classifier = _model(project_a, kind="classification", name="chest triage")
    for i in range(3):
        make_series(project_a, tag=f"t{i}")
    before = _page(cast["dave"], project_a)
    assert _triage_line(before, classifier) is None and not _refreshes(before)
    with mock.patch("inference.tasks.triage_run.delay") as delay:  # no worker: the run stays queued
        with django_capture_on_commit_callbacks(execute=True):
            made = _client(cast["dave"]).post(f"/models/{classifier.pk}/triage/")
    assert made.status_code == 302
    run = TriageRun.objects.get()
    delay.assert_called_once_with(str(run.pk))
    for name in ("bob", "dave"):
        html = _page(cast[name], project_a)
        assert _triage_line(html, classifier) == "queued: Triage queued: 3 series to score."
        assert _refreshes(html)
    TriageRun.objects.update(status=RunStatus.RUNNING, series_done=2)
    html = _page(cast["bob"], project_a)
    assert _triage_line(html, classifier) == "running: Triage running: 2 of 3 series scored."
    assert _refreshes(html)


def test_only_the_newest_triage_of_each_classifier_shows_and_a_finished_one_does_not_refresh(
    project_a: Project, cast: dict[str, Any]
) -> None:
    first = _model(project_a, kind="classification", name="chest triage")
    second = _model(project_a, kind="classification", name="other triage")
    old = TriageRun.objects.create(project=project_a, model=first, series_total=4, status=RunStatus.FAILED, error="x")
    newest = TriageRun.objects.create(
        project=project_a, model=first, series_total=4, series_done=3, status=RunStatus.DONE, finished_at=timezone.now()
    )
    TriageRun.objects.filter(pk=newest.pk).update(created_at=old.created_at.replace(year=old.created_at.year + 1))
    html = _page(cast["bob"], project_a)
    when = timezone.localtime(newest.finished_at)
    assert _triage_line(html, first) == f"done: Last triage done {when:%Y-%m-%d %H:%M}: 3 of 4 series scored."
    assert _triage_line(html, second) is None
    assert not _refreshes(html)
    # A pending triage of a classifier past the page's newest models still keeps the page refreshing.
    with mock.patch("inference.views.SHOWN", 1):
        TriageRun.objects.create(project=project_a, model=first, series_total=1)
        assert _refreshes(_page(cast["bob"], project_a))


def test_outsiders_and_former_members_get_404_and_nothing_of_another_project_is_listed(
    project_a: Project, project_b: Project, cast: dict[str, Any]
) -> None:
    mine = _run(project_a, _model(project_a), status=RunStatus.DONE)
    theirs_model = _model(project_b, name="beta unet")
    theirs = _run(project_b, theirs_model, status=RunStatus.RUNNING)
    beta_classifier = _model(project_b, kind="classification", name="beta triage")
    TriageRun.objects.create(project=project_b, model=beta_classifier, series_total=2)  # queued, in B
    url = f"/projects/{project_a.pk}/models/"
    assert _client(cast["charlie"]).get(url).status_code == 404
    Membership.objects.filter(user=cast["erin"], project=project_a).delete()
    assert _client(cast["erin"]).get(url).status_code == 404
    assert Client().get(url).status_code == 302
    html = _page(cast["bob"], project_a)
    assert f'data-run="{mine.pk}"' in html
    assert str(theirs.pk) not in html and "beta unet" not in html and "beta triage" not in html
    assert not _refreshes(html)  # B's pending run and triage are not A's
    beta = _page(cast["charlie"], project_b)
    assert f'data-run="{theirs.pk}"' in beta and str(mine.pk) not in beta and _refreshes(beta)


def test_the_page_reads_runs_and_triages_in_a_fixed_number_of_queries(project_a: Project, cast: dict[str, Any]) -> None:
    def count() -> int:
        client = _client(cast["bob"])
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/projects/{project_a.pk}/models/").status_code == 200
        return len(queries)

    classifier = _model(project_a, kind="classification", name="chest triage")
    _run(project_a, _model(project_a))
    TriageRun.objects.create(project=project_a, model=classifier, series_total=2, status=RunStatus.DONE)
    few = count()
    for i in range(3):
        other = _model(project_a, name=f"unet {i}")
        _run(project_a, other, status=RunStatus.DONE)
        more = _model(project_a, kind="classification", name=f"triage {i}")
        TriageRun.objects.create(project=project_a, model=more, series_total=2, status=RunStatus.FAILED, error="e")
    assert count() == few
