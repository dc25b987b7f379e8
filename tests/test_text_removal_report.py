"""The per-study report says in words what kind of content left which free-text attribute,
and never the value. The engine's removals are simulated here, so this proves the Django
side on its own: stored with the report, shown on the page, in the API and in the downloads.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.test import Client
from django.urls import reverse
from pydicom.data import get_testdata_file

from anonymizer import services
from anonymizer.deid.result import TextRemoval
from anonymizer.models import DeidReport
from anonymizer.text_removals import attribute_words, removal_rows, removal_sentence, removal_summary
from tests.helpers import CT_SMALL, ingest
from workbench.models import Study

PLANTED_DESCRIPTION = "Seen by GREGORYHOUSE tel 555-0134-777"
PLANTED = ("GREGORYHOUSE", "555-0134-777")
REMOVALS = (
    TextRemoval("(0008,1030)", "StudyDescription", "phone number"),
    TextRemoval("(0008,1030)", "StudyDescription", "person name"),
    TextRemoval("(0040,A730)[0].(0040,A160)", "TextValue", "unrecognised word"),
)
SENTENCE = "Study Description (0008,1030): person name, phone number removed"


# --- words ---------------------------------------------------------------------------------------


def test_attributes_in_words() -> None:
    assert attribute_words("(0008,1030)", "StudyDescription") == "Study Description (0008,1030)"
    nested = attribute_words("(0040,A730)[3].(0040,A160)", "TextValue")
    assert nested == "Text Value (0040,A160) in Content Sequence"
    assert attribute_words("(0009,1001)", "") == "Private attribute (0009,1001)"


def test_kinds_follow_the_declared_order_once_each() -> None:
    kinds = ["unrecognised word", "phone number", "person name", "phone number"]
    sentence = removal_sentence("(0008,1030)", "StudyDescription", kinds)
    assert sentence == "Study Description (0008,1030): person name, phone number, unrecognised word removed"


def test_rows_group_items_and_count_instances() -> None:
    first = [["(0040,A730)[0].(0040,A160)", "TextValue", "date"], ["(0040,A730)[1].(0040,A160)", "TextValue", "date"]]
    second = [["(0040,A730)[2].(0040,A160)", "TextValue", "person name"]]
    [row] = removal_rows([first, second])
    assert row["path"] == "(0040,A730).(0040,A160)" and row["tag"] == "(0040,A160)"
    assert row["instances"] == 2 and row["kinds"] == {"person name": 1, "date": 1}
    assert row["summary"] == "Text Value (0040,A160) in Content Sequence: person name, date removed"
    assert removal_summary([]) == ""


# --- through the pipeline -------------------------------------------------------------------------


@pytest.fixture
def cleaned_study(project_a: Any, cast: dict[str, Any], run_tasks: Any, monkeypatch: Any) -> Study:
    """CT_small with a doctor's name and a phone number in its description, as the engine will
    leave it: the description cleaned and the removals recorded."""
    real = services.process_file

    def engine(raw: bytes, **kwargs: Any) -> Any:
        outcome = real(raw, **kwargs)
        outcome.result.dataset.StudyDescription = "CT"
        result = dataclasses.replace(outcome.result, text_removals=REMOVALS)
        return dataclasses.replace(outcome, result=result)

    monkeypatch.setattr(services, "process_file", engine)
    ds = pydicom.dcmread(CT_SMALL)
    ds.StudyDescription = PLANTED_DESCRIPTION
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with run_tasks():
        ingest(project_a, {"ct.dcm": buffer.getvalue()}, user=cast["alice"])
    return Study.objects.get()


@pytest.mark.django_db
def test_the_report_stores_where_and_what_kind_only(cleaned_study: Study) -> None:
    report = DeidReport.objects.get()
    assert report.text_removals == [[r.path, r.keyword, r.kind] for r in REMOVALS]


@pytest.mark.django_db
def test_api_report_says_kind_and_attribute(api_as: Any, cleaned_study: Study) -> None:
    response = api_as("carol").get(reverse("api-study-deid-report", args=[cleaned_study.pk]))
    rows = {row["tag"]: row for row in response.json()["text_removals"]}
    assert rows["(0008,1030)"]["summary"] == SENTENCE
    assert rows["(0008,1030)"]["kinds"] == {"person name": 1, "phone number": 1}
    assert rows["(0040,A160)"]["summary"] == "Text Value (0040,A160) in Content Sequence: unrecognised word removed"
    assert not [value for value in PLANTED if value in response.content.decode()]
    assert api_as("bob").get(reverse("api-study-deid-report", args=[cleaned_study.pk])).status_code == 403


@pytest.mark.django_db
def test_page_report_says_kind_and_attribute(cast: dict[str, Any], cleaned_study: Study) -> None:
    client = Client()
    client.force_login(cast["carol"])
    html = client.get(reverse("study-deid-report", args=[cleaned_study.pk])).content.decode()
    assert "Free text" in html and SENTENCE in html
    assert not [value for value in PLANTED if value in html]


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_downloads_say_kind_and_attribute(fmt: str, api_as: Any, project_a: Any, cleaned_study: Study) -> None:
    response = api_as("carol").get(reverse("api-deid-report", args=[project_a.pk]), {"format": fmt})
    body = response.content.decode()
    assert response.status_code == 200 and SENTENCE in body and "text_removed" in body
    assert not [value for value in PLANTED if value in body]


@pytest.mark.django_db
def test_a_study_without_removals_says_so(cast: dict[str, Any], project_a: Any, run_tasks: Any) -> None:
    # MR_small's free text is all vocabulary (CT_small's "e+1" and "ISOVUE300/100" are not).
    mr_small = Path(get_testdata_file("MR_small.dcm"))
    with run_tasks():
        ingest(project_a, {"mr.dcm": mr_small.read_bytes()}, user=cast["alice"])
    client = Client()
    client.force_login(cast["carol"])
    html = client.get(reverse("study-deid-report", args=[Study.objects.get().pk])).content.decode()
    assert "No words were removed from free text." in html
    assert DeidReport.objects.get().text_removals == []
