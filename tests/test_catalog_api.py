"""The catalog API: it works, it requires login, it hides other projects."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.helpers import CT_SMALL, ingest
from workbench.models import Instance


@pytest.fixture
def ingested(project_a, cast, run_tasks) -> Instance:  # type: ignore[no-untyped-def]
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    return Instance.objects.select_related("series__study").get()


def _urls(instance: Instance, project_id: object) -> list[str]:
    return [
        reverse("api-project-detail", args=[project_id]),
        reverse("api-studies", args=[project_id]),
        reverse("api-study-detail", args=[instance.series.study_id]),
        reverse("api-series-detail", args=[instance.series_id]),
        reverse("api-instance-detail", args=[instance.pk]),
        reverse("api-instance-file", args=[instance.pk]),
        reverse("api-instance-render", args=[instance.pk]),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("member", ["alice", "bob", "carol", "dave", "erin"])
def test_every_member_reads_the_catalog(api_as, ingested, project_a, member) -> None:
    client = api_as(member)
    for url in _urls(ingested, project_a.pk):
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:200])


@pytest.mark.django_db
def test_outsider_gets_404_everywhere(api_as, ingested, project_a) -> None:
    client = api_as("charlie")
    for url in _urls(ingested, project_a.pk):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"] == "not_found"
    assert client.get(reverse("api-projects")).json()["count"] == 1  # only project B


@pytest.mark.django_db
def test_anonymous_gets_401_with_a_message(ingested, project_a) -> None:
    response = APIClient().get(reverse("api-studies", args=[project_a.pk]))
    assert response.status_code == 401
    assert "Token" in response.json()["message"]


@pytest.mark.django_db
def test_catalog_content(api_as, ingested, project_a) -> None:
    [study] = api_as("bob").get(reverse("api-studies", args=[project_a.pk])).json()["results"]
    assert study["patient"].startswith("P")
    assert study["series_count"] == 1
    series = api_as("bob").get(reverse("api-study-detail", args=[study["id"]])).json()["series"]
    assert series[0]["modality"] == "CT" and series[0]["instance_count"] == 1
    detail = api_as("bob").get(reverse("api-series-detail", args=[series[0]["id"]])).json()
    [inst] = detail["instances"]
    assert inst["rows"] == 128 and inst["columns"] == 128 and len(inst["sha256"]) == 64
    png = api_as("bob").get(reverse("api-instance-render", args=[inst["id"]]) + "?size=64")
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")


@pytest.mark.django_db
def test_render_bad_frame_is_a_json_error(api_as, ingested) -> None:
    response = api_as("bob").get(reverse("api-instance-render", args=[ingested.pk]) + "?frame=7")
    assert response.status_code == 400 and "frame" in response.json()["message"]
    response = api_as("bob").get(reverse("api-instance-render", args=[ingested.pk]) + "?frame=x")
    assert response.status_code == 400


@pytest.mark.django_db
def test_schema_and_docs(api_as) -> None:
    client = api_as("bob")
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/projects/" in schema.content
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_unknown_api_path_is_json_404(api_as) -> None:
    response = api_as("bob").get("/api/nothing-here/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_non_uuid_ids_are_404_not_500(cast) -> None:
    from django.http import Http404

    from workbench.access import get_project_for_user, get_study_for_user

    for bad in ("abc", "", None, 42):
        with pytest.raises(Http404):
            get_project_for_user(cast["alice"], bad)
        with pytest.raises(Http404):
            get_study_for_user(cast["alice"], bad)
