"""WADO-URI for the viewer: members get the de-identified file, everyone else a 404 or 401."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.helpers import CT_SMALL, ingest, stored_bytes
from workbench.api.wado import wado_url
from workbench.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingested(project_a, cast, run_tasks) -> Instance:  # type: ignore[no-untyped-def]
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    return Instance.objects.select_related("series__study").get()


def _content(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("member", ["alice", "bob", "carol", "dave", "erin"])
def test_members_get_the_deidentified_file(api_as, ingested, member) -> None:
    response = api_as(member).get(wado_url(ingested))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    body = _content(response)
    assert body == stored_bytes(ingested.storage_path)
    assert body != CT_SMALL.read_bytes()  # the de-identified file, not the original
    assert response["ETag"] == f'"{ingested.sha256}"'
    assert response["Cache-Control"].startswith("private")


def test_session_login_works_and_etag_revalidates(cast, ingested) -> None:
    client = Client()
    client.force_login(cast["bob"])
    url = wado_url(ingested)
    assert client.get(url).status_code == 200
    again = client.get(url, HTTP_IF_NONE_MATCH=f'"{ingested.sha256}"')
    assert again.status_code == 304
    assert again["ETag"] == f'"{ingested.sha256}"'


def test_only_study_series_and_object_uids_are_needed(api_as, ingested) -> None:
    url = reverse("wado") + f"?requestType=WADO&objectUID={ingested.sop_uid}"
    assert api_as("bob").get(url).status_code == 200


def test_outsider_gets_404(api_as, ingested) -> None:
    response = api_as("charlie").get(wado_url(ingested))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "query",
    [
        "requestType=WADO&objectUID=2.25.123456789&contentType=application/dicom",
        "requestType=WADO&studyUID=2.25.1&seriesUID={series}&objectUID={sop}",  # wrong study
        "requestType=WADO&studyUID={study}&seriesUID=2.25.1&objectUID={sop}",  # wrong series
    ],
)
def test_unknown_uids_get_404(api_as, ingested, query) -> None:
    url = (
        reverse("wado")
        + "?"
        + query.format(study=ingested.series.study.study_uid, series=ingested.series.series_uid, sop=ingested.sop_uid)
    )
    response = api_as("bob").get(url)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_anonymous_gets_401(ingested) -> None:
    response = APIClient().get(wado_url(ingested))
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("objectUID={sop}", "requestType"),
        ("requestType=WADO", "objectUID"),
        ("requestType=WADO&objectUID={sop}&contentType=image/jpeg", "contentType"),
    ],
)
def test_bad_requests_say_what_is_wrong(api_as, ingested, query, field) -> None:
    response = api_as("bob").get(reverse("wado") + "?" + query.format(sop=ingested.sop_uid))
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_viewer_data_lists_instances_with_wado_urls(api_as, ingested) -> None:
    response = api_as("bob").get(reverse("api-series-viewer", args=[ingested.series_id]))
    assert response.status_code == 200
    data = response.json()
    assert data["series"]["modality"] == "CT"
    assert data["patient"] == ingested.series.study.patient.pseudo_id
    assert data["roles"] == ["radiologist"]
    [inst] = data["instances"]
    assert inst["sop_uid"] == ingested.sop_uid
    assert inst["wado_url"] == wado_url(ingested)
    assert inst["frames"] == 1 and inst["rows"] == 128
    assert api_as("charlie").get(reverse("api-series-viewer", args=[ingested.series_id])).status_code == 404
    assert APIClient().get(reverse("api-series-viewer", args=[ingested.series_id])).status_code == 401


def test_viewer_pages_need_login_and_membership(cast, ingested) -> None:
    url = reverse("series-view", args=[ingested.series_id])
    assert Client().get(url).status_code == 302
    client = Client()
    client.force_login(cast["charlie"])
    assert client.get(url).status_code == 404
    client.force_login(cast["bob"])
    page = client.get(url)
    assert page.status_code == 200
    assert b"viewer/viewer.js" in page.content


@pytest.mark.django_db
def test_viewer_orders_slices_in_space_not_by_number(api_as, project_a, cast, run_tasks) -> None:
    from pydicom.uid import generate_uid

    from anonymizer.deid.tests.factory import make_ct
    from anonymizer.services import slice_position
    from tests.helpers import ingest
    from workbench.demo import to_bytes
    from workbench.models import Series

    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    files = {}
    # InstanceNumber disagrees with position (a re-numbered or merged series): z = 0, 10, -10.
    for number, z in ((1, 0.0), (2, 10.0), (3, -10.0)):
        ds = make_ct(study_uid=study_uid)
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID, ds.InstanceNumber = series_uid, frame_uid, number
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, z], [1, 0, 0, 0, 1, 0]
        files[f"{number}.dcm"] = to_bytes(ds)
    with run_tasks():
        ingest(project_a, files, user=cast["alice"])
    series = Series.objects.get()
    data = api_as("bob").get(reverse("api-series-viewer", args=[series.pk])).json()
    assert [i["number"] for i in data["instances"]] == [2, 1, 3]  # head (z = 10) first
    ds = make_ct()
    assert slice_position(ds) is None  # no position: ordered by InstanceNumber instead
