"""Grow from seeds in the annotator: a click inside a lung and a Shift-click on the tissue beside
it give one saved, editable mask of that lung.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from annotations.geometry import rle_decode
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE, SIZE, open_viewer, saved, server_annotations
from tests.e2e.test_viewer_tools import click_pixel, ct, ct_task  # noqa: F401, F811  (fixtures)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SPACING = [0.7, 0.7]
LUNG = (round(0.32 * SIZE), round(0.40 * SIZE))  # inside the left lung (workbench.demo.phantom_slice), off the lesion
TISSUE = (SIZE // 2, round(0.40 * SIZE))  # the soft tissue between the lungs
LUNG_AREA = math.pi * (0.14 * SIZE) * (0.22 * SIZE)


def test_two_clicks_grow_one_editable_mask(page: Page, live_server: Any, ct_task: Any) -> None:  # noqa: F811
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{ct_task.pk}/")
    page.click('[data-tool="grow"]')
    expect(page.locator('button[data-tool="grow"]')).to_have_attribute("aria-pressed", "true")
    click_pixel(page, *LUNG, SPACING)
    page.keyboard.down("Shift")
    click_pixel(page, *TISSUE, SPACING)
    page.keyboard.up("Shift")
    expect(page.locator("#mask-layer[data-growing]")).to_have_count(0, timeout=10_000)
    expect(page.locator("#ann-list li")).to_have_count(1)
    saved(page)

    [mask] = server_annotations(ct_task)
    assert mask.label.kind == "mask" and mask.source == "human"
    grown = rle_decode(mask.geometry["rle"], SIZE, SIZE)
    assert grown[LUNG[1], LUNG[0]] and not grown[TISSUE[1], TISSUE[0]] and not grown[4, 4]
    assert 0.6 * LUNG_AREA <= grown.sum() <= 1.15 * LUNG_AREA  # the lung, not the body or the air
    assert grown[:, SIZE // 2 :].sum() == 0  # the other lung is not joined

    # it is an ordinary mask: the eraser edits it
    page.click('[data-tool="eraser"]')
    click_pixel(page, *LUNG, SPACING)
    saved(page)
    [edited] = server_annotations(ct_task)
    erased = rle_decode(edited.geometry["rle"], SIZE, SIZE)
    assert edited.pk == mask.pk and not erased[LUNG[1], LUNG[0]] and np.sum(erased) < grown.sum()
