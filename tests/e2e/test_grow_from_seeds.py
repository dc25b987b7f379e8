"""The segmentation tools in the annotator: grow from seeds (a click inside a lung and a
Shift-click on the tissue beside it give one saved, editable mask of that lung) and the
threshold brush (a dab across the lung's edge paints only the tissue in the HU range).

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from annotations.geometry import rle_decode
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE, SIZE, open_viewer, saved, server_annotations
from tests.e2e.test_viewer_tools import click_pixel, ct, ct_task  # noqa: F401, F811  (fixtures)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SPACING = [0.7, 0.7]
LUNG = (round(0.32 * SIZE), round(0.40 * SIZE))  # inside the left lung (workbench.demo.phantom_slice), off the lesion
TISSUE = (SIZE // 2, round(0.40 * SIZE))  # the soft tissue between the lungs
LUNG_AREA = math.pi * (0.14 * SIZE) * (0.22 * SIZE)


def test_two_clicks_grow_one_editable_mask(page: Page, live_server: Any, ct_task: Any) -> None:  # noqa: F811
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    page.click('[data-tool="grow"]')
    expect(page.locator('button[data-tool="grow"]')).to_have_attribute("aria-pressed", "true")
    click_pixel(page, *LUNG, SPACING)
    page.keyboard.down("Shift")
    click_pixel(page, *TISSUE, SPACING)
    page.keyboard.up("Shift")
    expect(page.locator("#mask-layer[data-growing]")).to_have_count(0, timeout=10_000)
    expect(page.locator("#ann-list li")).to_have_count(1)
    saved(page)

    [mask] = server_annotations(ct_task)
    assert mask.label.kind == "mask" and mask.source == "human"
    grown = rle_decode(mask.geometry["rle"], SIZE, SIZE)
    assert grown[LUNG[1], LUNG[0]] and not grown[TISSUE[1], TISSUE[0]] and not grown[4, 4]
    assert 0.6 * LUNG_AREA <= grown.sum() <= 1.15 * LUNG_AREA  # the lung, not the body or the air
    assert grown[:, SIZE // 2 :].sum() == 0  # the other lung is not joined

    # it is an ordinary mask: the eraser edits it
    page.click('[data-tool="eraser"]')
    click_pixel(page, *LUNG, SPACING)
    saved(page)
    [edited] = server_annotations(ct_task)
    erased = rle_decode(edited.geometry["rle"], SIZE, SIZE)
    assert edited.pk == mask.pk and not erased[LUNG[1], LUNG[0]] and np.sum(erased) < grown.sum()


def _first_slice_hu(task: Any) -> np.ndarray:
    """The stored first slice in HU, read with pydicom from the catalog's file (not from the API)."""
    import pydicom
    from django.core.files.storage import default_storage
    from pydicom.pixels import apply_modality_lut

    instance = task.series.instances.get(number=1)
    with default_storage.open(instance.storage_path, "rb") as fh:
        ds = pydicom.dcmread(fh)
    return np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)


def test_threshold_brush_paints_only_the_range(page: Page, live_server: Any, ct_task: Any) -> None:  # noqa: F811
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    expect(page.locator("#threshold-controls")).to_be_hidden()
    page.click('[data-tool="brush"]')
    expect(page.locator("#threshold-controls")).to_be_visible()
    page.check("#threshold-on")
    page.fill("#threshold-low", "-200")
    page.fill("#threshold-high", "300")
    page.eval_on_selector("#brush-size", "el => { el.value = '12'; el.dispatchEvent(new Event('input')); }")
    edge = (round(0.32 * SIZE + 0.14 * SIZE), round(0.48 * SIZE))  # the lung's right edge: lung and tissue
    click_pixel(page, *edge, SPACING)
    expect(page.locator("#mask-layer[data-growing]")).to_have_count(0, timeout=10_000)
    expect(page.locator("#ann-list li")).to_have_count(1)
    saved(page)

    [mask] = server_annotations(ct_task)
    painted = rle_decode(mask.geometry["rle"], SIZE, SIZE)
    hu = _first_slice_hu(ct_task)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    disk = (xx - edge[0]) ** 2 + (yy - edge[1]) ** 2 <= 12**2
    assert painted.sum() > 50 and not painted[~disk].any()
    assert ((hu[painted] >= -200) & (hu[painted] <= 300)).all()  # only tissue...
    assert (disk & (hu < -500)).sum() > 50 and not painted[disk & (hu < -500)].any()  # ...never the lung


