"""The viewer's layouts in the annotator (issue 12): the reformats and the prior study beside a
CT task, and grow from seeds in 3-D. The reformats are read-only: the task's annotations and
their autosave go on underneath, and a drawing tool brings the acquired slices back.

Needs the bundle: `make frontend`, then collectstatic. Screenshots go to /tmp/shots-mpr/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pydicom.uid import generate_uid

from annotations.geometry import rle_decode
from tests.e2e.test_annotator_task import TOOLBAR_ROWS
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE, drag, open_viewer, saved, server_annotations
from tests.e2e.test_viewer_layouts import SIZE, SPACING, grey_bbox, volume_files
from tests.e2e.test_viewer_tools import _assign
from tests.helpers import ingest
from workbench.models import Project, Series

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SHOTS = Path("/tmp/shots-mpr")  # noqa: S108 - screenshots for a person to look at, never committed
VIEWS = ("axial", "sagittal", "coronal")
BALL_SLICE = 8  # volume_files: the ball's centre, radius SIZE / 4 px, at (SIZE / 2, SIZE / 2)


@pytest.fixture
def volume_task(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Any:
    """A 16-slice CT volume assigned to bob; the same patient has a prior study of 8 slices."""
    with run_tasks():
        ingest(project_a, volume_files(study_uid=generate_uid()), user=cast["alice"])
        ingest(project_a, volume_files(study_uid=generate_uid(), slices=8, series_number=4), user=cast["alice"])
    return _assign(project_a, Series.objects.get(study__project=project_a, number=2), cast)


def readouts(page: Page) -> list[str]:
    return [page.locator(f'.mpr-wl[data-view="{v}"]').inner_text() for v in VIEWS]


def drag_in(page: Page, selector: str, dx: float, dy: float) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)], ids=["1366", "1920"])
def test_mpr_in_the_annotator_keeps_the_task(page: Page, live_server: Any, volume_task: Any, size: Any) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": size[0], "height": size[1]})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{volume_task.pk}/")
    rows = page.evaluate(TOOLBAR_ROWS)
    assert rows == 1 if size[0] >= 1920 else 1 <= rows <= 2, f"the toolbar takes {rows} rows"
    page.click('button[data-tool="box"]')
    drag(page, [(0.3, 0.3), (0.5, 0.5)])
    saved(page)
    expect(page.locator("#ann-list li")).to_have_count(1)

    button = page.locator("#layout-mpr")
    expect(button).to_be_visible()
    button.click()
    page.wait_for_selector("#viewer[data-mpr-ready]", timeout=30_000)
    expect(page.locator("#viewport")).to_be_hidden()
    for view in VIEWS:  # each view holds image content, not a blank canvas
        _aspect, levels = grey_bbox(page.locator(f'.mpr-vp[data-view="{view}"]').screenshot())
        assert levels > 20, f"{view}: the view is uniform"
    assert readouts(page) == ["W 400 L 40"] * 3

    page.click('button[data-tool="wl"]')  # the toolbar's W/L drives the reformats, all three windowed alike
    expect(page.locator('button[data-tool="wl"]')).to_have_attribute("aria-pressed", "true")
    drag_in(page, '.mpr-vp[data-view="axial"]', 60, 40)
    expect(page.locator('.mpr-wl[data-view="coronal"]')).not_to_have_text("W 400 L 40")
    after = readouts(page)
    assert len(set(after)) == 1 and after[0] != "W 400 L 40", after
    page.screenshot(path=str(SHOTS / f"annotator-mpr-{size[0]}.png"))

    page.click('button[data-tool="zoom"]')  # and zoom, in the view dragged
    drag_in(page, '.mpr-vp[data-view="sagittal"]', 0, -60)

    # a drawing tool brings the acquired slices back, with the task's annotation and autosave
    page.click('button[data-tool="box"]')
    expect(page.locator("#mpr")).to_be_hidden()
    expect(page.locator("#viewport")).to_be_visible()
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#ann-list li")).to_have_count(1)
    drag(page, [(0.6, 0.6), (0.75, 0.75)])
    saved(page)
    assert len(server_annotations(volume_task)) == 2


def test_compare_with_prior_in_the_annotator(page: Page, live_server: Any, volume_task: Any) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{volume_task.pk}/")
    page.click("#layout-compare")
    page.wait_for_selector("#viewer[data-prior-ready]", timeout=20_000)
    expect(page.locator("#prior-viewport")).to_be_visible()
    expect(page.locator("#viewport")).to_be_visible()
    expect(page.locator("#ov-prior")).to_have_text("Prior CT · 1 / 8")
    for selector in ("#viewport", "#prior-viewport"):
        _aspect, levels = grey_bbox(page.locator(selector).screenshot())
        assert levels > 20, selector
    page.locator("#viewport").hover()
    page.keyboard.press("End")
    expect(page.locator("#ov-prior")).to_have_text("Prior CT · 8 / 8")
    page.screenshot(path=str(SHOTS / "annotator-compare-1366.png"))
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "annotator-compare-1920.png"))
    assert page.evaluate(TOOLBAR_ROWS) == 1


CLICK_ON_PIXEL = """([x, y, s]) => { const vp = window.workbenchViewer.viewer.viewport;
    return vp.worldToCanvas([x * s, y * s, vp.getCamera().focalPoint[2]]); }"""


def click_pixel(page: Page, x: float, y: float) -> None:
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    cx, cy = page.evaluate(CLICK_ON_PIXEL, [x, y, SPACING])
    page.mouse.click(box["x"] + cx, box["y"] + cy)


def test_grow_in_3d_from_two_clicks_masks_several_slices(page: Page, live_server: Any, volume_task: Any) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{volume_task.pk}/")
    page.evaluate(f"() => window.workbenchViewer.viewer.go({BALL_SLICE})")
    expect(page.locator("#ov-slice")).to_have_text(f"{BALL_SLICE + 1} / 16")
    page.click('button[data-tool="grow"]')
    page.check("#grow-3d")
    click_pixel(page, SIZE / 2, SIZE / 2)
    page.keyboard.down("Shift")
    click_pixel(page, 6, SIZE / 2)
    page.keyboard.up("Shift")
    page.wait_for_selector("#viewer[data-grown3d]", timeout=20_000)
    expect(page.locator("#mask-layer[data-growing]")).to_have_count(0, timeout=20_000)
    saved(page)
    page.screenshot(path=str(SHOTS / "annotator-grow3d-1366.png"))

    masks = [a for a in server_annotations(volume_task) if a.label.kind == "mask"]
    slices = {(m.sop_instance_uid, m.frame) for m in masks}
    assert len(slices) >= 8, f"masks on {len(slices)} slices"  # the ball spans 13 of the 16 slices
    assert all(m.source == "human" for m in masks)
    middle = volume_task.series.instances.order_by("-slice_position")[BALL_SLICE]
    [centre] = [m for m in masks if m.sop_instance_uid == middle.sop_uid]
    grown = rle_decode(centre.geometry["rle"], SIZE, SIZE)
    assert grown[SIZE // 2, SIZE // 2] and not grown[SIZE // 2, 6] and not grown[2, 2]
