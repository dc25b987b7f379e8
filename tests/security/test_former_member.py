"""Finding 1 of issue 10: a reader removed from a project, or whose role no longer reads, keeps no access.

Cast (conftest.py): alice admin, bob radiologist (the reader here), carol compliance, erin reviewer.
Every check runs with bob's API token and with his browser session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotations import services
from tests.annotation_factory import label_id, make_schema, make_series, sop_uids
from workbench.models import Membership, Project, Role

BOX = {"x0": 1, "y0": 1, "x1": 3, "y1": 2}


@pytest.fixture
def read(cast: dict[str, Any], project_a: Project) -> dict[str, Any]:
    """bob's assignment with one box on it, before anything happens to his membership."""
    schema = make_schema(project_a)
    series = make_series(project_a)
    (assignment,) = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    annotation, _ = services.annotation_create(
        assignment=assignment,
        user=cast["bob"],
        label=schema.labels.get(name="Lesion"),
        sop_instance_uid=sop_uids(series)[0],
        geometry=BOX,
    )
    return {"schema": schema, "series": series, "assignment": assignment, "annotation": annotation}


def _bob_calls(read: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every call bob could make on his own read: (method, url, json body)."""
    a, n = read["assignment"].pk, read["annotation"].pk
    new = {
        "assignment": str(a),
        "label": label_id(read["schema"], "Lesion"),
        "sop_instance_uid": sop_uids(read["series"])[1],
        "frame": 0,
        "geometry": BOX,
        "attributes": {},
    }
    return [
        ("get", f"/api/assignments/{a}/", None),
        ("get", f"/api/annotations/{n}/", None),
        ("get", f"/api/annotations/{n}/history/", None),
        ("post", "/api/annotations/", new),
        ("patch", f"/api/annotations/{n}/", {"revision": 1, "geometry": {"x0": 0, "y0": 0, "x1": 2, "y1": 2}}),
        ("delete", f"/api/annotations/{n}/?revision=1", None),
        ("post", f"/api/assignments/{a}/submit/", None),
    ]


def _call(client: APIClient | Client, method: str, url: str, data: dict[str, Any] | None) -> Any:
    if data is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data, content_type="application/json")


def _session(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _refused_everywhere(clients: list[Any], read: dict[str, Any]) -> None:
    for client in clients:
        for method, url, data in _bob_calls(read):
            response = _call(client, method, url, data)
            assert response.status_code == 404, (method, url, response.status_code)
            assert response.json()["message"]
        assert _call(client, "get", "/api/assignments/mine/", None).json()["results"] == []
        listed = _call(client, "get", f"/api/annotations/?assignment={read['assignment'].pk}", None).json()["results"]
        assert listed == []
    read["annotation"].refresh_from_db()
    read["assignment"].refresh_from_db()
    assert (read["annotation"].revision, read["annotation"].deleted) == (1, False)
    assert read["assignment"].status == "in_progress"


def test_removed_reader_gets_404_with_token_and_session(
    read: dict[str, Any], cast: dict[str, Any], api_as: Callable[[str], APIClient], project_a: Project
) -> None:
    token = api_as("bob")
    assert token.get(f"/api/assignments/{read['assignment'].pk}/").status_code == 200
    Membership.objects.filter(user=cast["bob"], project=project_a).delete()
    _refused_everywhere([token, _session(cast["bob"])], read)
    page = _session(cast["bob"])
    assert page.get(f"/assignments/{read['assignment'].pk}/").status_code == 404
    assert str(read["assignment"].pk) not in page.get("/worklist/").content.decode()


def test_reader_whose_role_no_longer_reads_loses_read_and_write(
    read: dict[str, Any], cast: dict[str, Any], api_as: Callable[[str], APIClient], project_a: Project
) -> None:
    Membership.objects.filter(user=cast["bob"], project=project_a).update(role=Role.COMPLIANCE)
    _refused_everywhere([api_as("bob"), _session(cast["bob"])], read)


def test_reviewer_keeps_the_removed_readers_work_as_data(
    read: dict[str, Any], cast: dict[str, Any], api_as: Callable[[str], APIClient], project_a: Project
) -> None:
    Membership.objects.filter(user=cast["bob"], project=project_a).delete()
    erin = api_as("erin")
    listed = erin.get(f"/api/projects/{project_a.pk}/assignments/").json()["results"]
    assert [row["id"] for row in listed] == [str(read["assignment"].pk)]
    annotations = erin.get(f"/api/annotations/?assignment={read['assignment'].pk}").json()["results"]
    assert [row["id"] for row in annotations] == [str(read["annotation"].pk)]
    assert erin.get(f"/api/annotations/{read['annotation'].pk}/history/").status_code == 200


def test_roles_are_read_again_on_every_request_for_the_same_user_object(
    read: dict[str, Any], cast: dict[str, Any], project_a: Project
) -> None:
    """A user object that outlives a request (force_authenticate keeps one) must not keep its roles."""
    client = APIClient()
    client.force_authenticate(user=cast["bob"])
    url = f"/api/assignments/{read['assignment'].pk}/"
    assert client.get(url).status_code == 200
    assert client.get(f"/api/projects/{project_a.pk}/").status_code == 200
    Membership.objects.filter(user=cast["bob"], project=project_a).delete()
    assert client.get(f"/api/projects/{project_a.pk}/").status_code == 404
    assert client.get(url).status_code == 404


def test_the_lists_mark_a_read_whose_reader_left(
    read: dict[str, Any], cast: dict[str, Any], api_as: Callable[[str], APIClient], project_a: Project
) -> None:
    """Reviewers see the read as data, marked, so that an admin can give the series to someone else."""
    url = f"/api/projects/{project_a.pk}/assignments/"
    assert [row["reader_active"] for row in api_as("alice").get(url).json()["results"]] == [True]
    Membership.objects.filter(user=cast["bob"], project=project_a).delete()
    assert [row["reader_active"] for row in api_as("alice").get(url).json()["results"]] == [False]
    assert api_as("erin").get(f"/api/assignments/{read['assignment'].pk}/").json()["reader_active"] is False
    page = _session(cast["alice"]).get(f"/projects/{project_a.pk}/assignments/").content.decode()
    assert "no longer reads here" in page


def test_marking_the_lists_costs_no_query_per_row(
    read: dict[str, Any], cast: dict[str, Any], api_as: Callable[[str], APIClient], project_a: Project
) -> None:
    def queries(client: APIClient, url: str) -> int:
        with CaptureQueriesContext(connection) as seen:
            assert client.get(url).status_code == 200
        return len(seen)

    urls = [(api_as("alice"), f"/api/projects/{project_a.pk}/assignments/"), (api_as("bob"), "/api/assignments/mine/")]
    before = [queries(client, url) for client, url in urls]
    for _ in range(3):
        services.assignment_create(series=make_series(project_a), readers=[cast["bob"]], user=cast["alice"])
    assert [queries(client, url) for client, url in urls] == before
