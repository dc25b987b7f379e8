"""Viewer features that work through Cornerstone3D: editing a saved polygon's vertex, pan and
reset, annotation opacity, cine speed, annotating one frame of a multi-frame instance, and
the contract's pixel coordinates.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from playwright.sync_api import FloatRect, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from annotations.geometry import rle_decode
from anonymizer.deid.tests.factory import make_us
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import (
    BUNDLE,
    CANVAS_HASH,
    SIZE,
    canvas_state,
    click_at,
    ct_series_files,
    drag,
    open_viewer,
    saved,
    server_annotations,
)
from tests.helpers import ingest
from workbench.demo import to_bytes
from workbench.models import Project, Series

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

CINE_SLICES = 12
CINE_FPS = 15
US_FRAMES = 4


def _assign(project: Project, series: Series, cast: dict[str, Any]) -> Any:
    """The default chest schema (box, polygon, mask, ...) and an assignment of ``series`` to bob."""
    from annotations import schemas, services

    schemas.label_schema_create(project=project, labels=schemas.DEFAULT_CHEST_LABELS, user=cast["alice"])
    [assigned] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return assigned


@pytest.fixture
def ct(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Series:
    with run_tasks():
        ingest(project_a, ct_series_files(), user=cast["alice"])
    return Series.objects.get(study__project=project_a)


@pytest.fixture
def ct_task(project_a: Project, cast: dict[str, Any], ct: Series) -> Any:
    return _assign(project_a, ct, cast)


@pytest.fixture
def long_ct(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Series:
    """Enough slices that a cine at CINE_FPS does not wrap around many times in two seconds."""
    with run_tasks():
        ingest(project_a, ct_series_files(slices=CINE_SLICES, size=64), user=cast["alice"])
    return Series.objects.get(study__project=project_a)


@pytest.fixture
def us_task(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Any:
    """A multi-frame RGB ultrasound (one instance, US_FRAMES frames), assigned to bob."""
    with run_tasks():
        ingest(project_a, {"us.dcm": to_bytes(make_us(frames=US_FRAMES))}, user=cast["alice"])
    us = Series.objects.get(study__project=project_a, modality="US")
    assert us.instances.count() == 1
    return _assign(project_a, us, cast)


def viewport_box(page: Page) -> FloatRect:
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    return box


def screenshot(page: Page) -> np.ndarray:
    """What a person sees over the image: the rendered canvas with the SVG and mask layers on top
    (CSS opacity applies only when composited, so the canvases' own pixels would not show it)."""
    png = page.locator(".viewport-wrap:not(.prior-wrap)").screenshot(animations="disabled")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


LIT_CORNER = """() => { const c = document.querySelector('#viewport canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let x0 = Infinity, y0 = Infinity, n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 16) {
        const p = i / 4; x0 = Math.min(x0, p % c.width); y0 = Math.min(y0, Math.floor(p / c.width)); n++; }
    return [x0, y0, n]; }"""


def lit_corner(page: Page) -> tuple[int, int, int]:
    """Leftmost column and top row of the bright pixels of the rendered image (canvas pixels),
    and their count. A pan right and down moves this corner by the pan; the far edges may leave
    the canvas."""
    return tuple(page.evaluate(LIT_CORNER))


def wait_for_lit_corner(page: Page, x: float, y: float, tolerance: float = 0) -> tuple[int, int, int]:
    """Until the rendered pixels' corner is at (x, y): the canvas is drawn a frame after the
    camera changes, so what is read straight after a camera change may be the old picture."""
    try:
        page.wait_for_function(
            f"""([x, y, t]) => {{ const [x0, y0] = ({LIT_CORNER})();
            return Math.abs(x0 - x) <= t && Math.abs(y0 - y) <= t; }}""",
            arg=[x, y, tolerance],
            timeout=5_000,
        )
    except PlaywrightTimeout:
        pass  # the assertion below says where it is instead
    return lit_corner(page)


def annotation_layer_drawn(page: Page) -> None:
    """Until the annotation layer shows what is on screen now: Cornerstone draws it in an
    animation frame, so ask for a drawing and wait for the frame after that one."""
    page.evaluate(
        """() => new Promise(resolve => { const { viewer, csTools } = window.workbenchViewer;
        csTools.utilities.triggerAnnotationRenderForViewportIds([viewer.viewport.id]);
        requestAnimationFrame(() => requestAnimationFrame(resolve)); })"""
    )


def camera(page: Page) -> dict[str, Any]:
    return page.evaluate(
        """() => { const vp = window.workbenchViewer.viewer.viewport; const c = vp.getCamera();
        return { pan: vp.getPan(), focal: c.focalPoint, scale: c.parallelScale }; }"""
    )


# --- editing a vertex of a saved polygon -------------------------------------------------------


def polygon_vertex_on_screen(page: Page, index: int) -> tuple[float, float]:
    """Where vertex ``index`` of the only polygon is drawn, in page coordinates."""
    x, y = page.evaluate(
        """i => { const { annotator, csTools, viewer } = window.workbenchViewer;
        const rec = [...annotator.recs.values()].find(r => r.kind === 'polygon');
        const ann = csTools.annotation.state.getAnnotation(rec.uid);
        return viewer.viewport.worldToCanvas(ann.data.handles.points[i]); }""",
        index,
    )
    box = viewport_box(page)
    return box["x"] + x, box["y"] + y


def wait_for_revision(page: Page, kind: str, revision: int) -> int:
    """Until the page's record of the (one, not deleted) ``kind`` annotation is saved at
    ``revision`` or later, with nothing left to send; returns its revision. An edit reaches the
    record on the annotation render after the mouse is released, so the save state alone can
    still read "saved" straight after a drag."""
    handle = page.wait_for_function(
        """([kind, revision]) => { const r = [...window.workbenchViewer.annotator.recs.values()]
        .find(r => r.kind === kind && !r.deleted);
        return r && r.revision >= revision && !r.dirty && !r.inflight && r.revision; }""",
        arg=[kind, revision],
        timeout=10_000,
    )
    return int(handle.json_value())


def reload(page: Page) -> None:
    page.reload()
    page.wait_for_selector("#viewer[data-loaded]", timeout=20_000)


def test_dragging_a_vertex_of_a_saved_polygon_saves_a_new_revision(page: Page, live_server: Any, ct_task: Any) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    page.click('[data-tool="polygon"]')
    click_at(page, 0.30, 0.30)
    click_at(page, 0.60, 0.30)
    click_at(page, 0.60, 0.60)
    click_at(page, 0.30, 0.60, count=2)
    expect(page.locator("#ann-list li")).to_have_count(1)
    saved(page)
    [polygon] = server_annotations(ct_task)
    assert polygon.revision == 1 and len(polygon.geometry["points"]) == 4
    original = [list(p) for p in polygon.geometry["points"]]

    # the polygon as loaded from the server, not the one still in the drawing tool's hands
    reload(page)
    expect(page.locator("#ann-list li")).to_have_count(1)
    page.click('[data-tool="select"]')
    x, y = polygon_vertex_on_screen(page, 1)
    box = viewport_box(page)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 0.15 * box["width"], y - 0.10 * box["height"], steps=8)
    page.mouse.up()
    revision = wait_for_revision(page, "polygon", 2)
    saved(page)
    [polygon] = server_annotations(ct_task)
    assert polygon.revision == revision
    moved = polygon.geometry["points"]
    assert len(moved) == 4
    # image pixels per screen fraction: the square image fills the square viewport
    assert moved[1][0] == pytest.approx(original[1][0] + 0.15 * SIZE, abs=3)
    assert moved[1][1] == pytest.approx(original[1][1] - 0.10 * SIZE, abs=3)
    for k in (0, 2, 3):
        assert moved[k] == pytest.approx(original[k], abs=0.01), "only the dragged vertex moves"

    reload(page)
    expect(page.locator("#ann-list li")).to_have_count(1)
    shown = page.evaluate(
        """() => [...window.workbenchViewer.annotator.recs.values()]
        .filter(r => r.kind === 'polygon').map(r => ({ revision: r.revision, points: r.geometry.points }))"""
    )
    assert shown == [{"revision": revision, "points": moved}]
    x2, y2 = polygon_vertex_on_screen(page, 1)
    assert (x2, y2) == pytest.approx((x + 0.15 * box["width"], y - 0.10 * box["height"]), abs=4)
    saved(page)
    [polygon] = server_annotations(ct_task)
    assert polygon.revision == revision  # loading it again wrote nothing


