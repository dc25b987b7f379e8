"""The viewer's progressive first paint: the preview the entry's worker draws from the real
16-bit values before Cornerstone3D is loaded, and the hand-over to Cornerstone.

The Cornerstone chunk is held back (a routed request the test lets through later), so the
preview can be looked at for as long as needed; then Cornerstone renders the same slice at the
same window, and the two screenshots must agree pixel for pixel (within one grey level) where
the image is flat, at the same place on the page.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import FloatRect, Page, Route, expect
from pydicom.uid import RLELossless, generate_uid

from anonymizer.deid.tests.factory import make_ct
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE
from tests.helpers import ingest
from workbench.demo import to_bytes
from workbench.models import Project, Series

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SIZE, BLOCKS = 128, 8  # 8 x 8 flat blocks of 16 x 16 pixels
STEP = SIZE // BLOCKS
CENTER, WIDTH = 40, 400
SLICES = 2


def block_hu(row: int, col: int) -> int:
    """From -300 to 456 HU: below, across and above the window [-160, 239]."""
    return -300 + (row * BLOCKS + col) * 12


def expected_grey(hu: int) -> int:
    """Cornerstone's linear VOI: range [C - 0.5 - (W - 1) / 2, C - 0.5 + (W - 1) / 2] to 0..255."""
    lower = CENTER - 0.5 - (WIDTH - 1) / 2
    return int(np.clip(np.round((hu - lower) * 255 / (WIDTH - 1)), 0, 255))


def blocks_series_files(compress: bool = False) -> dict[str, bytes]:
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    hu = np.kron(np.array([[block_hu(r, c) for c in range(BLOCKS)] for r in range(BLOCKS)]), np.ones((STEP, STEP), int))
    files = {}
    for k in range(SLICES):
        ds = make_ct(patient_name="PAINT^FIRST", patient_id="E2E-PAINT", study_uid=study_uid)
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = 3, k + 1
        ds.Rows = ds.Columns = SIZE
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImagePositionPatient = [0.0, 0.0, -5.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.WindowCenter, ds.WindowWidth = str(CENTER), str(WIDTH)
        ds.PixelData = (hu + 1024).astype(np.int16).tobytes()  # RescaleIntercept -1024
        if compress:
            ds.compress(RLELossless)
        files[f"blocks{k}.dcm"] = to_bytes(ds)
    return files


def series_of(project: Project, cast: dict[str, Any], run_tasks: Any, compress: bool = False) -> Series:
    with run_tasks():
        ingest(project, blocks_series_files(compress), user=cast["alice"])
    return Series.objects.get(study__project=project)


def shot(page: Page, box: FloatRect) -> np.ndarray:
    png = page.screenshot(clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"]})
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def block_centres(box: FloatRect) -> list[tuple[int, int, int]]:
    """(x, y, HU) at the centre of each block away from the corners' overlay text."""
    scale = box["width"] / SIZE  # the square image fills the square viewport
    return [
        (round((c * STEP + STEP / 2) * scale), round((r * STEP + STEP / 2) * scale), block_hu(r, c))
        for r in range(1, BLOCKS - 1)
        for c in range(1, BLOCKS - 1)
    ]


@pytest.mark.parametrize("query", ["", "?cpu=1"], ids=["webgl", "cpu"])
def test_preview_matches_cornerstone_and_hands_over(
    page: Page, live_server: Any, project_a: Project, cast: dict[str, Any], run_tasks: Any, query: str
) -> None:
    series = series_of(project_a, cast, run_tasks)
    log_in(page, live_server.url, "bob")
    held: list[Route] = []
    page.route("**/assets/app-*.js", lambda route: held.append(route))  # Cornerstone waits for the test
    page.goto(f"{live_server.url}/series/{series.pk}/view/{query}", wait_until="domcontentloaded")

    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-first-image-source", "preview", timeout=20_000)
    assert held, "the Cornerstone chunk was not requested"
    assert viewer.get_attribute("data-interactive-ms") is None
    assert page.eval_on_selector(".viewer-toolbar", "el => el.inert")
    expect(page.locator("#ov-loading")).to_be_visible()
    preview_box = page.locator("#viewer-preview").bounding_box()
    assert preview_box is not None
    before = shot(page, preview_box)

    # Input during the preview is dropped, not applied once the tools work.
    page.mouse.move(preview_box["x"] + preview_box["width"] / 2, preview_box["y"] + preview_box["height"] / 2)
    page.mouse.wheel(0, 120)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("End")
    assert page.evaluate("window.scrollY") == 0

    for route in held:
        route.continue_()
    page.unroute("**/assets/app-*.js")
    page.wait_for_selector("#viewer[data-interactive-ms]", timeout=20_000)
    expect(page.locator("#viewer-preview")).to_have_count(0)  # gone once Cornerstone rendered
    expect(page.locator("#ov-loading")).to_be_hidden()
    assert not page.eval_on_selector(".viewer-toolbar", "el => el.inert")
    expect(page.locator("#ov-slice")).to_have_text(f"1 / {SLICES}")
    expect(page.locator("#ov-wl")).to_have_text(f"W {WIDTH} L {CENTER}")

    cornerstone_box = page.locator("#viewport canvas").bounding_box()
    assert cornerstone_box == preview_box, "the preview was not where Cornerstone draws"
    after = shot(page, cornerstone_box)
    for x, y, hu in block_centres(preview_box):
        shown, rendered = before[y, x], after[y, x]
        assert abs(shown - rendered).max() <= 1, f"preview {shown} vs Cornerstone {rendered} at ({x}, {y}), {hu} HU"
        assert shown[0] == shown[1] == shown[2] and abs(shown[0] - expected_grey(hu)) <= 1

    first = int(viewer.get_attribute("data-first-image-ms") or "")
    interactive = int(viewer.get_attribute("data-interactive-ms") or "")
    assert 0 < first <= interactive
    # and the tools work now: the keys and the wheel dropped above go through
    page.keyboard.press("End")
    expect(page.locator("#ov-slice")).to_have_text(f"{SLICES} / {SLICES}")


def test_compressed_file_gets_no_preview(
    page: Page, live_server: Any, project_a: Project, cast: dict[str, Any], run_tasks: Any
) -> None:
    series = series_of(project_a, cast, run_tasks, compress=True)
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/series/{series.pk}/view/")
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-preview", "skipped", timeout=20_000)
    expect(viewer).to_have_attribute("data-preview-reason", f"transfer syntax {RLELossless}")
    page.wait_for_selector("#viewer[data-interactive-ms]", timeout=20_000)
    expect(viewer).to_have_attribute("data-first-image-source", "cornerstone")
    expect(page.locator("#viewer-preview")).to_have_count(0)
    first = int(viewer.get_attribute("data-first-image-ms") or "")
    assert first <= int(viewer.get_attribute("data-interactive-ms") or "")
