"""End-to-end flows in Chromium: upload and view, quarantine and audit, and a radiologist's limits."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pydicom.uid import generate_uid

from anonymizer import quarantine, services
from anonymizer.deid.tests.factory import make_ct
from anonymizer.models import IngestItem, ItemStatus
from workbench.models import Project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-staple"  # the root conftest's PASSWORD
SCREENSHOTS = Path("/tmp")  # noqa: S108 - screenshots for a person to look at, never committed


def ct_bytes(study_uid: str, number: int) -> bytes:
    ds = make_ct(patient_name="UPLOADER^ELEANOR", patient_id="E2E-0001", study_uid=study_uid)
    ds.InstanceNumber = number
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def upload_files(tmp_path: Path) -> list[Path]:
    """Two DICOM files and a zip of two more plus a note that is not DICOM (rejected)."""
    study_uid = generate_uid()
    paths = []
    for n in (1, 2):
        path = tmp_path / f"slice{n}.dcm"
        path.write_bytes(ct_bytes(study_uid, n))
        paths.append(path)
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dicom/slice3.dcm", ct_bytes(study_uid, 3))
        zf.writestr("dicom/slice4.dcm", ct_bytes(study_uid, 4))
        zf.writestr("dicom/readme.txt", "not an image")
    paths.append(archive)
    return paths


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_have_text(username)


def test_admin_uploads_and_views(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project, tmp_path: Path
) -> None:
    base = live_server.url
    log_in(page, base, "alice")
    page.goto(f"{base}/projects/{project_a.pk}/upload/")
    page.set_input_files("#pick-files", [str(p) for p in upload_files(tmp_path)])
    expect(page.locator("#selection")).to_contain_text("3 file(s)")
    page.click("#upload-start")

    expect(page.locator("#upload-percent")).to_have_text("100%")
    assert page.locator("#upload-progress").get_attribute("value") == "100"
    batch = page.locator(".batch")
    expect(batch).to_have_attribute("data-state", "finished")
    expect(batch.locator('[data-count="done"] b')).to_have_text("4")
    expect(batch.locator('[data-count="rejected"] b')).to_have_text("1")
    expect(batch.locator('[data-count="pending"] b')).to_have_text("0")
    expect(batch.locator("tbody tr")).to_have_count(5)
    expect(batch.locator("tr.status-rejected")).to_contain_text("not_dicom")
    page.screenshot(path=str(SCREENSHOTS / "workbench-upload.png"), full_page=True)

    page.click(".batch-link")
    expect(page.locator("h1")).to_contain_text("Batch")
    expect(page.locator('[data-count="done"] b')).to_have_text("4")

    page.goto(f"{base}/projects/{project_a.pk}/")
    thumbnails = page.locator(".series-tile img")
    expect(thumbnails).to_have_count(4)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.series-tile img')).every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(SCREENSHOTS / "workbench-project.png"), full_page=True)

    page.locator(".series-tile").first.click()
    image = page.locator(".slice:not([hidden]) img")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('.slice:not([hidden]) img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )


def quarantined_item(project: Project, user: Any) -> IngestItem:
    batch = services.batch_create(project=project, source="upload", user=user)
    item = IngestItem.objects.create(
        batch=batch,
        index=0,
        sha256="cd" * 32,
        size=10,
        status=ItemStatus.QUARANTINED,
        reason_code="verifier_leak",
        reason="Verification found identifying content.",
    )
    item.raw_path = quarantine.raw_store(path=f"raw/{batch.pk}/{item.pk}.bin", data=b"raw")
    item.save(update_fields=["raw_path"])
    return item


def test_compliance_discards_and_reads_audit(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project
) -> None:
    item = quarantined_item(project_a, cast["alice"])
    base = live_server.url
    log_in(page, base, "carol")
    page.goto(f"{base}/projects/{project_a.pk}/")
    page.click('[data-nav="quarantine"]')
    row = page.locator(f'tr[data-item="{item.pk}"]')
    expect(row).to_contain_text("verifier_leak")

    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Discard").click()
    expect(page.locator(".messages")).to_contain_text("was discarded")
    expect(row).to_have_count(0)
    assert dialogs and "cannot be undone" in dialogs[0]
    item.refresh_from_db()
    assert item.status == ItemStatus.DISCARDED

    page.click('[data-nav="audit"]')
    page.select_option("select[name=action]", "quarantine_discard")
    page.click("#audit-filters button[type=submit]")
    expect(page).to_have_url(f"{base}/projects/{project_a.pk}/audit/?action=quarantine_discard&actor=&since=&until=")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("carol")


def test_radiologist_sees_no_compliance_pages(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project
) -> None:
    base = live_server.url
    log_in(page, base, "bob")
    page.goto(f"{base}/projects/{project_a.pk}/")
    # The project page and Models (every member sees which models propose labels), nothing else.
    expect(page.locator(".project-nav a[data-nav]")).to_have_count(2)
    expect(page.locator('[data-nav="models"]')).to_have_count(1)
    for key in ("upload", "batches", "quarantine", "audit", "deid", "vault"):
        expect(page.locator(f'[data-nav="{key}"]')).to_have_count(0)
    response = page.goto(f"{base}/projects/{project_a.pk}/quarantine/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_dropped_files_go_in_bounded_batches(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Project
) -> None:
    base = live_server.url
    log_in(page, base, "alice")
    page.goto(f"{base}/projects/{project_a.pk}/upload/")
    dropped = page.evaluate_handle(
        """() => {
            const dt = new DataTransfer();
            for (let i = 0; i < 51; i++) dt.items.add(new File(["not dicom " + i], "note" + i + ".txt"));
            dt.items.add(new File(["hidden"], ".DS_Store"));
            return dt;
        }"""
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": dropped})
    expect(page.locator("#selection")).to_contain_text("51 file(s)")
    page.click("#upload-start")
    batches = page.locator(".batch")
    expect(batches).to_have_count(2)
    expect(batches.nth(0).locator('[data-count="rejected"] b')).to_have_text("50")
    expect(batches.nth(1).locator('[data-count="rejected"] b')).to_have_text("1")
    expect(page.locator("#upload-percent")).to_have_text("100%")
