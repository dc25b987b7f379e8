"""Ellipse and angle annotations through the API: stored with the server's measurements,
checked against the image, refused with a 400 naming the field; and the schema takes the kinds.

Cast (conftest.py): alice admin, bob radiologist in project A; charlie is an outsider.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from annotations import services
from annotations.models import Annotation
from tests.annotation_factory import LABELS, label_id, make_series, sop_uids
from workbench.models import Project

pytestmark = pytest.mark.django_db

SHAPE_LABELS = [
    *LABELS,
    {"name": "Cyst", "color": "#123456", "kind": "ellipse", "attributes": []},
    {"name": "Cobb", "color": "#654321", "kind": "angle", "attributes": []},
]
ELLIPSE = {"center": [3.5, 3.5], "radii": [3, 2], "rotation": 0}
ANGLE = {"points": [[7, 0], [0, 0], [0, 7]]}


@pytest.fixture
def world(cast: dict[str, Any], project_a: Project) -> dict[str, Any]:
    schema = services.label_schema_create(project=project_a, labels=SHAPE_LABELS, user=cast["alice"])
    series = make_series(project_a)  # 8 x 8 images, 0.5 mm pixels
    [assignment] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return {"schema": schema, "sops": sop_uids(series), "assignment": assignment}


def post(api_as: Any, world: dict[str, Any], label: str, geometry: Any, who: str = "bob") -> Any:
    body = {
        "assignment": str(world["assignment"].pk),
        "label": label_id(world["schema"], label),
        "sop_instance_uid": world["sops"][0],
        "frame": 0,
        "geometry": geometry,
        "attributes": {},
    }
    return api_as(who).post("/api/annotations/", body, format="json")


def test_ellipse_is_stored_with_its_area_in_mm2(api_as: Any, world: dict[str, Any]) -> None:
    response = post(api_as, world, "Cyst", {**ELLIPSE, "rotation": 200, "area_mm2": 1})
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["kind"] == "ellipse"
    assert data["geometry"]["center"] == [3.5, 3.5] and data["geometry"]["radii"] == [3.0, 2.0]
    assert data["geometry"]["rotation"] == pytest.approx(20.0)
    assert data["geometry"]["area_mm2"] == pytest.approx(math.pi * 3 * 2 * 0.25)  # 0.5 mm pixels
    # an edit recomputes it
    url = f"/api/annotations/{data['id']}/"
    edited = api_as("bob").patch(url, {"revision": 1, "geometry": {**ELLIPSE, "radii": [1, 1]}}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["geometry"]["area_mm2"] == pytest.approx(math.pi * 0.25)


def test_angle_is_stored_with_its_degrees(api_as: Any, world: dict[str, Any]) -> None:
    response = post(api_as, world, "Cobb", {**ANGLE, "angle_deg": 12})
    assert response.status_code == 201, response.json()
    assert response.json()["geometry"] == {"points": [[7.0, 0.0], [0.0, 0.0], [0.0, 7.0]], "angle_deg": 90.0}
    listed = api_as("bob").get(f"/api/annotations/?assignment={world['assignment'].pk}")
    assert [a["geometry"]["angle_deg"] for a in listed.json()["results"]] == [90.0]


@pytest.mark.parametrize(
    ("label", "geometry", "words"),
    [
        ("Cyst", {"center": [3.5, 3.5], "radii": [4.5, 2], "rotation": 0}, "edge at (-1, 1.5) lies outside"),
        ("Cyst", {"center": [3.5, 3.5], "radii": [1, 4.5], "rotation": 90}, "edge at (-1, 2.5) lies outside"),
        ("Cyst", {"center": [3.5, 3.5], "radii": [0, 2]}, "radii must be two positive numbers"),
        ("Cyst", {"center": [3.5], "radii": [1, 2]}, "center must be a pair"),
        ("Cyst", {"points": [[0, 0], [1, 1], [2, 0]]}, "center must be a pair"),
        ("Cobb", {"points": [[0, 0], [1, 1]]}, "exactly 3"),
        ("Cobb", {"points": [[0, 0], [1, 1], [8, 0]]}, "The point (8, 0) lies outside the 8 x 8"),
    ],
)
def test_bad_ellipses_and_angles_are_400_naming_geometry(
    api_as: Any, world: dict[str, Any], label: str, geometry: Any, words: str
) -> None:
    response = post(api_as, world, label, geometry)
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "invalid"
    assert list(response.json()["fields"]) == ["geometry"]
    assert words in response.json()["fields"]["geometry"]
    assert not Annotation.objects.exists()


def test_outsider_cannot_write_an_ellipse(api_as: Any, world: dict[str, Any]) -> None:
    assert post(api_as, world, "Cyst", ELLIPSE, who="charlie").status_code in (400, 404)
    assert not Annotation.objects.exists()


def test_label_schema_api_takes_ellipse_and_angle_kinds(api_as: Any, project_a: Project) -> None:
    labels = [
        {"name": "Cyst", "color": "#123456", "kind": "ellipse"},
        {"name": "Cobb", "color": "#654321", "kind": "angle"},
    ]
    response = api_as("alice").post(f"/api/projects/{project_a.pk}/label-schema/", {"labels": labels}, format="json")
    assert response.status_code == 201, response.json()
    assert [one["kind"] for one in response.json()["labels"]] == ["ellipse", "angle"]
    bad = api_as("alice").post(
        f"/api/projects/{project_a.pk}/label-schema/",
        {"labels": [{"name": "Oval", "color": "#123456", "kind": "oval"}]},
        format="json",
    )
    assert bad.status_code == 400
    assert "angle" in str(bad.json()) and "ellipse" in str(bad.json())