# --- pan and reset ---------------------------------------------------------------------------


def test_pan_moves_the_image_and_reset_restores_it(page: Page, live_server: Any, ct: Series) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{ct.pk}/view/")
    start_hash, _ = canvas_state(page)
    cx, cy, lit = lit_corner(page)
    assert lit > 1000
    assert camera(page)["pan"] == pytest.approx([0, 0], abs=1e-6)
    width = page.evaluate("() => document.querySelector('#viewport canvas').width")
    box = viewport_box(page)
    scale = width / box["width"]  # canvas pixels per CSS pixel

    page.click('[data-tool="pan"]')
    expect(page.locator('[data-tool="pan"]')).to_have_attribute("aria-pressed", "true")
    drag(page, [(0.5, 0.5), (0.6, 0.55), (0.7, 0.6)])
    expect(page.locator("#ov-wl")).to_have_text("W 400 L 40")  # the left button panned, not windowed
    expect(page.locator("#ov-zoom")).to_have_text("Zoom 1.00")
    panned = camera(page)
    assert panned["pan"][0] == pytest.approx(0.2 * box["width"] * scale, rel=0.15)
    assert panned["pan"][1] == pytest.approx(0.1 * box["height"] * scale, rel=0.15)
    px, py, _ = wait_for_lit_corner(page, cx + panned["pan"][0], cy + panned["pan"][1], tolerance=2)
    assert px - cx == pytest.approx(panned["pan"][0], abs=2), "the pixels did not move right"
    assert py - cy == pytest.approx(panned["pan"][1], abs=2), "the pixels did not move down"
    assert canvas_state(page)[0] != start_hash

    # the middle button pans whatever the left button does
    page.click('[data-tool="wl"]')
    drag(page, [(0.5, 0.5), (0.4, 0.5)], button="middle")
    expect(page.locator("#ov-wl")).to_have_text("W 400 L 40")
    assert camera(page)["pan"][0] == pytest.approx(panned["pan"][0] - 0.1 * box["width"] * scale, rel=0.2)

    page.click("#reset")
    page.wait_for_function("() => Math.abs(window.workbenchViewer.viewer.viewport.getPan()[0]) < 1e-6")
    assert camera(page)["pan"] == pytest.approx([0, 0], abs=1e-6)
    rx, ry, _ = wait_for_lit_corner(page, cx, cy)
    assert (rx, ry) == (cx, cy)
    assert canvas_state(page)[0] == start_hash, "reset did not restore the first rendering"


