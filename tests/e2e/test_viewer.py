"""The Cornerstone3D viewer in Chromium: 16-bit display, window/level, scrolling, annotation
tools that save on their own, conflicts between two tabs, and a reviewer's accept.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect
from pydicom.uid import generate_uid

from anonymizer.deid.tests.factory import make_ct
from tests.e2e.test_flows import SCREENSHOTS, log_in
from tests.helpers import ingest
from workbench.demo import phantom_slice, to_bytes
from workbench.models import Project, Series

BUNDLE = Path(settings.BASE_DIR) / "frontend" / "static" / "viewer" / "viewer.js"
SLICES = 4
SIZE = 128

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]


def ct_series_files(slices: int = SLICES, size: int = SIZE) -> dict[str, bytes]:
    """A small synthetic chest CT series (phantom from workbench.demo), 16-bit signed."""
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    files = {}
    for k in range(slices):
        ds = make_ct(patient_name="VIEWER^VERA", patient_id="E2E-VIEW", study_uid=study_uid)
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = 2, k + 1
        ds.Rows = ds.Columns = size
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImagePositionPatient = [-size * 0.35, -size * 0.35, -5.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.PixelData = phantom_slice(size, k / max(slices - 1, 1), (0.35, 0.45, 0.5)).tobytes()
        files[f"ct{k}.dcm"] = to_bytes(ds)
    return files


@pytest.fixture
def series(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Series:
    with run_tasks():
        ingest(project_a, ct_series_files(), user=cast["alice"])
    return Series.objects.get(study__project=project_a)


CANVAS_HASH = """() => {
    const c = document.querySelector('#viewport canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0, lit = 0;
    for (let i = 0; i < d.length; i += 4) { h = (h * 31 + d[i] + 7 * d[i + 1]) | 0; if (d[i] > 16) lit++; }
    return [h, lit];
}"""


def canvas_state(page: Page) -> tuple[int, int]:
    h, lit = page.evaluate(CANVAS_HASH)
    return h, lit


def open_viewer(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#viewer[data-first-image-ms]", timeout=20_000)
    page.wait_for_selector("#viewer[data-loaded]", timeout=20_000)


def drag(page: Page, points: list[tuple[float, float]], button: str = "left") -> None:
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0] * box["width"], y0 + points[0][1] * box["height"])
    page.mouse.down(button=button)  # type: ignore[arg-type]
    for x, y in points[1:]:
        page.mouse.move(x0 + x * box["width"], y0 + y * box["height"], steps=6)
    page.mouse.up(button=button)  # type: ignore[arg-type]


def click_at(page: Page, x: float, y: float, count: int = 1) -> None:
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"], click_count=count)


def test_series_viewer_window_level_and_scroll(page: Page, live_server: Any, series: Series) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{series.pk}/view/")
    expect(page.locator("#ov-slice")).to_have_text(f"1 / {SLICES}")
    expect(page.locator("#ov-patient")).to_contain_text(series.study.patient.pseudo_id)
    expect(page.locator("#ov-wl")).to_have_text("W 400 L 40")  # the file's own VOI
    before, lit = canvas_state(page)
    assert lit > 1000, "the image was not drawn"

    drag(page, [(0.5, 0.5), (0.7, 0.6)])  # window/level is the left button's default
    expect(page.locator("#ov-wl")).not_to_have_text("W 400 L 40")
    after, _ = canvas_state(page)
    assert after != before, "window/level did not change the rendered pixels"

    page.select_option("#preset", label="Lung (W 1500 L -600)")
    expect(page.locator("#ov-wl")).to_have_text("W 1500 L -600")

    # the neighbouring slices were fetched before anyone scrolled to them
    page.wait_for_function(
        "n => new Set(performance.getEntriesByType('resource').filter(e => e.name.includes('/wado/'))"
        ".map(e => e.name)).size >= n",
        arg=SLICES,
    )
    page.locator("#viewport").hover()
    page.mouse.wheel(0, 120)
    expect(page.locator("#ov-slice")).to_have_text(f"2 / {SLICES}")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#ov-slice")).to_have_text(f"3 / {SLICES}")
    page.keyboard.press("Home")
    expect(page.locator("#ov-slice")).to_have_text(f"1 / {SLICES}")

    page.keyboard.press("+")
    expect(page.locator("#ov-zoom")).not_to_have_text("Zoom 1.00")
    page.click("#reset")
    expect(page.locator("#ov-zoom")).to_have_text("Zoom 1.00")
    expect(page.locator(".draw-tools").first).to_be_hidden()  # read-only variant


# --- the annotation task page ----------------------------------------------------------------


@pytest.fixture
def assignment(project_a: Project, cast: dict[str, Any], series: Series) -> Any:
    from annotations import schemas, services

    labels = [*schemas.DEFAULT_CHEST_LABELS, {"name": "Outline", "color": "#00aaff", "kind": "freehand"}]
    schemas.label_schema_create(project=project_a, labels=labels, user=cast["alice"])
    [assigned] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return assigned


def saved(page: Page) -> None:
    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "saved", timeout=10_000)


def server_annotations(assignment: Any) -> list[Any]:
    from annotations.models import Annotation

    return list(
        Annotation.objects.filter(assignment=assignment, deleted=False).select_related("label").order_by("created_at")
    )


def draw_box_polygon_brush(page: Page) -> None:
    page.click('[data-tool="box"]')
    drag(page, [(0.30, 0.30), (0.45, 0.45)])
    expect(page.locator("#ann-list li")).to_have_count(1)
    page.click('[data-tool="polygon"]')
    click_at(page, 0.60, 0.30)
    click_at(page, 0.75, 0.35)
    click_at(page, 0.70, 0.50)
    click_at(page, 0.60, 0.45, count=2)  # a double click closes the polygon
    expect(page.locator("#ann-list li")).to_have_count(2)
    page.click('[data-tool="brush"]')
    drag(page, [(0.35, 0.65), (0.45, 0.70), (0.55, 0.68)])
    expect(page.locator("#ann-list li")).to_have_count(3)


MASK_PIXELS = """() => {
    const c = document.getElementById('mask-layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;
}"""


def test_radiologist_draws_and_everything_is_saved(
    page: Page, live_server: Any, series: Series, assignment: Any
) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "annotate")
    draw_box_polygon_brush(page)
    saved(page)
    expect(page.locator("#assignment-status")).to_have_attribute("data-status", "in_progress")
    page.screenshot(path=str(SCREENSHOTS / "workbench-viewer.png"), full_page=True)

    # undo removes the brush stroke (saved as a delete), redo brings it back
    page.keyboard.press("Control+z")
    expect(page.locator("#ann-list li")).to_have_count(2)
    saved(page)
    assert [a.label.kind for a in server_annotations(assignment)] == ["box", "polygon"]
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#ann-list li")).to_have_count(3)
    saved(page)
    assert sorted(a.label.kind for a in server_annotations(assignment)) == ["box", "mask", "polygon"]

    stored = server_annotations(assignment)
    assert [a.label.kind for a in stored] == ["box", "polygon", "mask"]
    box, polygon, mask = (a.geometry for a in stored)
    assert 0 <= box["x0"] < box["x1"] <= SIZE and 0 <= box["y0"] < box["y1"] <= SIZE
    assert len(polygon["points"]) == 4
    assert mask["rows"] == SIZE and mask["columns"] == SIZE and len(mask["rle"]) >= 2
    assert all(a.sop_instance_uid == series.instances.get(number=1).sop_uid and a.frame == 0 for a in stored)
    assignment.refresh_from_db()
    assert assignment.status == "in_progress"

    # the box's attributes, from the side panel
    page.locator('#ann-list li[data-kind="box"] .go').click()
    page.check("#attributes input[name=suspicious]")
    page.select_option("#attributes select[name=type]", "solid")
    saved(page)
    [box] = [a for a in server_annotations(assignment) if a.label.kind == "box"]
    assert box.attributes == {"suspicious": True, "type": "solid"}

    page.reload()
    page.wait_for_selector("#viewer[data-loaded]")
    expect(page.locator("#ann-list li")).to_have_count(3)
    assert [k for k in page.locator("#ann-list li").evaluate_all("els => els.map(e => e.dataset.kind)")] == [
        "box",
        "polygon",
        "mask",
    ]
    expect(page.locator("#viewport svg [data-annotation-uid]").first).to_be_attached()
    assert page.evaluate(MASK_PIXELS) > 0, "the saved mask is not drawn after reload"
    saved(page)
    assert len(server_annotations(assignment)) == 3  # loading created nothing

    # a wide eraser over the whole stroke: the mask annotation goes
    page.click('[data-tool="eraser"]')
    page.eval_on_selector("#brush-size", "el => { el.value = '40'; el.dispatchEvent(new Event('input')); }")
    drag(page, [(0.30, 0.68), (0.45, 0.68), (0.60, 0.68)])
    expect(page.locator("#ann-list li")).to_have_count(2)
    saved(page)
    assert [a.label.kind for a in server_annotations(assignment)] == ["box", "polygon"]


def test_two_tabs_editing_the_same_box_see_a_conflict(
    browser: Browser, live_server: Any, series: Series, assignment: Any
) -> None:
    pages = []
    for _ in range(2):
        context = browser.new_context()
        page = context.new_page()
        log_in(page, live_server.url, "bob")
        pages.append(page)
    first, second = pages
    open_viewer(first, f"{live_server.url}/assignments/{assignment.pk}/")
    first.click('[data-tool="box"]')
    drag(first, [(0.30, 0.30), (0.45, 0.45)])
    saved(first)
    open_viewer(second, f"{live_server.url}/assignments/{assignment.pk}/")
    expect(second.locator("#ann-list li")).to_have_count(1)

    first.click('[data-tool="select"]')
    drag(first, [(0.45, 0.45), (0.55, 0.55)])  # drag a corner handle
    saved(first)
    [box] = server_annotations(assignment)
    assert box.revision == 2

    second.click('[data-tool="select"]')
    drag(second, [(0.30, 0.30), (0.20, 0.20)])
    banner = second.locator("#conflict")
    expect(banner).to_be_visible(timeout=10_000)
    expect(second.locator("#save-state")).to_have_attribute("data-save-state", "unsaved")
    expect(banner).to_contain_text("revision 2")
    second.click("#conflict-mine")
    saved(second)
    expect(banner).to_be_hidden()
    [box] = server_annotations(assignment)
    assert box.revision == 3
    # "overwrite with mine" stored the second tab's box (top-left moved), not the first's
    assert box.geometry["x0"] < SIZE * 0.28 and box.geometry["x1"] < SIZE * 0.5

    # the first tab is now stale: its next edit conflicts, and it keeps theirs
    drag(first, [(0.55, 0.55), (0.60, 0.60)])
    expect(first.locator("#conflict")).to_be_visible(timeout=10_000)
    first.click("#conflict-theirs")
    saved(first)
    expect(first.locator("#conflict")).to_be_hidden()
    [box] = server_annotations(assignment)
    assert box.revision == 3  # nothing was written
    first.reload()
    first.wait_for_selector("#viewer[data-loaded]")
    expect(first.locator("#ann-list li")).to_have_count(1)
    for page in pages:
        page.context.close()


def test_reviewer_sees_read_only_and_accepts(
    page: Page, live_server: Any, cast: dict[str, Any], series: Series, assignment: Any
) -> None:
    from annotations import services
    from annotations.models import Label

    label = Label.objects.get(schema__project=assignment.project, kind="box")
    services.annotation_create(
        assignment=assignment,
        user=cast["bob"],
        label=label,
        sop_instance_uid=series.instances.get(number=1).sop_uid,
        frame=0,
        geometry={"x0": 20, "y0": 20, "x1": 60, "y1": 50},
    )
    services.assignment_submit(assignment=assignment, user=cast["bob"])
    log_in(page, live_server.url, "erin")
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "review")
    expect(page.locator("#ann-list li")).to_have_count(1)
    expect(page.locator("#ann-list li")).to_contain_text("bob")
    expect(page.locator("#ann-list .delete")).to_be_hidden()
    expect(page.locator('[data-tool="box"]')).to_be_hidden()
    page.click("#accept")
    expect(page.locator("#assignment-status")).to_have_attribute("data-status", "accepted")
    assignment.refresh_from_db()
    assert assignment.status == "accepted"


def test_a_review_shows_only_the_reviewed_read(
    page: Page, live_server: Any, cast: dict[str, Any], series: Series, assignment: Any
) -> None:
    """Two readers of one series: the reviewer of bob's read sees bob's box, never alice's."""
    from annotations import services
    from annotations.models import Label

    label = Label.objects.get(schema__project=assignment.project, kind="box")
    sop = series.instances.get(number=1).sop_uid
    [other] = services.assignment_create(series=series, readers=[cast["alice"]], user=cast["alice"])
    for read, reader, x0 in ((assignment, "bob", 20), (other, "alice", 70)):
        services.annotation_create(
            assignment=read,
            user=cast[reader],
            label=label,
            sop_instance_uid=sop,
            geometry={"x0": x0, "y0": 20, "x1": x0 + 30, "y1": 50},
        )
        services.assignment_submit(assignment=read, user=cast[reader])
    log_in(page, live_server.url, "erin")
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "review")
    expect(page.locator("#ann-list li")).to_have_count(1)
    expect(page.locator("#ann-list li")).to_contain_text("bob")
    expect(page.locator("#ann-list")).not_to_contain_text("alice")


def test_other_tools_history_and_hide(page: Page, live_server: Any, series: Series, assignment: Any) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    page.keyboard.press("f")  # freehand, from the keyboard
    drag(page, [(0.30, 0.30), (0.50, 0.30), (0.50, 0.50), (0.30, 0.50), (0.305, 0.305)])
    page.click('[data-tool="point"]')
    click_at(page, 0.15, 0.15)
    # Cornerstone holds a single click back while it waits for a possible double click
    expect(page.locator("#ann-list li")).to_have_count(2)
    page.click('[data-tool="line"]')
    drag(page, [(0.2, 0.8), (0.6, 0.8)])
    page.select_option("#classification select", "good")
    expect(page.locator("#ann-list li")).to_have_count(4)
    saved(page)
    by_kind = {a.label.kind: a for a in server_annotations(assignment)}
    assert set(by_kind) == {"freehand", "point", "line", "classification_image"}
    assert len(by_kind["freehand"].geometry["points"]) >= 4
    line = by_kind["line"].geometry
    assert line["length_mm"] == pytest.approx(abs(line["points"][1][0] - line["points"][0][0]) * 0.7, rel=0.02)
    assert by_kind["classification_image"].attributes == {"value": "good"}

    row = page.locator('#ann-list li[data-kind="point"]')
    row.locator(".hide").click()
    expect(row.locator(".hide")).to_have_text("Show")
    row.locator(".history").click()
    expect(page.locator("#history li")).to_have_count(1)
    expect(page.locator("#history li")).to_contain_text("create by bob")

    # select the line by its handle and delete it from the keyboard
    page.click('[data-tool="select"]')
    click_at(page, 0.6, 0.8)
    page.wait_for_timeout(400)  # the double-click window
    page.keyboard.press("Delete")
    expect(page.locator("#ann-list li")).to_have_count(3)
    saved(page)
    assert "line" not in {a.label.kind for a in server_annotations(assignment)}

    page.click("#help-toggle")
    expect(page.locator("#help")).to_contain_text("Ctrl+Z")


def test_failed_saves_are_retried_and_shown_as_unsaved(
    page: Page, live_server: Any, series: Series, assignment: Any
) -> None:
    failures = {"left": 2}

    def flaky(route: Any) -> None:
        if route.request.method == "POST" and failures["left"] > 0:
            failures["left"] -= 1
            route.fulfill(status=503, json={"error": "server_error", "message": "down"})
        else:
            route.continue_()

    log_in(page, live_server.url, "bob")
    page.route("**/api/annotations/", flaky)
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    page.click('[data-tool="box"]')
    drag(page, [(0.30, 0.30), (0.45, 0.45)])
    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "unsaved", timeout=5_000)
    saved(page)
    assert failures["left"] == 0
    assert len(server_annotations(assignment)) == 1  # one annotation, however many tries


