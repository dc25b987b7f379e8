"""The quality, review and dataset pages at 1366x768 and 1920x1080: no sideways scroll,
the words the fixes promise are on screen. Screenshots go to $WB_SCREENSHOTS when set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from annotations import services as annotation_services
from datasets import services as dataset_services
from datasets.tests.conftest import labeled  # noqa: F401  (the fixture)
from tests.annotation_factory import label_id, make_schema, make_series, sop_uids
from tests.e2e.test_flows import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SIZES = [(1366, 768), (1920, 1080)]


def _look(page: Page, name: str) -> None:
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, width, overflow)
        folder = os.environ.get("WB_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=f"{folder}/{name}-{width}x{height}.png", full_page=True)


def test_quality_and_review_pages(page: Page, live_server: Any, cast: dict[str, Any], project_a: Any) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a)
    reads = annotation_services.assignment_create(
        series=series, readers=[cast["bob"], cast["erin"]], user=cast["alice"]
    )
    annotation_services.annotation_create(
        assignment=reads[0],
        user=reads[0].reader,
        label=schema.labels.get(pk=label_id(schema, "Lesion")),
        sop_instance_uid=sop_uids(series)[0],
        geometry={"x0": 0, "y0": 0, "x1": 3, "y1": 3},
    )
    for read in reads:
        annotation_services.assignment_submit(assignment=read, user=read.reader)
    erin_read = next(r for r in reads if r.reader == cast["erin"])
    annotation_services.assignment_accept(assignment=erin_read, user=cast["alice"])
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/projects/{project_a.pk}/quality/")
    expect(page.locator("tr[data-label=Lesion] .not-comparable")).to_have_text("not comparable")
    _look(page, "quality")
    page.goto(f"{live_server.url}/projects/{project_a.pk}/review/")
    expect(page.locator("table.decided tr[data-decision=accepted]")).to_contain_text("alice")
    _look(page, "review")


def test_dataset_page(page: Page, live_server: Any, labeled: Any, cast: dict[str, Any]) -> None:  # noqa: F811
    dataset = dataset_services.dataset_create(
        project=labeled["project"], user=cast["dave"], name="Lesions", selection={"statuses": ["accepted"]}
    )
    dataset_services.version_freeze(
        dataset=dataset,
        user=cast["dave"],
        split={"seed": 3, "ratios": {"train": 0.5, "validation": 0.25, "test": 0.25}},
    )
    log_in(page, live_server.url, "dave")
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    chart = page.locator("svg.split-chart")
    expect(chart.locator("text.axis-title")).to_have_text("Annotations")
    expect(chart.locator("text.group-count").first).to_be_visible()
    # Only the chosen format's options show (exports.js).
    page.select_option("select[name=format]", "nnunet")
    expect(page.locator("fieldset[data-option=dataset_id]")).to_be_visible()
    expect(page.locator("fieldset[data-option=frames]")).to_be_hidden()
    page.select_option("select[name=format]", "yolo")
    expect(page.locator("fieldset[data-option=task]")).to_be_visible()
    expect(page.locator("fieldset[data-option=dataset_id]")).to_be_hidden()
    _look(page, "dataset")


def test_worklist_page(page: Page, live_server: Any, cast: dict[str, Any], project_a: Any) -> None:
    from annotations.models import Priority

    for priority in (Priority.ROUTINE, Priority.URGENT, Priority.HIGH):
        annotation_services.assignment_create(
            series=make_series(project_a), readers=[cast["bob"]], user=cast["alice"], priority=priority
        )
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/worklist/")
    expect(page.locator("table.worklist tbody tr").first).to_have_attribute("data-priority", str(Priority.URGENT))
    _look(page, "worklist")
    page.select_option("select[name=priority]", "high")
    page.click("form.worklist-filters button[type=submit]")
    expect(page.locator("table.worklist tbody tr")).to_have_count(2)
    page.click("th a:text('Assigned')")  # newest first: the high one was assigned last
    expect(page.locator("table.worklist tbody tr").first).to_have_attribute("data-priority", str(Priority.HIGH))
    _look(page, "worklist-filtered")
