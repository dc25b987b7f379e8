"""A project's own free-text vocabulary: only its compliance officer changes it, every change is
audited, and the words reach the engine through ``DeidOptions.extra_vocabulary``.

The cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer, all in project A; charlie is an outsider.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from anonymizer import services
from anonymizer.models import VocabularyTerm
from anonymizer.processing import recipe_sha256
from anonymizer.vocabulary import (
    VocabularyError,
    vocabulary_term_add,
    vocabulary_term_normalise,
    vocabulary_term_remove,
)
from tests.helpers import CT_SMALL, ingest
from workbench.audit import audit_verify
from workbench.models import AuditEvent, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_user(cast: dict[str, Any]) -> Any:
    def make(name: str) -> Client:
        client = Client()
        client.force_login(cast[name])
        return client

    return make


# --- the word itself -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("MPRAGE", "mprage"), ("  t1-flair ", "t1-flair"), ("b1000", "b1000"), ("3d", "3d"), ("Schädel", "schädel")],
)
def test_words_are_stored_normalised(raw: str, stored: str) -> None:
    assert vocabulary_term_normalise(raw) == stored


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "two words", "t1_flair", "dr.", "-t1", "t1-", "12345", "555-0134", "mrn-99887", "a" * 65, "x²", "a/b"],
)
def test_words_that_are_not_one_safe_token_are_refused(raw: str) -> None:
    with pytest.raises(VocabularyError):
        vocabulary_term_normalise(raw)


def test_longest_word_and_four_digits_are_accepted() -> None:
    assert vocabulary_term_normalise("a" * 64) == "a" * 64
    assert vocabulary_term_normalise("1234") == "1234"


# --- services ------------------------------------------------------------------------------------


def test_compliance_officer_adds_a_word_it_is_audited_and_reaches_the_options(
    cast: dict[str, Any], project_a: Project
) -> None:
    before = recipe_sha256(services.project_options(project_a))
    entry = vocabulary_term_add(project=project_a, user=cast["carol"], term="Ganzkörper")
    assert entry.term == "ganzkörper" and entry.added_by == cast["carol"]
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    options = services.project_options(project_a)
    assert options.extra_vocabulary == ("abdo", "ganzkörper")  # sorted: the recipe is stable
    assert recipe_sha256(options) != before
    event = AuditEvent.objects.filter(action="vocabulary_term_added").first()
    assert event is not None and event.actor_name == "carol" and event.project == project_a
    assert event.details["term"] == "ganzkörper" and len(event.details["recipe"]) == 64
    assert AuditEvent.objects.filter(action="vocabulary_term_added").count() == 2


def test_removing_a_word_is_audited_and_leaves_the_options(cast: dict[str, Any], project_a: Project) -> None:
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    vocabulary_term_remove(project=project_a, user=cast["carol"], term="ABDO")
    assert services.project_options(project_a).extra_vocabulary == ()
    event = AuditEvent.objects.get(action="vocabulary_term_removed")
    assert event.details["term"] == "abdo" and event.details["terms"] == 0
    with pytest.raises(VocabularyError):
        vocabulary_term_remove(project=project_a, user=cast["carol"], term="abdo")
    assert AuditEvent.objects.filter(action="vocabulary_term_removed").count() == 1


@pytest.mark.parametrize("name", ["alice", "bob", "dave", "erin", "charlie"])
def test_no_one_else_changes_the_vocabulary(name: str, cast: dict[str, Any], project_a: Project) -> None:
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    with pytest.raises(PermissionDenied):
        vocabulary_term_add(project=project_a, user=cast[name], term="thorax")
    with pytest.raises(PermissionDenied):
        vocabulary_term_remove(project=project_a, user=cast[name], term="abdo")
    assert list(VocabularyTerm.objects.values_list("term", flat=True)) == ["abdo"]
    assert AuditEvent.objects.filter(action__startswith="vocabulary_term").count() == 1


def test_a_word_is_added_once_per_project(cast: dict[str, Any], project_a: Project, project_b: Project) -> None:
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    with pytest.raises(VocabularyError, match="already"):
        vocabulary_term_add(project=project_a, user=cast["carol"], term="Abdo")
    assert services.project_options(project_b).extra_vocabulary == ()
    assert AuditEvent.objects.filter(action="vocabulary_term_added").count() == 1


def test_options_cannot_carry_a_vocabulary_of_their_own(cast: dict[str, Any], project_a: Project) -> None:
    """Only the compliance officer's table extends the vocabulary: not stored options, not the admin."""
    project_a.deid_options = {**services.project_options(project_a).to_dict(), "extra_vocabulary": ["smuggled"]}
    project_a.save()
    assert services.project_options(project_a).extra_vocabulary == ()
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    options = services.project_options(project_a)
    services.project_options_update(project=project_a, user=cast["alice"], options=options)
    project_a.refresh_from_db()
    assert "extra_vocabulary" not in project_a.deid_options
    event = AuditEvent.objects.get(action="deid_options_changed")
    assert event.details["changed"] == [] and event.details["recipe"] == recipe_sha256(options)


