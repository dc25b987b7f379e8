"""The datasets API end to end: create, freeze, compare, export on the worker, download with Range."""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage

from annotations import services as annotation_services
from datasets import services
from datasets.models import Export
from workbench.models import AuditEvent

pytestmark = pytest.mark.django_db

SPLIT = {"seed": 7, "ratios": {"train": 0.5, "validation": 0.25, "test": 0.25}}


def _freeze(api: Any, project_id: Any, selection: Any = None, **body: Any) -> dict[str, Any]:
    dataset = {"name": "lesions", "selection": selection or {}}
    created = api.post(f"/api/projects/{project_id}/datasets/", dataset, format="json")
    assert created.status_code == 201, created.json()
    frozen = api.post(f"/api/datasets/{created.json()['id']}/versions/", {"split": SPLIT, **body}, format="json")
    assert frozen.status_code == 201, frozen.json()
    return {"dataset": created.json(), "version": frozen.json()}


def _export(api: Any, version_id: str, run_tasks: Any, fmt: str = "nifti") -> dict[str, Any]:
    with run_tasks():
        asked = api.post(f"/api/versions/{version_id}/exports/", {"format": fmt}, format="json")
    assert asked.status_code == 202, asked.json()
    polled = api.get(asked["Location"])
    assert polled.status_code == 200
    return polled.json()


def _download(api: Any, export: dict[str, Any], **headers: str) -> Any:
    return api.get(export["download"], **headers)


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_freeze_makes_a_content_addressed_patient_grouped_version(labeled: Any, api_as: Any) -> None:
    api = api_as("dave")
    made = _freeze(api, labeled["project"].pk, note="first cut")
    version = made["version"]
    assert version["samples"] == 6 and version["annotations"] > 6
    manifest = api.get(f"/api/versions/{version['id']}/manifest/")
    assert hashlib.sha256(manifest.content).hexdigest() == version["id"]
    samples = manifest.json()["samples"]
    splits_of: dict[str, set[str]] = {}
    for sample in samples:
        splits_of.setdefault(sample["patient"], set()).add(sample["split"])
    assert all(len(places) == 1 for places in splits_of.values())
    assert {s["split"] for s in samples} == {"train", "validation", "test"}
    assert version["summary"]["leakage"] == {}
    again = api.post(
        f"/api/datasets/{made['dataset']['id']}/versions/", {"split": SPLIT, "note": "first cut"}, format="json"
    )
    assert again.status_code == 200 and again.json()["id"] == version["id"]


def test_later_edits_never_change_a_frozen_version(labeled: Any, api_as: Any, cast: Any) -> None:
    series = labeled["series"][0]
    (second,) = annotation_services.assignment_create(series=series, readers=[cast["alice"]], user=cast["alice"])
    box = {"x0": 1, "y0": 1, "x1": 5, "y1": 5}
    annotation, _ = annotation_services.annotation_create(
        assignment=second,
        user=cast["alice"],
        label=labeled["schema"].labels.get(name="Lesion"),
        sop_instance_uid=series.instances.order_by("number").first().sop_uid,
        geometry=box,
        attributes={"suspicious": False},
    )
    api = api_as("dave")
    made = _freeze(
        api,
        labeled["project"].pk,
        selection={"statuses": ["accepted", "in_progress"]},
        label_source="reader",
        reader="alice",
    )
    first = made["version"]["id"]
    before = api.get(f"/api/versions/{first}/manifest/").content
    assert b'"x1":5' in before.replace(b" ", b"").replace(b".0", b"")

    annotation_services.annotation_update(
        annotation=annotation, user=cast["alice"], revision=annotation.revision, geometry={**box, "x1": 9}
    )
    assert api.get(f"/api/versions/{first}/manifest/").content == before
    again = api.post(
        f"/api/datasets/{made['dataset']['id']}/versions/",
        {"split": SPLIT, "label_source": "reader", "reader": "alice"},
        format="json",
    ).json()
    assert again["id"] != first and again["parent"] == first
    diff = api.get(f"/api/versions/{again['id']}/compare/", {"with": first}).json()
    assert [r["key"] for r in diff["relabeled"]] == [series.series_uid]
    assert diff["added"] == diff["removed"] == [] and diff["moved"] == []


def test_compare_reports_samples_added_removed_and_moved(labeled: Any, api_as: Any) -> None:
    api = api_as("dave")
    made = _freeze(api, labeled["project"].pk)
    dropped = labeled["series"][0]
    dataset = made["dataset"]["id"]
    services_dataset = services.Dataset.objects.get(pk=dataset)
    services_dataset.selection = {**services_dataset.selection, "exclude": [str(dropped.pk)]}
    services_dataset.save()
    second = api.post(f"/api/datasets/{dataset}/versions/", {"split": {**SPLIT, "seed": 99}}, format="json").json()
    diff = api.get(f"/api/versions/{second['id']}/compare/", {"with": made["version"]["id"]}).json()
    assert diff["removed"] == [dropped.series_uid] and diff["added"] == []
    assert diff["moved"], "another seed places some patients elsewhere"
    assert all(m["from"] != m["to"] for m in diff["moved"])


