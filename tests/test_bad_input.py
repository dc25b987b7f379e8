"""Bad input answers a 4xx JSON error a person can act on, never a 500 (issue 10, finding 7)."""

from __future__ import annotations

import io
from typing import Any

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from anonymizer.models import IngestItem
from anonymizer.review import item_original_name
from tests.helpers import CT_SMALL, ingest
from workbench.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(project_a, cast, run_tasks) -> Instance:  # type: ignore[no-untyped-def]
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    return Instance.objects.get()


def _invalid(response: Any, field: str) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["message"]
    assert field in body["fields"]


@pytest.mark.parametrize("char", ["%00", "%01", "%1b", "%7f", "a%0Ab"])
@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/projects/{project}/audit/?actor={c}", "actor"),
        ("/api/projects/{project}/audit/?action=x{c}", "action"),
        ("/api/projects/{project}/assignments/?status={c}", "status"),
        ("/api/annotations/?assignment={c}", "assignment"),
        ("/api/projects/{project}/studies/?page={c}", "page"),
        ("/wado/?requestType=WADO&objectUID=1.2.3{c}", "objectUID"),
    ],
)
def test_control_characters_in_a_filter_answer_400_naming_it(api_as, project_a, url, field, char) -> None:
    _invalid(api_as("alice").get(url.format(project=project_a.pk, c=char)), field)


def test_a_control_character_in_a_parameter_name_or_the_path_answers_400(api_as, project_a) -> None:
    client = api_as("alice")
    assert client.get(f"/api/projects/{project_a.pk}/studies/?a%00b=1").status_code == 400
    _invalid(client.post(f"/api/projects/{project_a.pk}/vocabulary/a%00b/"), "path")


def test_pages_answer_a_friendly_400_page(cast, project_a) -> None:
    client = Client()
    client.force_login(cast["carol"])
    response = client.get(f"/projects/{project_a.pk}/audit/?actor=%00")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"actor" in response.content


@pytest.mark.parametrize("value", ["null", "-1", "0", "1001", "1.5", "99999999999999999999999"])
def test_a_bad_page_size_is_rejected(api_as, project_a, value) -> None:
    _invalid(api_as("alice").get(f"/api/projects/{project_a.pk}/studies/?page_size={value}"), "page_size")


@pytest.mark.parametrize("value", ["null", "-1", "0", "99999999999999999999999"])
def test_a_bad_page_number_is_rejected(api_as, project_a, value) -> None:
    _invalid(api_as("alice").get(f"/api/projects/{project_a.pk}/studies/?page={value}"), "page")


def test_good_paging_still_works(api_as, project_a, instance) -> None:
    client = api_as("alice")
    assert client.get(f"/api/projects/{project_a.pk}/studies/?page=1&page_size=1000").json()["count"] == 1
    assert client.get(f"/api/projects/{project_a.pk}/studies/?page=last").status_code == 200
    assert client.get(f"/api/projects/{project_a.pk}/studies/?page=2").status_code == 404


@pytest.mark.parametrize(("param", "value"), [("size", "-5"), ("size", "0"), ("size", "100000"), ("frame", "-1")])
def test_render_rejects_out_of_range_numbers(api_as, instance, param, value) -> None:
    _invalid(api_as("bob").get(f"/api/instances/{instance.pk}/render.png?{param}={value}"), param)


def test_render_still_draws_a_thumbnail(api_as, instance) -> None:
    response = api_as("bob").get(f"/api/instances/{instance.pk}/render.png?size=64")
    assert response.status_code == 200
    assert response.content.startswith(b"\x89PNG")


def _overwrite(instance: Instance, data: bytes) -> None:
    default_storage.delete(instance.storage_path)
    default_storage.save(instance.storage_path, io.BytesIO(data))


def _with(ds: pydicom.Dataset, **changes: Any) -> bytes:
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "changes",
    [{"Rows": 0}, {"Columns": 0}, {"PixelData": None}, {"PixelData": b""}, {"PixelData": b"\0" * 10}],
    ids=["rows-0", "columns-0", "no-pixel-data", "empty-pixel-data", "short-pixel-data"],
)
def test_render_of_an_image_without_drawable_pixels_answers_422(api_as, instance, changes) -> None:
    with default_storage.open(instance.storage_path, "rb") as fh:
        ds = pydicom.dcmread(fh)
    _overwrite(instance, _with(ds, **changes))
    response = api_as("bob").get(f"/api/instances/{instance.pk}/render.png")
    assert response.status_code == 422, response.content[:300]
    assert response.json()["error"] == "unrenderable"
    assert "pixels" in response.json()["message"]


