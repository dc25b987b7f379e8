"""The ellipse and angle tools in the annotator (issue 12): drawn with their shortcuts, saved
with the server's measurements (area in mm², degrees), shown in the list and beside the shape,
still there after a reload, and edited by a handle. At 1366x768, the smallest screen we fit.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from annotations.geometry import angle_degrees, ellipse_area_mm2
from tests.e2e.test_annotator_task import TOOLBAR_ROWS
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE, drag, open_viewer
from tests.e2e.test_viewer_editing import _task, drag_from, handle_on_screen, live, row
from tests.e2e.test_viewer_tools import reload, viewport_box, wait_for_revision
from workbench.models import Project

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SHOTS = Path("/tmp/shots-ellipse")  # noqa: S108 - screenshots for a person to look at, never committed
SPACING = [0.7, 0.7]  # what ct_series_files writes


@pytest.fixture
def task(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Any:
    """The chest schema (its ellipse label is Region, its angle Costophrenic angle) on a CT series."""
    return _task(project_a, cast, run_tasks)


def draw_angle(page: Page, first: tuple[float, float], vertex: tuple[float, float], last: tuple[float, float]) -> None:
    """Cornerstone's AngleTool: press at the first end, drag to the vertex and let go, then click the last end."""
    box = viewport_box(page)
    at = lambda p: (box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"])  # noqa: E731
    page.mouse.move(*at(first))
    page.mouse.down()
    page.mouse.move(*at(vertex), steps=8)
    page.mouse.up()
    page.mouse.move(*at(last), steps=8)
    page.mouse.down()
    page.mouse.up()


def svg_text(page: Page) -> str:
    return " ".join(page.locator("#viewport svg text").all_text_contents())


def test_draw_an_ellipse_and_an_angle_reload_and_edit(page: Page, live_server: Any, task: Any) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    page.screenshot(path=str(SHOTS / "annotator-opened-1366x768.png"))
    assert page.evaluate(TOOLBAR_ROWS) <= 2, "the toolbar wraps to a third row at 1366x768"
    for tool in ("ellipse", "angle"):
        b = page.locator(f'button[data-tool="{tool}"]').bounding_box()
        assert b is not None and b["x"] + b["width"] <= 1366 and b["y"] + b["height"] <= 768, tool

    page.keyboard.press("c")
    expect(page.locator('button[data-tool="ellipse"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#label-picker option:checked")).to_contain_text("Region")
    drag(page, [(0.45, 0.45), (0.55, 0.52), (0.60, 0.55)])  # from the centre outwards
    expect(row(page, "ellipse")).to_have_count(1)
    wait_for_revision(page, "ellipse", 1)

    page.keyboard.press("a")
    expect(page.locator('button[data-tool="angle"]')).to_have_attribute("aria-pressed", "true")
    draw_angle(page, (0.25, 0.25), (0.30, 0.45), (0.45, 0.40))
    expect(row(page, "angle")).to_have_count(1)
    wait_for_revision(page, "angle", 1)
    page.screenshot(path=str(SHOTS / "annotator-drawn-1366x768.png"))

    stored = live(task)
    _, ellipse = stored["ellipse"]
    rx, ry = ellipse["radii"]
    assert rx > 10 and ry > 5 and rx > ry, ellipse  # dragged wider than high
    assert ellipse["rotation"] == pytest.approx(0.0, abs=0.01)
    assert ellipse["area_mm2"] == pytest.approx(math.pi * rx * ry * 0.49, rel=1e-6)
    assert ellipse["area_mm2"] == pytest.approx(ellipse_area_mm2(ellipse, SPACING), rel=1e-9)
    _, angle = stored["angle"]
    assert len(angle["points"]) == 3
    assert angle["angle_deg"] == pytest.approx(angle_degrees(angle["points"], SPACING), rel=1e-9)
    assert 20 < angle["angle_deg"] < 160, angle

    def check_shown() -> None:
        area = row(page, "ellipse").get_attribute("data-measurement") or ""
        assert area.endswith(" mm²") and float(area.split()[0]) == pytest.approx(ellipse["area_mm2"], abs=0.01)
        degrees = row(page, "angle").get_attribute("data-measurement") or ""
        assert degrees.endswith("°") and float(degrees[:-1]) == pytest.approx(angle["angle_deg"], abs=0.05)
        expect(row(page, "ellipse")).to_contain_text(area)
        expect(row(page, "angle")).to_contain_text(degrees)
        # and beside the shapes, as Cornerstone writes them from the image's geometry
        text = svg_text(page)
        areas = [float(m) for m in re.findall(r"Area: ([\d.]+) mm", text)]
        assert areas and areas[0] == pytest.approx(ellipse["area_mm2"], rel=0.02), text
        angles = [float(m) for m in re.findall(r"([\d.]+) °", text)]
        assert angles and angles[0] == pytest.approx(angle["angle_deg"], abs=0.1), text

    page.mouse.move(5, 5)
    check_shown()

    reload(page)
    expect(page.locator("#ann-list li")).to_have_count(2)
    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "saved")
    page.wait_for_function("() => document.querySelectorAll('#viewport svg text').length >= 2", timeout=5_000)
    check_shown()
    page.screenshot(path=str(SHOTS / "annotator-reloaded-1366x768.png"))
    assert {kind: revision for kind, (revision, _) in live(task).items()} == {"ellipse": 1, "angle": 1}

    # edit: drag the ellipse's right handle outwards (select mode), a new revision with a larger area
    page.keyboard.press("s")
    uid = page.evaluate("() => [...window.workbenchViewer.annotator.recs.values()].find(r => r.kind === 'ellipse').uid")
    right = handle_on_screen(page, uid, 3)
    page.mouse.move(*right)
    page.wait_for_timeout(200)
    drag_from(page, right, 30, 0)
    wait_for_revision(page, "ellipse", 2)
    revision, edited = live(task)["ellipse"]
    assert revision == 2 and edited["radii"][0] > rx + 5 and edited["area_mm2"] > ellipse["area_mm2"]
    page.screenshot(path=str(SHOTS / "annotator-edited-1366x768.png"))
