"""The annotation task page as a reader uses it (issue 12): a locked task refuses edits and
never shows a refused save as saved; opening a task writes nothing; the page fits a 1366x768
screen; Submit asks first and can open the next case; people read labels, not codes.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_flows import SCREENSHOTS, log_in
from tests.e2e.test_viewer import BUNDLE, ct_series_files, drag, open_viewer, saved
from tests.e2e.test_viewer_editing import BOX, POLYGON, _task, stored
from tests.helpers import ingest
from workbench.models import Project, Series

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

# A line whose length in mm is not a round number: the server stores it unrounded, the page
# computes it to 0.01 mm; the old page took the difference for an edit on every open.
LINE = {"points": [[10.0, 10.0], [40.0, 41.0]]}


@pytest.fixture
def task(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Any:
    return _task(project_a, cast, run_tasks)


def writes_to_annotations(page: Page) -> list[str]:
    """Every request that would change an annotation, as "METHOD url", from now on."""
    seen: list[str] = []
    page.on(
        "request",
        lambda r: seen.append(f"{r.method} {r.url}") if "/api/annotations/" in r.url and r.method != "GET" else None,
    )
    return seen


def draw_box(page: Page, start: float = 0.30) -> None:
    page.keyboard.press("b")
    drag(page, [(start, start), (start + 0.15, start + 0.15)])


def submit_from_dialog(page: Page, button: str = "#submit-confirm") -> None:
    page.click("#submit")
    expect(page.locator("#submit-dialog")).to_be_visible()
    page.click(button)


def status_of(task: Any) -> str:
    task.refresh_from_db()
    return str(task.status)


# --- 1. a locked task refuses edits and never claims a refused save as saved ---------------------


def test_after_submit_drawing_is_refused_shown_as_locked_and_nothing_claimed_saved(
    page: Page, live_server: Any, task: Any
) -> None:
    from annotations.models import Annotation

    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    draw_box(page)
    expect(page.locator("#ann-list li")).to_have_count(1)
    saved(page)
    submit_from_dialog(page)
    expect(page.locator("#assignment-status")).to_have_attribute("data-status", "submitted")
    assert status_of(task) == "submitted"
    writes = writes_to_annotations(page)

    draw_box(page, 0.55)  # the shortcut and a drag: what a reader would try
    page.click('[data-tool="select"]')  # the drawing tools are gone; select is not an edit
    page.keyboard.press("Delete")
    page.keyboard.press("Control+z")
    page.wait_for_timeout(800)  # longer than the save debounce

    assert writes == [], "edits of a locked task were sent"
    expect(page.locator("#ann-list li")).to_have_count(1)
    expect(page.locator("#ann-count")).to_have_text("1")
    expect(page.locator("#assignment-status")).to_have_attribute("data-locked", "true")
    expect(page.locator("#assignment-status")).to_contain_text("Submitted")
    expect(page.locator("#assignment-status")).to_contain_text("locked")
    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "locked")
    expect(page.locator("#save-state")).not_to_contain_text("saved")
    expect(page.locator(".draw-tools").first).to_be_hidden()
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "readonly")
    assert Annotation.objects.filter(assignment=task).count() == 1
    page.screenshot(path=str(SCREENSHOTS / "workbench-annotator-locked.png"))


def test_a_save_the_server_refuses_as_locked_is_shown_as_not_saved(
    page: Page, live_server: Any, cast: dict[str, Any], task: Any
) -> None:
    from annotations import services
    from annotations.models import Annotation

    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    draw_box(page)
    saved(page)
    # Submitted elsewhere (another tab) while this page still thinks the task is open.
    services.assignment_submit(assignment=task, user=cast["bob"])
    refused: list[int] = []
    page.on(
        "response",
        lambda r: refused.append(r.status) if r.request.method == "POST" and "/api/annotations/" in r.url else None,
    )

    draw_box(page, 0.55)

    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "locked", timeout=10_000)
    expect(page.locator("#save-state")).to_contain_text("1 change not saved")
    assert refused == [409]
    # the refused box is not shown or counted as if it were stored
    expect(page.locator("#ann-list li")).to_have_count(1)
    expect(page.locator("#assignment-status")).to_have_attribute("data-status", "submitted")
    expect(page.locator("#assignment-status")).to_have_attribute("data-locked", "true")
    expect(page.locator("#viewer-message")).to_contain_text("submitted")
    page.wait_for_timeout(800)
    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "locked")
    assert Annotation.objects.filter(assignment=task).count() == 1
    page.screenshot(path=str(SCREENSHOTS / "workbench-annotator-refused.png"))


# --- 2. opening a task is read-only -----------------------------------------------------------


@pytest.mark.parametrize("status", ["returned", "todo"])
def test_opening_and_closing_a_task_writes_nothing(
    page: Page, live_server: Any, cast: dict[str, Any], task: Any, status: str
) -> None:
    from annotations.models import AnnotationRevision, Assignment

    stored(task, "box", BOX, cast)
    stored(task, "polygon", POLYGON, cast)
    stored(task, "line", LINE, cast)
    stored(task, "point", {"x": 30.0, "y": 70.0}, cast)
    Assignment.objects.filter(pk=task.pk).update(status=status)
    revisions = AnnotationRevision.objects.count()
    log_in(page, live_server.url, "bob")
    writes = writes_to_annotations(page)

    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(page.locator("#ann-list li")).to_have_count(4)
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    for i in range(1, 10):  # the pointer crosses every shape: highlights, no edits
        page.mouse.move(box["x"] + box["width"] * i / 10, box["y"] + box["height"] * i / 10, steps=4)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.wait_for_timeout(1_000)  # longer than the save debounce
    expect(page.locator("#save-state")).to_have_attribute("data-save-state", "saved")
    page.goto(f"{live_server.url}/worklist/")  # close the task

    assert writes == []
    assert AnnotationRevision.objects.count() == revisions
    assert status_of(task) == status


# --- 3. the page fits the screen --------------------------------------------------------------

TOOLBAR_ROWS = """() => new Set([...document.querySelectorAll('.viewer-toolbar > .group')]
    .filter(g => g.offsetParent !== null).map(g => Math.round(g.getBoundingClientRect().top))).size"""


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080), (1440, 900)])
def test_annotator_fits_the_screen_without_scrolling(
    page: Page, live_server: Any, cast: dict[str, Any], task: Any, width: int, height: int
) -> None:
    stored(task, "box", BOX, cast)
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    page.screenshot(path=str(SCREENSHOTS / f"workbench-annotator-{width}x{height}.png"))

    rows = page.evaluate(TOOLBAR_ROWS)
    assert 1 <= rows <= 2, f"the toolbar takes {rows} rows at {width}x{height}"
    if width >= 1920:
        assert rows == 1
    for selector in ("#viewport", "#ov-wl", "#save-state", "#submit"):
        b = page.locator(selector).bounding_box()
        assert b is not None, selector
        assert b["x"] >= 0 and b["y"] >= 0, selector
        assert b["x"] + b["width"] <= width and b["y"] + b["height"] <= height, f"{selector} is off screen: {b}"
    viewport = page.locator("#viewport").bounding_box()
    assert viewport is not None and viewport["height"] >= 0.7 * height - 120, "the image got small"
    expect(page.locator("#ov-wl")).to_have_text("W 400 L 40")
    scroll = page.evaluate("() => [document.documentElement.scrollHeight, window.innerHeight]")
    assert scroll[0] <= scroll[1], f"the page scrolls vertically: {scroll}"


# --- 4. Submit asks first, and can open the next case -----------------------------------------


@pytest.fixture
def three_tasks(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> list[Any]:
    from annotations import schemas, services
    from annotations.models import Priority

    with run_tasks():
        for _ in range(3):
            ingest(project_a, ct_series_files(), user=cast["alice"])
    schemas.label_schema_create(project=project_a, labels=schemas.DEFAULT_CHEST_LABELS, user=cast["alice"])
    out = []
    for series in Series.objects.filter(study__project=project_a).order_by("pk"):
        out.extend(services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"]))
    # the last one assigned is urgent: the worklist (and "open next") puts it before the older routine one
    services.assignment_set_priority(assignment=out[-1], priority=Priority.URGENT, user=cast["alice"])
    return out


def test_submit_asks_first_and_submit_and_open_next_goes_to_the_next_case(
    page: Page, live_server: Any, three_tasks: list[Any]
) -> None:
    first, routine, urgent = three_tasks
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{first.pk}/")

    page.click("#submit")
    expect(page.locator("#submit-dialog")).to_be_visible()
    expect(page.locator("#submit-dialog")).to_contain_text("locked")
    page.screenshot(path=str(SCREENSHOTS / "workbench-submit-dialog.png"))
    page.click("#submit-cancel")
    expect(page.locator("#submit-dialog")).to_be_hidden()
    assert status_of(first) == "todo", "Cancel submitted the task"

    submit_from_dialog(page, "#submit-next")
    page.wait_for_url(f"**/assignments/{urgent.pk}/", timeout=10_000)  # urgent before the older routine case
    page.wait_for_selector("#viewer[data-loaded]", timeout=20_000)
    assert status_of(first) == "submitted"
    submit_from_dialog(page, "#submit-next")
    page.wait_for_url(f"**/assignments/{routine.pk}/", timeout=10_000)
    page.wait_for_selector("#viewer[data-loaded]", timeout=20_000)
    second = routine

    # the last open case: it says there is none, and links back to the worklist
    submit_from_dialog(page, "#submit-next")
    expect(page.locator("#viewer-message")).to_have_attribute("data-next", "none")
    expect(page.locator("#viewer-message")).to_contain_text("no other open assignment")
    expect(page.locator("#viewer-message a")).to_have_attribute("href", "/worklist/")
    assert page.url.endswith(f"/assignments/{second.pk}/")
    assert status_of(second) == "submitted"


# --- 5. labels, not codes ---------------------------------------------------------------------


def test_the_task_page_shows_labels_not_codes(page: Page, live_server: Any, cast: dict[str, Any], task: Any) -> None:
    from annotations.models import Assignment

    stored(task, "box", BOX, cast)
    Assignment.objects.filter(pk=task.pk).update(status="in_progress")
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(page.locator("#assignment-status")).to_have_text("In progress")
    options = page.locator("#label-picker option").all_inner_texts()
    assert any("Image classification" in o for o in options), options
    assert "Lesion · Box · image 1" in page.locator("#ann-list li").first.inner_text()
    shown = page.locator("#viewer").inner_text()
    for code in ("in_progress", "classification_image", "classification_series"):
        assert code not in shown

    page.goto(f"{live_server.url}/worklist/")
    worklist = page.locator("table.worklist").inner_text()
    assert "In progress" in worklist and "in_progress" not in worklist