def test_color_multiframe_ultrasound(
    page: Page, live_server: Any, project_a: Project, cast: Any, run_tasks: Any
) -> None:
    from anonymizer.deid.tests.factory import make_us

    with run_tasks():
        ingest(project_a, {"us.dcm": to_bytes(make_us(frames=3))}, user=cast["alice"])
    us = Series.objects.get(study__project=project_a, modality="US")
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{us.pk}/view/")
    expect(page.locator("#ov-slice")).to_have_text("1 / 3")
    page.keyboard.press("End")
    expect(page.locator("#ov-slice")).to_have_text("3 / 3")
    colored = page.evaluate(
        """() => { const c = document.querySelector('#viewport canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 30) n++; return n; }"""
    )
    assert colored > 1000
    page.click("#cine-play")
    expect(page.locator("#cine-play")).to_have_text("Pause")
    page.click("#cine-play")


def test_reviewer_returns_with_a_comment(
    page: Page, live_server: Any, cast: dict[str, Any], series: Series, assignment: Any
) -> None:
    from annotations import services

    services.assignment_submit(assignment=assignment, user=cast["bob"])
    log_in(page, live_server.url, "erin")
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    page.click("#return")
    expect(page.locator("#review-result")).to_contain_text("comment")
    page.fill("#return-comment", "Please outline the lesion on slice 3 too.")
    page.click("#return")
    expect(page.locator("#assignment-status")).to_have_attribute("data-status", "returned")
    assignment.refresh_from_db()
    assert assignment.status == "returned" and "slice 3" in assignment.comment

    page.context.clear_cookies()
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "annotate")  # returned: editable again
    expect(page.locator("#assignment-status")).to_contain_text("slice 3")


def test_outsider_cannot_open_the_viewer(page: Page, live_server: Any, series: Series, assignment: Any) -> None:
    log_in(page, live_server.url, "charlie")
    response = page.goto(f"{live_server.url}/series/{series.pk}/view/")
    assert response is not None and response.status == 404
    response = page.goto(f"{live_server.url}/assignments/{assignment.pk}/")
    assert response is not None and response.status == 404