def test_ingest_uses_the_projects_words(cast: dict[str, Any], project_a: Project, run_tasks: Any, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen = []
    real = services.process_file

    def spy(raw: bytes, **kwargs: Any) -> Any:
        seen.append(kwargs["options"])
        return real(raw, **kwargs)

    monkeypatch.setattr(services, "process_file", spy)
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    assert [o.extra_vocabulary for o in seen] == [("abdo",)]
    event = AuditEvent.objects.get(action="deidentified")
    assert event.details["options"]["extra_vocabulary"] == ["abdo"]
    assert event.details["recipe"] == recipe_sha256(services.project_options(project_a))


# --- API -----------------------------------------------------------------------------------------


def _list_url(project: Project) -> str:
    return reverse("api-vocabulary", args=[project.pk])


def _term_url(project: Project, term: str) -> str:
    return reverse("api-vocabulary-term", args=[project.pk, term])


def test_api_add_list_remove(api_as: Any, project_a: Project) -> None:
    carol = api_as("carol")
    added = carol.post(_list_url(project_a), {"term": "MPRAGE"}, format="json")
    assert added.status_code == 201 and added.json()["term"] == "mprage" and added.json()["added_by"] == "carol"
    listing = carol.get(_list_url(project_a)).json()
    assert [row["term"] for row in listing["results"]] == ["mprage"]
    assert api_as("alice").get(_list_url(project_a)).status_code == 200  # admins may read the words
    assert carol.delete(_term_url(project_a, "mprage")).status_code == 204
    assert carol.get(_list_url(project_a)).json()["count"] == 0
    actions = list(AuditEvent.objects.filter(action__startswith="vocabulary").values_list("action", flat=True))
    assert sorted(actions) == ["vocabulary_term_added", "vocabulary_term_removed"]
    assert list(audit_verify()) == []


def test_api_removes_a_word_with_letters_beyond_ascii(api_as: Any, project_a: Project) -> None:
    assert api_as("carol").post(_list_url(project_a), {"term": "Schädel"}, format="json").status_code == 201
    assert api_as("carol").delete(_term_url(project_a, "schädel")).status_code == 204
    assert not VocabularyTerm.objects.exists()


def test_api_refuses_bad_words_as_json(api_as: Any, project_a: Project) -> None:
    bad = api_as("carol").post(_list_url(project_a), {"term": "555-0134-777"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid" and "digits" in bad.json()["message"]
    api_as("carol").post(_list_url(project_a), {"term": "abdo"}, format="json")
    twice = api_as("carol").post(_list_url(project_a), {"term": "abdo"}, format="json")
    assert twice.status_code == 400 and "already" in twice.json()["message"]
    missing = api_as("carol").delete(_term_url(project_a, "thorax"))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert VocabularyTerm.objects.count() == 1


@pytest.mark.parametrize(("name", "read", "write"), [("alice", 200, 403), ("bob", 403, 403), ("charlie", 404, 404)])
def test_api_roles(name: str, read: int, write: int, api_as: Any, cast: dict[str, Any], project_a: Project) -> None:
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    client = api_as(name)
    assert client.get(_list_url(project_a)).status_code == read
    assert client.post(_list_url(project_a), {"term": "thorax"}, format="json").status_code == write
    assert client.delete(_term_url(project_a, "abdo")).status_code == write
    assert list(VocabularyTerm.objects.values_list("term", flat=True)) == ["abdo"]
    assert AuditEvent.objects.filter(action__startswith="vocabulary_term").count() == 1


def test_api_requires_login(project_a: Project) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.get(_list_url(project_a)).status_code in (401, 403)
    assert client.post(_list_url(project_a), {"term": "abdo"}, format="json").status_code in (401, 403)
    assert client.delete(_term_url(project_a, "abdo")).status_code in (401, 403)
    assert not VocabularyTerm.objects.exists()


# --- page ----------------------------------------------------------------------------------------


def _page(project: Project) -> str:
    return reverse("vocabulary", args=[project.pk])


def test_compliance_officer_adds_and_removes_on_the_page(as_user: Any, project_a: Project) -> None:
    carol = as_user("carol")
    page = carol.get(_page(project_a))
    assert page.status_code == 200 and b'id="vocabulary-add"' in page.content
    assert carol.post(_page(project_a), {"term": "Abdo"}).status_code == 302
    html = carol.get(_page(project_a)).content.decode()
    assert 'data-term="abdo"' in html and "Remove" in html
    bad = carol.post(_page(project_a), {"term": "two words"})
    assert bad.status_code == 400 and "letters, digits and hyphens" in bad.content.decode()
    assert carol.post(reverse("vocabulary-remove", args=[project_a.pk]), {"term": "abdo"}).status_code == 302
    assert not VocabularyTerm.objects.exists()
    assert AuditEvent.objects.filter(action="vocabulary_term_removed", actor_name="carol").exists()


def test_admin_sees_the_words_but_no_form(as_user: Any, cast: dict[str, Any], project_a: Project) -> None:
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    alice = as_user("alice")
    html = alice.get(_page(project_a)).content.decode()
    assert 'data-term="abdo"' in html and 'id="vocabulary-add"' not in html and "Remove" not in html
    assert alice.post(_page(project_a), {"term": "thorax"}).status_code == 403
    assert alice.post(reverse("vocabulary-remove", args=[project_a.pk]), {"term": "abdo"}).status_code == 403
    assert list(VocabularyTerm.objects.values_list("term", flat=True)) == ["abdo"]


@pytest.mark.parametrize(("name", "status"), [("bob", 403), ("dave", 403), ("erin", 403), ("charlie", 404)])
def test_page_closed_to_other_roles(name: str, status: int, as_user: Any, project_a: Project) -> None:
    client = as_user(name)
    assert client.get(_page(project_a)).status_code == status
    assert client.post(_page(project_a), {"term": "thorax"}).status_code == status
    assert client.post(reverse("vocabulary-remove", args=[project_a.pk]), {"term": "x"}).status_code == status
    assert not VocabularyTerm.objects.exists()


def test_page_requires_login(client: Client, project_a: Project) -> None:
    response = client.get(_page(project_a))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    assert client.post(_page(project_a), {"term": "abdo"}).status_code == 302
    assert not VocabularyTerm.objects.exists()


def test_page_needs_csrf(cast: dict[str, Any], project_a: Project) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["carol"])
    assert client.post(_page(project_a), {"term": "abdo"}).status_code == 403
    assert not VocabularyTerm.objects.exists()


def test_navigation_links_the_page_for_compliance_roles(as_user: Any, project_a: Project) -> None:
    for name, shown in (("carol", True), ("alice", True), ("bob", False)):
        html = as_user(name).get(f"/projects/{project_a.pk}/").content.decode()
        assert ('data-nav="vocabulary"' in html) is shown, name


def test_settings_page_points_admins_to_the_vocabulary(as_user: Any, cast: dict[str, Any], project_a: Project) -> None:
    vocabulary_term_add(project=project_a, user=cast["carol"], term="abdo")
    html = as_user("alice").get(reverse("deid-settings", args=[project_a.pk])).content.decode()
    assert "The project's own words (1)" in html and _page(project_a) in html
