"""Editing what is on the viewer: hide and show, delete, undo and redo of edits and deletes,
the line tool's length in mm, and the keyboard shortcuts with their help panel.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
import pydicom
import pytest
from playwright.sync_api import Page, expect

from annotations.geometry import line_length_mm, rle_encode
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE, MASK_PIXELS, SIZE, ct_series_files, drag, open_viewer, saved
from tests.e2e.test_viewer_tools import reload, viewport_box, wait_for_revision
from tests.helpers import ingest
from workbench.demo import to_bytes
from workbench.models import Project, Series

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

BOX = {"x0": 20.0, "y0": 20.0, "x1": 60.0, "y1": 50.0}
POLYGON = {"points": [[80.0, 20.0], [110.0, 30.0], [95.0, 55.0]]}


def _task(project: Project, cast: dict[str, Any], run_tasks: Any, spacing: list[float] | None = None) -> Any:
    """A CT series (PixelSpacing ``spacing`` if given), the chest schema plus a freehand label,
    and an assignment of the series to bob."""
    from annotations import schemas, services

    files = ct_series_files()
    if spacing:
        for name, data in files.items():
            ds = pydicom.dcmread(io.BytesIO(data))
            ds.PixelSpacing = spacing
            files[name] = to_bytes(ds)
    with run_tasks():
        ingest(project, files, user=cast["alice"])
    series = Series.objects.get(study__project=project)
    labels = [*schemas.DEFAULT_CHEST_LABELS, {"name": "Outline", "color": "#00aaff", "kind": "freehand"}]
    schemas.label_schema_create(project=project, labels=labels, user=cast["alice"])
    [assigned] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return assigned


@pytest.fixture
def task(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Any:
    return _task(project_a, cast, run_tasks)


def stored(task: Any, kind: str, geometry: dict[str, Any], cast: dict[str, Any]) -> Any:
    """An annotation of ``kind`` on the first slice, saved by bob before the page opens."""
    from annotations import services
    from annotations.models import Label

    annotation, _ = services.annotation_create(
        assignment=task,
        user=cast["bob"],
        label=Label.objects.get(schema__project=task.project, kind=kind),
        sop_instance_uid=task.series.instances.get(number=1).sop_uid,
        frame=0,
        geometry=geometry,
    )
    return annotation


def live(task: Any) -> dict[str, tuple[int, dict[str, Any]]]:
    """The assignment's annotations that are not deleted: kind -> (revision, geometry)."""
    from annotations.models import Annotation

    rows = Annotation.objects.filter(assignment=task, deleted=False).select_related("label")
    return {a.label.kind: (a.revision, a.geometry) for a in rows}


# The SVG nodes Cornerstone draws for an annotation, from its node cache (keys start with the
# annotation's UID): not every shape carries a data-annotation-uid attribute (a polygon's path
# does not).
DRAWN = """uid => Object.values(window.workbenchViewer.csTools.state.svgNodeCache)
    .flatMap(nodes => Object.entries(nodes))
    .filter(([key, node]) => key.startsWith(uid + '::') && node.domRef.isConnected).length"""


def drawn(page: Page, uid: str) -> int:
    return int(page.evaluate(DRAWN, uid))


def wait_drawn(page: Page, uid: str, shown: bool) -> None:
    """Until the annotation is (or is not) in the picture."""
    page.wait_for_function(f"uid => ({DRAWN})(uid) {'>' if shown else '==='} 0", arg=uid, timeout=5_000)


def row(page: Page, kind: str) -> Any:
    return page.locator(f'#ann-list li[data-kind="{kind}"]')


def handle_on_screen(page: Page, uid: str, index: int) -> tuple[float, float]:
    """Where handle ``index`` of an annotation is drawn, in page coordinates."""
    x, y = page.evaluate(
        """([uid, i]) => { const { csTools, viewer } = window.workbenchViewer;
        return viewer.viewport.worldToCanvas(csTools.annotation.state.getAnnotation(uid).data.handles.points[i]); }""",
        [uid, index],
    )
    box = viewport_box(page)
    return box["x"] + x, box["y"] + y


