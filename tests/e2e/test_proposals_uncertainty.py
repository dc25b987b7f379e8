"""A reader toggles the uncertainty map of a model's proposals in the annotator (issue 11,
"explanations and triage"): each proposal's mean uncertainty is listed beside its score, the
list sorts by it, and the uncertain pixels are drawn as a yellow-orange overlay of their own.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from annotations.geometry import rle_encode
from tests.e2e.test_annotator_task import TOOLBAR_ROWS
from tests.e2e.test_flows import log_in
from tests.e2e.test_proposals_flow import MODEL_PIXELS, preannotated, row  # noqa: F401 - a fixture by name
from tests.e2e.test_viewer import BUNDLE, SIZE, open_viewer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SHOTS = Path("/tmp/shots-uncertainty")  # noqa: S108 - screenshots for a person to look at, never committed
# How many pixels of the uncertainty layer are drawn in its yellow-orange (#ffa41b).
UNCERTAIN_PIXELS = """() => { const c = document.getElementById('uncertainty-layer');
    if (!c.width || !c.height) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (d[i + 3] > 100 && d[i] > 200 && d[i + 1] > 120 && d[i + 1] < 200 && d[i + 2] < 90) n++;
    return n; }"""


def ring(cx: int, cy: int, inner: int, outer: int, mean: float) -> dict[str, Any]:
    """An uncertainty map as the run stores it: the border of a disk proposal is what is unsure."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    mask = (d2 >= inner * inner) & (d2 <= outer * outer)
    return {
        "rows": SIZE,
        "columns": SIZE,
        "rle": rle_encode(mask),
        "mean": mean,
        "max": min(1.0, mean + 0.4),
        "method": "tta_entropy",
        "threshold": 0.5,
    }


@pytest.fixture
def with_maps(preannotated: tuple[Any, dict[str, Any]]) -> tuple[Any, dict[str, Any]]:  # noqa: F811
    """The fixture's proposals with uncertainty maps on the Nodule masks (the box has none)."""
    task, proposals = preannotated
    maps = {"accept": ring(40, 60, 8, 13, 0.31), "edit": ring(44, 58, 7, 11, 0.12), "reject": ring(48, 56, 5, 12, 0.64)}
    for key, value in maps.items():
        proposals[key].uncertainty = value
        proposals[key].save(update_fields=["uncertainty"])
    return task, proposals


def test_reader_toggles_the_uncertainty_overlay_and_sorts_by_it(
    page: Page, live_server: Any, with_maps: tuple[Any, dict[str, Any]]
) -> None:
    task, proposals = with_maps
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")

    # the mean uncertainty beside the score; nothing for the box, which has no map
    expect(row(page, proposals["accept"])).to_contain_text("image 1 · 0.95 · u 0.31")
    expect(row(page, proposals["reject"]).locator(".unc")).to_have_attribute("data-high", "true")
    expect(row(page, proposals["box"]).locator(".unc")).to_have_count(0)

    # off at first; ticked, the uncertain pixels of this image's proposals appear in their own colour
    toggle = page.locator("#proposals-uncertainty")
    expect(toggle).to_be_enabled()
    expect(toggle).not_to_be_checked()
    expect(page.locator("#uncertainty-layer")).to_be_hidden()
    assert page.evaluate(UNCERTAIN_PIXELS) == 0
    toggle.check()
    expect(page.locator("#uncertainty-layer")).to_be_visible()
    expect(page.locator("#viewer")).to_have_attribute("data-uncertainty", "shown")
    page.wait_for_function(f"({UNCERTAIN_PIXELS})() > 200")
    shown = page.evaluate(UNCERTAIN_PIXELS)
    assert page.evaluate(MODEL_PIXELS) > 100  # the proposals are still drawn over it
    rows = page.evaluate(TOOLBAR_ROWS)
    assert 1 <= rows <= 2, f"the toolbar takes {rows} rows at 1366x768"
    for selector in ("#viewport", "#submit", "#proposals-uncertainty", "#proposal-sort"):
        b = page.locator(selector).bounding_box()
        assert b is not None and b["x"] + b["width"] <= 1366 and b["y"] + b["height"] <= 768, selector
    page.screenshot(path=str(SHOTS / "uncertainty-on-1366x768.png"))

    # another image, another map: the most uncertain proposal (image 3) is larger on screen
    row(page, proposals["reject"]).locator(".go").click()
    expect(page.locator("#ov-slice")).to_have_text("3 / 4")
    page.wait_for_function(f"({UNCERTAIN_PIXELS})() > 0")
    assert page.evaluate(UNCERTAIN_PIXELS) != shown

    # sorted by uncertainty: the Nodule proposals most unsure first
    page.select_option("#proposal-sort", "uncertainty")
    nodules = page.locator(f'#proposal-list ul[data-label="{proposals["accept"].label_id}"] li')
    expect(nodules).to_have_count(3)
    ids = [nodules.nth(k).get_attribute("data-proposal-id") for k in range(3)]
    assert ids == [str(proposals[k].pk) for k in ("reject", "accept", "edit")]
    page.screenshot(path=str(SHOTS / "uncertainty-sorted-1366x768.png"))
    page.select_option("#proposal-sort", "slice")
    ids = [nodules.nth(k).get_attribute("data-proposal-id") for k in range(3)]
    assert ids == [str(proposals[k].pk) for k in ("accept", "edit", "reject")]

    # a rejected proposal's map goes with it; unticked, the overlay goes
    row(page, proposals["reject"]).locator(".reject").click()
    expect(row(page, proposals["reject"])).to_have_count(0)
    page.wait_for_function(f"({UNCERTAIN_PIXELS})() === 0")
    page.locator("#proposal-list li .go").first.click()
    expect(page.locator("#ov-slice")).to_have_text("1 / 4")
    page.wait_for_function(f"({UNCERTAIN_PIXELS})() > 200")
    toggle.uncheck()
    expect(page.locator("#uncertainty-layer")).to_be_hidden()
    assert page.evaluate(MODEL_PIXELS) > 100


def test_without_maps_the_toggle_is_off_and_rows_show_the_score_only(
    page: Page,
    live_server: Any,
    preannotated: tuple[Any, dict[str, Any]],  # noqa: F811
) -> None:
    task, proposals = preannotated
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(row(page, proposals["accept"])).to_have_text("image 1 · 0.95AcceptEditReject")
    expect(page.locator("#proposals-uncertainty")).to_be_disabled()
    assert page.evaluate(UNCERTAIN_PIXELS) == 0
