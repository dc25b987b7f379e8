"""Annotations API: revisions, conflicts, history, idempotent creates, blinding and who may write.

Cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer in project A; charlie is an outsider. fred is a second radiologist here.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.backends.signals import connection_created
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations import services
from annotations.models import Annotation, AnnotationRevision, Assignment
from tests.annotation_factory import label_id, make_schema, make_series, sop_uids
from workbench.models import Membership, Project, Role

BOX = {"x0": 1, "y0": 1, "x1": 3, "y1": 2}


@pytest.fixture
def fred(cast: dict[str, Any], project_a: Project) -> Any:
    user = get_user_model().objects.create_user(username="fred", password="x")
    Membership.objects.create(project=project_a, user=user, role=Role.RADIOLOGIST)
    cast["fred"] = user
    return user


@pytest.fixture
def world(cast: dict[str, Any], project_a: Project, fred: Any) -> dict[str, Any]:
    schema = make_schema(project_a)
    series = make_series(project_a)
    bob_a, fred_a = services.assignment_create(series=series, readers=[cast["bob"], fred], user=cast["alice"])
    return {"schema": schema, "series": series, "sops": sop_uids(series), "bob": bob_a, "fred": fred_a}


def body(world: dict[str, Any], reader: str = "bob", label: str = "Lesion", **extra: Any) -> dict[str, Any]:
    data = {
        "assignment": str(world[reader].pk),
        "label": label_id(world["schema"], label),
        "sop_instance_uid": world["sops"][0],
        "frame": 0,
        "geometry": BOX,
        "attributes": {},
    }
    data.update(extra)
    return data


def create(api_as: Callable[[str], APIClient], world: dict[str, Any], who: str = "bob", **extra: Any) -> dict[str, Any]:
    response = api_as(who).post("/api/annotations/", body(world, who, **extra), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# --- create, update, delete, history ---------------------------------------------------------------


def test_create_returns_revision_one_and_starts_the_assignment(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world, attributes={"suspicious": True})
    assert data["revision"] == 1
    assert data["kind"] == "box"
    assert data["author"] == "bob"
    assert data["source"] == "human" and data["model_version"] is None and data["proposal"] is None
    assert data["geometry"] == {"x0": 1.0, "y0": 1.0, "x1": 3.0, "y1": 2.0}
    assert data["deleted"] is False
    world["bob"].refresh_from_db()
    assert world["bob"].status == "in_progress"


def test_update_with_current_revision_bumps_it(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world)
    response = api_as("bob").patch(
        f"/api/annotations/{data['id']}/", {"revision": 1, "geometry": {**BOX, "x1": 5}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["revision"] == 2
    assert response.json()["geometry"]["x1"] == 5.0


def test_stale_revision_is_refused_with_current_state(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world)
    url = f"/api/annotations/{data['id']}/"
    assert api_as("bob").patch(url, {"revision": 1, "geometry": {**BOX, "x1": 5}}, format="json").status_code == 200
    response = api_as("bob").patch(url, {"revision": 1, "geometry": {**BOX, "x1": 7}}, format="json")
    assert response.status_code == 409
    payload = response.json()
    assert payload["error"] == "conflict"
    assert "revision 2" in payload["message"]
    assert payload["current"]["revision"] == 2
    assert payload["current"]["geometry"]["x1"] == 5.0
    assert Annotation.objects.get(pk=data["id"]).geometry["x1"] == 5.0


def test_history_keeps_every_revision(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world)
    url = f"/api/annotations/{data['id']}/"
    api_as("bob").patch(url, {"revision": 1, "attributes": {"suspicious": True}}, format="json")
    api_as("erin").patch(url, {"revision": 2, "geometry": {**BOX, "y1": 4}}, format="json")
    assert api_as("bob").delete(f"{url}?revision=3").status_code == 204
    history = api_as("bob").get(f"{url}history/").json()["results"]
    assert [(h["revision"], h["author"], h["action"]) for h in history] == [
        (1, "bob", "create"),
        (2, "bob", "update"),
        (3, "erin", "update"),
        (4, "bob", "delete"),
    ]
    assert history[1]["changes"] == ["attributes"]
    assert history[2]["changes"] == ["geometry"]
    assert history[2]["data"]["geometry"]["y1"] == 4.0
    assert history[0]["data"]["geometry"]["y1"] == 2.0
    assert history[3]["data"]["deleted"] is True


def test_delete_is_soft_and_checks_revision(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world)
    url = f"/api/annotations/{data['id']}/"
    assert api_as("bob").delete(f"{url}?revision=2").status_code == 409
    assert api_as("bob").delete(url).status_code == 400  # revision is required
    assert api_as("bob").delete(f"{url}?revision=1").status_code == 204
    listed = api_as("bob").get(f"/api/annotations/?assignment={world['bob'].pk}").json()["results"]
    assert listed == []
    with_deleted = (
        api_as("bob").get(f"/api/annotations/?assignment={world['bob'].pk}&include_deleted=1").json()["results"]
    )
    assert [a["deleted"] for a in with_deleted] == [True]
    again = api_as("bob").patch(url, {"revision": 2, "geometry": BOX}, format="json")
    assert again.status_code == 409 and again.json()["current"]["deleted"] is True


def test_retried_create_with_client_id_is_not_duplicated(api_as: Any, world: dict[str, Any]) -> None:
    client_id = str(uuid.uuid4())
    first = create(api_as, world, client_id=client_id)
    retry = api_as("bob").post("/api/annotations/", body(world, client_id=client_id), format="json")
    assert retry.status_code == 200
    assert retry.json()["id"] == first["id"]
    assert Annotation.objects.count() == 1
    assert AnnotationRevision.objects.count() == 1


def test_line_length_is_computed_by_the_server(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world, label="Diameter", geometry={"points": [[0, 0], [3, 4]], "length_mm": 999})
    assert data["geometry"]["length_mm"] == pytest.approx(2.5)  # 5 px at 0.5 mm


def test_every_kind_round_trips(api_as: Any, world: dict[str, Any]) -> None:
    shapes = {
        "Lung": ({"points": [[0, 0], [4, 0], [2, 3]]}, {}),
        "Nodule": ({"rows": 8, "columns": 8, "rle": [9, 3, 17, 3]}, {}),
        "Landmark": ({"x": 2.5, "y": 3}, {}),
        "Quality": ({}, {"value": "poor"}),
        "Finding": ({}, {"value": "abnormal"}),
    }
    for name, (geometry, attributes) in shapes.items():
        data = create(api_as, world, label=name, geometry=geometry, attributes=attributes)
        assert data["attributes"] == attributes
    series_level = Annotation.objects.get(label__name="Finding")
    assert series_level.sop_instance_uid == ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"geometry": {"x0": 1}}, "geometry"),
        # Each 400 names the field the client got wrong, not "geometry" for everything.
        ({"sop_instance_uid": "2.25.999"}, "sop_instance_uid"),
        ({"frame": 3}, "frame"),
        ({"label": "Nodule", "geometry": {"rows": 4, "columns": 4, "rle": [0, 2]}}, "geometry"),
        ({"label": "Quality", "geometry": {}}, "attributes"),  # a classification needs its value
        ({"attributes": {"colour": "red"}}, "attributes"),
        ({"label": str(uuid.uuid4())}, "label"),
        ({"assignment": "not-a-uuid"}, "assignment"),
    ],
)
def test_invalid_annotations_are_400(api_as: Any, world: dict[str, Any], change: dict[str, Any], field: str) -> None:
    data = body(world)
    if change.get("label") in ("Nodule", "Quality"):
        change = {**change, "label": label_id(world["schema"], change["label"])}
    data.update(change)
    response = api_as("bob").post("/api/annotations/", data, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "invalid"
    assert list(response.json()["fields"]) == [field]


@pytest.mark.parametrize(
    ("label", "geometry"),
    [
        ("Lesion", {"x0": -100, "y0": 1, "x1": 5000, "y1": 2}),  # the box of the report, on an 8 x 8 image
        ("Lesion", {"x0": 1, "y0": 1, "x1": 7.6, "y1": 2}),
        ("Lung", {"points": [[0, 0], [4, 0], [2, 8]]}),
        ("Landmark", {"x": 2, "y": -0.6}),
        ("Diameter", {"points": [[0, 0], [9, 4]]}),
    ],
)
def test_shapes_off_the_image_are_refused(api_as: Any, world: dict[str, Any], label: str, geometry: Any) -> None:
    response = api_as("bob").post("/api/annotations/", body(world, label=label, geometry=geometry), format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "invalid"
    message = response.json()["fields"]["geometry"]
    assert "outside the 8 x 8 (width x height) image" in message and "x must be between -0.5 and 7.5" in message
    assert not Annotation.objects.exists()


def test_edge_to_edge_box_fits_and_an_edit_off_the_image_is_refused(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world, geometry={"x0": -0.5, "y0": -0.5, "x1": 7.5, "y1": 7.5})
    url = f"/api/annotations/{data['id']}/"
    response = api_as("bob").patch(url, {"revision": 1, "geometry": {**BOX, "y1": 40}}, format="json")
    assert response.status_code == 400
    assert "The point (3, 40) lies outside" in response.json()["fields"]["geometry"]
    assert Annotation.objects.get(pk=data["id"]).revision == 1


def test_services_refuse_off_image_shapes_too(world: dict[str, Any], cast: dict[str, Any]) -> None:
    label = world["schema"].labels.get(name="Lesion")
    with pytest.raises(services.InvalidAnnotation) as caught:
        services.annotation_create(
            assignment=world["bob"],
            user=cast["bob"],
            label=label,
            sop_instance_uid=world["sops"][0],
            geometry={"x0": -100, "y0": 0, "x1": 5000, "y1": 1},
        )
    assert caught.value.field == "geometry"


def test_label_of_another_project_is_refused(api_as: Any, world: dict[str, Any], project_b: Project) -> None:
    other = make_schema(project_b)
    response = api_as("bob").post(
        "/api/annotations/", body(world, label="Lesion") | {"label": label_id(other, "Lesion")}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["label"]


# --- blinding and roles ----------------------------------------------------------------------------


def test_readers_are_blinded_to_each_other(api_as: Any, world: dict[str, Any]) -> None:
    mine = create(api_as, world, "bob")
    theirs = create(api_as, world, "fred")
    series = world["series"].pk
    assert [a["id"] for a in api_as("bob").get(f"/api/annotations/?series={series}").json()["results"]] == [mine["id"]]
    assert api_as("bob").get(f"/api/annotations/?assignment={world['fred'].pk}").json()["results"] == []
    assert api_as("bob").get(f"/api/annotations/{theirs['id']}/").status_code == 404
    assert api_as("bob").get(f"/api/annotations/{theirs['id']}/history/").status_code == 404
    assert api_as("bob").get(f"/api/assignments/{world['fred'].pk}/").status_code == 404
    for reviewer in ("erin", "alice"):
        seen = {a["id"] for a in api_as(reviewer).get(f"/api/annotations/?series={series}").json()["results"]}
        assert seen == {mine["id"], theirs["id"]}
        assert api_as(reviewer).get(f"/api/annotations/{theirs['id']}/").status_code == 200


@pytest.mark.parametrize(
    ("who", "expected"), [("fred", 404), ("dave", 404), ("carol", 404), ("charlie", 404), ("alice", 403)]
)
def test_only_reader_and_reviewers_write(api_as: Any, world: dict[str, Any], who: str, expected: int) -> None:
    data = create(api_as, world)
    url = f"/api/annotations/{data['id']}/"
    assert api_as(who).post("/api/annotations/", body(world), format="json").status_code == expected
    assert api_as(who).patch(url, {"revision": 1, "geometry": BOX}, format="json").status_code == expected
    assert api_as(who).delete(f"{url}?revision=1").status_code == expected
    assert Annotation.objects.get(pk=data["id"]).revision == 1


def test_reviewer_may_correct(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world)
    response = api_as("erin").patch(f"/api/annotations/{data['id']}/", {"revision": 1, "geometry": BOX}, format="json")
    assert response.status_code == 200


def test_outsider_sees_nothing(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world)
    client = api_as("charlie")
    assert client.get(f"/api/annotations/{data['id']}/").status_code == 404
    assert client.get(f"/api/annotations/?series={world['series'].pk}").json()["results"] == []
    assert client.get(f"/api/assignments/{world['bob'].pk}/").status_code == 404


def test_requires_authentication(world: dict[str, Any]) -> None:
    assert APIClient().get("/api/annotations/").status_code == 401
    assert APIClient().post("/api/annotations/", body(world), format="json").status_code == 401


def test_list_query_count_is_flat(api_as: Any, world: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    for _ in range(5):
        create(api_as, world)
    client = api_as("erin")
    with django_assert_max_num_queries(5):  # the page's count is one of them
        assert len(client.get(f"/api/annotations/?series={world['series'].pk}").json()["results"]) == 5


# --- locking ---------------------------------------------------------------------------------------


def test_submitted_assignment_is_locked_until_returned(api_as: Any, world: dict[str, Any]) -> None:
    data = create(api_as, world)
    url = f"/api/annotations/{data['id']}/"
    assert api_as("bob").post(f"/api/assignments/{world['bob'].pk}/submit/").status_code == 200
    for response in (
        api_as("bob").post("/api/annotations/", body(world), format="json"),
        api_as("bob").patch(url, {"revision": 1, "geometry": BOX}, format="json"),
        api_as("bob").delete(f"{url}?revision=1"),
        api_as("erin").patch(url, {"revision": 1, "geometry": BOX}, format="json"),
    ):
        assert response.status_code == 409
        assert response.json()["error"] == "locked"
    returned = api_as("erin").post(f"/api/assignments/{world['bob'].pk}/return/", {"comment": "Box too small"})
    assert returned.json()["status"] == "returned"
    assert api_as("bob").patch(url, {"revision": 1, "geometry": {**BOX, "x1": 5}}, format="json").status_code == 200
    world["bob"].refresh_from_db()
    assert world["bob"].status == "in_progress"


# --- concurrency -----------------------------------------------------------------------------------


def _token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _sqlite_readers_do_not_block(sender: Any, connection: Any, **kwargs: Any) -> None:
    # The test database is SQLite in shared-cache memory mode, where a plain read fails at
    # once with "table is locked" while another connection writes (a file database waits
    # instead). Letting reads skip table locks keeps the race about the writes; writers
    # still exclude each other (one write transaction at a time) and the service retries.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 1")


@pytest.fixture
def sqlite_readers_do_not_block() -> Any:
    connection_created.connect(_sqlite_readers_do_not_block)
    yield
    connection_created.disconnect(_sqlite_readers_do_not_block)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sqlite_readers_do_not_block")
def test_concurrent_updates_of_one_revision_give_exactly_one_success(cast: dict[str, Any], project_a: Project) -> None:
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
    clients = [_token_client(cast["bob" if i % 2 else "erin"]) for i in range(6)]
    barrier = threading.Barrier(len(clients))
    codes: list[int] = []

    def save(client: APIClient, x1: float) -> None:
        barrier.wait()
        try:
            response = client.patch(
                f"/api/annotations/{annotation.pk}/", {"revision": 1, "geometry": {**BOX, "x1": x1}}, format="json"
            )
            codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(c, 4 + i / 2)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * 5
    stored = Annotation.objects.get(pk=annotation.pk)
    assert stored.revision == 2
    assert list(stored.revisions.values_list("revision", flat=True)) == [1, 2]
    assert stored.revisions.get(revision=2).data["geometry"]["x1"] == stored.geometry["x1"]
    assert Assignment.objects.get(pk=assignment.pk).status == "in_progress"


def test_ml_team_imports_model_labels(api_as: Any, world: dict[str, Any], cast: dict[str, Any]) -> None:
    (imported,) = services.assignment_create(series=world["series"], readers=[cast["dave"]], user=cast["alice"])
    world["dave"] = imported
    proposal = str(uuid.uuid4())
    data = create(api_as, world, "dave", source="model", model_version="nodule-net 1.2", proposal=proposal)
    assert (data["source"], data["model_version"], data["proposal"]) == ("model", "nodule-net 1.2", proposal)
    bad = api_as("dave").post("/api/annotations/", body(world, "dave", source="robot"), format="json")
    assert bad.status_code == 400
    assert (
        api_as("dave").get(f"/api/annotations/{data['id']}/history/").json()["results"][0]["data"]["source"] == "model"
    )


def test_reader_reads_own_assignment(api_as: Any, world: dict[str, Any]) -> None:
    response = api_as("bob").get(f"/api/assignments/{world['bob'].pk}/")
    assert response.status_code == 200
    assert response.json()["reader"] == "bob" and response.json()["status"] == "todo"