def drag_from(page: Page, start: tuple[float, float], dx: float, dy: float) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + dx, start[1] + dy, steps=8)
    page.mouse.up()


def annotation_writes(page: Page) -> list[str]:
    writes: list[str] = []
    page.on(
        "request",
        lambda r: writes.append(r.method) if "/api/annotations/" in r.url and r.method != "GET" else None,
    )
    return writes


# --- hide and show ---------------------------------------------------------------------------


def test_hide_and_show_change_what_is_drawn_and_save_nothing(
    page: Page, live_server: Any, cast: dict[str, Any], task: Any
) -> None:
    box = stored(task, "box", BOX, cast)
    polygon = stored(task, "polygon", POLYGON, cast)
    painted = np.zeros((SIZE, SIZE), dtype=bool)
    painted[90:110, 30:90] = True
    stored(task, "mask", {"rows": SIZE, "columns": SIZE, "rle": rle_encode(painted)}, cast)
    before = live(task)
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(page.locator("#ann-list li")).to_have_count(3)
    writes = annotation_writes(page)
    wait_drawn(page, str(box.pk), True)
    assert drawn(page, str(polygon.pk)) > 0
    assert page.evaluate(MASK_PIXELS) > 0

    # from the list: the box goes from the picture, the polygon and the mask stay
    row(page, "box").locator(".hide").click()
    expect(row(page, "box").locator(".hide")).to_have_text("Show")
    wait_drawn(page, str(box.pk), False)
    assert drawn(page, str(polygon.pk)) > 0
    assert page.evaluate(MASK_PIXELS) > 0
    expect(page.locator("#ann-list li")).to_have_count(3)  # hidden, still listed

    row(page, "mask").locator(".hide").click()
    page.wait_for_function(f"() => ({MASK_PIXELS})() === 0")
    row(page, "mask").locator(".hide").click()
    page.wait_for_function(f"() => ({MASK_PIXELS})() > 0")
    row(page, "box").locator(".hide").click()
    expect(row(page, "box").locator(".hide")).to_have_text("Hide")
    wait_drawn(page, str(box.pk), True)

    # from the keyboard: H hides the selected annotation
    row(page, "polygon").locator(".go").click()
    page.keyboard.press("h")
    expect(row(page, "polygon").locator(".hide")).to_have_text("Show")
    wait_drawn(page, str(polygon.pk), False)
    assert drawn(page, str(box.pk)) > 0

    # a display setting: the next real edit is the only write (the saver's debounce is shared)
    row(page, "box").locator(".delete").click()
    expect(page.locator("#ann-list li")).to_have_count(2)
    page.wait_for_function(
        """uid => !window.workbenchViewer.annotator.saver.pending()
        && window.workbenchViewer.annotator.recs.get(uid).deleted""",
        arg=str(box.pk),
    )
    saved(page)
    assert writes == ["DELETE"]
    after = live(task)
    assert "box" not in after
    assert after == {k: v for k, v in before.items() if k != "box"}


# --- delete, undo and redo -------------------------------------------------------------------


