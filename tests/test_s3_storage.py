"""With WORKBENCH_STORAGE=s3 the same pipeline writes to object storage (moto's mock S3).

Both storages are S3 here, as settings.py builds them: the de-identified store under
store/ and the encrypted quarantine under quarantine/ of one bucket.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from django.urls import reverse

from anonymizer.models import IngestItem
from tests.helpers import CT_SMALL, identifying_strings, ingest

moto = pytest.importorskip("moto")
BUCKET = "workbench-test"


@pytest.fixture
def s3_storages(settings, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        common = {"bucket_name": BUCKET, "region_name": "us-east-1", "default_acl": None, "file_overwrite": True}
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**common, "location": "store"}},
            "quarantine": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {**common, "location": "quarantine"},
            },
        }
        yield client


@pytest.mark.django_db
def test_pipeline_on_object_storage(s3_storages, project_a, cast, api_as, run_tasks, settings) -> None:
    settings.QUARANTINE_RETENTION_DAYS = 30  # keep the raw object to look at it
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    item = IngestItem.objects.get()
    assert item.status == "done"
    keys = [o["Key"] for o in s3_storages.list_objects_v2(Bucket=BUCKET)["Contents"]]
    stored = [k for k in keys if k.startswith("store/")]
    raw = [k for k in keys if k.startswith("quarantine/")]
    assert len(stored) == 1 and len(raw) == 1
    blob = s3_storages.get_object(Bucket=BUCKET, Key=raw[0])["Body"].read()
    assert b"DICM" not in blob  # encrypted at rest
    response = api_as("bob").get(reverse("api-instance-file", args=[item.instance_id]))
    data = b"".join(response.streaming_content)
    assert pydicom.dcmread(io.BytesIO(data)).PatientIdentityRemoved == "YES"
    for value in identifying_strings(CT_SMALL):
        assert value.encode() not in data


@pytest.mark.django_db
def test_sealed_and_resumable_uploads_on_object_storage(s3_storages, project_a, api_as, run_tasks, settings) -> None:
    """The segments of a multipart and of a tus upload live in S3, sealed, and are removed once expanded."""
    import base64

    from tests.helpers import zip_bytes

    settings.UPLOAD_SEGMENT_BYTES = 4096
    archive = zip_bytes({"ct.dcm": CT_SMALL.read_bytes()})
    handle = io.BytesIO(archive)
    handle.name = "study.zip"
    client = api_as("alice")
    response = client.post(reverse("api-batches", args=[project_a.pk]), {"file": [handle]}, format="multipart")
    keys = [o["Key"] for o in s3_storages.list_objects_v2(Bucket=BUCKET)["Contents"]]
    segments = [k for k in keys if k.startswith("quarantine/uploads/")]
    assert len(segments) > 1
    for key in segments:
        blob = s3_storages.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert all(v.encode() not in blob for v in identifying_strings(CT_SMALL))
    from anonymizer import uploads

    with run_tasks():
        uploads.batch_expand(batch_id=response.json()["id"])
        tus = {"HTTP_TUS_RESUMABLE": "1.0.0"}
        meta = "filename " + base64.b64encode(b"again.zip").decode()
        created = client.post(
            reverse("api-uploads", args=[project_a.pk]),
            HTTP_UPLOAD_LENGTH=str(len(archive)),
            HTTP_UPLOAD_METADATA=meta,
            **tus,
        )
        patched = client.patch(
            created["Location"],
            data=archive,
            content_type="application/offset+octet-stream",
            HTTP_UPLOAD_OFFSET="0",
            **tus,
        )
        assert patched.status_code == 204
    assert sorted(IngestItem.objects.values_list("status", flat=True)) == ["done", "duplicate"]
    keys = [o["Key"] for o in s3_storages.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert not [k for k in keys if k.startswith("quarantine/uploads/")]
