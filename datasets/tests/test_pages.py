"""The dataset pages: create, freeze, see the split chart and leakage check, export; roles."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from conftest import PASSWORD
from datasets.chart import axis_step, counted, split_chart
from datasets.exporters import FORMATS, get_exporter
from datasets.models import Dataset, DatasetVersion, Export

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
    assert [g.split for g in chart.groups] == ["train", "test"]
    assert bars["train", "Lesion"].height == 2 * bars["train", "Organ"].height == 5 * bars["test", "Lesion"].height
    assert bars["test", "Organ"].height == 0 and bars["test", "Organ"].color == "#888888"
    assert bars["train", "Lesion"].share == pytest.approx(10 / 12)
    assert split_chart({"train": {"samples": 1, "patients": 1, "labels": {}}}, {}) is None


def test_the_chart_has_a_y_axis_with_round_ticks_matching_the_bars() -> None:
    chart = split_chart({"train": {"samples": 3, "patients": 2, "labels": {"Lesion": 7}}}, {})
    assert chart is not None
    assert [value for _, value in chart.ticks] == [0, 2, 4, 6, 8]
    (bar,) = chart.bars
    zero_y, top_y = chart.ticks[0][0], chart.ticks[-1][0]
    assert zero_y == chart.baseline and bar.y + bar.height == pytest.approx(chart.baseline)
    assert bar.height == pytest.approx((zero_y - top_y) * 7 / 8, abs=0.1)  # 7 of the axis's 8


@pytest.mark.parametrize(("tallest", "step"), [(0, 1), (3, 1), (7, 2), (10, 2), (49, 10), (120, 50), (4000, 1000)])
def test_axis_steps_are_round(tallest: int, step: int) -> None:
    assert axis_step(tallest) == step


def test_counts_under_each_split_use_singular_and_plural() -> None:
    assert [counted(1, "patient"), counted(2, "patient"), counted(1, "study"), counted(3, "study")] == [
        "1 patient",
        "2 patients",
        "1 study",
        "3 studies",
    ]
    assert (counted(1, "series"), counted(2, "series"), counted(1, "image")) == ("1 series", "2 series", "1 image")
    entry = {"samples": 1, "patients": 1, "studies": 1, "instances": 12, "labels": {"Lesion": 1}}
    chart = split_chart({"test": entry}, {})
    assert chart is not None and chart.groups[0].counts == ("1 patient", "1 study", "1 series", "12 images")
    older = split_chart({"test": {"samples": 2, "patients": 1, "labels": {"Lesion": 1}}}, {})
    assert older is not None and older.groups[0].counts == ("1 patient", "2 series")  # frozen before studies


def test_the_page_draws_the_axis_and_the_counts_of_each_split(labeled: Any, cast: Any) -> None:
    client = _client(cast["dave"])
    dataset, version = _create_and_freeze(client, labeled["project"].pk)
    page = client.get(f"/datasets/{dataset.pk}/?version={version}").content.decode()
    svg = page.split('<svg class="split-chart"', 1)[1].split("</svg>", 1)[0]
    assert ">Annotations</text>" in svg and svg.count('class="tick"') >= 2
    assert re.findall(r'class="bar-count"[^>]*>(\d+)<', svg)
    counts = re.findall(r'class="group-count" data-split="(\w+)"[^>]*>([^<]+)<', svg)
    for split in ("train", "validation", "test"):
        lines = [text for name, text in counts if name == split]
        assert [line.split()[1] for line in lines] in (
            ["patient", "study", "series", "images"],
            ["patients", "studies", "series", "images"],
        ), lines
        number = int(lines[0].split()[0])
        assert lines[0] == (f"{number} patient" if number == 1 else f"{number} patients")
    assert "1 patients" not in page and "1 studies" not in page and "1 images" not in page


def test_the_leakage_line_says_one_patient_in_the_singular(labeled: Any, cast: Any) -> None:
    client = _client(cast["dave"])
    dataset, version = _create_and_freeze(client, labeled["project"].pk)
    frozen = DatasetVersion.objects.get(pk=version)
    frozen.summary = {**frozen.summary, "patients": 1}
    frozen.save(update_fields=["summary"])
    page = client.get(f"/datasets/{dataset.pk}/?version={version}").content.decode()
    assert "the 1 patient checked" in page and "1 patients" not in page


# A value other than the default for every option an exporter has, as the form sends it and
# as the export must hold it.
OPTION_VALUES = {
    "frames": ("annotated", "annotated"),
    "bit_depth": ("16", 16),
    "window": ("minmax", "minmax"),
    "task": ("segment", "segment"),
    "dataset_id": ("7", 7),
    "name": ("Lesions", "Lesions"),
}
EVERY_OPTION = [(name, key) for name in FORMATS for key in get_exporter(name).options]


def test_the_export_form_offers_every_option_of_every_format(labeled: Any, cast: Any) -> None:
    client = _client(cast["dave"])
    dataset, version = _create_and_freeze(client, labeled["project"].pk)
    page = client.get(f"/datasets/{dataset.pk}/?version={version}").content.decode()
    form = page.split('class="export-form"', 1)[1].split("</form>", 1)[0]
    assert EVERY_OPTION and {key for _, key in EVERY_OPTION} <= set(OPTION_VALUES)
    for name, key in EVERY_OPTION:
        fieldset = re.search(rf'data-option="{key}" data-formats="([^"]*)"', form)
        assert fieldset is not None, key
        assert name in fieldset.group(1).split(), (name, key)
        assert f'name="{key}"' in form
    for name in FORMATS:
        assert f'<option value="{name}"' in form


@pytest.mark.parametrize(("export_format", "key"), EVERY_OPTION)
def test_each_option_chosen_in_the_form_reaches_the_export(
    labeled: Any, cast: Any, export_format: str, key: str
) -> None:
    client = _client(cast["dave"])
    _, version = _create_and_freeze(client, labeled["project"].pk)
    sent, held = OPTION_VALUES[key]
    answer = client.post(f"/versions/{version}/export/", {"format": export_format, key: sent})
    assert answer.status_code == 302
    export = Export.objects.get(version_id=version)
    assert (export.format, export.options) == (export_format, {key: held})


def test_blank_options_are_not_sent_and_bad_values_are_refused_like_the_api(labeled: Any, cast: Any) -> None:
    client = _client(cast["dave"])
    dataset, version = _create_and_freeze(client, labeled["project"].pk)
    blank = dict.fromkeys(OPTION_VALUES, "")
    client.post(f"/versions/{version}/export/", {"format": "nnunet", **blank})
    assert list(Export.objects.values_list("options", flat=True)) == [{}]
    refused = client.post(
        f"/versions/{version}/export/", {"format": "nnunet", "dataset_id": "5000"}, follow=True
    ).content.decode()
    assert "dataset_id must be a whole number from 1 to 999" in refused
    wrong_format = client.post(
        f"/versions/{version}/export/", {"format": "nifti", "task": "segment"}, follow=True
    ).content.decode()
    assert "Unknown option(s) for nifti: task" in wrong_format
    assert Export.objects.count() == 1


def test_the_export_form_warns_what_yolo_leaves_out(labeled: Any, cast: Any) -> None:
    """Points and lines have no YOLO form: the form says so before anyone exports, with counts."""
    from django.contrib.auth import get_user_model

    from annotations import services as annotation_services
    from datasets import services as dataset_services
    from datasets.card import export_warnings
    from tests.annotation_factory import label_id, sop_uids
    from workbench.models import Membership, Role

    project, schema, series = labeled["project"], labeled["schema"], labeled["series"][0]
    fred = get_user_model().objects.create_user(username="fred", password="x")
    Membership.objects.create(project=project, user=fred, role=Role.RADIOLOGIST)
    (read,) = annotation_services.assignment_create(series=series, readers=[fred], user=cast["alice"])
    for name, geometry in [
        ("Landmark", {"x": 2, "y": 3}),
        ("Landmark", {"x": 4, "y": 4}),
        ("Diameter", {"points": [[1, 1], [5, 5]]}),
    ]:
        annotation_services.annotation_create(
            assignment=read,
            user=fred,
            label=schema.labels.get(pk=label_id(schema, name)),
            sop_instance_uid=sop_uids(series)[0],
            geometry=geometry,
        )
    annotation_services.assignment_accept(
        assignment=annotation_services.assignment_submit(assignment=read, user=fred), user=cast["erin"]
    )
    dataset = dataset_services.dataset_create(
        project=project, user=cast["dave"], name="Landmarks", selection={"statuses": ["accepted"]}
    )
    version, _ = dataset_services.version_freeze(
        dataset=dataset, user=cast["dave"], label_source="reader", reader="fred"
    )
    html = _client(cast["dave"]).get(f"/datasets/{dataset.pk}/?version={version.pk}").content.decode()
    (warning,) = re.findall(r'<p class="export-warning bad" data-formats="yolo"[^>]*>([^<]*)</p>', html)
    assert "2 Landmark (point), 1 Diameter (line)" in warning and "COCO keeps them" in warning
    assert 'class="export-warning bad" data-formats="coco"' not in html
    # a version without points or lines has nothing to warn about
    assert export_warnings([{"name": "Lesion", "kind": "box"}], {"train": {"labels": {"Lesion": 3}}}) == {}
