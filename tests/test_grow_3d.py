"""Grow from seeds in 3-D through the API: a synthetic sphere in a stored CT volume, two seeds
clicked on its middle slice, a mask on every slice the sphere spans (Dice against the sphere).

Cast (conftest.py): alice admin, bob radiologist, erin reviewer in project A; charlie an outsider.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from annotations import geometry as geo
from annotations import services
from tests.annotation_factory import make_schema, make_series
from tests.helpers import store_ct
from workbench.models import Instance

SIZE, SLICES = 64, 24
PIXEL_MM, SLICE_MM = 0.8, 2.0
CENTRE_MM, RADIUS_MM = (32 * PIXEL_MM, 30 * PIXEL_MM, 11 * SLICE_MM), 12.0  # x, y, z


def _sphere() -> np.ndarray:
    """(slices, rows, columns) in spatial order (slice 0 is the head end: slice_position desc)."""
    zz, yy, xx = np.mgrid[:SLICES, :SIZE, :SIZE]
    cx, cy, cz = CENTRE_MM
    return (xx * PIXEL_MM - cx) ** 2 + (yy * PIXEL_MM - cy) ** 2 + (zz * SLICE_MM - cz) ** 2 <= RADIUS_MM**2


def _store(instance: Instance, values: np.ndarray, position: float) -> None:
    store_ct(instance, values, pixel_spacing=(PIXEL_MM, PIXEL_MM))
    instance.slice_position, instance.slice_thickness = position, SLICE_MM
    instance.save(update_fields=["slice_position", "slice_thickness"])


@pytest.fixture
def volume_task(cast: dict[str, Any], project_a: Any) -> dict[str, Any]:
    make_schema(project_a)
    series = make_series(project_a, instances=SLICES, rows=SIZE, columns=SIZE)
    rng = np.random.default_rng(0)
    sphere = _sphere()
    hu = np.where(sphere, 60.0, -20.0) + rng.normal(0, 10, sphere.shape)  # a lesion in soft tissue
    # stored in reverse instance order: the tool must put the slices in space, not by number
    for k, instance in enumerate(series.instances.order_by("-number")):
        _store(instance, hu[k], position=-SLICE_MM * k)
    (assignment,) = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    ordered = list(series.instances.order_by("-slice_position"))
    return {"assignment": assignment, "instances": ordered, "sphere": sphere}


def _url(task: dict[str, Any]) -> str:
    return f"/api/assignments/{task['assignment'].pk}/tools/grow-from-seeds-3d/"


def test_two_seeds_grow_the_sphere_on_the_slices_it_spans(api_as: Any, volume_task: dict[str, Any]) -> None:
    middle = volume_task["instances"][11]
    body = {"sop_instance_uid": middle.sop_uid, "inside": [[32, 30]], "outside": [[6, 6]]}
    client = api_as("bob")
    started = time.perf_counter()
    response = client.post(_url(volume_task), body, format="json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.json()
    print(f"3-D grow, {SLICES} slices of {SIZE}x{SIZE}, through the API: {elapsed * 1000:.0f} ms")
    sphere = volume_task["sphere"]
    position = {i.sop_uid: k for k, i in enumerate(volume_task["instances"])}
    grown = np.zeros_like(sphere)
    for m in response.json()["masks"]:
        geo.validate_geometry("mask", {k: m[k] for k in ("rows", "columns", "rle")})  # saves as a mask
        grown[position[m["sop_instance_uid"]]] = geo.rle_decode(m["rle"], SIZE, SIZE)
    spans = {int(k) for k in np.flatnonzero(sphere.any(axis=(1, 2)))}
    reached = {position[m["sop_instance_uid"]] for m in response.json()["masks"]}
    assert len(spans) >= 10 and reached <= spans and len(spans - reached) <= 2  # the tips may be a pixel
    dice = 2 * (grown & sphere).sum() / (grown.sum() + sphere.sum())
    assert dice > 0.8, dice


def test_grow_3d_errors_and_access(api_as: Any, volume_task: dict[str, Any], project_a: Any) -> None:
    other = make_series(project_a, instances=1).instances.get()
    response = api_as("bob").post(
        _url(volume_task), {"sop_instance_uid": other.sop_uid, "inside": [[1, 1]]}, format="json"
    )
    assert response.status_code == 400 and "not in this task's series" in response.json()["message"]
    sop = volume_task["instances"][0].sop_uid
    response = api_as("bob").post(_url(volume_task), {"sop_instance_uid": sop, "inside": [[500, 1]]}, format="json")
    assert response.status_code == 400 and "outside the image" in response.json()["message"]
    response = api_as("bob").post(_url(volume_task), {"sop_instance_uid": sop}, format="json")
    assert response.status_code == 400 and "inside" in response.json()["fields"]
    body = {"sop_instance_uid": sop, "inside": [[32, 30]]}
    codes = {
        who: api_as(who).post(_url(volume_task), body, format="json").status_code
        for who in ("erin", "alice", "carol", "charlie")
    }
    assert codes == {"erin": 200, "alice": 403, "carol": 404, "charlie": 404}
    from rest_framework.test import APIClient

    assert APIClient().post(_url(volume_task), body, format="json").status_code in (401, 403)


def test_a_long_series_grows_in_a_slab_around_the_clicked_slice(
    api_as: Any, volume_task: dict[str, Any], monkeypatch: Any
) -> None:
    from annotations import tools

    monkeypatch.setattr(tools, "MAX_VOXELS", 6 * SIZE * SIZE)  # 3 slices either side
    instances = volume_task["instances"]
    body = {"sop_instance_uid": instances[11].sop_uid, "inside": [[32, 30]], "outside": [[6, 6]]}
    response = api_as("bob").post(_url(volume_task), body, format="json")
    assert response.status_code == 200, response.json()
    reached = {m["sop_instance_uid"] for m in response.json()["masks"]}
    assert reached == {i.sop_uid for i in instances[8:15]}


def test_the_threshold_brush_paints_a_ball_through_the_slices(api_as: Any, volume_task: dict[str, Any]) -> None:
    """A dab of 8 mm at the sphere's centre, 30 to 90 HU: the ball, on the slices it reaches only."""
    instances = volume_task["instances"]
    url = f"/api/assignments/{volume_task['assignment'].pk}/tools/threshold-brush-3d/"
    body = {"sop_instance_uid": instances[11].sop_uid, "points": [[32, 30]], "radius_mm": 8, "low": 30, "high": 90}
    response = api_as("bob").post(url, body, format="json")
    assert response.status_code == 200, response.json()
    position = {i.sop_uid: k for k, i in enumerate(instances)}
    painted = np.zeros_like(volume_task["sphere"])
    for m in response.json()["masks"]:
        painted[position[m["sop_instance_uid"]]] = geo.rle_decode(m["rle"], SIZE, SIZE)
    # The ball, computed here from the geometry alone (the sphere holds it whole, at 60 +- 10 HU).
    zz, yy, xx = np.mgrid[:SLICES, :SIZE, :SIZE]
    ball = (xx - 32) ** 2 * PIXEL_MM**2 + (yy - 30) ** 2 * PIXEL_MM**2 + (zz - 11) ** 2 * SLICE_MM**2 <= 8**2
    assert {int(k) for k in np.flatnonzero(painted.any(axis=(1, 2)))} == set(range(7, 16))  # 4 slices either side
    dice = 2 * (painted & ball).sum() / (painted.sum() + ball.sum())
    assert dice > 0.97 and not (painted & ~volume_task["sphere"]).any(), dice
    # Out of range: the same dab at -100 to 0 HU paints nothing of the lesion.
    empty = api_as("bob").post(url, {**body, "low": -100, "high": 0}, format="json")
    assert empty.status_code == 200 and sum(geo.rle_area(m["rle"]) for m in empty.json()["masks"]) < 5
    assert api_as("carol").post(url, body, format="json").status_code == 404