def test_export_runs_on_the_worker_and_downloads_a_checked_archive(labeled: Any, api_as: Any, run_tasks: Any) -> None:
    api = api_as("dave")
    version = _freeze(api, labeled["project"].pk)["version"]["id"]
    export = _export(api, version, run_tasks)
    assert export["status"] == "done", export["error"]
    assert export["progress"]["done"] == export["progress"]["total"] == 6
    response = _download(api, export)
    assert response.status_code == 200 and response["Accept-Ranges"] == "bytes"
    data = _body(response)
    assert hashlib.sha256(data).hexdigest() == export["sha256"] and len(data) == export["size"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"manifest.json", "README.md", "SHA256SUMS", "augmentation.json"} <= names
        assert hashlib.sha256(archive.read("manifest.json")).hexdigest() == version
        for line in archive.read("SHA256SUMS").decode().splitlines():
            digest, name = line.split("  ", 1)
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name
        card = archive.read("README.md").decode()
    assert "Annex E" in card and "Nodule" in card and "train" in card
    assert AuditEvent.objects.filter(action="export_requested", object_id=export["id"]).exists()
    assert AuditEvent.objects.filter(action="export_downloaded", object_id=export["id"]).exists()


def test_asking_again_reuses_the_archive_and_a_rebuild_is_byte_identical(
    labeled: Any, api_as: Any, run_tasks: Any
) -> None:
    api = api_as("dave")
    version = _freeze(api, labeled["project"].pk)["version"]["id"]
    first = _export(api, version, run_tasks, fmt="dicom")
    again = _export(api, version, run_tasks, fmt="dicom")
    assert again["id"] == first["id"] and again["sha256"] == first["sha256"]
    assert Export.objects.filter(version_id=version).count() == 1
    with tempfile.TemporaryDirectory() as scratch:
        rebuilt = services._pack(Export.objects.get(pk=first["id"]), Path(scratch), progress=lambda done, total: None)
    assert rebuilt[1] == first["sha256"]


