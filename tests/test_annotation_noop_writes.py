"""Saving what is already stored writes nothing: no revision, no status change (issue 12).

Opening a task used to send PATCHes whose content equalled the stored annotation (a line's
length in mm, which the server recomputes, differed in the last digits); each wrote a
revision with no change and moved a returned task back to in progress.

Cast (conftest.py): alice admin, bob radiologist, erin reviewer in project A.
"""

from __future__ import annotations

from typing import Any

import pytest

from annotations import services
from annotations.models import AnnotationRevision, Assignment, AssignmentStatus
from tests.annotation_factory import label_id, make_schema, make_series, sop_uids
from workbench.models import Project

BOX = {"x0": 1.0, "y0": 1.0, "x1": 3.0, "y1": 2.0}
LINE = {"points": [[1.0, 1.0], [4.0, 5.1]]}


@pytest.fixture
def task(cast: dict[str, Any], project_a: Project) -> dict[str, Any]:
    schema = make_schema(project_a)
    series = make_series(project_a)
    [assignment] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return {"schema": schema, "assignment": assignment, "sop": sop_uids(series)[0]}


def _create(api_as: Any, task: dict[str, Any], label: str, geometry: dict[str, Any]) -> dict[str, Any]:
    response = api_as("bob").post(
        "/api/annotations/",
        {
            "assignment": str(task["assignment"].pk),
            "label": label_id(task["schema"], label),
            "sop_instance_uid": task["sop"],
            "geometry": geometry,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _set_status(task: dict[str, Any], status: str) -> None:
    Assignment.objects.filter(pk=task["assignment"].pk).update(status=status)


def _status(task: dict[str, Any]) -> str:
    return Assignment.objects.get(pk=task["assignment"].pk).status


@pytest.mark.parametrize("status", [AssignmentStatus.RETURNED, AssignmentStatus.TODO])
def test_patch_that_changes_nothing_writes_no_revision_and_keeps_the_status(
    api_as: Any, task: dict[str, Any], status: str
) -> None:
    data = _create(api_as, task, "Lesion", BOX)
    _set_status(task, status)
    revisions = AnnotationRevision.objects.count()

    response = api_as("bob").patch(
        f"/api/annotations/{data['id']}/",
        {"revision": 1, "geometry": BOX, "attributes": {}, "label": data["label"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["revision"] == 1
    assert AnnotationRevision.objects.count() == revisions
    assert _status(task) == status


def test_line_with_a_rounded_length_is_no_change(api_as: Any, task: dict[str, Any]) -> None:
    """The browser sends its own rounded length_mm; the server recomputes it, so it is no change."""
    data = _create(api_as, task, "Diameter", LINE)
    stored_length = data["geometry"]["length_mm"]
    _set_status(task, AssignmentStatus.RETURNED)

    response = api_as("bob").patch(
        f"/api/annotations/{data['id']}/",
        {"revision": 1, "geometry": {**LINE, "length_mm": round(stored_length, 2)}},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["revision"] == 1
    assert response.json()["geometry"]["length_mm"] == stored_length
    assert AnnotationRevision.objects.filter(annotation_id=data["id"]).count() == 1
    assert _status(task) == AssignmentStatus.RETURNED


def test_a_real_change_still_writes_a_revision_and_starts_the_task(api_as: Any, task: dict[str, Any]) -> None:
    data = _create(api_as, task, "Lesion", BOX)
    _set_status(task, AssignmentStatus.RETURNED)

    response = api_as("bob").patch(
        f"/api/annotations/{data['id']}/", {"revision": 1, "geometry": {**BOX, "x1": 5.0}}, format="json"
    )

    assert response.json()["revision"] == 2
    [revision] = AnnotationRevision.objects.filter(annotation_id=data["id"], revision=2)
    assert revision.changes == ["geometry"]
    assert _status(task) == AssignmentStatus.IN_PROGRESS


def test_no_change_on_a_stale_revision_is_still_a_conflict(api_as: Any, task: dict[str, Any]) -> None:
    data = _create(api_as, task, "Lesion", BOX)
    url = f"/api/annotations/{data['id']}/"
    assert api_as("bob").patch(url, {"revision": 1, "geometry": {**BOX, "x1": 5.0}}, format="json").status_code == 200
    response = api_as("bob").patch(url, {"revision": 1, "geometry": {**BOX, "x1": 5.0}}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_no_change_on_a_submitted_task_is_still_locked(api_as: Any, task: dict[str, Any]) -> None:
    data = _create(api_as, task, "Lesion", BOX)
    _set_status(task, AssignmentStatus.SUBMITTED)
    response = api_as("bob").patch(f"/api/annotations/{data['id']}/", {"revision": 1, "geometry": BOX}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "locked"
