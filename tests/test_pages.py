"""Server-rendered pages: who may see what, the quarantine and vault forms, and no PHI in any page.

The cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML
engineer, erin reviewer, all in project A; charlie is an outsider.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from anonymizer import quarantine, services
from anonymizer.deid.tests.factory import make_ct
from anonymizer.intake import incoming_from_upload
from anonymizer.models import IngestBatch, IngestItem, ItemStatus
from workbench.audit import audit_record
from workbench.models import AuditEvent, Instance, Project

PROJECT_A_MEMBERS = ("alice", "bob", "carol", "dave", "erin")
COMPLIANCE = {"alice", "carol"}

# Identifying values planted in the ingested file (and its upload name); none may reach a page.
PLANTED_NAME = "PLANTEDNAME^SECRETA"
PLANTED = (
    "PLANTEDNAME",
    "SECRETA",
    "PLANTID-90210",
    "Wallaby",
    "555-0134-777",
    "MRN-998877",
    "ACC20240001",
    "Saint Example Hospital",
    "GREGORY",
    "SN-4455-XYZ",
    "CTSTATION01",
    "19280305",
    "HOSPITAL_PACS",
    "upload-of-secreta.dcm",
)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Six users per test: the default hasher would spend most of the suite's time hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def dicom_bytes(**kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    make_ct(**kwargs).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def as_user(cast: dict[str, Any]) -> Callable[[str], Client]:
    def make(name: str) -> Client:
        client = Client()
        client.force_login(cast[name])
        return client

    return make


@pytest.fixture
def ingested(cast: dict[str, Any], project_a: Project, run_tasks: Any) -> dict[str, Any]:
    """One synthetic CT with planted PHI, uploaded by alice and de-identified."""
    raw = dicom_bytes(patient_name=PLANTED_NAME, patient_id="PLANTID-90210")
    with run_tasks():
        batch = services.batch_create(project=project_a, source="upload", user=cast["alice"])
        services.batch_add(batch=batch, incoming=incoming_from_upload("upload-of-secreta.dcm", io.BytesIO(raw)))
    instance = Instance.objects.select_related("series__study").get()
    return {
        "batch": batch,
        "instance": instance,
        "series": instance.series,
        "study": instance.series.study,
        "original_uids": _original_uids(raw),
    }


def _original_uids(raw: bytes) -> list[str]:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(raw))
    return [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]


@pytest.fixture
def quarantined(cast: dict[str, Any], project_a: Project) -> IngestItem:
    """A quarantined item holding a valid file (so that re-processing can succeed)."""
    batch = services.batch_create(project=project_a, source="upload", user=cast["alice"])
    item = IngestItem.objects.create(
        batch=batch,
        index=0,
        sha256="ab" * 32,
        size=10,
        status=ItemStatus.QUARANTINED,
        reason_code="verifier_leak",
        reason="Verification found identifying content.",
    )
    item.raw_path = quarantine.raw_store(path=f"raw/{batch.pk}/{item.pk}.bin", data=dicom_bytes())
    item.save(update_fields=["raw_path"])
    return item


def page_urls(project: Project, objects: dict[str, Any]) -> dict[str, str]:
    """Every page, by name -> URL."""
    p = project.pk
    return {
        "project": f"/projects/{p}/",
        "series": f"/series/{objects['series'].pk}/",
        "upload": f"/projects/{p}/upload/",
        "batches": f"/projects/{p}/batches/",
        "batch": f"/batches/{objects['batch'].pk}/",
        "quarantine": f"/projects/{p}/quarantine/",
        "audit": f"/projects/{p}/audit/",
        "deid-report": f"/projects/{p}/deid-report/",
        "deid-download": f"/projects/{p}/deid-report/download/?format=csv",
        "study-report": f"/studies/{objects['study'].pk}/deid-report/",
        "vault": f"/projects/{p}/vault/",
    }


ALLOWED = {
    "project": set(PROJECT_A_MEMBERS),
    "series": set(PROJECT_A_MEMBERS),
    "upload": COMPLIANCE,
    "batches": COMPLIANCE,
    "batch": COMPLIANCE,
    "quarantine": COMPLIANCE,
    "audit": COMPLIANCE,
    "deid-report": COMPLIANCE,
    "deid-download": COMPLIANCE,
    "study-report": COMPLIANCE,
    "vault": {"carol"},
}


@pytest.mark.parametrize("page", sorted(ALLOWED))
def test_page_answers_by_role(page: str, as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    url = page_urls(project_a, ingested)[page]
    for name in PROJECT_A_MEMBERS:
        expected = 200 if name in ALLOWED[page] else 403
        assert as_user(name).get(url).status_code == expected, (page, name)


@pytest.mark.parametrize("page", sorted(ALLOWED))
def test_page_hides_from_outsider(page: str, as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    response = as_user("charlie").get(page_urls(project_a, ingested)[page])
    assert response.status_code == 404
    assert b"does not exist, or you are not a member" in response.content


@pytest.mark.parametrize("page", sorted(ALLOWED))
def test_page_requires_login(page: str, client: Client, project_a: Project, ingested: dict[str, Any]) -> None:
    response = client.get(page_urls(project_a, ingested)[page])
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_radiologist_gets_friendly_403(as_user: Any, project_a: Project) -> None:
    response = as_user("bob").get(f"/projects/{project_a.pk}/quarantine/")
    assert response.status_code == 403
    assert b"Your role in this project does not allow this page" in response.content


@pytest.mark.parametrize(
    ("name", "links"),
    [
        ("alice", ["studies", "upload", "batches", "quarantine", "audit", "deid"]),
        ("carol", ["studies", "upload", "batches", "quarantine", "audit", "deid", "vault"]),
        ("bob", ["studies"]),
        ("dave", ["studies"]),
        ("erin", ["studies"]),
    ],
)
def test_navigation_shows_only_allowed_links(name: str, links: list[str], as_user: Any, project_a: Project) -> None:
    html = as_user(name).get(f"/projects/{project_a.pk}/").content.decode()
    shown = [
        key
        for key in ("studies", "upload", "batches", "quarantine", "audit", "deid", "vault")
        if f'data-nav="{key}"' in html
    ]
    assert shown == links
    assert 'data-nav="studies" aria-current="page"' in html


def test_study_report_link_only_for_compliance(as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    link = f"/studies/{ingested['study'].pk}/deid-report/"
    assert link in as_user("carol").get(f"/projects/{project_a.pk}/").content.decode()
    assert link not in as_user("bob").get(f"/projects/{project_a.pk}/").content.decode()


def test_project_page_shows_thumbnail(as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    html = as_user("bob").get(f"/projects/{project_a.pk}/").content.decode()
    assert f"/api/instances/{ingested['instance'].pk}/render.png?size=128" in html


def test_upload_page_carries_endpoints_and_csrf(as_user: Any, project_a: Project) -> None:
    html = as_user("alice").get(f"/projects/{project_a.pk}/upload/").content.decode()
    assert f'data-endpoint="/api/projects/{project_a.pk}/batches/"' in html
    assert "webkitdirectory" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "frontend/upload.js" in html


def test_batch_page_shows_results_not_names(as_user: Any, ingested: dict[str, Any]) -> None:
    batch: IngestBatch = ingested["batch"]
    item = batch.items.get()
    html = as_user("carol").get(f"/batches/{batch.pk}/").content.decode()
    assert item.sha256[:12] in html
    assert "De-identified" in html
    assert "upload-of-secreta" not in html
    assert f"/series/{ingested['series'].pk}/" in html


def test_batches_list_counts(
    as_user: Any, project_a: Project, ingested: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = as_user("alice")
    with django_assert_max_num_queries(12):
        html = client.get(f"/projects/{project_a.pk}/batches/").content.decode()
    assert f"/batches/{ingested['batch'].pk}/" in html


def test_study_report_lists_actions_not_values(as_user: Any, ingested: dict[str, Any]) -> None:
    html = as_user("carol").get(f"/studies/{ingested['study'].pk}/deid-report/").content.decode()
    assert "PatientName" in html
    assert "(0010,0010)" in html
    assert "Verifier" in html and "passed" in html
    assert "PLANTEDNAME" not in html


# --- quarantine ----------------------------------------------------------------------------------


def test_quarantine_page_lists_items_with_buttons_for_compliance(
    as_user: Any, project_a: Project, quarantined: IngestItem
) -> None:
    url = f"/projects/{project_a.pk}/quarantine/"
    html = as_user("carol").get(url).content.decode()
    assert "verifier_leak" in html and "Verification found identifying content." in html
    assert f"/quarantine/{quarantined.pk}/discard/" in html
    assert "data-confirm=" in html
    admin_html = as_user("alice").get(url).content.decode()
    assert "verifier_leak" in admin_html
    assert f"/quarantine/{quarantined.pk}/discard/" not in admin_html


def test_discard_through_page(as_user: Any, project_a: Project, quarantined: IngestItem) -> None:
    response = as_user("carol").post(f"/quarantine/{quarantined.pk}/discard/", follow=True)
    assert response.redirect_chain[-1][0] == f"/projects/{project_a.pk}/quarantine/"
    assert b"was discarded" in response.content
    quarantined.refresh_from_db()
    assert quarantined.status == ItemStatus.DISCARDED and quarantined.raw_path == ""
    assert AuditEvent.objects.filter(action="quarantine_discard", actor_name="carol").exists()


def test_reprocess_through_page(as_user: Any, quarantined: IngestItem, run_tasks: Any) -> None:
    with run_tasks():
        response = as_user("carol").post(f"/quarantine/{quarantined.pk}/reprocess/")
    assert response.status_code == 302
    quarantined.refresh_from_db()
    assert quarantined.status == ItemStatus.DONE
    assert AuditEvent.objects.filter(action="quarantine_reprocess", actor_name="carol").exists()


def test_discarding_twice_shows_error(as_user: Any, quarantined: IngestItem) -> None:
    client = as_user("carol")
    client.post(f"/quarantine/{quarantined.pk}/discard/")
    response = client.post(f"/quarantine/{quarantined.pk}/discard/", follow=True)
    assert b"Only quarantined items can be discarded." in response.content


@pytest.mark.parametrize(("name", "status"), [("alice", 403), ("bob", 403), ("dave", 403), ("charlie", 404)])
def test_only_compliance_may_act(name: str, status: int, as_user: Any, quarantined: IngestItem) -> None:
    for action in ("discard", "reprocess"):
        assert as_user(name).post(f"/quarantine/{quarantined.pk}/{action}/").status_code == status
    quarantined.refresh_from_db()
    assert quarantined.status == ItemStatus.QUARANTINED


def test_quarantine_actions_need_post(as_user: Any, quarantined: IngestItem) -> None:
    assert as_user("carol").get(f"/quarantine/{quarantined.pk}/discard/").status_code == 405


def test_quarantine_actions_need_csrf(cast: dict[str, Any], quarantined: IngestItem) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["carol"])
    assert client.post(f"/quarantine/{quarantined.pk}/discard/").status_code == 403
    quarantined.refresh_from_db()
    assert quarantined.status == ItemStatus.QUARANTINED


# --- audit log and report downloads ----------------------------------------------------------------


def test_audit_filters_by_action(as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    url = f"/projects/{project_a.pk}/audit/"
    html = as_user("carol").get(url, {"action": "deidentified"}).content.decode()
    assert "<code>deidentified</code>" in html
    assert "<code>ingest_batch_created</code>" not in html
    assert '<option value="ingest_batch_created">' in html
    assert as_user("carol").get(url, {"actor": "nobody"}).content.decode().count("<td><code>") == 0


def test_audit_filters_by_dates(as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    url = f"/projects/{project_a.pk}/audit/"
    assert b"No events match" in as_user("carol").get(url, {"until": "2000-01-01"}).content
    assert b"No events match" not in as_user("carol").get(url, {"since": "2000-01-01"}).content
    today = timezone.now().date().isoformat()
    assert b"No events match" not in as_user("carol").get(url, {"since": today, "until": today}).content
    response = as_user("carol").get(url, {"since": "yesterday"})
    assert response.status_code == 400
    assert b"Use a date like 2026-01-31" in response.content


def test_audit_paginates_and_keeps_filters(as_user: Any, project_a: Project) -> None:
    for n in range(60):
        audit_record(action="test_event", project=project_a, object_type="test", object_id=n)
    url = f"/projects/{project_a.pk}/audit/"
    html = as_user("carol").get(url, {"action": "test_event"}).content.decode()
    assert "Page 1 of 2" in html
    assert "?action=test_event&amp;page=2" in html
    assert "Page 2 of 2" in as_user("carol").get(url, {"action": "test_event", "page": 2}).content.decode()


@pytest.mark.parametrize(("fmt", "content_type"), [("csv", "text/csv"), ("json", "application/json")])
def test_report_download_is_audited(
    fmt: str, content_type: str, as_user: Any, project_a: Project, ingested: dict[str, Any]
) -> None:
    response = as_user("carol").get(f"/projects/{project_a.pk}/deid-report/download/", {"format": fmt})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert f"deid-report-alpha.{fmt}" in response["Content-Disposition"]
    assert ingested["instance"].sop_uid in response.content.decode()
    event = AuditEvent.objects.get(action="report_downloaded")
    assert event.actor_name == "carol" and event.details == {"format": fmt, "rows": 1}


def test_report_download_rejects_unknown_format(as_user: Any, project_a: Project) -> None:
    assert as_user("carol").get(f"/projects/{project_a.pk}/deid-report/download/?format=xml").status_code == 400
    assert not AuditEvent.objects.filter(action="report_downloaded").exists()


# --- identity vault ------------------------------------------------------------------------------


def test_vault_requires_reason(as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    pseudonym = ingested["study"].patient.pseudo_id
    response = as_user("carol").post(f"/projects/{project_a.pk}/vault/", {"pseudonym": pseudonym, "reason": ""})
    assert response.status_code == 400
    assert b"This field is required." in response.content
    assert PLANTED_NAME.encode() not in response.content
    short = as_user("carol").post(f"/projects/{project_a.pk}/vault/", {"pseudonym": pseudonym, "reason": "why"})
    assert short.status_code == 400
    assert not AuditEvent.objects.filter(action="vault_lookup").exists()


def test_vault_lookup_reveals_once_and_is_audited(as_user: Any, project_a: Project, ingested: dict[str, Any]) -> None:
    client = as_user("carol")
    url = f"/projects/{project_a.pk}/vault/"
    pseudonym = ingested["study"].patient.pseudo_id
    response = client.post(url, {"pseudonym": pseudonym, "reason": "Incidental finding follow-up, ticket 42"})
    assert response.status_code == 200
    assert PLANTED_NAME.encode() in response.content
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.get(action="vault_lookup")
    assert event.actor_name == "carol"
    assert event.details == {"reason": "Incidental finding follow-up, ticket 42", "found": True}
    assert PLANTED_NAME.encode() not in client.get(url).content


def test_vault_unknown_pseudonym_shows_error(as_user: Any, project_a: Project) -> None:
    response = as_user("carol").post(
        f"/projects/{project_a.pk}/vault/", {"pseudonym": "NOSUCH", "reason": "Checking a pseudonym from a paper"}
    )
    assert response.status_code == 200
    assert b"No identity is recorded for this pseudonym" in response.content
    assert AuditEvent.objects.get(action="vault_lookup").details["found"] is False


def test_vault_closed_to_admin(as_user: Any, project_a: Project) -> None:
    response = as_user("alice").post(
        f"/projects/{project_a.pk}/vault/", {"pseudonym": "X", "reason": "I am an admin, let me look"}
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="vault_lookup").exists()


# --- no PHI anywhere -----------------------------------------------------------------------------


def test_no_planted_value_appears_in_any_page(
    as_user: Any, project_a: Project, ingested: dict[str, Any], quarantined: IngestItem
) -> None:
    urls = list(page_urls(project_a, ingested).values())
    urls += [f"/projects/{project_a.pk}/deid-report/download/?format=json", "/"]
    forbidden = [*PLANTED, *ingested["original_uids"]]
    for name in ("carol", "alice", "bob"):
        client = as_user(name)
        for url in urls:
            response = client.get(url)
            if response.status_code != 200:
                continue
            body = response.content.decode()
            leaked = [value for value in forbidden if value in body]
            assert not leaked, (name, url, leaked)
