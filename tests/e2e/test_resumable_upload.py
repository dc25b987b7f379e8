"""The upload page sends files as resumable (tus) uploads and resumes after a dropped chunk."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect
from pydicom.uid import generate_uid

from anonymizer import uploads
from anonymizer.models import IngestItem, IngestUpload, UploadState
from tests.e2e.test_flows import ct_bytes, log_in
from workbench.models import Project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_upload_resumes_after_a_dropped_chunk(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project, tmp_path: Path
) -> None:
    study_uid = generate_uid()
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("study/slice1.dcm", ct_bytes(study_uid, 1))
        zf.writestr("study/slice2.dcm", ct_bytes(study_uid, 2))
        zf.writestr("study/padding.bin", os.urandom(6 * 1024 * 1024))  # two chunks of 4 MB
    seen: list[str] = []

    def drop_second_chunk(route: Route) -> None:
        method = route.request.method
        seen.append(method)
        if method == "PATCH" and seen.count("PATCH") == 2:
            route.abort("connectionreset")
        else:
            route.continue_()

    base = live_server.url
    log_in(page, base, "alice")
    page.goto(f"{base}/projects/{project_a.pk}/upload/")
    page.route("**/api/uploads/**", drop_second_chunk)
    page.set_input_files("#pick-files", [str(archive)])
    page.click("#upload-start")

    expect(page.locator("#upload-percent")).to_have_text("100%", timeout=30_000)
    batch = page.locator(".batch")
    expect(batch).to_have_attribute("data-state", "finished", timeout=30_000)
    expect(batch.locator('[data-count="done"] b')).to_have_text("2")
    expect(batch.locator('[data-count="rejected"] b')).to_have_text("1")
    expect(page.locator("#upload-error")).to_be_hidden()
    assert seen.count("HEAD") >= 1, "the page asked the server for the offset"
    assert seen.count("PATCH") == 3, seen  # chunk 1, chunk 2 (dropped), chunk 2 again
    [upload] = IngestUpload.objects.all()
    assert upload.state == UploadState.EXPANDED and upload.offset == archive.stat().st_size


# --- resuming after a closed page (localStorage records, as tus-js-client keeps them) -----------

CHUNK = 4 * 1024 * 1024  # upload.js's chunk size
RECORDS = "() => Object.keys(localStorage).filter((k) => k.startsWith('workbench.upload-resume.'))"
# Every percentage the bar shows, from the first, so a test sees where it started.
WATCH_PERCENT = """() => {
    window.__percents = [];
    document.addEventListener('DOMContentLoaded', () => new MutationObserver(() =>
        window.__percents.push(document.getElementById('upload-percent').textContent)
    ).observe(document.getElementById('upload-percent'), {childList: true, characterData: true, subtree: true}));
}"""


def _study_zip(tmp_path: Path) -> Path:
    study_uid = generate_uid()
    archive = tmp_path / "Doe_Jane_study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("study/slice1.dcm", ct_bytes(study_uid, 1))
        zf.writestr("study/slice2.dcm", ct_bytes(study_uid, 2))
        zf.writestr("study/padding.bin", os.urandom(10 * 1024 * 1024))  # three chunks of 4 MB
    return archive


def _send_one_chunk_then_close(page: Page, base: str, project: Project, archive: Path) -> IngestUpload:
    """Start the upload, let its first chunk land, cut every later request off, close the page."""
    patches: list[str] = []

    def first_chunk_only(route: Route) -> None:
        if route.request.method == "PATCH":
            patches.append(route.request.url)
        if route.request.method == "PATCH" and len(patches) == 1:
            route.continue_()
        elif route.request.method in ("PATCH", "HEAD"):
            route.abort("connectionreset")
        else:
            route.continue_()

    log_in(page, base, "alice")
    page.goto(f"{base}/projects/{project.pk}/upload/")
    page.route("**/api/uploads/**", first_chunk_only)
    page.set_input_files("#pick-files", [str(archive)])
    page.click("#upload-start")
    for _ in range(200):  # the page sends chunks one after another: a second means the first landed
        if len(patches) >= 2:
            break
        page.wait_for_timeout(50)
    [upload] = IngestUpload.objects.all()
    assert upload.offset == CHUNK and upload.state == UploadState.RECEIVING
    [key] = page.evaluate(RECORDS)
    record = page.evaluate("(k) => localStorage.getItem(k)", key)
    assert str(upload.pk) in record and str(upload.batch_id) in record
    assert archive.name not in key + record, "no file name is stored in the clear"
    page.close()  # a crash: no beforeunload, nothing finished
    return upload


def _api_requests(page: Page) -> list[tuple[str, str, str | None]]:
    seen: list[tuple[str, str, str | None]] = []
    page.on(
        "request",
        lambda r: seen.append((r.method, r.url, r.headers.get("upload-offset"))) if "/api/" in r.url else None,
    )
    return seen


def test_upload_resumes_after_the_page_was_closed(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project, tmp_path: Path
) -> None:
    archive = _study_zip(tmp_path)
    base = live_server.url
    context = page.context
    upload = _send_one_chunk_then_close(page, base, project_a, archive)

    again = context.new_page()
    again.add_init_script(f"({WATCH_PERCENT})()")
    seen = _api_requests(again)
    again.goto(f"{base}/projects/{project_a.pk}/upload/")
    again.set_input_files("#pick-files", [str(archive)])
    again.click("#upload-start")

    expect(again.locator("#upload-percent")).to_have_text("100%", timeout=30_000)
    expect(again.locator("#upload-resumed")).to_contain_text("Resuming an earlier upload of this file")
    batch = again.locator(".batch")
    expect(batch).to_have_attribute("data-state", "finished", timeout=30_000)
    expect(batch).to_have_attribute("data-batch", str(upload.batch_id))
    expect(batch.locator('[data-count="done"] b')).to_have_text("2")
    expect(batch.locator('[data-count="rejected"] b')).to_have_text("1")
    expect(again.locator("#upload-error")).to_be_hidden()

    uploads_sent = [(m, offset) for m, url, offset in seen if "/uploads/" in url]
    assert not [m for m, _ in uploads_sent if m == "POST"], f"no new upload was created: {uploads_sent}"
    assert uploads_sent[0] == ("HEAD", None), uploads_sent
    assert [o for m, o in uploads_sent if m == "PATCH"] == [str(CHUNK), str(2 * CHUNK)], uploads_sent
    percents = [int(p.rstrip("%")) for p in again.evaluate("window.__percents")]
    assert percents[0] == round(100 * CHUNK / archive.stat().st_size), percents  # starts where it stopped
    assert percents == sorted(percents), percents

    [done] = IngestUpload.objects.all()
    assert done.pk == upload.pk and done.state == UploadState.EXPANDED and done.offset == archive.stat().st_size
    items = IngestItem.objects.filter(batch_id=upload.batch_id)
    assert items.count() == 3 and len(set(items.values_list("index", flat=True))) == 3
    assert again.evaluate(RECORDS) == [], "the record goes once the upload is complete"


def test_a_record_the_server_no_longer_knows_starts_a_fresh_upload(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project, tmp_path: Path
) -> None:
    archive = _study_zip(tmp_path)
    base = live_server.url
    context = page.context
    old = _send_one_chunk_then_close(page, base, project_a, archive)
    uploads.upload_terminate(upload=old)  # expired and swept, or deleted: HEAD answers 404

    again = context.new_page()
    seen = _api_requests(again)
    again.goto(f"{base}/projects/{project_a.pk}/upload/")
    again.set_input_files("#pick-files", [str(archive)])
    again.click("#upload-start")

    batch = again.locator(".batch")
    expect(batch).to_have_attribute("data-state", "finished", timeout=30_000)
    expect(batch.locator('[data-count="done"] b')).to_have_text("2")
    expect(again.locator("#upload-resumed")).to_be_hidden()
    methods = [m for m, url, _ in seen if "/uploads/" in url]
    assert methods[:2] == ["HEAD", "POST"] and methods.count("PATCH") == 3, methods
    [fresh] = IngestUpload.objects.all()
    assert fresh.pk != old.pk and fresh.state == UploadState.EXPANDED
    assert again.evaluate(RECORDS) == []


def test_records_older_than_the_server_expiry_are_dropped(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project
) -> None:
    base = live_server.url
    log_in(page, base, "alice")
    page.goto(f"{base}/projects/{project_a.pk}/upload/")
    assert page.get_attribute("#upload-form", "data-expiry-hours") == "24"
    day = 24 * 3600 * 1000
    page.evaluate(
        """(day) => {
        const record = (age) => JSON.stringify({url: location.origin + '/api/uploads/x/', batch: 'b',
                                                time: Date.now() - age});
        localStorage.setItem('workbench.upload-resume.old', record(day + 60000));
        localStorage.setItem('workbench.upload-resume.new', record(day - 60000));
        localStorage.setItem('unrelated', 'kept');
    }""",
        day,
    )
    page.reload()
    assert sorted(page.evaluate(RECORDS)) == ["workbench.upload-resume.new"]
    assert page.evaluate("localStorage.getItem('unrelated')") == "kept"
