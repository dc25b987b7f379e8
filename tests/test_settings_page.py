"""The project admin's de-identification settings page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conftest import PASSWORD
from workbench.models import AuditEvent


def _login(client, name):  # type: ignore[no-untyped-def]
    assert client.login(username=name, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_admin_changes_options_and_it_is_audited(client, cast, project_a) -> None:
    url = reverse("deid-settings", args=[project_a.pk])
    page = _login(client, "alice").get(url)
    assert page.status_code == 200 and b"Clean Pixel Data" in page.content
    form = {
        "clean_pixel_data": "on",
        "clean_descriptors": "on",
        "retain_patient_characteristics": "on",
        "retain_longitudinal_modified_dates": "on",
        "retain_device_identity": "on",
    }
    assert client.post(url, form).status_code == 302
    project_a.refresh_from_db()
    assert project_a.deid_options["retain_device_identity"] is True
    assert project_a.deid_options["clean_graphics"] is False
    event = AuditEvent.objects.get(action="deid_options_changed")
    assert "retain_device_identity" in event.details["changed"]


@pytest.mark.django_db
def test_safe_harbor_preset(client, cast, project_a) -> None:
    url = reverse("deid-settings", args=[project_a.pk])
    _login(client, "alice").post(url, {"preset": "safe_harbor"})
    project_a.refresh_from_db()
    assert project_a.deid_options["dates_year_only"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "status"), [("bob", 403), ("carol", 403), ("dave", 403), ("charlie", 404)])
def test_only_project_admins_see_settings(client, cast, project_a, name, status) -> None:
    url = reverse("deid-settings", args=[project_a.pk])
    assert _login(client, name).get(url).status_code == status
    assert client.post(url, {"preset": "safe_harbor"}).status_code == status
    project_a.refresh_from_db()
    assert project_a.deid_options == {}


@pytest.mark.django_db
def test_settings_requires_login(client, project_a) -> None:
    response = client.get(reverse("deid-settings", args=[project_a.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]