# --- opacity ---------------------------------------------------------------------------------


def set_opacity(page: Page, value: float) -> None:
    page.eval_on_selector(
        "#opacity", "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }", value
    )


def test_opacity_changes_what_is_drawn_but_saves_nothing(page: Page, live_server: Any, ct_task: Any) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    page.click('[data-tool="brush"]')
    page.eval_on_selector("#brush-size", "el => { el.value = '6'; el.dispatchEvent(new Event('input')); }")
    drag(page, [(0.30, 0.70), (0.50, 0.72), (0.70, 0.70)])
    page.click('[data-tool="box"]')
    drag(page, [(0.25, 0.20), (0.45, 0.40)])
    expect(page.locator("#ann-list li")).to_have_count(2)
    saved(page)
    before = {a.pk: (a.revision, a.geometry) for a in server_annotations(ct_task)}
    writes: list[str] = []
    page.on(
        "request",
        lambda r: writes.append(f"{r.method} {r.url}") if "/api/annotations/" in r.url and r.method != "GET" else None,
    )
    page.mouse.move(0, 0)  # off the viewport: no hover changes the drawing from here on
    annotation_layer_drawn(page)
    opaque = screenshot(page)
    image_only = canvas_state(page)

    set_opacity(page, 0.2)
    expect(page.locator("#viewer")).to_have_attribute("style", "--annotation-opacity: 0.2;")
    faint = screenshot(page)
    diff = np.abs(opaque - faint).max(axis=2)
    height, width = diff.shape
    changed = diff > 20
    assert changed.sum() > 300, "opacity did not change the drawn annotations"
    # the change is where the annotations are: the stroke in the lower half, the box's outline above
    rows = np.nonzero(changed)[0]
    assert (rows > height * 0.6).sum() > 100, "the mask did not fade"
    assert ((rows > height * 0.15) & (rows < height * 0.45)).sum() > 50, "the box did not fade"
    assert not changed[: int(height * 0.1)].any(), "pixels away from the annotations changed"
    assert canvas_state(page) == image_only, "opacity re-rendered the image itself"

    set_opacity(page, 0)
    gone = screenshot(page)
    set_opacity(page, 1)
    again = screenshot(page)
    assert np.abs(again - opaque).max() <= 2, "opacity 1 again did not restore the picture"
    assert np.abs(opaque - gone).max(axis=2).sum() > np.abs(opaque - faint).max(axis=2).sum()

    # a display setting, not an edit: every save starts from a record marked dirty at once, and none is
    assert page.evaluate("() => !window.workbenchViewer.annotator.saver.pending()")
    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "saved")
    assert writes == []
    assert {a.pk: (a.revision, a.geometry) for a in server_annotations(ct_task)} == before

    # a preference of this browser: it is there again after a reload
    set_opacity(page, 0.3)
    reload(page)
    expect(page.locator("#ann-list li")).to_have_count(2)
    expect(page.locator("#opacity")).to_have_value("0.3")
    layers = page.evaluate(
        """() => ['#viewport .svg-layer', '#mask-layer']
        .map(s => getComputedStyle(document.querySelector(s)).opacity)"""
    )
    assert layers == ["0.3", "0.3"]
    assert writes == []


