"""The viewer's layouts in Chromium: axial/sagittal/coronal reformats of a CT volume and the
series strip. Each reformat is checked from its own screenshot: it holds image content
(many grey levels) and the lit area has the aspect of the volume's extent in millimetres.

Needs the bundle: `make frontend`, then collectstatic.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from pydicom.uid import generate_uid

from anonymizer.deid.tests.factory import make_ct
from tests.e2e.test_flows import SCREENSHOTS, log_in
from tests.e2e.test_viewer import BUNDLE, open_viewer
from tests.helpers import ingest
from workbench.demo import to_bytes
from workbench.models import Project, Series

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SIZE, SPACING = 96, 0.7  # in-plane: 67.2 mm
SLICES, THICKNESS = 16, 2.5  # 40 mm
EXTENT_AP_MM, EXTENT_SI_MM = SIZE * SPACING, SLICES * THICKNESS


def volume_files(*, slices: int = SLICES, study_uid: str | None = None, series_number: int = 2) -> dict[str, bytes]:
    """A CT block filling its whole extent (a gradient in x and a bright ball): every voxel
    is lit at W 400 L 40, so the lit area of a view is the volume's extent."""
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), generate_uid()
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    files = {}
    for k in range(slices):
        ds = make_ct(patient_name="MPR^MIA", patient_id="E2E-MPR", study_uid=study_uid)
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = series_number, k + 1
        ds.Rows = ds.Columns = SIZE
        ds.PixelSpacing = [SPACING, SPACING]
        ds.SliceThickness = THICKNESS
        ds.ImagePositionPatient = [0.0, 0.0, -THICKNESS * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        hu = 20 + 1.5 * xx  # 20..162 HU
        ball = (xx - SIZE / 2) ** 2 + (yy - SIZE / 2) ** 2 + ((k - slices / 2) * THICKNESS / SPACING) ** 2
        hu = np.where(ball < (SIZE / 4) ** 2, 600, hu)
        ds.PixelData = (hu + 1024).astype(np.int16).tobytes()  # RescaleIntercept -1024
        files[f"{series_uid}-{k}.dcm"] = to_bytes(ds)
    return files


@pytest.fixture
def volume(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Series:
    study_uid = generate_uid()
    with run_tasks():
        ingest(project_a, volume_files(study_uid=study_uid), user=cast["alice"])
        ingest(project_a, volume_files(study_uid=study_uid, slices=2, series_number=3), user=cast["alice"])
    return Series.objects.get(study__project=project_a, number=2)


def grey_bbox(png: bytes) -> tuple[float, int]:
    """Width/height of the lit grey area of a screenshot, and how many grey levels it holds.
    Grey only: the crosshairs and the yellow labels are coloured and left out."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    grey = (abs(r - g) <= 3) & (abs(g - b) <= 3) & (r > 24)
    assert grey.sum() > 500, "the view shows no image"
    # rows and columns mostly lit: thin lines and labels over the black margins do not count
    width = int((grey.mean(axis=0) > 0.3).sum())
    height = int((grey.mean(axis=1) > 0.3).sum())
    return width / height, len(np.unique(r[grey]))


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)], ids=["1366", "1920"])
def test_reformats_render_with_the_volume_aspect(page: Page, live_server: Any, volume: Series, size: Any) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    refused: list[str] = []  # the Content-Security-Policy must let the volume code run (WebGL, workers)
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    page.on("pageerror", lambda e: refused.append(str(e)))
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{volume.pk}/view/")
    button = page.locator("#layout-mpr")
    expect(button).to_be_enabled()
    button.click()
    page.wait_for_selector("#viewer[data-mpr-ready]", timeout=30_000)
    expect(page.locator("#viewport")).to_be_hidden()
    page.screenshot(path=str(SCREENSHOTS / f"viewer-mpr-{size[0]}.png"))
    expected = {"axial": 1.0, "sagittal": EXTENT_AP_MM / EXTENT_SI_MM, "coronal": EXTENT_AP_MM / EXTENT_SI_MM}
    for view, aspect in expected.items():
        measured, levels = grey_bbox(page.locator(f'.mpr-vp[data-view="{view}"]').screenshot())
        assert levels > 20, f"{view}: the view is uniform, not image content"
        assert measured == pytest.approx(aspect, rel=0.1), f"{view}: aspect {measured:.2f}, expected {aspect:.2f}"
    assert refused == []
    button.click()
    expect(page.locator("#mpr")).to_be_hidden()
    expect(page.locator("#viewport")).to_be_visible()


def test_mpr_is_refused_for_too_few_slices(page: Page, live_server: Any, volume: Series) -> None:
    thin = Series.objects.get(study=volume.study, number=3)
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{thin.pk}/view/")
    button = page.locator("#layout-mpr")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", "A volume needs at least 3 slices; this series has 2.")


def test_series_strip_switches_series(page: Page, live_server: Any, volume: Series) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{volume.pk}/view/")
    items = page.locator("#series-strip .strip-item")
    expect(items).to_have_count(2)
    expect(page.locator('#series-strip [aria-current="page"]')).to_have_attribute("data-series", str(volume.pk))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#series-strip img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(SCREENSHOTS / "viewer-strip-1366.png"))
    thin = Series.objects.get(study=volume.study, number=3)
    page.locator(f'#series-strip [data-series="{thin.pk}"]').click()
    page.wait_for_url(f"**/series/{thin.pk}/view/")
    page.wait_for_selector("#viewer[data-loaded]", timeout=20_000)
    expect(page.locator("#ov-slice")).to_have_text("1 / 2")
    expect(page.locator('#series-strip [aria-current="page"]')).to_have_attribute("data-series", str(thin.pk))


def test_prior_study_scrolls_in_sync(
    page: Page, live_server: Any, project_a: Project, cast: dict[str, Any], run_tasks: Any, volume: Series
) -> None:
    with run_tasks():  # the same patient's other study, half as many slices, its own frame of reference
        ingest(project_a, volume_files(slices=SLICES // 2, series_number=4), user=cast["alice"])
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{volume.pk}/view/")
    page.click("#layout-compare")
    page.wait_for_selector("#viewer[data-prior-ready]", timeout=20_000)
    prior = page.locator("#ov-prior")
    expect(prior).to_have_text(f"Prior CT · 1 / {SLICES // 2}")
    page.locator("#viewport").hover()
    page.keyboard.press("End")
    expect(page.locator("#ov-slice")).to_have_text(f"{SLICES} / {SLICES}")
    expect(prior).to_have_text(f"Prior CT · {SLICES // 2} / {SLICES // 2}")
    for _ in range(5):
        page.keyboard.press("ArrowUp")
    expect(page.locator("#ov-slice")).to_have_text(f"{SLICES - 5} / {SLICES}")
    # relative place: index 10 of 0..15 lands on round(10 * 7 / 15) = 5 of 0..7
    expect(prior).to_have_text(f"Prior CT · 6 / {SLICES // 2}")
    page.screenshot(path=str(SCREENSHOTS / "viewer-compare-1366.png"))
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.screenshot(path=str(SCREENSHOTS / "viewer-compare-1920.png"))
