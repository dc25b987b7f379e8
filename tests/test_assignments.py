"""Assignments, the review workflow, label schemas and agreement, through the API.

Cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer in project A; charlie is an outsider. fred is a second radiologist here.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from annotations import services
from annotations.models import Assignment, LabelSchema
from tests.annotation_factory import LABELS, label_id, make_schema, make_series, sop_uids
from workbench.models import Membership, Project, Role


@pytest.fixture
def fred(cast: dict[str, Any], project_a: Project) -> Any:
    user = get_user_model().objects.create_user(username="fred", password="x")
    Membership.objects.create(project=project_a, user=user, role=Role.RADIOLOGIST)
    cast["fred"] = user
    return user


@pytest.fixture
def series(project_a: Project) -> Any:
    return make_series(project_a)


def assign(api_as: Any, project: Project, series: Any, readers: list[str], who: str = "alice") -> Any:
    return api_as(who).post(
        f"/api/projects/{project.pk}/assignments/", {"series": str(series.pk), "readers": readers}, format="json"
    )


# --- creating and listing --------------------------------------------------------------------------


def test_admin_assigns_series_to_readers(api_as: Any, project_a: Project, series: Any, fred: Any) -> None:
    response = assign(api_as, project_a, series, ["bob", str(fred.pk)])
    assert response.status_code == 201
    rows = response.json()
    assert [(r["reader"], r["status"], r["series"]) for r in rows] == [
        ("bob", "todo", str(series.pk)),
        ("fred", "todo", str(series.pk)),
    ]
    assert rows[0]["patient"] == series.study.patient.pseudo_id and rows[0]["modality"] == "CT"
    assert assign(api_as, project_a, series, ["bob"]).status_code == 201  # idempotent
    assert Assignment.objects.count() == 2


@pytest.mark.parametrize(("who", "expected"), [("bob", 403), ("erin", 403), ("carol", 403), ("charlie", 404)])
def test_only_admins_assign(api_as: Any, project_a: Project, series: Any, who: str, expected: int) -> None:
    assert assign(api_as, project_a, series, ["bob"], who=who).status_code == expected
    assert not Assignment.objects.exists()


@pytest.mark.parametrize("reader", ["carol", "charlie", "nobody", "999999"])
def test_readers_must_be_members_who_may_read(api_as: Any, project_a: Project, series: Any, reader: str) -> None:
    response = assign(api_as, project_a, series, [reader])
    assert response.status_code == 400
    assert "readers" in response.json()["fields"]


def test_series_of_another_project_is_not_found(api_as: Any, project_a: Project, project_b: Project) -> None:
    other = make_series(project_b)
    assert assign(api_as, project_a, other, ["bob"]).status_code == 404


def test_lists_by_role(api_as: Any, project_a: Project, series: Any, fred: Any) -> None:
    assign(api_as, project_a, series, ["bob", "fred"])
    url = f"/api/projects/{project_a.pk}/assignments/"
    assert len(api_as("alice").get(url).json()["results"]) == 2
    assert len(api_as("erin").get(url).json()["results"]) == 2
    assert [r["reader"] for r in api_as("bob").get(url).json()["results"]] == ["bob"]
    assert api_as("carol").get(url).json()["results"] == []
    assert api_as("charlie").get(url).status_code == 404
    mine = api_as("bob").get("/api/assignments/mine/").json()["results"]
    assert [(r["reader"], r["project"], r["status"]) for r in mine] == [("bob", str(project_a.pk), "todo")]
    assert api_as("charlie").get("/api/assignments/mine/").json()["results"] == []


# --- workflow --------------------------------------------------------------------------------------


@pytest.fixture
def bobs(api_as: Any, project_a: Project, series: Any, fred: Any) -> str:
    return assign(api_as, project_a, series, ["bob", "fred"]).json()[0]["id"]


def test_submit_accept(api_as: Any, bobs: str) -> None:
    assert api_as("erin").post(f"/api/assignments/{bobs}/submit/").status_code == 403
    assert api_as("fred").post(f"/api/assignments/{bobs}/submit/").status_code == 404
    assert api_as("erin").post(f"/api/assignments/{bobs}/accept/").status_code == 409  # not submitted yet
    response = api_as("bob").post(f"/api/assignments/{bobs}/submit/")
    assert response.status_code == 200 and response.json()["status"] == "submitted"
    again = api_as("bob").post(f"/api/assignments/{bobs}/submit/")
    assert again.status_code == 409 and again.json()["error"] == "invalid_status"
    assert api_as("bob").post(f"/api/assignments/{bobs}/accept/").status_code == 403
    assert api_as("carol").post(f"/api/assignments/{bobs}/accept/").status_code == 404
    assert api_as("charlie").post(f"/api/assignments/{bobs}/accept/").status_code == 404
    accepted = api_as("erin").post(f"/api/assignments/{bobs}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert api_as("erin").post(f"/api/assignments/{bobs}/return/", {"comment": "late"}).status_code == 409


def test_return_needs_a_comment_and_reopens(api_as: Any, bobs: str) -> None:
    api_as("bob").post(f"/api/assignments/{bobs}/submit/")
    assert api_as("erin").post(f"/api/assignments/{bobs}/return/", {}).status_code == 400
    assert api_as("erin").post(f"/api/assignments/{bobs}/return/", {"comment": "  "}).status_code == 400
    response = api_as("alice").post(f"/api/assignments/{bobs}/return/", {"comment": "Add the second nodule"})
    assert response.status_code == 200
    assert response.json()["status"] == "returned"
    mine = api_as("bob").get("/api/assignments/mine/").json()["results"][0]
    assert mine["comment"] == "Add the second nodule"
    assert api_as("bob").post(f"/api/assignments/{bobs}/submit/").json()["status"] == "submitted"


# --- label schemas ---------------------------------------------------------------------------------


def test_label_schema_versions(api_as: Any, project_a: Project) -> None:
    url = f"/api/projects/{project_a.pk}/label-schema/"
    missing = api_as("bob").get(url)
    assert missing.status_code == 404 and "no label schema" in missing.json()["message"]
    first = api_as("alice").post(url, {"labels": LABELS}, format="json")
    assert first.status_code == 201 and first.json()["version"] == 1
    second = api_as("alice").post(url, {"labels": LABELS[:2]}, format="json")
    assert second.json()["version"] == 2
    current = api_as("bob").get(url).json()
    assert current["version"] == 2
    assert [(lbl["name"], lbl["kind"], lbl["color"]) for lbl in current["labels"]] == [
        ("Lesion", "box", "#ff0000"),
        ("Lung", "polygon", "#00ff00"),
    ]
    assert current["labels"][0]["attributes"] == [{"name": "suspicious", "type": "boolean", "choices": []}]
    versions = api_as("erin").get(f"{url}versions/").json()["results"]
    assert [v["version"] for v in versions] == [2, 1] and len(versions[1]["labels"]) == len(LABELS)


@pytest.mark.parametrize(
    "labels",
    [
        [],
        [{"name": "A", "color": "red", "kind": "box"}],
        [{"name": "A", "color": "#ff0000", "kind": "circle"}],
        [{"name": "A", "color": "#ff0000", "kind": "box"}, {"name": "A", "color": "#ff0000", "kind": "point"}],
        [{"name": "Q", "color": "#ff0000", "kind": "classification_image", "attributes": []}],
        [{"name": "A", "color": "#ff0000", "kind": "box", "attributes": [{"name": "t", "type": "choice"}]}],
    ],
)
def test_invalid_schemas_are_400(api_as: Any, project_a: Project, labels: list[Any]) -> None:
    response = api_as("alice").post(f"/api/projects/{project_a.pk}/label-schema/", {"labels": labels}, format="json")
    assert response.status_code == 400
    assert not LabelSchema.objects.exists()


@pytest.mark.parametrize(("who", "expected"), [("bob", 403), ("erin", 403), ("charlie", 404)])
def test_only_admins_change_schemas(api_as: Any, project_a: Project, who: str, expected: int) -> None:
    response = api_as(who).post(f"/api/projects/{project_a.pk}/label-schema/", {"labels": LABELS}, format="json")
    assert response.status_code == expected
    assert api_as("charlie").get(f"/api/projects/{project_a.pk}/label-schema/").status_code == 404


def test_default_chest_schema_is_idempotent(project_a: Project) -> None:
    schema = services.label_schema_default(project=project_a)
    kinds = dict(schema.labels.values_list("name", "kind"))
    assert kinds == {
        "Lesion": "box",
        "Lung": "polygon",
        "Nodule": "mask",
        "Landmark": "point",
        "Diameter": "line",
        "Region": "ellipse",
        "Costophrenic angle": "angle",
        "Image quality": "classification_image",
    }
    assert services.label_schema_default(project=project_a).pk == schema.pk


# --- agreement -------------------------------------------------------------------------------------


def test_agreement_by_hand(api_as: Any, project_a: Project, cast: dict[str, Any], fred: Any) -> None:
    schema = make_schema(project_a)
    one, two = make_series(project_a, tag="one"), make_series(project_a, tag="two")
    for series in (one, two):
        services.assignment_create(series=series, readers=[cast["bob"], fred], user=cast["alice"])

    def save(reader: str, series: Any, label: str, geometry: dict[str, Any], value: str | None = None) -> None:
        assignment = Assignment.objects.get(series=series, reader__username=reader)
        response = api_as(reader).post(
            "/api/annotations/",
            {
                "assignment": str(assignment.pk),
                "label": label_id(schema, label),
                "sop_instance_uid": sop_uids(series)[0],
                "geometry": geometry,
                "attributes": {"value": value} if value else {},
            },
            format="json",
        )
        assert response.status_code == 201, response.json()

    # Series one: boxes 3x3 px at (0..2, 0..2) and (1..3, 0..2): overlap 2x3 = 6 of 9 + 9 -> Dice 12/18, IoU 6/12.
    save("bob", one, "Lesion", {"x0": 0, "y0": 0, "x1": 2, "y1": 2})
    save("fred", one, "Lesion", {"x0": 1, "y0": 0, "x1": 3, "y1": 2})
    # Masks on 8x8: bob row 0 (8 px), fred cols 4..7 of row 0 and row 1 (12 px): overlap 4 -> Dice 8/20, IoU 4/16.
    save("bob", one, "Nodule", {"rows": 8, "columns": 8, "rle": [0, 8]})
    save("fred", one, "Nodule", {"rows": 8, "columns": 8, "rle": [4, 12]})
    save("bob", one, "Quality", {}, "good")
    save("fred", one, "Quality", {}, "good")
    # Series two: quality disagrees, and only bob marked a lesion (not comparable: no Dice, in no mean).
    save("bob", two, "Quality", {}, "good")
    save("fred", two, "Quality", {}, "poor")
    save("bob", two, "Lesion", {"x0": 0, "y0": 0, "x1": 1, "y1": 1})
    url = f"/api/projects/{project_a.pk}/agreement/"
    assert api_as("erin").get(url).json()["series"] == []  # nothing is finished yet
    for assignment in Assignment.objects.all():
        services.assignment_submit(assignment=assignment, user=assignment.reader)
    result = api_as("erin").get(url).json()
    labels = {row["label"]: row for row in result["labels"]}
    assert labels["Lesion"]["dice"] == pytest.approx(12 / 18, abs=1e-4)
    assert labels["Lesion"]["iou"] == pytest.approx(6 / 12, abs=1e-4)
    assert (labels["Lesion"]["pairs"], labels["Lesion"]["not_comparable"]) == (1, 1)
    assert labels["Nodule"]["dice"] == pytest.approx(8 / 20) and labels["Nodule"]["iou"] == pytest.approx(4 / 16)
    # Quality items (good, good), (good, poor): po 0.5; pe = (2*1)/4 = 0.5 -> kappa 0.
    assert labels["Quality"]["kappa"] == pytest.approx(0.0)
    assert labels["Quality"]["pairs"] == 2
    # Series two: quality 0 (lesion not comparable) -> disagreement 1; series one: (2/3 + 0.4 + 1) / 3.
    assert [row["series"] for row in result["series"]] == [str(two.pk), str(one.pk)]
    assert result["series"][0]["disagreement"] == 1.0
    assert result["series"][1]["disagreement"] == pytest.approx(1 - (12 / 18 + 0.4 + 1) / 3, abs=1e-4)
    assert result["series"][0]["readers"] == ["bob", "fred"]
    assert result["series"][0]["not_comparable"] == ["Lesion"]


@pytest.mark.parametrize(
    ("who", "expected"), [("alice", 200), ("erin", 200), ("bob", 403), ("carol", 403), ("charlie", 404)]
)
def test_agreement_roles(api_as: Any, project_a: Project, who: str, expected: int) -> None:
    assert api_as(who).get(f"/api/projects/{project_a.pk}/agreement/").status_code == expected


def test_service_refuses_readers_who_may_not_read(project_a: Project, series: Any, cast: dict[str, Any]) -> None:
    with pytest.raises(services.InvalidAssignment):
        services.assignment_create(series=series, readers=[cast["bob"], cast["carol"]], user=cast["alice"])
    with pytest.raises(services.InvalidAssignment):
        services.assignment_create(series=series, readers=[cast["charlie"]], user=cast["alice"])
    assert not Assignment.objects.exists()
