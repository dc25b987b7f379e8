"""The upload page sends files as resumable (tus) uploads and resumes after a dropped chunk."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect
from pydicom.uid import generate_uid

from anonymizer.models import IngestUpload, UploadState
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
