"""A radiologist sees the triage classifier's score of the series and toggles its heat map in the
annotator (issue 11, "explanations and triage"): a badge with the score and the model, and the
GradCAM map of the highest-scoring slice laid over that slice only, in a colour of its own,
changing the image on screen where the map is and nowhere else, and never saved.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from annotations.geometry import rle_encode
from tests.e2e.test_flows import log_in
from tests.e2e.test_proposals_flow import PIXEL_ON_SCREEN
from tests.e2e.test_viewer import BUNDLE, SIZE, open_viewer
from tests.e2e.test_viewer_editing import task  # noqa: F401 - a fixture by name

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SHOTS = Path("/tmp/shots-heatmap")  # noqa: S108 - screenshots for a person to look at, never committed
# The heat map: image pixels x 80..109, y 20..49 of the third slice.
X0, X1, Y0, Y1 = 80, 110, 20, 50
# How many pixels of the heat-map layer are drawn in its violet (#9d5cff).
HEAT_PIXELS = """() => { const c = document.getElementById('heatmap-layer');
    if (!c.width || !c.height) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (d[i + 3] > 60 && d[i] > 130 && d[i] < 190 && d[i + 1] > 60 && d[i + 1] < 130 && d[i + 2] > 220) n++;
    return n; }"""


def heat_pixels_until(page: Page, ok: Any, timeout_ms: int = 5000) -> int:
    """Poll the layer's violet pixel count until ``ok(count)`` (page.evaluate: the page's CSP
    refuses the string evaluation wait_for_function falls back to when it has to poll)."""
    count = page.evaluate(HEAT_PIXELS)
    for _ in range(timeout_ms // 100):
        if ok(count):
            break
        page.wait_for_timeout(100)
        count = page.evaluate(HEAT_PIXELS)
    assert ok(count), f"{count} heat-map pixels on the layer"
    return count


@pytest.fixture
def scored(task: Any) -> Any:  # noqa: F811
    """Bob's task, its series scored by a classifier that kept a heat map on image 3."""
    from inference.models import ModelVersion, SeriesScore

    model = ModelVersion.objects.create(
        id="cd" * 32,
        project=task.project,
        kind="classification",
        name="Chest triage",
        labels=["Finding"],
        input_spec={"modality": "CT", "classes": ["normal", "abnormal"], "positive": "abnormal"},
        weights_path="models/none.pt",
        weights_sha256="cd" * 32,
    )
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[Y0:Y1, X0:X1] = True
    sop = task.series.instances.get(number=3).sop_uid
    heatmap = {"sop_uid": sop, "frame": 0, "rows": SIZE, "columns": SIZE, "rle": rle_encode(mask)}
    SeriesScore.objects.create(model=model, series=task.series, score=0.8712, heatmap_rle=heatmap)
    return task


def viewport_pixels(page: Page) -> np.ndarray:
    """The viewport as shown (image, layers and overlays composited), RGB."""
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    png = page.screenshot(clip=box)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def heat_rect_on_screen(page: Page) -> tuple[float, float, float, float]:
    """The heat map's pixels' outer edges on screen: left, top, right, bottom (CSS px in the viewport)."""
    corners = ([X0 - 0.5, Y0 - 0.5], [X1 - 0.5, Y1 - 0.5])
    (left, top), (right, bottom) = (page.evaluate(PIXEL_ON_SCREEN, p) for p in corners)
    return left, top, right, bottom


def test_radiologist_sees_the_score_and_toggles_the_heat_map(page: Page, live_server: Any, scored: Any) -> None:
    from annotations.models import Annotation

    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{scored.pk}/")

    expect(page.locator("#triage")).to_be_visible()
    expect(page.locator("#triage-badge")).to_have_text("Triage score 0.87 · Chest triage")
    toggle = page.locator("#triage-heatmap")
    expect(toggle).to_be_enabled()
    expect(toggle).not_to_be_checked()
    expect(page.locator("#heatmap-layer")).to_be_hidden()
    expect(page.locator("#triage-go")).to_have_text("image 3")
    for selector in ("#viewport", "#triage-heatmap", "#triage-badge"):
        b = page.locator(selector).bounding_box()
        assert b is not None and b["x"] + b["width"] <= 1366 and b["y"] + b["height"] <= 768, selector

    # off on another image: ticking it goes to the image the map belongs to and lays it over it
    expect(page.locator("#ov-slice")).to_have_text("1 / 4")
    toggle.check()
    expect(page.locator("#ov-slice")).to_have_text("3 / 4")
    expect(page.locator("#heatmap-layer")).to_be_visible()
    expect(page.locator("#viewer")).to_have_attribute("data-heatmap", "shown")
    heat_pixels_until(page, lambda n: n > 200)
    page.screenshot(path=str(SHOTS / "heatmap-on-1366x768.png"))
    shown = viewport_pixels(page)
    toggle.uncheck()
    expect(page.locator("#heatmap-layer")).to_be_hidden()
    page.wait_for_timeout(200)
    plain = viewport_pixels(page)

    # the image on screen changes inside the map's rectangle, and nowhere else
    changed = np.abs(shown - plain).max(axis=2) > 12
    left, top, right, bottom = heat_rect_on_screen(page)
    assert right - left > 20 and bottom - top > 20, "the map is drawn at the image's scale"
    yy, xx = np.mgrid[: changed.shape[0], : changed.shape[1]] + 0.5  # pixel centres
    inside = (xx > left + 2) & (xx < right - 2) & (yy > top + 2) & (yy < bottom - 2)
    near = (xx > left - 2) & (xx < right + 2) & (yy > top - 2) & (yy < bottom + 2)
    assert changed[inside].mean() > 0.95, "the heat map covers its pixels"
    assert changed[~near].sum() == 0, "nothing changes outside the heat map"
    tint = (shown - plain)[inside].mean(axis=0)  # violet laid over grey: more blue than green
    assert tint[2] > tint[1] + 20, tint

    # not on the other images: on image 1 the layer stays empty even when ticked
    toggle.check()
    heat_pixels_until(page, lambda n: n > 200)
    page.evaluate("window.workbenchViewer.viewer.go(0)")
    expect(page.locator("#ov-slice")).to_have_text("1 / 4")
    heat_pixels_until(page, lambda n: n == 0)
    page.locator("#triage-go").click()
    expect(page.locator("#ov-slice")).to_have_text("3 / 4")
    heat_pixels_until(page, lambda n: n > 200)

    page.set_viewport_size({"width": 1920, "height": 1080})
    heat_pixels_until(page, lambda n: n > 200)
    page.screenshot(path=str(SHOTS / "heatmap-on-1920x1080.png"))
    # shown, never saved: the reader's annotations are untouched
    expect(page.locator("#ann-list li")).to_have_count(0)
    assert not Annotation.objects.filter(assignment=scored).exists()


def test_without_a_score_nothing_is_shown(page: Page, live_server: Any, task: Any) -> None:  # noqa: F811
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(page.locator("#triage")).to_be_hidden()
    expect(page.locator("#heatmap-layer")).to_be_hidden()
    page.screenshot(path=str(SHOTS.parent / "heatmap-none-1366x768.png"))