def test_undo_and_redo_an_edit_and_a_delete(page: Page, live_server: Any, cast: dict[str, Any], task: Any) -> None:
    box = stored(task, "box", BOX, cast)
    stored(task, "point", {"x": 100.0, "y": 100.0}, cast)
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(page.locator("#ann-list li")).to_have_count(2)
    page.click('[data-tool="select"]')

    # drag the bottom-right corner 16 image pixels right and down (the image fills the viewport)
    step = 16 * viewport_box(page)["width"] / SIZE
    drag_from(page, handle_on_screen(page, str(box.pk), 3), step, step)
    revision = wait_for_revision(page, "box", 2)
    moved = live(task)["box"][1]
    assert live(task)["box"][0] == revision
    assert (moved["x1"], moved["y1"]) == pytest.approx((BOX["x1"] + 16, BOX["y1"] + 16), abs=1.5)
    assert (moved["x0"], moved["y0"]) == (BOX["x0"], BOX["y0"])

    page.keyboard.press("Control+z")
    revision = wait_for_revision(page, "box", revision + 1)
    assert live(task)["box"] == (revision, BOX)
    x, y = handle_on_screen(page, str(box.pk), 3)
    page.keyboard.press("Control+Shift+z")
    revision = wait_for_revision(page, "box", revision + 1)
    assert live(task)["box"] == (revision, moved)
    assert handle_on_screen(page, str(box.pk), 3) == pytest.approx((x + step, y + step), abs=2)
    page.keyboard.press("Control+z")
    revision = wait_for_revision(page, "box", revision + 1)
    page.keyboard.press("Control+y")  # the other redo
    revision = wait_for_revision(page, "box", revision + 1)
    assert live(task)["box"] == (revision, moved)

    # an edit straight before a delete (within the time that joins edits into one undo step):
    # undoing the delete brings back the edited box, not the one before the edit
    drag_from(page, handle_on_screen(page, str(box.pk), 3), -step, 0)
    page.wait_for_function(
        "([uid, x1]) => window.workbenchViewer.annotator.recs.get(uid).geometry.x1 < x1 - 8",
        arg=[str(box.pk), moved["x1"]],
    )
    row(page, "box").locator(".delete").click()
    expect(page.locator("#ann-list li")).to_have_count(1)
    wait_drawn(page, str(box.pk), False)
    page.wait_for_function(
        "uid => { const a = window.workbenchViewer.annotator; return !a.saver.pending() && a.recs.get(uid).deleted; }",
        arg=str(box.pk),
    )
    assert set(live(task)) == {"point"}
    page.keyboard.press("Control+z")
    expect(page.locator("#ann-list li")).to_have_count(2)
    wait_for_revision(page, "box", 1)  # deleted on the server, so it comes back as a new annotation
    restored = live(task)["box"][1]
    assert restored["x1"] == pytest.approx(moved["x1"] - 16, abs=1.5), "undo went back past the last edit"
    assert (restored["x0"], restored["y0"], restored["y1"]) == (moved["x0"], moved["y0"], moved["y1"])
    wait_drawn(page, str(box.pk), True)

    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#ann-list li")).to_have_count(1)
    page.wait_for_function("() => !window.workbenchViewer.annotator.saver.pending()")
    saved(page)
    assert set(live(task)) == {"point"}

    reload(page)
    expect(page.locator("#ann-list li")).to_have_count(1)
    expect(page.locator("#ann-list li")).to_have_attribute("data-kind", "point")


# --- the line tool ---------------------------------------------------------------------------


