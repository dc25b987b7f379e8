"""The reader's worklist: priority, the reading-room order, filters and sorting (API and page).

Cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer in project A; charlie is an outsider (admin of project B).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from annotations import services
from annotations.models import Assignment, AssignmentStatus, Priority
from tests.annotation_factory import make_series
from workbench.models import AuditEvent, Membership, Project, Role

MINE = "/api/assignments/mine/"


def _read(project: Project, reader: Any, *, status: str, priority: int, age_days: int, modality: str = "CT") -> Any:
    series = make_series(project)
    if modality != "CT":
        series.modality = modality
        series.save(update_fields=["modality"])
    (assignment,) = services.assignment_create(series=series, readers=[reader], user=None, priority=priority)
    created = timezone.now() - dt.timedelta(days=age_days)
    Assignment.objects.filter(pk=assignment.pk).update(status=status, created_at=created)
    return assignment


@pytest.fixture
def reads(cast: dict[str, Any], project_a: Project, project_b: Project) -> dict[str, Any]:
    bob = cast["bob"]
    Membership.objects.create(project=project_b, user=bob, role=Role.RADIOLOGIST)
    return {
        "todo_old_routine": _read(project_a, bob, status="todo", priority=Priority.ROUTINE, age_days=9),
        "todo_new_urgent": _read(project_a, bob, status="todo", priority=Priority.URGENT, age_days=1),
        "todo_new_routine": _read(project_a, bob, status="todo", priority=Priority.ROUTINE, age_days=2),
        "started_low": _read(project_a, bob, status="in_progress", priority=Priority.LOW, age_days=3),
        "returned_routine": _read(project_b, bob, status="returned", priority=Priority.ROUTINE, age_days=4),
        "submitted_high_mr": _read(
            project_a, bob, status="submitted", priority=Priority.HIGH, age_days=5, modality="MR"
        ),
    }


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def _names(reads: dict[str, Any], ids: list[str]) -> list[str]:
    by_id = {str(a.pk): name for name, a in reads.items()}
    return [by_id[i] for i in ids]


def test_reading_room_order(api_as: Any, reads: dict[str, Any]) -> None:
    """Sent back, then started, then new (urgent first, then oldest), then the finished ones."""
    assert _names(reads, _ids(api_as("bob").get(MINE))) == [
        "returned_routine",
        "started_low",
        "todo_new_urgent",
        "todo_old_routine",
        "todo_new_routine",
        "submitted_high_mr",
    ]


def test_open_is_what_submit_and_open_next_reads(api_as: Any, reads: dict[str, Any]) -> None:
    names = _names(reads, _ids(api_as("bob").get(MINE, {"status": "open"})))
    assert "submitted_high_mr" not in names and names[0] == "returned_routine" and len(names) == 5


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "todo"}, {"todo_old_routine", "todo_new_urgent", "todo_new_routine"}),
        ({"modality": "mr"}, {"submitted_high_mr"}),
        ({"priority": "high"}, {"todo_new_urgent", "submitted_high_mr"}),
        ({"priority": "high", "status": "open"}, {"todo_new_urgent"}),
    ],
)
def test_filters(api_as: Any, reads: dict[str, Any], params: dict[str, str], expected: set[str]) -> None:
    assert set(_names(reads, _ids(api_as("bob").get(MINE, params)))) == expected


def test_project_filter(api_as: Any, reads: dict[str, Any], project_b: Project) -> None:
    assert _names(reads, _ids(api_as("bob").get(MINE, {"project": str(project_b.pk)}))) == ["returned_routine"]


def test_sort_by_column(api_as: Any, reads: dict[str, Any]) -> None:
    oldest_first = _names(reads, _ids(api_as("bob").get(MINE, {"sort": "assigned"})))
    assert oldest_first[0] == "todo_old_routine" and oldest_first[-1] == "todo_new_urgent"
    by_priority = _names(reads, _ids(api_as("bob").get(MINE, {"sort": "-priority"})))
    assert by_priority[:2] == ["todo_new_urgent", "submitted_high_mr"] and by_priority[-1] == "started_low"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "done"}, "status"), ({"priority": "stat"}, "priority"), ({"sort": "reader"}, "sort")]
    + [({"project": "not-a-uuid"}, "project")],
)
def test_bad_parameters_name_the_field(api_as: Any, reads: dict[str, Any], params: dict[str, str], field: str) -> None:
    response = api_as("bob").get(MINE, params)
    assert response.status_code == 400
    body = response.json()
    assert field in body["fields"] and body["message"]


# --- setting priority -------------------------------------------------------------------------------


def test_admin_assigns_with_priority(api_as: Any, project_a: Project) -> None:
    series = make_series(project_a)
    response = api_as("alice").post(
        f"/api/projects/{project_a.pk}/assignments/",
        {"series": str(series.pk), "readers": ["bob"], "priority": "urgent"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()[0]["priority"] == Priority.URGENT and response.json()[0]["priority_name"] == "Urgent"


def test_admin_changes_priority_and_it_is_audited_once(api_as: Any, reads: dict[str, Any]) -> None:
    read = reads["todo_old_routine"]
    updated_at = Assignment.objects.get(pk=read.pk).updated_at
    url = f"/api/assignments/{read.pk}/"
    response = api_as("alice").patch(url, {"priority": "urgent"}, format="json")
    assert response.status_code == 200 and response.json()["priority"] == Priority.URGENT
    assert api_as("alice").patch(url, {"priority": "urgent"}, format="json").status_code == 200  # no change
    events = AuditEvent.objects.filter(action="assignment_priority_changed", object_id=str(read.pk))
    assert [e.details for e in events] == [{"from": "routine", "to": "urgent"}]
    stored = Assignment.objects.get(pk=read.pk)
    assert stored.updated_at == updated_at  # the reader's "last change" is theirs
    assert _names(reads, _ids(api_as("bob").get(MINE, {"status": "todo"})))[0] == "todo_old_routine"


@pytest.mark.parametrize(("who", "expected"), [("bob", 403), ("erin", 403), ("carol", 404), ("charlie", 404)])
def test_only_admins_change_priority(api_as: Any, reads: dict[str, Any], who: str, expected: int) -> None:
    read = reads["todo_old_routine"]
    response = api_as(who).patch(f"/api/assignments/{read.pk}/", {"priority": "urgent"}, format="json")
    assert response.status_code == expected
    assert Assignment.objects.get(pk=read.pk).priority == Priority.ROUTINE


def test_bad_priority_names_the_field(api_as: Any, reads: dict[str, Any]) -> None:
    response = api_as("alice").patch(f"/api/assignments/{reads['todo_old_routine'].pk}/", {"priority": 7})
    assert response.status_code == 400 and "priority" in response.json()["fields"]


# --- the pages --------------------------------------------------------------------------------------


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _row_ids(html: str) -> list[str]:
    import re

    return re.findall(r'data-assignment="([0-9a-f-]{36})"', html)


def test_worklist_page_order_filters_and_sort_links(cast: dict[str, Any], reads: dict[str, Any]) -> None:
    client = _client(cast["bob"])
    page = client.get("/worklist/").content.decode()
    assert _names(reads, _row_ids(page))[:3] == ["returned_routine", "started_low", "todo_new_urgent"]
    assert "Urgent" in page and "?sort=-priority" in page
    urgent = client.get("/worklist/", {"priority": "urgent"}).content.decode()
    assert _names(reads, _row_ids(urgent)) == ["todo_new_urgent"]
    # a sort link keeps the filters
    sorted_page = client.get("/worklist/", {"status": "todo", "sort": "assigned"}).content.decode()
    assert _names(reads, _row_ids(sorted_page)) == ["todo_old_routine", "todo_new_routine", "todo_new_urgent"]
    assert "status=todo&amp;sort=-assigned" in sorted_page  # clicking again reverses
    nothing = client.get("/worklist/", {"modality": "US"}).content.decode()
    assert "No read matches these filters" in nothing


def test_worklist_page_explains_a_bad_parameter(cast: dict[str, Any], reads: dict[str, Any]) -> None:
    page = _client(cast["bob"]).get("/worklist/", {"sort": "reader"}, follow=True).content.decode()
    assert "sort must be one of" in page and len(_row_ids(page)) == len(reads)


def test_assignments_page_sets_priority(cast: dict[str, Any], project_a: Project, reads: dict[str, Any]) -> None:
    read = reads["started_low"]
    url = f"/projects/{project_a.pk}/assignments/"
    response = _client(cast["alice"]).post(
        url, {"action": "priority", "assignment": str(read.pk), "priority": str(Priority.HIGH)}
    )
    assert response.status_code == 302
    assert Assignment.objects.get(pk=read.pk).priority == Priority.HIGH
    # a reviewer cannot reach the page at all
    assert (
        _client(cast["erin"]).post(url, {"action": "priority", "assignment": str(read.pk), "priority": "3"}).status_code
        == 403
    )
    assert Assignment.objects.get(pk=read.pk).priority == Priority.HIGH


def test_assignments_page_assigns_at_a_priority(cast: dict[str, Any], project_a: Project) -> None:
    series = make_series(project_a)
    response = _client(cast["alice"]).post(
        f"/projects/{project_a.pk}/assignments/",
        {"series": str(series.pk), "readers": [str(cast["bob"].pk)], "priority": str(Priority.URGENT)},
    )
    assert response.status_code == 302
    assert Assignment.objects.get(series=series).priority == Priority.URGENT
    assert AssignmentStatus.TODO == Assignment.objects.get(series=series).status


def test_former_member_keeps_no_worklist(cast: dict[str, Any], reads: dict[str, Any], project_a: Project) -> None:
    Membership.objects.filter(project=project_a, user=cast["bob"]).delete()
    page = _client(cast["bob"]).get("/worklist/").content.decode()
    assert _names(reads, _row_ids(page)) == ["returned_routine"]  # project B's only
    assert get_user_model().objects.filter(username="bob").exists()
