"""The Models page: cards and training charts for members, refreshed while a job runs; 404 to outsiders."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from inference.chart import training_chart
from inference.models import JobStatus, TrainingJob
from inference.services import model_version_register

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(project_a: Any, cast: Any) -> dict[str, Any]:
    model, _ = model_version_register(
        project=project_a,
        kind="segmentation",
        name="lesion unet",
        weights=b"weights",
        config={"labels": ["Nodule"]},
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2, "window": [-1000, 400], "size": 128},
        metrics={"validation_dice": 0.91},
        seed=0,
    )
    job = TrainingJob.objects.create(
        project=project_a,
        dataset_version="ab" * 32,
        config={"labels": ["Nodule"], "epochs": 4},
        status=JobStatus.RUNNING,
        progress=[{"epoch": 1, "loss": 0.9, "dice": 0.1}, {"epoch": 2, "loss": 0.5, "dice": 0.6}],
    )
    return {"model": model, "job": job, "project": project_a}


def test_a_member_sees_cards_and_a_chart_that_refreshes_while_running(world: dict[str, Any], cast: Any) -> None:
    page = _client(cast["bob"]).get(f"/projects/{world['project'].pk}/models/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-nav="models"' in html and f'data-model="{world["model"].pk}"' in html
    assert "Nodule: Dice 0.910" in html and "Not for diagnosis" in html
    assert f'data-job="{world["job"].pk}" data-status="running"' in html and "2 / 4 epochs" in html
    assert len(re.findall(r'<polyline class="(loss|dice)" points="[\d., ]+"', html)) == 2
    assert 'http-equiv="refresh"' in html
    assert "manage.py model_train" not in html  # how to train is for admins and ML engineers
    assert (
        "manage.py model_train"
        in _client(cast["dave"]).get(f"/projects/{world['project'].pk}/models/").content.decode()
    )
    TrainingJob.objects.update(status=JobStatus.DONE)
    assert (
        'http-equiv="refresh"'
        not in _client(cast["bob"]).get(f"/projects/{world['project'].pk}/models/").content.decode()
    )


def test_the_page_needs_login_and_hides_other_projects(world: dict[str, Any], cast: Any) -> None:
    url = f"/projects/{world['project'].pk}/models/"
    assert Client().get(url).status_code == 302
    assert _client(cast["charlie"]).get(url).status_code == 404


def test_the_chart_scales_loss_to_its_maximum_and_dice_to_one() -> None:
    assert training_chart([], epochs=3) is None
    chart = training_chart([{"epoch": 1, "loss": 2.0, "dice": 0.0}, {"epoch": 3, "loss": 1.0, "dice": 1.0}], epochs=3)
    assert chart is not None and chart.loss_max == 2.0
    (x1, y1), (x3, y3) = (tuple(map(float, p.split(","))) for p in chart.loss_points.split())
    assert x1 == chart.left and x3 == chart.right and y1 == chart.top and y3 == (chart.top + chart.baseline) / 2
    assert chart.dice_points.split()[-1] == f"{float(chart.right)},{float(chart.top)}"