# --- cine ------------------------------------------------------------------------------------

MEASURE_CINE = """ms => new Promise(resolve => {
    const el = document.getElementById('ov-slice');
    const seen = [el.textContent];
    const observer = new MutationObserver(() => {
        if (el.textContent !== seen[seen.length - 1]) seen.push(el.textContent);
    });
    observer.observe(el, { childList: true, characterData: true, subtree: true });
    const t0 = performance.now();
    setTimeout(() => { observer.disconnect(); resolve({ seen, ms: performance.now() - t0 }); }, ms);
})"""


def test_cine_plays_near_the_requested_rate_and_stops(page: Page, live_server: Any, long_ct: Series) -> None:
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{long_ct.pk}/view/")
    expect(page.locator("#ov-slice")).to_have_text(f"1 / {CINE_SLICES}")
    # every slice decoded beforehand, so that the measure is of playback, not of loading
    page.evaluate(
        "() => { const v = window.workbenchViewer.viewer;"
        " return Promise.all(v.frames.map(f => v.ensureLoaded(f.imageId))); }"
    )
    page.fill("#cine-fps", str(CINE_FPS))
    page.click("#cine-play")
    expect(page.locator("#cine-play")).to_have_text("Pause")
    expect(page.locator("#cine-play")).to_have_attribute("aria-pressed", "true")
    result = page.evaluate(MEASURE_CINE, 2000)
    seen, seconds = result["seen"], result["ms"] / 1000
    numbers = [int(s.split(" / ")[0]) for s in seen]
    steps = [(b - a) % CINE_SLICES for a, b in zip(numbers, numbers[1:], strict=False)]
    advances = sum(steps)
    fps = advances / seconds
    print(f"\ncine: requested {CINE_FPS} fps, measured {fps:.1f} fps ({advances} images in {seconds:.2f} s)")
    assert advances > 0, "cine did not advance"
    assert all(s == 1 for s in steps), f"cine skipped or went back: {numbers}"
    assert fps > 0.3 * CINE_FPS, f"cine ran at {fps:.1f} fps of {CINE_FPS} requested"
    assert fps < 1.5 * CINE_FPS, f"cine ran faster than asked: {fps:.1f} fps"

    page.click("#cine-play")
    expect(page.locator("#cine-play")).to_have_text("Play")
    expect(page.locator("#cine-play")).to_have_attribute("aria-pressed", "false")
    # a step already under way when it stopped may still land, but no more
    stopped = page.evaluate(MEASURE_CINE, 900)["seen"]
    assert len(stopped) <= 2, f"cine went on after stop: {stopped}"


# --- a multi-frame instance ------------------------------------------------------------------


def svg_annotations(page: Page) -> int:
    return page.locator("#viewport svg [data-annotation-uid]").count()