@pytest.fixture
def oblong_task(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Any:
    """PixelSpacing [0.5, 1.0]: half a millimetre between rows, one between columns."""
    return _task(project_a, cast, run_tasks, spacing=[0.5, 1.0])


def test_line_length_in_mm_follows_the_pixel_spacing(page: Page, live_server: Any, oblong_task: Any) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{oblong_task.pk}/")
    page.keyboard.press("l")
    expect(page.locator('button[data-tool="line"]')).to_have_attribute("aria-pressed", "true")
    # the image is 128 mm wide and 64 mm high: it fills the middle half of the square viewport
    drag(page, [(0.2, 0.3), (0.45, 0.5), (0.7, 0.65)])
    expect(page.locator("#ann-list li")).to_have_count(1)
    wait_for_revision(page, "line", 1)
    [(_, line)] = live(oblong_task).values()
    (xa, ya), (xb, yb) = line["points"]
    dx, dy = abs(xb - xa), abs(yb - ya)
    assert dx > 40 and dy > 40, line
    expected = math.hypot(dx * 1.0, dy * 0.5)
    # a test that tells the spacing's two axes apart: each wrong reading is far off
    assert abs(math.hypot(dx * 0.5, dy * 1.0) - expected) > 0.1 * expected
    assert abs(math.hypot(dx, dy) * 0.5 - expected) > 0.1 * expected
    assert line["length_mm"] == pytest.approx(expected, rel=1e-6)
    assert line_length_mm(line["points"], [0.5, 1.0]) == pytest.approx(expected, rel=1e-6)
    shown = page.evaluate(
        "() => [...window.workbenchViewer.annotator.recs.values()].find(r => r.kind === 'line').geometry.length_mm"
    )
    assert shown == pytest.approx(expected, abs=0.01), "the page's length differs from the server's"
    # what Cornerstone writes beside the line, from the image's geometry in mm
    text = page.locator("#viewport svg text").all_text_contents()
    numbers = [float(m) for t in text for m in re.findall(r"([\d.]+)\s*mm", t)]
    assert numbers and numbers[0] == pytest.approx(expected, rel=0.01), text


# --- keyboard shortcuts ----------------------------------------------------------------------

TOOL_KEYS = {
    "w": "wl",
    "p": "pan",
    "z": "zoom",
    "s": "select",
    "b": "box",
    "g": "polygon",
    "f": "freehand",
    "r": "brush",
    "e": "eraser",
    "o": "point",
    "c": "ellipse",
    "a": "angle",
    "l": "line",  # last: the test below expects the line tool still chosen
}


def test_keyboard_shortcuts_do_what_the_help_panel_says(page: Page, live_server: Any, task: Any) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    help_panel = page.locator("#help")
    expect(help_panel).to_be_hidden()
    page.keyboard.press("?")
    expect(help_panel).to_be_visible()
    listed = help_panel.locator("dt").all_text_contents()
    letters = {k.strip().lower() for t in listed for k in t.split("/") if len(k.strip()) == 1}
    assert set(TOOL_KEYS) <= letters, f"the help does not list {set(TOOL_KEYS) - letters}"
    assert any("Ctrl+Z" in t for t in listed) and any("Space" in t for t in listed)

    for key, tool in TOOL_KEYS.items():
        page.keyboard.press(key)
        expect(page.locator(f'button[data-tool="{tool}"]')).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#viewer")).to_have_attribute("data-tool", tool)
        assert page.locator('button[data-tool][aria-pressed="true"]').count() == 1

    size = page.locator("#brush-size")
    start = int(size.input_value())
    page.keyboard.press("]")
    page.keyboard.press("]")
    page.keyboard.press("[")
    expect(size).to_have_value(str(start + 1))

    page.keyboard.press("End")
    expect(page.locator("#ov-slice")).to_have_text("4 / 4")
    page.keyboard.press("Home")
    expect(page.locator("#ov-slice")).to_have_text("1 / 4")
    page.keyboard.press("+")
    expect(page.locator("#ov-zoom")).to_have_text("Zoom 1.25")
    page.keyboard.press("x")
    expect(page.locator("#ov-zoom")).to_have_text("Zoom 1.00")
    # number keys pick the presets in their order: the file's own window first, then the CT ones
    page.keyboard.press("2")
    expect(page.locator("#preset")).to_have_value("1500,-600")
    expect(page.locator("#ov-wl")).to_have_text("W 1500 L -600")
    page.keyboard.press("1")
    expect(page.locator("#preset")).to_have_value("400,40")
    expect(page.locator("#ov-wl")).to_have_text("W 400 L 40")
    page.keyboard.press(" ")
    expect(page.locator("#cine-play")).to_have_text("Pause")
    page.keyboard.press(" ")
    expect(page.locator("#cine-play")).to_have_text("Play")

    # typing in a field is typing, not a shortcut
    page.focus("#cine-fps")
    page.keyboard.press("?")
    page.keyboard.press("b")
    expect(help_panel).to_be_visible()
    expect(page.locator("#viewer")).to_have_attribute("data-tool", "line")
    page.evaluate("() => document.activeElement.blur()")

    page.keyboard.press("?")
    expect(help_panel).to_be_hidden()
    page.click("#help-toggle")
    expect(help_panel).to_be_visible()