def test_threshold_brush_in_3d_paints_the_neighbouring_slices(
    page: Page,
    live_server: Any,
    ct_task: Any,  # noqa: F811
) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    page.click('[data-tool="brush"]')
    page.check("#threshold-on")
    page.check("#threshold-3d")
    page.fill("#threshold-low", "-200")
    page.fill("#threshold-high", "300")
    page.eval_on_selector("#brush-size", "el => { el.value = '40'; el.dispatchEvent(new Event('input')); }")
    click_pixel(page, SIZE // 2, SIZE // 2, SPACING)  # soft tissue between the lungs, on the first slice
    expect(page.locator("#viewer-message")).to_contain_text("neighbouring slice")
    saved(page)
    painted = {
        a.sop_instance_uid for a in server_annotations(ct_task) if rle_decode(a.geometry["rle"], SIZE, SIZE).any()
    }
    order = list(ct_task.series.instances.order_by("number").values_list("sop_uid", flat=True))
    assert {order[0], order[1]} <= painted  # this slice and the next (a ball of 28 mm)


def test_fill_between_two_key_masks(page: Page, live_server: Any, ct_task: Any) -> None:  # noqa: F811
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    page.click('[data-tool="brush"]')
    page.eval_on_selector("#brush-size", "el => { el.value = '6'; el.dispatchEvent(new Event('input')); }")
    click_pixel(page, 60, 60, SPACING)  # the key on the first slice
    saved(page)
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(page.locator("#ov-slice")).to_have_text("4 / 4")
    click_pixel(page, 70, 70, SPACING)  # and on the last
    saved(page)
    expect(page.locator("#ann-list li")).to_have_count(2)
    page.click("#fill-between")
    expect(page.locator("#viewer-message")).to_contain_text("Filled 2 slices")
    expect(page.locator("#ann-list li")).to_have_count(4)
    saved(page)

    by_slice = {a.sop_instance_uid: a for a in server_annotations(ct_task)}
    order = list(ct_task.series.instances.order_by("number").values_list("sop_uid", flat=True))
    assert set(by_slice) == set(order)
    centres = [np.argwhere(rle_decode(by_slice[s].geometry["rle"], SIZE, SIZE)).mean(axis=0) for s in order]
    rows = [c[0] for c in centres]  # the filled slices lie between the keys
    assert rows[0] < rows[1] < rows[2] < rows[3] or rows[0] > rows[1] > rows[2] > rows[3]


def test_fill_between_two_key_contours(page: Page, live_server: Any, ct_task: Any) -> None:  # noqa: F811
    from annotations import services

    lung = ct_task.project.label_schemas.first().labels.get(kind="polygon")
    order = list(ct_task.series.instances.order_by("number").values_list("sop_uid", flat=True))
    for sop, (cx, cy, r) in ((order[0], (50, 50, 8)), (order[-1], (70, 66, 16))):
        points = [[cx + r * math.cos(a * math.pi / 12), cy + r * math.sin(a * math.pi / 12)] for a in range(24)]
        services.annotation_create(
            assignment=ct_task,
            user=ct_task.reader,
            label=lung,
            sop_instance_uid=sop,
            frame=0,
            geometry={"points": points},
        )
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    expect(page.locator("#ann-list li")).to_have_count(2)
    page.click('[data-tool="polygon"]')
    expect(page.locator("#contour-controls")).to_be_visible()
    page.click("#fill-between-contours")
    expect(page.locator("#viewer-message")).to_contain_text("Filled 2 slices between the key contours")
    expect(page.locator("#ann-list li")).to_have_count(4)
    saved(page)

    by_slice = {a.sop_instance_uid: a for a in server_annotations(ct_task)}
    assert set(by_slice) == set(order) and all(a.label == lung for a in by_slice.values())
    areas = [len(by_slice[s].geometry["points"]) >= 3 and _polygon_area(by_slice[s].geometry["points"]) for s in order]
    assert areas[0] < areas[1] < areas[2] < areas[3]  # the contour grows from one key to the other
    page.reload()
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    expect(page.locator("#ann-list li")).to_have_count(4)


def _polygon_area(points: list[list[float]]) -> float:
    """Shoelace formula: an independent measure of the saved contour."""
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True))) / 2


def test_carry_a_mask_to_the_next_slice(page: Page, live_server: Any, ct_task: Any) -> None:  # noqa: F811
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    page.click('[data-tool="grow"]')
    click_pixel(page, *LUNG, SPACING)
    page.keyboard.down("Shift")
    click_pixel(page, *TISSUE, SPACING)
    page.keyboard.up("Shift")
    expect(page.locator("#mask-layer[data-growing]")).to_have_count(0, timeout=10_000)
    saved(page)
    page.click("#propagate-next")
    expect(page.locator("#ov-slice")).to_have_text("2 / 4")
    expect(page.locator("#ann-list li")).to_have_count(2)
    saved(page)
    order = list(ct_task.series.instances.order_by("number").values_list("sop_uid", flat=True))
    by_slice = {a.sop_instance_uid: rle_decode(a.geometry["rle"], SIZE, SIZE) for a in server_annotations(ct_task)}
    carried = by_slice[order[1]]
    assert carried[LUNG[1], LUNG[0]] and 0.6 * LUNG_AREA <= carried.sum() <= 1.15 * LUNG_AREA
    assert 2 * (carried & by_slice[order[0]]).sum() / (carried.sum() + by_slice[order[0]].sum()) > 0.85