def test_annotation_on_a_later_frame_of_a_multiframe_instance(page: Page, live_server: Any, us_task: Any) -> None:
    log_in(page, live_server.url, "bob")
    url = f"{live_server.url}/assignments/{us_task.pk}/"
    open_viewer(page, url)
    expect(page.locator("#ov-slice")).to_have_text(f"1 / {US_FRAMES}")
    page.locator("#viewport").hover()
    page.mouse.wheel(0, 120)
    expect(page.locator("#ov-slice")).to_have_text(f"2 / {US_FRAMES}")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#ov-slice")).to_have_text(f"3 / {US_FRAMES}")
    page.click('[data-tool="box"]')
    drag(page, [(0.30, 0.35), (0.50, 0.55)])
    expect(page.locator("#ann-list li")).to_have_count(1)
    saved(page)
    [box] = server_annotations(us_task)
    instance = us_task.series.instances.get()
    assert box.sop_instance_uid == instance.sop_uid
    assert box.frame == 2, "the third frame is frame 2 (0-based) in the annotation contract"
    assert 0 <= box.geometry["x0"] < box.geometry["x1"] <= 640 and 0 <= box.geometry["y0"] < box.geometry["y1"] <= 480

    reload(page)
    expect(page.locator("#ann-list li")).to_have_count(1)
    expect(page.locator("#ann-list li .go")).to_contain_text("image 3")
    expect(page.locator("#ov-slice")).to_have_text(f"1 / {US_FRAMES}")
    for frame in range(1, US_FRAMES + 1):
        page.keyboard.press("Home")
        for _ in range(frame - 1):
            page.keyboard.press("ArrowDown")
        expect(page.locator("#ov-slice")).to_have_text(f"{frame} / {US_FRAMES}")
        if frame == 3:
            expect(page.locator("#viewport svg [data-annotation-uid]")).to_have_count(1)
        else:
            annotation_layer_drawn(page)
            assert svg_annotations(page) == 0, f"the frame-3 box is drawn on frame {frame}"
    saved(page)
    [again] = server_annotations(us_task)
    assert (again.pk, again.frame, again.revision) == (box.pk, 2, 1)


# --- pixel coordinates -----------------------------------------------------------------------

# Where the centre of pixel (column x, row y) of the first slice is drawn, in CSS pixels of the
# viewport: from the slice's own geometry (ct_series_files: ImagePositionPatient, the centre of
# pixel (0, 0), at -0.35 * SIZE mm; PixelSpacing [between rows, between columns]), through the
# camera only, not through any image<->world helper.
PIXEL_ON_SCREEN = """([x, y, [dy, dx]]) => { const vp = window.workbenchViewer.viewer.viewport;
    const origin = -128 * 0.35;
    return vp.worldToCanvas([origin + dx * x, origin + dy * y, 0]); }"""


def click_pixel(page: Page, x: float, y: float, spacing: list[float]) -> tuple[float, float]:
    """Click on whole CSS pixels as near as can be to the centre of pixel (x, y); returns the
    pixel coordinates of where the click really landed."""
    box = viewport_box(page)
    cx, cy = page.evaluate(PIXEL_ON_SCREEN, [x, y, spacing])
    x1, y1 = page.evaluate(PIXEL_ON_SCREEN, [x + 1, y + 1, spacing])
    px, py = round(box["x"] + cx), round(box["y"] + cy)
    page.mouse.click(px, py)
    return x + (px - box["x"] - cx) / (x1 - cx), y + (py - box["y"] - cy) / (y1 - cy)


@pytest.fixture(params=[(0.7, 0.7), (0.5, 1.0)], ids=["square-pixels", "oblong-pixels"])
def spaced_task(request: Any, project_a: Project, cast: dict[str, Any], run_tasks: Any) -> tuple[Any, Series, Any]:
    """A CT series with PixelSpacing ``request.param``, assigned to bob."""
    files = {}
    for name, data in ct_series_files().items():
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.PixelSpacing = list(request.param)
        files[name] = to_bytes(ds)
    with run_tasks():
        ingest(project_a, files, user=cast["alice"])
    series = Series.objects.get(study__project=project_a)
    return _assign(project_a, series, cast), series, list(request.param)


