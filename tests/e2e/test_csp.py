"""The Content-Security-Policy in Chromium: the viewer (Cornerstone3D, its web workers and
WebAssembly codecs) and the main pages work under it with no violation and no console error.

A violation is caught three ways: the page's ``securitypolicyviolation`` events, the
console's "Refused to ..." errors (workers' violations land there), and page errors.
Screenshots at 1366x768 go to /tmp for a person to look at.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_flows import SCREENSHOTS, log_in
from tests.e2e.test_viewer import BUNDLE, canvas_state, ct_series_files, draw_box_polygon_brush, open_viewer, saved
from tests.helpers import ingest
from workbench.models import Project, Series

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]


@pytest.fixture
def series(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> Series:
    """The viewer tests' synthetic chest CT (the demo's phantom), four slices."""
    with run_tasks():
        ingest(project_a, ct_series_files(), user=cast["alice"])
    return Series.objects.get(study__project=project_a)


@pytest.fixture
def assignment(project_a: Project, cast: dict[str, Any], series: Series) -> Any:
    from annotations import schemas, services

    schemas.label_schema_create(project=project_a, labels=schemas.DEFAULT_CHEST_LABELS, user=cast["alice"])
    [assigned] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    return assigned


LISTEN = """() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(
        `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`));
}"""


class Problems:
    """Everything a page reported that would mean the policy broke it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.set_viewport_size({"width": 1366, "height": 768})
        page.add_init_script(f"({LISTEN})()")
        page.on("console", self._console)
        page.on("response", self._response)
        page.on("pageerror", lambda exc: self.console.append(f"page error: {exc}"))
        page.on("worker", lambda worker: worker.on("console", self._worker_console))

    def _console(self, msg: Any) -> None:
        # A failed load is reported with its URL by _response (Chromium's own favicon.ico
        # request 404s and is no part of any page).
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.console.append(msg.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.console.append(f"{response.status} {response.url}")

    def _worker_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.console.append(f"worker: {msg.text}")

    def assert_none(self, where: str) -> None:
        violations = self.page.evaluate("window.__violations || []")
        assert violations == [], f"{where}: CSP violations {violations}"
        assert self.console == [], f"{where}: console errors {self.console}"


def test_every_page_sends_the_policy(client: Any, cast: dict[str, Any]) -> None:
    client.force_login(cast["alice"])
    policy = client.get("/").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"  # nothing inline, no eval
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "Content-Security-Policy" in client.get("/login/").headers


def test_viewer_renders_under_the_policy(page: Page, live_server: Any, series: Series) -> None:
    problems = Problems(page)
    log_in(page, live_server.url, "bob")
    url = f"{live_server.url}/series/{series.pk}/view/"
    assert "'wasm-unsafe-eval'" in page.request.get(url).headers["content-security-policy"]
    open_viewer(page, url)
    _, lit = canvas_state(page)
    assert lit > 1000, "the image was not drawn"
    page.locator("#viewport").hover()
    page.mouse.wheel(0, 120)  # the next slice, decoded by the worker
    expect(page.locator("#ov-slice")).to_have_text("2 / 4")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOTS / "workbench-csp-viewer.png"))
    problems.assert_none("series viewer")


def test_annotation_tools_work_under_the_policy(page: Page, live_server: Any, assignment: Any) -> None:
    problems = Problems(page)
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{assignment.pk}/")
    draw_box_polygon_brush(page)
    saved(page)
    _, lit = canvas_state(page)
    assert lit > 1000, "the image was not drawn"
    page.screenshot(path=str(SCREENSHOTS / "workbench-csp-annotate.png"))
    problems.assert_none("annotation task")


def test_main_pages_under_the_policy(page: Page, live_server: Any, project_a: Project, series: Series) -> None:
    problems = Problems(page)
    page.goto(f"{live_server.url}/login/")
    problems.assert_none("login")
    log_in(page, live_server.url, "alice")
    pages = [
        "/",
        f"/projects/{project_a.pk}/",
        f"/projects/{project_a.pk}/upload/",
        f"/projects/{project_a.pk}/batches/",
        f"/projects/{project_a.pk}/quarantine/",
        f"/projects/{project_a.pk}/audit/",
        f"/projects/{project_a.pk}/deid-report/",
        f"/projects/{project_a.pk}/settings/",
        f"/projects/{project_a.pk}/vocabulary/",
        f"/projects/{project_a.pk}/assignments/",
        f"/projects/{project_a.pk}/quality/",
        f"/projects/{project_a.pk}/datasets/",
        f"/series/{series.pk}/",
        "/worklist/",
    ]
    for path in pages:
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert "content-security-policy" in response.headers, path
        page.wait_for_load_state("networkidle")
        problems.assert_none(path)
    page.goto(f"{live_server.url}/projects/{project_a.pk}/upload/")
    page.screenshot(path=str(SCREENSHOTS / "workbench-csp-upload.png"))
    problems.assert_none("upload")


@pytest.mark.parametrize(("path", "shown"), [("/api/docs/", ".opblock"), ("/api/redoc/", "h1")])
def test_api_docs_render_under_the_policy(page: Page, live_server: Any, path: str, shown: str) -> None:
    """Swagger UI and ReDoc inject their styles at run time: the docs pages allow inline styles
    (and only those pages), and their scripts still come from this origin."""
    problems = Problems(page)
    response = page.goto(live_server.url + path)
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self' 'wasm-unsafe-eval'" in policy
    expect(page.locator(shown).first).to_be_visible(timeout=15_000)
    page.wait_for_load_state("networkidle")
    # ReDoc's footer links Redocly's logo from its CDN: blocked by img-src, as any CDN must be.
    violations = [v for v in page.evaluate("window.__violations") if "cdn.redoc.ly" not in v]
    assert violations == [], violations
    assert [c for c in problems.console if "cdn.redoc.ly" not in c] == [], problems.console


def test_only_the_docs_pages_allow_inline_styles(client: Any) -> None:
    policy = client.get("/login/")["Content-Security-Policy"]
    assert "style-src 'self';" in policy + ";" and "unsafe-inline'" not in policy.split("style-src-attr")[0]
