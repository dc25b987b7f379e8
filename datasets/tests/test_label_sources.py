"""Which reads label a dataset: one read per series by default, one named reader, or every reader apart.

The fixture (conftest.labeled) has bob's accepted read of six series; here alice (an admin, who
may read) reads the first series too, with one box, so that series holds two readers' labels.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from typing import Any

import pytest
from django.core.files.storage import default_storage

from annotations import services as annotation_services
from annotations.models import Assignment
from datasets.card import dataset_card
from datasets.manifest import manifest_load
from datasets.models import DatasetVersion, Export

pytestmark = pytest.mark.django_db

SPLIT = {"seed": 7, "ratios": {"train": 0.5, "validation": 0.25, "test": 0.25}}
BOX = {"x0": 1, "y0": 1, "x1": 5, "y1": 5}


def second_read(labeled: dict[str, Any], cast: dict[str, Any], *, finish: str = "accepted") -> Assignment:
    series = labeled["series"][0]
    (read,) = annotation_services.assignment_create(series=series, readers=[cast["alice"]], user=cast["alice"])
    annotation_services.annotation_create(
        assignment=read,
        user=cast["alice"],
        label=labeled["schema"].labels.get(name="Lesion"),
        sop_instance_uid=series.instances.order_by("number").first().sop_uid,
        geometry=BOX,
        attributes={"suspicious": False},
    )
    if finish in ("submitted", "accepted"):
        read = annotation_services.assignment_submit(assignment=read, user=cast["alice"])
    if finish == "accepted":
        read = annotation_services.assignment_accept(assignment=read, user=cast["erin"])
    return read


def freeze(api: Any, project: Any, selection: Any = None, **body: Any) -> Any:
    created = api.post(
        f"/api/projects/{project.pk}/datasets/", {"name": "lesions", "selection": selection or {}}, format="json"
    )
    assert created.status_code == 201, created.json()
    return api.post(f"/api/datasets/{created.json()['id']}/versions/", {"split": SPLIT, **body}, format="json")


def manifest_of(version_id: str) -> dict[str, Any]:
    version = DatasetVersion.objects.get(pk=version_id)
    return manifest_load(version.pk, version.manifest_path)


def readers_of(sample: dict[str, Any]) -> set[str]:
    return {a["reader"] for a in sample["annotations"]}


def test_the_default_takes_one_read_per_series_the_accepted_one(labeled: Any, cast: Any, api_as: Any) -> None:
    # The default became "consensus" (ADR 0012); with no decided consensus a series read twice
    # falls back to the first_accepted rule, which this test pins, and each sample says so.
    second_read(labeled, cast)  # accepted after bob's
    response = freeze(api_as("dave"), labeled["project"])
    assert response.status_code == 201, response.json()
    assert response.json()["label_source"] == "consensus"
    manifest = manifest_of(response.json()["id"])
    assert manifest["label_source"]["mode"] == "consensus"
    assert "falls back to first_accepted" in manifest["label_source"]["rule"]
    first = labeled["series"][0].series_uid
    for sample in manifest["samples"]:
        assert readers_of(sample) == {"bob"}  # never two readers' labels on one series
        assert [r["reader"] for r in sample["reads"]] == ["bob"]
        assert sample["label_basis"] == ("first_accepted_fallback" if sample["key"] == first else "single_read")
    card = dataset_card(manifest, version_id=response.json()["id"], export_format="coco")
    assert "Label source: **consensus**" in card


def test_of_two_accepted_reads_the_earlier_accepted_wins(labeled: Any, cast: Any, api_as: Any) -> None:
    alice = second_read(labeled, cast)
    bob = Assignment.objects.get(series=labeled["series"][0], reader=cast["bob"])
    Assignment.objects.filter(pk=alice.pk).update(reviewed_at=bob.reviewed_at - dt.timedelta(hours=1))
    manifest = manifest_of(freeze(api_as("dave"), labeled["project"]).json()["id"])
    first = next(s for s in manifest["samples"] if s["key"] == labeled["series"][0].series_uid)
    assert readers_of(first) == {"alice"} and [r["reader"] for r in first["reads"]] == ["alice"]


def test_without_an_accepted_read_the_earliest_submitted_wins(labeled: Any, cast: Any, api_as: Any) -> None:
    alice = second_read(labeled, cast, finish="submitted")
    bob = Assignment.objects.get(series=labeled["series"][0], reader=cast["bob"])
    Assignment.objects.filter(pk=bob.pk).update(status="submitted", reviewed_at=None)
    Assignment.objects.filter(pk=alice.pk).update(submitted_at=bob.submitted_at - dt.timedelta(minutes=5))
    response = freeze(api_as("dave"), labeled["project"], selection={"statuses": ["submitted", "accepted"]})
    first = next(s for s in manifest_of(response.json()["id"])["samples"] if s["reads"][0]["reader"] == "alice")
    assert readers_of(first) == {"alice"}


def test_one_named_reader(labeled: Any, cast: Any, api_as: Any) -> None:
    second_read(labeled, cast)
    response = freeze(api_as("dave"), labeled["project"], label_source="reader", reader="alice")
    assert response.status_code == 201, response.json()
    manifest = manifest_of(response.json()["id"])
    assert [s["key"] for s in manifest["samples"]] == [labeled["series"][0].series_uid]  # alice read one series
    assert readers_of(manifest["samples"][0]) == {"alice"}
    assert manifest["label_source"] | {"rule": ""} == {
        "mode": "reader",
        "reader": "alice",
        "rule": "",
        "readers": ["alice"],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label_source": "majority"}, "label_source"),  # was "consensus", a mode since ADR 0012
        ({"label_source": "reader"}, "reader"),
        ({"label_source": "all_readers", "reader": "bob"}, "reader"),
        ({"label_source": "reader", "reader": "nobody"}, "reader"),
    ],
)
def test_a_bad_label_source_is_400_naming_the_field(labeled: Any, api_as: Any, body: Any, field: str) -> None:
    response = freeze(api_as("dave"), labeled["project"], **body)
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()


def test_every_reader_as_a_separate_label_set(labeled: Any, cast: Any, api_as: Any, run_tasks: Any) -> None:
    second_read(labeled, cast)
    api = api_as("dave")
    response = freeze(api, labeled["project"], label_source="all_readers")
    assert response.status_code == 201, response.json()
    manifest = manifest_of(response.json()["id"])
    assert manifest["label_source"]["readers"] == ["alice", "bob"]
    first = next(s for s in manifest["samples"] if s["key"] == labeled["series"][0].series_uid)
    assert readers_of(first) == {"alice", "bob"} and [r["reader"] for r in first["reads"]] == ["alice", "bob"]
    with run_tasks():
        asked = api.post(f"/api/versions/{response.json()['id']}/exports/", {"format": "coco"}, format="json")
    export = Export.objects.get(pk=asked.json()["id"])
    assert export.status == "done", export.error
    with default_storage.open(export.archive_path, "rb") as stream:
        archive = zipfile.ZipFile(io.BytesIO(stream.read()))
    names = archive.namelist()
    assert json.loads(archive.read("label_sets/readers.json")) == {"reader-01": "alice", "reader-02": "bob"}
    for folder, reader in (("reader-01", "alice"), ("reader-02", "bob")):
        found = set()
        for name in names:
            if name.startswith(f"label_sets/{folder}/annotations/"):
                found |= {a["source"]["reader"] for a in json.loads(archive.read(name))["annotations"]}
        assert found == {reader}
    assert "`label_sets/readers.json` says whose each is" in archive.read("README.md").decode()


def test_a_version_frozen_before_label_sources_still_says_it_merged(labeled: Any, api_as: Any) -> None:
    manifest = manifest_of(freeze(api_as("dave"), labeled["project"]).json()["id"])
    del manifest["label_source"]
    card = dataset_card(manifest, version_id="0" * 64, export_format="coco")
    assert "Label source: **merged**: every reader's labels on a series together" in card


def test_the_freeze_form_offers_the_label_sources_and_the_page_names_the_one_used(
    labeled: Any, cast: Any, client: Any
) -> None:
    second_read(labeled, cast)
    client.force_login(cast["dave"])
    created = client.post(f"/projects/{labeled['project'].pk}/datasets/", {"name": "lesions", "statuses": "accepted"})
    assert created.status_code == 302
    page = created["Location"]
    form = client.get(page).content.decode()
    assert 'value="first_accepted"' in form and 'value="all_readers"' in form and 'name="reader"' in form
    frozen = client.post(
        page,
        {"seed": 1, "train": 50, "validation": 25, "test": 25, "label_source": "reader", "reader": "alice"},
    )
    assert frozen.status_code == 302
    version = DatasetVersion.objects.get()
    assert version.label_source == "reader"
    shown = client.get(frozen["Location"]).content.decode()
    assert 'data-label-source="reader"' in shown and "(alice)" in shown


def test_a_dataset_can_keep_only_labels_a_person_made(labeled: Any, cast: Any, api_as: Any) -> None:
    from annotations.models import Annotation, Source

    first = labeled["series"][0]
    from_model = Annotation.objects.filter(assignment__series=first)
    assert from_model.exists()
    from_model.update(source=Source.MODEL, model_version="m" * 64)  # as if accepted from proposals
    total = Annotation.objects.filter(assignment__series__in=labeled["series"], deleted=False).count()
    counts = {}
    for origin in ("any", "verified", "human"):
        created = api_as("dave").post(
            f"/api/projects/{labeled['project'].pk}/datasets/",
            {"name": f"lesions {origin}", "selection": {"origin": origin}},
            format="json",
        )
        assert created.status_code == 201, created.json()
        response = api_as("dave").post(
            f"/api/datasets/{created.json()['id']}/versions/", {"split": SPLIT}, format="json"
        )
        assert response.status_code == 201, response.json()
        manifest = manifest_of(response.json()["id"])
        assert manifest["selection"]["origin"] == origin
        counts[origin] = sum(len(s["annotations"]) for s in manifest["samples"])
        card = dataset_card(manifest, version_id=response.json()["id"], export_format="coco")
        assert ("Labels made by" in card) == (origin != "any")
    # Accepted proposals are human-verified but not human-drawn.
    assert counts["any"] == counts["verified"] == total
    assert counts["human"] == total - from_model.count()
    bad = api_as("dave").post(
        f"/api/projects/{labeled['project'].pk}/datasets/",
        {"name": "x", "selection": {"origin": "robot"}},
        format="json",
    )
    assert bad.status_code == 400 and "origin" in bad.json()["message"]
