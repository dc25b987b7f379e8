"""The viewer's context: the study's other series (the strip) and the patient's other studies
(compare with prior), only ever from the project whose membership was checked."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from pydicom.uid import generate_uid

from anonymizer.deid.tests.factory import make_ct
from tests.helpers import ingest
from workbench.demo import to_bytes
from workbench.models import Series

pytestmark = pytest.mark.django_db


def _series_files(*, patient_id: str, study_uid: str, series_number: int, slices: int = 3) -> dict[str, bytes]:
    series_uid, frame_uid = generate_uid(), generate_uid()
    files = {}
    for k in range(slices):
        ds = make_ct(patient_id=patient_id, study_uid=study_uid)
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = series_number, k + 1
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, -2.5 * k], [1, 0, 0, 0, 1, 0]
        files[f"{series_uid}-{k}.dcm"] = to_bytes(ds)
    return files


@pytest.fixture
def two_studies(project_a: Any, project_b: Any, cast: dict[str, Any], run_tasks: Any) -> dict[str, Series]:
    current, prior = generate_uid(), generate_uid()
    files = {
        **_series_files(patient_id="P-1", study_uid=current, series_number=1),
        **_series_files(patient_id="P-1", study_uid=current, series_number=2, slices=2),
        **_series_files(patient_id="P-1", study_uid=prior, series_number=1, slices=4),
        **_series_files(patient_id="P-2", study_uid=generate_uid(), series_number=1),
    }
    with run_tasks():
        ingest(project_a, files, user=cast["alice"])
        # the same patient in another project is another pseudonymous patient, never shown here
        ingest(
            project_b, _series_files(patient_id="P-1", study_uid=generate_uid(), series_number=1), user=cast["charlie"]
        )
    in_a = Series.objects.filter(study__project=project_a)
    # study UIDs are replaced on ingest: find the series by their shapes
    [current_series] = [s for s in in_a if s.number == 1 and s.study.series.count() == 2]
    [prior_series] = [s for s in in_a if s.instances.count() == 4]
    return {"current": current_series, "prior": prior_series}


def test_the_strip_lists_the_study_series_with_thumbnails(api_as: Any, two_studies: dict[str, Series]) -> None:
    current = two_studies["current"]
    data = api_as("bob").get(reverse("api-series-viewer", args=[current.pk])).json()
    strip = data["study_series"]
    assert [s["number"] for s in strip] == [1, 2]
    assert [s["instance_count"] for s in strip] == [3, 2]
    assert strip[0]["id"] == str(current.pk)
    thumb = api_as("bob").get(strip[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/png"
    assert [i["slice_position"] for i in data["instances"]] == [0.0, -2.5, -5.0]


def test_other_studies_are_the_same_patient_in_the_same_project(api_as: Any, two_studies: dict[str, Series]) -> None:
    data = api_as("bob").get(reverse("api-series-viewer", args=[two_studies["current"].pk])).json()
    [other] = data["other_studies"]
    assert other["id"] == str(two_studies["prior"].study_id)
    assert [s["instance_count"] for s in other["series"]] == [4]
    # and from the prior's side, the current study is the other one
    back = api_as("bob").get(reverse("api-series-viewer", args=[two_studies["prior"].pk])).json()
    assert [o["id"] for o in back["other_studies"]] == [str(two_studies["current"].study_id)]


def test_outsiders_see_nothing(api_as: Any, two_studies: dict[str, Series]) -> None:
    assert api_as("charlie").get(reverse("api-series-viewer", args=[two_studies["current"].pk])).status_code == 404


def test_queries_do_not_grow_with_the_patients_studies(two_studies: dict[str, Series], cast: dict[str, Any]) -> None:
    """The strip and the priors cost a fixed number of queries, not one per series or study."""
    from workbench.api.viewer import series_viewer_data

    current = two_studies["current"]
    series_viewer_data(user=cast["bob"], series=current)  # warm: roles and related rows are cached after this
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as counted:
        series_viewer_data(user=cast["bob"], series=current)
    baseline = len(counted.captured_queries)
    assert baseline <= 12
    prior_study = two_studies["prior"].study
    for number in range(3, 6):  # three more series in the prior study
        Series.objects.create(study=prior_study, series_uid=generate_uid(), modality="CT", number=number)
    with CaptureQueriesContext(connection) as again:
        data = series_viewer_data(user=cast["bob"], series=current)
    assert len(data["other_studies"][0]["series"]) == 4  # the new series are listed
    assert len(again.captured_queries) == baseline, [q["sql"][:80] for q in again.captured_queries]