def test_range_requests_resume_a_download(labeled: Any, api_as: Any, run_tasks: Any) -> None:
    api = api_as("dave")
    export = _export(api, _freeze(api, labeled["project"].pk)["version"]["id"], run_tasks)
    whole = _body(_download(api, export))
    head = _download(api, export, HTTP_RANGE="bytes=0-99")
    assert head.status_code == 206 and head["Content-Range"] == f"bytes 0-99/{len(whole)}"
    tail = _download(api, export, HTTP_RANGE="bytes=100-")
    assert tail.status_code == 206 and int(tail["Content-Length"]) == len(whole) - 100
    assert _body(head) + _body(tail) == whole
    last = _download(api, export, HTTP_RANGE="bytes=-10")
    assert _body(last) == whole[-10:]
    beyond = _download(api, export, HTTP_RANGE=f"bytes={len(whole)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(whole)}"
    assert "range" in beyond.json()["message"]
    changed = _download(api, export, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"not-this-archive"')
    assert changed.status_code == 200 and _body(changed) == whole


def test_a_changed_source_file_fails_the_export_with_a_message(labeled: Any, api_as: Any, run_tasks: Any) -> None:
    api = api_as("dave")
    version = _freeze(api, labeled["project"].pk)["version"]["id"]
    instance = labeled["series"][0].instances.order_by("number").first()
    with default_storage.open(instance.storage_path, "ab") as stream:
        stream.write(b"tampered")
    export = _export(api, version, run_tasks)
    assert export["status"] == "failed" and export["download"] is None
    assert instance.sop_uid in export["error"] and "changed" in export["error"]


@pytest.mark.parametrize("who", ["bob", "erin", "carol"])
def test_only_ml_engineers_and_admins_export(labeled: Any, api_as: Any, run_tasks: Any, who: str) -> None:
    version = _freeze(api_as("dave"), labeled["project"].pk)["version"]["id"]
    refused = api_as(who).post(f"/api/versions/{version}/exports/", {"format": "nifti"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied"
    assert not Export.objects.exists()
    assert _export(api_as("alice"), version, run_tasks)["status"] == "done"


def test_an_annotator_cannot_see_datasets(labeled: Any, api_as: Any) -> None:
    made = _freeze(api_as("dave"), labeled["project"].pk)
    bob = api_as("bob")
    assert bob.get(f"/api/projects/{labeled['project'].pk}/datasets/").status_code == 403
    assert bob.get(f"/api/versions/{made['version']['id']}/manifest/").status_code == 403
    assert (
        bob.post(f"/api/projects/{labeled['project'].pk}/datasets/", {"name": "mine"}, format="json").status_code == 403
    )


def test_an_outsider_gets_404_for_everything(labeled: Any, api_as: Any, run_tasks: Any) -> None:
    dave = api_as("dave")
    made = _freeze(dave, labeled["project"].pk)
    version = made["version"]["id"]
    export = _export(dave, version, run_tasks)
    charlie = api_as("charlie")
    for url in (
        f"/api/projects/{labeled['project'].pk}/datasets/",
        f"/api/datasets/{made['dataset']['id']}/",
        f"/api/datasets/{made['dataset']['id']}/versions/",
        f"/api/versions/{version}/",
        f"/api/versions/{version}/manifest/",
        f"/api/versions/{version}/exports/",
        export["url"],
        export["download"],
    ):
        response = charlie.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"] == "not_found"
    asked = charlie.post(f"/api/versions/{version}/exports/", {"format": "coco"}, format="json")
    assert asked.status_code == 404
    frozen = charlie.post(f"/api/datasets/{made['dataset']['id']}/versions/", {}, format="json")
    assert frozen.status_code == 404


def test_bad_requests_say_what_to_fix(labeled: Any, api_as: Any) -> None:
    api = api_as("dave")
    project = labeled["project"].pk
    version = _freeze(api, project)["version"]["id"]
    unknown = api.post(f"/api/versions/{version}/exports/", {"format": "tfrecord"}, format="json")
    assert unknown.status_code == 400 and "nnunet" in unknown.json()["message"]
    option = api.post(f"/api/versions/{version}/exports/", {"format": "nifti", "options": {"x": 1}}, format="json")
    assert option.status_code == 400 and "Unknown option" in option.json()["message"]
    taken = api.post(f"/api/projects/{project}/datasets/", {"name": "lesions"}, format="json")
    assert taken.status_code == 400 and "already has a dataset" in taken.json()["message"]
    empty = api.post(
        f"/api/projects/{project}/datasets/", {"name": "mr", "selection": {"modalities": ["MR"]}}, format="json"
    )
    nothing = api.post(f"/api/datasets/{empty.json()['id']}/versions/", {}, format="json")
    assert nothing.status_code == 400 and "holds no series" in nothing.json()["message"]
    ratios = api.post(
        f"/api/datasets/{empty.json()['id']}/versions/", {"split": {"ratios": {"train": 2}}}, format="json"
    )
    assert ratios.status_code == 400 and "split" in ratios.json()["message"]
    assert api.get("/api/versions/not-a-version/").status_code == 404


def test_each_400_names_the_field_the_client_sent(labeled: Any, api_as: Any) -> None:
    api = api_as("dave")
    project = labeled["project"].pk
    made = _freeze(api, project)
    version, dataset = made["version"]["id"], made["dataset"]["id"]

    def fields(response: Any) -> list[str]:
        assert response.status_code == 400, response.content
        return sorted(response.json()["fields"])

    exports = f"/api/versions/{version}/exports/"
    assert fields(api.post(exports, {"format": "tfrecord"}, format="json")) == ["format"]
    assert fields(api.post(exports, {"format": "nifti", "options": {"x": 1}}, format="json")) == ["options"]
    bad_value = api.post(exports, {"format": "nnunet", "options": {"dataset_id": 5000}}, format="json")
    assert fields(bad_value) == ["options"] and "dataset_id" in bad_value.json()["message"]
    assert fields(api.post(exports, {"format": "coco", "options": {"bit_depth": 12}}, format="json")) == ["options"]
    assert fields(api.post(exports, {"format": "yolo", "options": {"task": "pose"}}, format="json")) == ["options"]
    datasets = f"/api/projects/{project}/datasets/"
    assert fields(api.post(datasets, {"name": "lesions"}, format="json")) == ["name"]
    assert fields(api.post(datasets, {"name": "  "}, format="json")) == ["name"]
    assert fields(api.post(datasets, {"name": "x", "selection": {"modalities": 3}}, format="json")) == ["selection"]
    versions = f"/api/datasets/{dataset}/versions/"
    assert fields(api.post(versions, {"split": {"ratios": {"train": 2}}}, format="json")) == ["split"]
    assert fields(api.post(versions, {"augmentation": {"transforms": [{"name": "nope"}]}}, format="json")) == [
        "augmentation"
    ]


def test_a_bad_option_value_is_refused_when_asked_not_when_built(labeled: Any, api_as: Any) -> None:
    api = api_as("dave")
    version = _freeze(api, labeled["project"].pk)["version"]["id"]
    asked = api.post(f"/api/versions/{version}/exports/", {"format": "coco", "options": {"frames": "x"}}, format="json")
    assert asked.status_code == 400
    assert not Export.objects.filter(version_id=version).exists()


def test_an_export_whose_worker_died_is_built_again_by_the_sweep(labeled: Any, api_as: Any, run_tasks: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from datasets import claims, recovery

    api = api_as("dave")
    version = _freeze(api, labeled["project"].pk)["version"]["id"]
    export = Export.objects.get(pk=_export(api, version, run_tasks)["id"])
    # Its worker was SIGKILLed mid-build: RUNNING, and Redis's redelivery skipped the fresh claim.
    long_ago = timezone.now() - claims.claim_lease() - timedelta(minutes=1)
    Export.objects.filter(pk=export.pk).update(status="running", heartbeat_at=long_ago, archive_path="", done=3)
    assert recovery.exports_recover_stale(now=long_ago + claims.claim_lease()) == 0  # its claim still holds
    with run_tasks():
        assert recovery.exports_recover_stale() == 1
    export.refresh_from_db()
    assert export.status == "done" and export.archive_path
    assert recovery.exports_recover_stale() == 0
