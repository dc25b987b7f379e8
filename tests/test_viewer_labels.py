"""The viewer pages carry the models' labels for status and label kind codes (issue 12), so the
page shows "In progress" and "Image classification", never "in_progress" or "classification_image"."""

from __future__ import annotations

import json
import re
from typing import Any

from django.test import Client

from annotations import services
from annotations.models import AssignmentStatus, LabelKind
from tests.annotation_factory import make_schema, make_series
from workbench.models import Project


def _labels(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="choice-labels" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page has no #choice-labels"
    return json.loads(match.group(1))


def test_task_and_series_pages_carry_the_choice_labels(cast: dict[str, Any], project_a: Project) -> None:
    make_schema(project_a)
    series = make_series(project_a)
    [assignment] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    client = Client()
    client.force_login(cast["bob"])
    for url in (f"/assignments/{assignment.pk}/", f"/series/{series.pk}/view/"):
        response = client.get(url)
        assert response.status_code == 200, url
        labels = _labels(response.content.decode())
        assert labels["status"] == dict(AssignmentStatus.choices)
        assert labels["status"]["in_progress"] == "In progress"
        assert labels["kind"] == dict(LabelKind.choices)
        assert labels["kind"]["classification_image"] == "Image classification"