def test_render_of_a_file_that_is_not_dicom_answers_422(api_as, instance) -> None:
    _overwrite(instance, b"not dicom at all")
    response = api_as("bob").get(f"/api/instances/{instance.pk}/render.png")
    assert response.status_code == 422
    assert response.json()["error"] == "unrenderable"


def _multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """A multipart body with raw (undecoded) file names, as a non-UTF-8 client sends them."""
    boundary = b"wb-boundary-7f3a"
    body = b""
    for name, data in parts:
        body += b"--" + boundary + b"\r\n"
        body += b'Content-Disposition: form-data; name="file"; filename="' + name + b'"\r\n'
        body += b"Content-Type: application/dicom\r\n\r\n" + data + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def test_every_uploaded_part_gets_an_item_whatever_its_name(api_as, project_a, run_tasks) -> None:
    dicom = CT_SMALL.read_bytes()
    names = [b"plain.dcm", "m\u00fcller.dcm".encode("latin-1"), b"..", "\u00e9\u00e8.dcm".encode("cp1252"), b"ok.dcm"]
    body, content_type = _multipart([(name, dicom) for name in names])
    with run_tasks():
        response = api_as("alice").generic("POST", f"/api/projects/{project_a.pk}/batches/", body, content_type)
    assert response.status_code == 202, response.content[:300]
    items = list(IngestItem.objects.filter(batch_id=response.json()["id"]).order_by("index"))
    assert len(items) == len(names)
    shown = [item_original_name(item) for item in items]
    assert shown[0] == "plain.dcm"
    assert shown[1] == "m\ufffdller.dcm"
    assert shown[2] == "upload-3.dcm"
    assert shown[3].endswith(".dcm") and "\ufffd" in shown[3]
    assert shown[4] == "ok.dcm"


@pytest.mark.parametrize("query", ["label=", "series=", "assignment=", "include_deleted=", "sop_instance_uid="])
def test_an_empty_annotation_filter_is_refused_not_ignored(api_as, project_a, query) -> None:
    _invalid(api_as("alice").get(f"/api/annotations/?{query}"), query.rstrip("="))


def test_annotation_filters_still_filter(api_as, instance) -> None:
    response = api_as("alice").get(f"/api/annotations/?series={instance.series_id}&include_deleted=true")
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    "selection",
    [{"modalities": ["CT\u0000"]}, {"modalities\u0000": []}, {"labels": ["a", "b\u0000c"]}],
    ids=["value", "key", "nested"],
)
def test_a_nul_in_a_json_body_is_refused(api_as, project_a, selection) -> None:
    response = api_as("alice").post(
        f"/api/projects/{project_a.pk}/datasets/", {"name": "n", "selection": selection}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "parse_error"
    assert "NUL" in response.json()["message"]


def test_newlines_in_a_json_body_are_fine(api_as, project_a) -> None:
    response = api_as("alice").post(
        f"/api/projects/{project_a.pk}/datasets/", {"name": "n", "description": "two\nlines"}, format="json"
    )
    assert response.status_code == 201, response.content


def test_render_of_a_malformed_rows_value_answers_422(api_as, instance) -> None:
    """pydicom converts values lazily: a Rows of three bytes raises on first use, not on read."""
    with default_storage.open(instance.storage_path, "rb") as fh:
        raw = fh.read()
    ds = pydicom.dcmread(io.BytesIO(raw))
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True, enforce_file_format=True)
    raw = buffer.getvalue()
    at = raw.index(b"\x28\x00\x10\x00US\x02\x00")
    _overwrite(instance, raw[: at + 6] + b"\x03\x00" + raw[at + 8 : at + 10] + b"\x00" + raw[at + 10 :])
    response = api_as("bob").get(f"/api/instances/{instance.pk}/render.png")
    assert response.status_code == 422, response.content[:300]
    assert response.json()["error"] == "unrenderable"
