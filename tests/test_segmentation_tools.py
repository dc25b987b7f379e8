"""Grow from seeds and the threshold brush: the pure tools, and through the API on stored CT.

Cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer in project A; charlie is an outsider.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from annotations import geometry as geo
from annotations import services
from annotations.interactive import (
    ToolError,
    fill_between,
    grow_from_seeds,
    propagate,
    threshold_brush,
    threshold_stroke,
)
from annotations.models import Annotation
from tests.annotation_factory import make_schema, make_series
from tests.helpers import store_ct

SIZE, CENTRE, RADIUS = 64, (40, 24), 12  # a disk of soft tissue at x=40, y=24 on air


def _disk(size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - CENTRE[0]) ** 2 + (yy - CENTRE[1]) ** 2 <= RADIUS**2


def _ct_values(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hu = rng.normal(-1000, 15, (SIZE, SIZE))
    hu[_disk()] = rng.normal(40, 15, int(_disk().sum()))
    hu[50:60, 5:20] = rng.normal(700, 15, (10, 15))  # a bone-bright block elsewhere
    return hu


# --- pure tools ------------------------------------------------------------------------------------


def test_grow_from_one_click_inside_finds_the_structure():
    mask = grow_from_seeds(_ct_values(), [CENTRE])
    disk = _disk()
    dice = 2 * (mask & disk).sum() / (mask.sum() + disk.sum())
    assert dice > 0.95
    assert not mask[50:60, 5:20].any()  # the other bright structure is not joined


def test_outside_seeds_stop_the_growth_between_touching_structures():
    hu = _ct_values()
    hu[20:29, 52:60] = 40  # soft tissue touching the disk on its right
    grown = grow_from_seeds(hu, [CENTRE])
    separated = grow_from_seeds(hu, [CENTRE], [(56, 24)], spacing=(0.7, 0.7))
    assert grown[24, 56] and not separated[24, 56]
    assert separated[CENTRE[1], CENTRE[0]]


def test_grow_in_3d_and_refusals():
    volume = np.stack([_ct_values(seed) for seed in range(5)])
    mask = grow_from_seeds(volume, [(CENTRE[0], CENTRE[1], 2)], spacing=(2.0, 0.7, 0.7))
    assert mask.shape == volume.shape and all(mask[z][_disk()].mean() > 0.9 for z in range(5))
    with pytest.raises(ToolError, match="outside the image"):
        grow_from_seeds(_ct_values(), [(99, 5)])
    with pytest.raises(ToolError, match="at least one seed"):
        grow_from_seeds(_ct_values(), [])
    with pytest.raises(ToolError, match="2 coordinates"):
        grow_from_seeds(_ct_values(), [(1, 2, 3)])


def test_threshold_brush_paints_only_inside_the_range_and_the_radius():
    hu = _ct_values()
    mask = threshold_brush(hu, CENTRE, 30.0, -100, 200, spacing=(0.5, 0.5))  # 30 mm = 60 px: the whole disk
    assert (mask == (_disk() & (hu >= -100) & (hu <= 200))).all()
    small = threshold_brush(hu, CENTRE, 2.0, -100, 200, spacing=(0.5, 0.5))  # 4 px
    assert 0 < small.sum() <= np.pi * 4.5**2 and small[CENTRE[1], CENTRE[0]]
    with pytest.raises(ToolError):
        threshold_brush(hu, CENTRE, 3.0, 200, -100)
    stroke = threshold_stroke(hu, [(30, 24), (50, 24)], 3.0, -100, 200)  # pixels: no spacing
    assert stroke[24, 30] and stroke[24, 50] and not stroke[24, 40]  # two dabs, nothing between
    assert stroke.sum() == threshold_brush(hu, (30, 24), 3.0, -100, 200).sum() * 2


# --- through the API ----------------------------------------------------------------------------------


@pytest.fixture
def task(cast: dict[str, Any], project_a: Any) -> dict[str, Any]:
    make_schema(project_a)
    series = make_series(project_a, instances=1, rows=SIZE, columns=SIZE)
    instance = series.instances.get()
    store_ct(instance, _ct_values(), pixel_spacing=(0.5, 0.5))
    (assignment,) = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return {"assignment": assignment, "instance": instance}


def _url(task: dict[str, Any], tool: str) -> str:
    return f"/api/assignments/{task['assignment'].pk}/tools/{tool}/"


def test_grow_from_seeds_through_the_api_gives_a_mask_geometry(api_as: Any, task: dict[str, Any]) -> None:
    body = {"sop_instance_uid": task["instance"].sop_uid, "inside": [list(CENTRE)], "outside": [[5, 5]]}
    response = api_as("bob").post(_url(task, "grow-from-seeds"), body, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["rows"], data["columns"]) == (SIZE, SIZE)
    mask = geo.rle_decode(data["rle"], SIZE, SIZE)
    assert data["area_px"] == mask.sum() and (mask & _disk()).sum() / _disk().sum() > 0.95
    geo.validate_geometry("mask", {k: data[k] for k in ("rows", "columns", "rle")})  # saves as a mask


def test_threshold_brush_through_the_api_reads_hounsfield_units(api_as: Any, task: dict[str, Any]) -> None:
    sop = task["instance"].sop_uid
    body = {"sop_instance_uid": sop, "points": [list(CENTRE)], "radius_mm": 30, "low": -100, "high": 200}
    response = api_as("erin").post(_url(task, "threshold-brush"), body, format="json")
    assert response.status_code == 200, response.json()
    mask = geo.rle_decode(response.json()["rle"], SIZE, SIZE)
    assert mask[_disk()].mean() > 0.99 and not mask[~_disk()].any()  # rescale applied: air is -1000 HU
    in_pixels = {**body, "radius_px": 60}
    del in_pixels["radius_mm"]
    response = api_as("erin").post(_url(task, "threshold-brush"), in_pixels, format="json")
    assert geo.rle_decode(response.json()["rle"], SIZE, SIZE).tolist() == mask.tolist()


def test_tool_errors_are_json_in_words(api_as: Any, task: dict[str, Any], project_a: Any) -> None:
    other = make_series(project_a, instances=1).instances.get()
    cases = [
        ({"sop_instance_uid": other.sop_uid, "inside": [[1, 1]]}, "not in this task's series"),
        ({"sop_instance_uid": task["instance"].sop_uid, "inside": [[500, 1]]}, "outside the image"),
        ({"sop_instance_uid": task["instance"].sop_uid, "inside": [[1, 1]], "frame": 3}, "frame 3 does not exist"),
    ]
    for body, words in cases:
        response = api_as("bob").post(_url(task, "grow-from-seeds"), body, format="json")
        assert response.status_code == 400 and words in response.json()["message"], response.json()
    only_image = {"sop_instance_uid": task["instance"].sop_uid}
    response = api_as("bob").post(_url(task, "grow-from-seeds"), only_image, format="json")
    assert response.status_code == 400 and "inside" in response.json()["fields"]
    brush = {"sop_instance_uid": task["instance"].sop_uid, "points": [[1, 1]], "radius_mm": 3, "low": 5, "high": 1}
    response = api_as("bob").post(_url(task, "threshold-brush"), brush, format="json")
    assert response.status_code == 400 and "low" in response.json()["fields"]
    both = {**brush, "low": 0, "radius_px": 4}
    response = api_as("bob").post(_url(task, "threshold-brush"), both, format="json")
    assert response.status_code == 400 and "not both" in response.json()["message"]


def test_only_writers_of_the_assignment_use_the_tools(api_as: Any, task: dict[str, Any]) -> None:
    body = {"sop_instance_uid": task["instance"].sop_uid, "inside": [list(CENTRE)]}
    codes = {
        who: api_as(who).post(_url(task, "grow-from-seeds"), body, format="json").status_code
        for who in ("bob", "erin", "alice", "carol", "dave", "charlie")
    }
    assert codes == {"bob": 200, "erin": 200, "alice": 403, "carol": 404, "dave": 404, "charlie": 404}


# --- fill between slices ------------------------------------------------------------------------


def _round(cx: float, cy: float, r: float, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_fill_between_grows_moves_and_ends_a_structure():
    growing = fill_between({0: _round(30, 30, 6), 4: _round(30, 30, 14)})
    assert sorted(growing) == [1, 2, 3]
    assert abs(growing[2].sum() - np.pi * 10**2) < 0.1 * np.pi * 10**2  # halfway: radius 10
    assert growing[1].sum() < growing[2].sum() < growing[3].sum()
    moving = fill_between({0: _round(20, 20, 8), 4: _round(40, 44, 8)}, spacing=(0.7, 0.7))
    centres = [np.argwhere(moving[z]).mean(axis=0) for z in (1, 2, 3)]  # (row, column)
    assert np.allclose(centres, [(26, 25), (32, 30), (38, 35)], atol=1.0)  # follows the structure
    ending = fill_between({0: _round(30, 30, 10), 3: np.zeros((SIZE, SIZE), bool)})
    assert ending[1].sum() > ending[2].sum() > 0 and ending[2][30, 30]
    assert fill_between({0: _round(30, 30, 5), 1: _round(30, 30, 5)}) == {}  # nothing between
    with pytest.raises(ToolError):
        fill_between({0: _round(30, 30, 5), 3: _round(30, 30, 5, size=32)})


def test_fill_between_through_the_api(api_as: Any, cast: dict[str, Any], project_a: Any) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a, instances=5, rows=SIZE, columns=SIZE)
    (assignment,) = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    nodule = schema.labels.get(kind="mask")
    sops = list(series.instances.order_by("number").values_list("sop_uid", flat=True))
    for sop, mask in ((sops[0], _round(30, 30, 6)), (sops[4], _round(30, 30, 14))):
        geometry = {"rows": SIZE, "columns": SIZE, "rle": geo.rle_encode(mask)}
        services.annotation_create(
            assignment=assignment, user=cast["bob"], label=nodule, sop_instance_uid=sop, frame=0, geometry=geometry
        )
    url = f"/api/assignments/{assignment.pk}/tools/fill-between/"
    response = api_as("bob").post(url, {"label": str(nodule.pk)}, format="json")
    assert response.status_code == 200, response.json()
    masks = response.json()["masks"]
    assert [m["sop_instance_uid"] for m in masks] == sops[1:4]
    areas = [geo.rle_decode(m["rle"], SIZE, SIZE).sum() for m in masks]
    assert areas == sorted(areas) and abs(areas[1] - np.pi * 100) < 0.1 * np.pi * 100
    assert Annotation.objects.filter(assignment=assignment).count() == 2  # nothing written
    box = schema.labels.get(name="Lesion")
    response = api_as("bob").post(url, {"label": str(box.pk)}, format="json")
    assert response.status_code == 400 and "at least two slices" in response.json()["message"]
    assert api_as("carol").post(url, {"label": str(nodule.pk)}, format="json").status_code == 404


def _circle_points(cx: float, cy: float, r: float, n: int = 32) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [[float(cx + r * np.cos(a)), float(cy + r * np.sin(a))] for a in t]


def test_contours_are_interpolated_between_key_slices(api_as: Any, cast: dict[str, Any], project_a: Any) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a, instances=5, rows=SIZE, columns=SIZE)
    (assignment,) = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    lung = schema.labels.get(kind="polygon")
    sops = list(series.instances.order_by("number").values_list("sop_uid", flat=True))
    # Key contours: a circle of radius 6 at (20, 20) growing and moving to radius 14 at (40, 36).
    for sop, (cx, cy, r) in ((sops[0], (20, 20, 6)), (sops[4], (40, 36, 14))):
        services.annotation_create(
            assignment=assignment,
            user=cast["bob"],
            label=lung,
            sop_instance_uid=sop,
            frame=0,
            geometry={"points": _circle_points(cx, cy, r)},
        )
    url = f"/api/assignments/{assignment.pk}/tools/fill-between/"
    response = api_as("bob").post(url, {"label": str(lung.pk)}, format="json")
    assert response.status_code == 200, response.json()
    polygons = response.json()["polygons"]
    assert [p["sop_instance_uid"] for p in polygons] == sops[1:4] and "masks" not in response.json()
    # Independent check: each contour, filled by the same rule the exporters use, against the disc
    # a reader would expect halfway (linear in radius and centre), and the contour is a valid polygon.
    for z, polygon in enumerate(polygons, start=1):
        t = z / 4
        cx, cy, r = 20 + 20 * t, 20 + 16 * t, 6 + 8 * t
        expected = _round(cx, cy, r)
        got = geo.rasterize_polygon(polygon["points"], SIZE, SIZE)
        assert _dice(got, expected) > 0.85, (z, _dice(got, expected))
        geo.validate_geometry("polygon", {"points": polygon["points"]})
    # Each saved like any polygon through the annotations API.
    saved = api_as("bob").post(
        "/api/annotations/",
        {
            "assignment": str(assignment.pk),
            "label": str(lung.pk),
            "sop_instance_uid": polygons[1]["sop_instance_uid"],
            "frame": 0,
            "geometry": {"points": polygons[1]["points"]},
        },
        format="json",
    )
    assert saved.status_code == 201, saved.json()


def test_a_contour_round_trips_through_its_mask():
    for mask in (_round(30, 30, 10), _round(20, 40, 3)):
        points = geo.mask_to_polygon(mask)
        assert len(points) >= 4 and (geo.rasterize_polygon(points, SIZE, SIZE) == mask).all()
    assert geo.mask_to_polygon(np.zeros((SIZE, SIZE), bool)) == []


# --- propagation to the next slice ---------------------------------------------------------------


def _ct_with(centre: tuple[int, int], radius: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hu = rng.normal(-1000, 15, (SIZE, SIZE))
    disk = _round(*centre, radius)
    hu[disk] = rng.normal(40, 15, int(disk.sum()))
    return hu


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_propagate_follows_the_structure_onto_the_next_slice():
    here, there = _round(40, 24, 12), _round(43, 26, 14)  # it moves and grows a little
    carried = propagate(here, _ct_with((43, 26), 14, 1), spacing=(0.5, 0.5))
    assert _dice(carried, there) > 0.95 and _dice(here, there) < 0.9
    with pytest.raises(ToolError, match="no mask"):
        propagate(np.zeros((SIZE, SIZE), bool), _ct_with((43, 26), 14, 1))


def test_propagate_through_the_api(api_as: Any, cast: dict[str, Any], project_a: Any) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a, instances=2, rows=SIZE, columns=SIZE)
    first, second = series.instances.order_by("number")
    store_ct(first, _ct_with((40, 24), 12, 0), pixel_spacing=(0.5, 0.5))
    store_ct(second, _ct_with((43, 26), 14, 1), pixel_spacing=(0.5, 0.5))
    (assignment,) = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    nodule = schema.labels.get(kind="mask")
    geometry = {"rows": SIZE, "columns": SIZE, "rle": geo.rle_encode(_round(40, 24, 12))}
    services.annotation_create(
        assignment=assignment,
        user=cast["bob"],
        label=nodule,
        sop_instance_uid=first.sop_uid,
        frame=0,
        geometry=geometry,
    )
    url = f"/api/assignments/{assignment.pk}/tools/propagate/"
    body = {"sop_instance_uid": first.sop_uid, "label": str(nodule.pk), "direction": "next"}
    response = api_as("bob").post(url, body, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["sop_instance_uid"] == second.sop_uid and data["frame"] == 0
    assert _dice(geo.rle_decode(data["rle"], SIZE, SIZE), _round(43, 26, 14)) > 0.95
    response = api_as("bob").post(url, {**body, "direction": "previous"}, format="json")
    assert response.status_code == 400 and "no slice beyond" in response.json()["message"]
    response = api_as("bob").post(url, {**body, "sop_instance_uid": second.sop_uid}, format="json")
    assert response.status_code == 400 and "no saved mask" in response.json()["message"]
