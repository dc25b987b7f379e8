"""The tag browser (issue 12) in Chromium: the de-identified header of the image on screen, in the
series viewer and in the annotator, filtered, following the slice, each instance fetched once.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
Screenshots for a person to look at go to /tmp/shots-tags/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_annotator_task import TOOLBAR_ROWS
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE, open_viewer
from tests.e2e.test_viewer_editing import _task
from workbench.models import Project

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SHOTS = Path("/tmp/shots-tags")  # noqa: S108 - screenshots for a person to look at, never committed

CURRENT_NUMBER = """() => {
    const v = window.workbenchViewer.viewer;
    const sop = v.current().sop;
    return String(v.data.instances.find((i) => i.sop_uid === sop).number);
}"""


@pytest.fixture
def task(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Any:
    return _task(project_a, cast, run_tasks)


def tag_requests(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/tags/" in r.url else None)
    return seen


def value_of(page: Page, keyword: str) -> Any:
    return page.locator(f'#tags-body li[data-keyword="{keyword}"] .val').first


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080)])
def test_tag_browser_in_the_series_viewer(page: Page, live_server: Any, task: Any, width: int, height: int) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": width, "height": height})
    requests = tag_requests(page)
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/series/{task.series_id}/view/")
    expect(page.locator("#tags-panel")).to_be_hidden()
    assert requests == []  # fetched lazily: nothing until the panel is opened

    page.keyboard.press("t")
    panel = page.locator("#tags-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#tags-toggle")).to_have_attribute("aria-pressed", "true")
    page.fill("#tags-filter", "Modality")
    expect(value_of(page, "Modality")).to_have_text("CT")
    expect(page.locator("#tags-body li[data-keyword=PatientName]")).to_have_count(0)
    expect(page.locator("#tags-status")).to_contain_text("match")
    page.screenshot(path=str(SHOTS / f"viewer-tags-modality-{width}x{height}.png"))

    # the panel follows the slice: InstanceNumber is the one of the image on screen
    page.fill("#tags-filter", "InstanceNumber")
    first = page.evaluate(CURRENT_NUMBER)
    expect(value_of(page, "InstanceNumber")).to_have_text(first)
    page.locator("#tags-filter").blur()  # the keys scroll only outside the filter box
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"() => ({CURRENT_NUMBER})() !== {first!r}")
    second = page.evaluate(CURRENT_NUMBER)
    expect(value_of(page, "InstanceNumber")).to_have_text(second)
    page.mouse.move(0, 0)
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -120)  # the wheel scrolls too
    page.wait_for_function(f"() => ({CURRENT_NUMBER})() === {first!r}")
    expect(value_of(page, "InstanceNumber")).to_have_text(first)
    assert len(requests) == 2, requests  # one per instance shown, kept: scrolling back fetches nothing

    # sequences are collapsible: closed unless a filter matches inside them
    page.fill("#tags-filter", "ReferencedSOPInstanceUID")
    sequence = page.locator("#tags-body li[data-keyword=SourceImageSequence] > details")
    expect(sequence).to_have_attribute("open", "")
    expect(sequence.locator("li[data-keyword=ReferencedSOPInstanceUID]")).to_be_visible()
    page.fill("#tags-filter", "")
    expect(sequence).not_to_have_attribute("open", "")
    item = sequence.locator(":scope > .tag-item")
    expect(item).to_be_hidden()
    sequence.locator(":scope > summary").click()
    expect(item).to_have_text("Item 1")
    expect(sequence).to_have_attribute("open", "")
    expect(page.locator("#tags-body li[data-keyword=PixelData] .val")).to_contain_text("bytes")
    rows = page.evaluate(TOOLBAR_ROWS)
    assert 1 <= rows <= 2 and (rows == 1 or width < 1920), f"the toolbar takes {rows} rows"
    page.screenshot(path=str(SHOTS / f"viewer-tags-all-{width}x{height}.png"))
    page.locator("#tags-filter").blur()
    page.keyboard.press("t")
    expect(panel).to_be_hidden()


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080)])
def test_tag_browser_in_the_annotator(page: Page, live_server: Any, task: Any, width: int, height: int) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    page.click("#tags-toggle")
    page.fill("#tags-filter", "modality")
    expect(value_of(page, "Modality")).to_have_text("CT")
    # typing T in the filter box filters; it does not close the panel
    page.fill("#tags-filter", "")
    page.type("#tags-filter", "PatientIdentityRemoved")
    expect(page.locator("#tags-panel")).to_be_visible()
    expect(value_of(page, "PatientIdentityRemoved")).to_have_text("YES")
    for selector in ("#viewport", "#ov-wl", "#save-state", "#tags-panel", "#submit"):
        b = page.locator(selector).bounding_box()
        assert b is not None and b["x"] + b["width"] <= width and b["y"] + b["height"] <= height, selector
    rows = page.evaluate(TOOLBAR_ROWS)
    assert rows == (1 if width >= 1920 else 2), f"the annotator's toolbar takes {rows} rows"
    page.screenshot(path=str(SHOTS / f"annotator-tags-{width}x{height}.png"))
    page.click("#tags-close")
    expect(page.locator("#tags-panel")).to_be_hidden()
