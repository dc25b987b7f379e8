"""An ML engineer builds a dataset in Chromium: freeze, see the split chart, watch an export finish."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from playwright.sync_api import Page, expect

from datasets import services
from datasets.models import DatasetVersion, Export
from datasets.tests.conftest import labeled  # noqa: F401  (the fixture)
from tests.e2e.test_flows import SCREENSHOTS, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_ml_engineer_freezes_a_version_and_downloads_an_export(
    page: Page,
    live_server: Any,
    labeled: Any,  # noqa: F811
    cast: dict[str, Any],
) -> None:
    base = live_server.url
    log_in(page, base, "dave")
    page.goto(f"{base}/projects/{labeled['project'].pk}/")
    page.click("[data-nav=datasets]")
    page.fill("input[name=name]", "Lesion segmentation")
    page.click("text=Create dataset")
    expect(page.locator("h1")).to_have_text("Lesion segmentation")

    page.fill("input[name=note]", "first cut")
    page.fill("input[name=seed]", "11")
    expect(page.locator("input[name=label_source][value=consensus]")).to_be_checked()  # the default
    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"workbench-freeze-{width}.png"), full_page=True)
    page.click("button:text('Freeze')")
    expect(page.locator("[data-leakage=none]")).to_contain_text("all 6 patients checked")
    expect(page.locator("[data-label-source=consensus]")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "workbench-version-label-source.png"))
    version = page.locator(".version-id").inner_text()
    chart = page.locator("svg.split-chart")
    expect(chart).to_be_visible()
    counts = chart.locator("rect.bar[data-label=Lesion]").evaluate_all("bars => bars.map(b => +b.dataset.count)")
    assert sum(counts) == 6 and len(counts) == 3

    # A job the worker has not reached yet: the page polls it until the archive is ready.
    with mock.patch("datasets.tasks.export_build.delay"):
        export, _ = services.export_request(
            version=DatasetVersion.objects.get(pk=version), user=cast["dave"], export_format="dicom"
        )
    page.reload()
    row = page.locator(f"tr[data-export='{export.pk}']")
    expect(row).to_have_attribute("data-status", "queued")
    services.export_build(export_id=str(export.pk))
    expect(row).to_have_attribute("data-status", "done", timeout=10_000)
    with page.expect_download() as download:
        row.locator("a:text('Download')").click()
    data = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == Export.objects.get(pk=export.pk).sha256
