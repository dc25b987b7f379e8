"""The dataset pages: create, freeze, see the split chart and leakage check, export; roles."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from conftest import PASSWORD
from datasets.chart import split_chart
from datasets.models import Dataset, Export

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def _create_and_freeze(client: Client, project_id: Any) -> tuple[Dataset, str]:
    created = client.post(f"/projects/{project_id}/datasets/", {"name": "Lesions v1", "statuses": ["accepted"]})
    assert created.status_code == 302, created.content
    dataset = Dataset.objects.get(name="Lesions v1")
    frozen = client.post(
        f"/datasets/{dataset.pk}/", {"note": "first", "seed": 3, "train": 50, "validation": 25, "test": 25}
    )
    assert frozen.status_code == 302
    version = frozen["Location"].split("version=")[1]
    return dataset, version


def test_an_ml_engineer_creates_freezes_and_exports_from_the_page(labeled: Any, cast: Any, run_tasks: Any) -> None:
    client = _client(cast["dave"])
    listing = client.get(f"/projects/{labeled['project'].pk}/datasets/")
    assert listing.status_code == 200 and b'data-nav="datasets"' in listing.content
    dataset, version = _create_and_freeze(client, labeled["project"].pk)
    page = client.get(f"/datasets/{dataset.pk}/?version={version}").content.decode()
    assert f'class="version-id">{version}<' in page
    assert 'data-leakage="none"' in page and "all 6 patients checked" in page
    bars = re.findall(r'data-split="(\w+)" data-label="([^"]+)" data-count="(\d+)"', page)
    assert {split for split, _, _ in bars} == {"train", "validation", "test"}
    assert {label for _, label, _ in bars} == {"Nodule", "Lesion"}
    assert sum(int(n) for _, label, n in bars if label == "Lesion") == 6  # one box per series
    with run_tasks():
        asked = client.post(f"/versions/{version}/export/", {"format": "coco"})
    assert asked.status_code == 302
    export = Export.objects.get(version_id=version)
    assert export.status == "done", export.error
    page = client.get(f"/datasets/{dataset.pk}/?version={version}").content.decode()
    assert f'data-export="{export.pk}" data-status="done"' in page
    assert f"/api/exports/{export.pk}/download/" in page


def test_a_new_version_shows_its_changes_against_the_parent(labeled: Any, cast: Any) -> None:
    client = _client(cast["dave"])
    dataset, first = _create_and_freeze(client, labeled["project"].pk)
    dataset.selection = {**dataset.selection, "exclude": [str(labeled["series"][0].pk)]}
    dataset.save()
    frozen = client.post(f"/datasets/{dataset.pk}/", {"seed": 3, "train": 50, "validation": 25, "test": 25})
    second = frozen["Location"].split("version=")[1]
    assert second != first
    page = client.get(f"/datasets/{dataset.pk}/?version={second}").content.decode()
    assert f'Changes since <a href="?version={first}">' in page
    assert '<li data-change="removed">1 removed</li>' in page


def test_freezing_with_bad_shares_says_why_on_the_page(labeled: Any, cast: Any) -> None:
    client = _client(cast["dave"])
    client.post(f"/projects/{labeled['project'].pk}/datasets/", {"name": "x", "statuses": ["accepted"]})
    dataset = Dataset.objects.get(name="x")
    page = client.post(f"/datasets/{dataset.pk}/", {"seed": 0, "train": 50, "validation": 10, "test": 10})
    assert page.status_code == 200 and b"must add up to 1" in page.content


def test_readers_do_not_see_datasets_and_reviewers_only_look(labeled: Any, cast: Any) -> None:
    dataset, version = _create_and_freeze(_client(cast["dave"]), labeled["project"].pk)
    bob = _client(cast["bob"])
    assert bob.get(f"/projects/{labeled['project'].pk}/datasets/").status_code == 403
    assert bob.get(f"/datasets/{dataset.pk}/").status_code == 403
    assert b'data-nav="datasets"' not in bob.get(f"/projects/{labeled['project'].pk}/").content
    erin = _client(cast["erin"])
    page = erin.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200 and b"Freeze a new version" not in page.content
    assert (
        erin.post(f"/datasets/{dataset.pk}/", {"seed": 1, "train": 100, "validation": 0, "test": 0}).status_code == 403
    )
    assert erin.post(f"/versions/{version}/export/", {"format": "coco"}).status_code == 403
    assert not Export.objects.exists()


def test_an_outsider_gets_404_on_every_dataset_page(labeled: Any, cast: Any) -> None:
    dataset, version = _create_and_freeze(_client(cast["dave"]), labeled["project"].pk)
    charlie = _client(cast["charlie"])
    assert charlie.get(f"/projects/{labeled['project'].pk}/datasets/").status_code == 404
    assert charlie.get(f"/datasets/{dataset.pk}/").status_code == 404
    assert charlie.post(f"/versions/{version}/export/", {"format": "coco"}).status_code == 404


def test_the_chart_scales_bars_to_the_largest_count() -> None:
    chart = split_chart(
        {
            "train": {"samples": 8, "patients": 4, "labels": {"Lesion": 10, "Organ": 5}},
            "test": {"samples": 2, "patients": 1, "labels": {"Lesion": 2}},
        },
        {"Lesion": "#ff0000"},
    )
    assert chart is not None
    bars = {(b.split, b.label): b for b in chart.bars}
    assert [g[0] for g in chart.groups] == ["train", "test"]
    assert bars["train", "Lesion"].height == 2 * bars["train", "Organ"].height == 5 * bars["test", "Lesion"].height
    assert bars["test", "Organ"].height == 0 and bars["test", "Organ"].color == "#888888"
    assert bars["train", "Lesion"].share == pytest.approx(10 / 12)
    assert split_chart({"train": {"samples": 1, "patients": 1, "labels": {}}}, {}) is None