def test_geometry_is_in_pixel_coordinates_with_the_origin_at_a_pixel_centre(
    page: Page, live_server: Any, cast: dict[str, Any], spaced_task: tuple[Any, Series, Any]
) -> None:
    """The contract (annotations/geometry.py) puts (0, 0) at the centre of the top-left pixel and
    steps PixelSpacing[1] along a row; Cornerstone's own image coordinates put (0, 0) at that
    pixel's corner and step PixelSpacing[0] along a row."""
    ct_task, ct, spacing = spaced_task
    from annotations import services
    from annotations.models import Label

    assert SIZE == 128
    label = Label.objects.get(schema__project=ct_task.project, kind="point")
    services.annotation_create(
        assignment=ct_task,
        user=cast["bob"],
        label=label,
        sop_instance_uid=ct.instances.get(number=1).sop_uid,
        frame=0,
        geometry={"x": 40, "y": 30},
    )
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    expect(page.locator("#ann-list li")).to_have_count(1)

    # a stored point is drawn on its pixel's centre
    drawn = page.evaluate(
        """() => { const { annotator, csTools, viewer } = window.workbenchViewer;
        const rec = [...annotator.recs.values()].find(r => r.kind === 'point');
        const ann = csTools.annotation.state.getAnnotation(rec.uid);
        return viewer.viewport.worldToCanvas(ann.data.handles.points[0]); }"""
    )
    assert drawn == pytest.approx(page.evaluate(PIXEL_ON_SCREEN, [40, 30, spacing]), abs=0.05)

    # a point placed on a pixel's centre is stored as that pixel
    page.click('[data-tool="point"]')
    at = click_pixel(page, 90, 70, spacing)
    expect(page.locator("#ann-list li")).to_have_count(2)
    saved(page)
    new = [a for a in server_annotations(ct_task) if a.geometry != {"x": 40, "y": 30}]
    assert [(a.geometry["x"], a.geometry["y"]) for a in new] == [pytest.approx(at, abs=0.05)]

    # a brush dab on a pixel's centre paints a disk centred on that pixel
    page.click('[data-tool="brush"]')
    page.eval_on_selector("#brush-size", "el => { el.value = '3'; el.dispatchEvent(new Event('input')); }")
    at = click_pixel(page, 64, 64, spacing)
    expect(page.locator("#ann-list li")).to_have_count(3)
    saved(page)
    [mask] = [a for a in server_annotations(ct_task) if a.label.kind == "mask"]
    painted = rle_decode(mask.geometry["rle"], SIZE, SIZE)
    rows, columns = np.nonzero(painted)
    assert painted[64, 64] and 25 <= painted.sum() <= 37  # about pi * 3 ** 2 pixels
    # a disk's centroid is its centre, to within what whole pixels allow
    assert (columns.mean(), rows.mean()) == pytest.approx(at, abs=0.2)


# --- invert, rotate, flip --------------------------------------------------------------------


def test_box_drawn_on_a_rotated_flipped_inverted_view_is_stored_in_image_pixels(
    page: Page, live_server: Any, ct_task: Any
) -> None:
    """Rotation and flips change only the camera: a box dragged between the screen positions of
    two image pixels (from the slice's own geometry through the camera) stores those pixels."""
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    before = screenshot(page)
    corner = tuple(before[3, 3])
    drawn = canvas_state(page)[0]
    page.keyboard.press("i")
    page.keyboard.press("Shift+R")
    page.keyboard.press("Shift+H")
    expect(page.locator("#viewer")).to_have_attribute("data-orientation", "Rot 90° · Flip H · Inv")
    page.wait_for_function("() => window.workbenchViewer.viewer.viewport.getViewPresentation().rotation === 90")
    # the canvas repaints a frame after the camera changes
    page.wait_for_function(f"h => ({CANVAS_HASH})()[0] !== h", arg=drawn)
    after = screenshot(page)
    # from the screenshot alone: the dark background outside the body is now bright
    assert sum(corner) < 150 and sum(after[3, 3]) > 450, (corner, tuple(after[3, 3]))
    drawn = canvas_state(page)[0]
    page.keyboard.press("i")  # back to grey scale: rotation and flip still move the pixels
    page.wait_for_function(f"h => ({CANVAS_HASH})()[0] !== h", arg=drawn)
    turned = screenshot(page)
    assert np.abs(turned - before).mean() > 5

    spacing = [0.7, 0.7]
    page.click('[data-tool="box"]')
    box = viewport_box(page)
    (ax, ay), (bx, by) = (page.evaluate(PIXEL_ON_SCREEN, [x, y, spacing]) for x, y in ((30, 20), (70, 50)))
    # on this view the image's x runs down the screen: the two corners are not where they are upright
    assert abs(ax - bx) < abs(ay - by) or ax > bx
    page.mouse.move(box["x"] + ax, box["y"] + ay)
    page.mouse.down()
    page.mouse.move(box["x"] + bx, box["y"] + by, steps=8)
    page.mouse.up()
    expect(page.locator("#ann-list li")).to_have_count(1)
    saved(page)
    [stored] = [a for a in server_annotations(ct_task) if a.label.kind == "box"]
    g = stored.geometry
    xs, ys = sorted((g["x0"], g["x1"])), sorted((g["y0"], g["y1"]))
    assert xs == pytest.approx([30, 70], abs=1.0) and ys == pytest.approx([20, 50], abs=1.0)
