"""Proposals: a read's model proposals through the API; accept, edit-then-accept, reject, accept-above.

Cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer in project A; charlie is an outsider (admin of project B). Proposals are made
directly here (no torch); tests/test_preannotate.py runs a real model.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from annotations import geometry as geo
from annotations import services
from annotations.models import Annotation, AssignmentStatus
from inference.models import InferenceRun, ModelVersion, Proposal, ProposalDecision
from tests.annotation_factory import make_schema, make_series, sop_uids
from workbench.models import Membership

SIZE = 16


def _mask(rows: slice, cols: slice) -> dict[str, Any]:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[rows, cols] = True
    return {"rows": SIZE, "columns": SIZE, "rle": geo.rle_encode(mask)}


def make_model(project: Any, *, name: str = "tiny") -> ModelVersion:
    return ModelVersion.objects.create(
        id=(name * 64)[:64],
        project=project,
        kind="segmentation",
        name=name,
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2},
        weights_path="unused",
        weights_sha256="0" * 64,
    )


@pytest.fixture
def read(cast: dict[str, Any], project_a: Any) -> dict[str, Any]:
    """bob's and dave's reads of one 2-image series, and three proposals on it (0.9, 0.85, 0.5)."""
    schema = make_schema(project_a)
    series = make_series(project_a, instances=2, rows=SIZE, columns=SIZE)
    bob, dave = services.assignment_create(series=series, readers=[cast["bob"], cast["dave"]], user=cast["alice"])
    model = make_model(project_a)
    run = InferenceRun.objects.create(project=project_a, model=model, series_ids=[str(series.pk)], status="done")
    nodule = schema.labels.get(name="Nodule")
    uids = sop_uids(series)
    proposals = [
        Proposal.objects.create(
            run=run,
            model=model,
            series=series,
            label=nodule,
            sop_instance_uid=uid,
            frame=0,
            kind="mask",
            geometry=_mask(slice(r, r + 4), slice(2, 6)),
            score=score,
        )
        for uid, r, score in ((uids[0], 2, 0.9), (uids[0], 8, 0.85), (uids[1], 4, 0.5))
    ]
    return {"bob": bob, "dave": dave, "proposals": proposals, "model": model, "series": series, "uids": uids}


def _list(read: dict[str, Any]) -> str:
    return f"/api/assignments/{read['bob'].pk}/proposals/"


def _url(read: dict[str, Any], index: int, action: str, who: str = "bob") -> str:
    return f"/api/assignments/{read[who].pk}/proposals/{read['proposals'][index].pk}/{action}/"


# --- the list ---------------------------------------------------------------------------------------


def test_the_reader_lists_the_proposals_of_the_read_pending(api_as: Any, read: dict[str, Any]) -> None:
    response = api_as("bob").get(_list(read), {"page_size": 1000})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 3
    first = next(p for p in body["results"] if p["id"] == str(read["proposals"][0].pk))
    assert set(first) == {
        "id",
        "run",
        "model_version",
        "label",
        "label_name",
        "kind",
        "sop_instance_uid",
        "frame",
        "geometry",
        "score",
        "uncertainty",
        "decision",
        "annotation",
    }
    assert first["decision"] == "pending" and first["annotation"] is None and first["label_name"] == "Nodule"
    assert first["model_version"] == read["model"].pk and first["kind"] == "mask" and first["score"] == 0.9
    assert first["uncertainty"] is None  # made before maps existed, or by a handler without them
    only = api_as("bob").get(_list(read), {"sop_instance_uid": read["uids"][1]}).json()
    assert [p["score"] for p in only["results"]] == [0.5]


def test_the_list_is_paged_and_bounded(api_as: Any, read: dict[str, Any]) -> None:
    page = api_as("bob").get(_list(read), {"page_size": 2}).json()
    assert len(page["results"]) == 2 and "page=2" in page["next"]
    assert api_as("bob").get(_list(read), {"page_size": 1001}).status_code == 400


def test_the_list_needs_login_and_hides_the_read_from_others(api_as: Any, read: dict[str, Any]) -> None:
    from rest_framework.test import APIClient

    assert APIClient().get(_list(read)).status_code in (401, 403)
    assert api_as("charlie").get(_list(read)).status_code == 404  # outsider
    assert api_as("carol").get(_list(read)).status_code == 404  # member, but not this read's
    assert api_as("dave").get(_list(read)).status_code == 404  # another reader's read: blinded
    assert api_as("erin").get(_list(read)).status_code == 200  # reviewer


def test_a_former_member_gets_404(api_as: Any, read: dict[str, Any], cast: dict[str, Any]) -> None:
    Membership.objects.filter(user=cast["bob"]).delete()
    assert api_as("bob").get(_list(read)).status_code == 404
    assert api_as("bob").post(_url(read, 0, "accept"), {}, format="json").status_code == 404


# --- accept -----------------------------------------------------------------------------------------


def test_accept_makes_a_model_annotation_with_provenance_and_history(api_as: Any, read: dict[str, Any]) -> None:
    opened = timezone.now() - dt.timedelta(seconds=12)
    proposal = read["proposals"][0]
    response = api_as("bob").post(_url(read, 0, "accept"), {"opened_at": opened.isoformat()}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    annotation = Annotation.objects.get(pk=body["annotation"]["id"])
    assert annotation.source == "model" and annotation.model_version == read["model"].pk
    assert annotation.proposal == proposal.pk and annotation.geometry == proposal.geometry
    assert annotation.assignment == read["bob"] and annotation.revision == 1
    assert body["annotation"] == api_as("bob").get(f"/api/annotations/{annotation.pk}/").json()
    provenance = body["provenance"]
    key = f"{proposal.sop_instance_uid}:0"
    assert provenance["edited"] is False and provenance["dice"] == 1.0
    assert provenance["slices"] == {key: {"added": 0, "removed": 0}}
    assert 12 <= provenance["seconds_to_accept"] < 60
    assert provenance["model_version"] == read["model"].pk and provenance["proposal"] == str(proposal.pk)
    history = api_as("bob").get(f"/api/annotations/{annotation.pk}/history/").json()["results"]
    assert [h["action"] for h in history] == ["create"] and history[0]["provenance"] == provenance
    listed = next(p for p in api_as("bob").get(_list(read)).json()["results"] if p["id"] == str(proposal.pk))
    assert listed["decision"] == "accepted" and listed["annotation"] == str(annotation.pk)
    again = api_as("bob").post(_url(read, 0, "accept"), {}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "already_decided"
    assert Annotation.objects.count() == 1


def test_edit_then_accept_records_the_pixels_changed(api_as: Any, read: dict[str, Any]) -> None:
    proposal = read["proposals"][0]  # rows 2-5, columns 2-5: 16 pixels
    edited = _mask(slice(2, 6), slice(3, 8))  # one column dropped, two added: 20 pixels, 12 shared
    response = api_as("bob").post(_url(read, 0, "accept"), {"geometry": edited}, format="json")
    assert response.status_code == 201, response.json()
    provenance = response.json()["provenance"]
    assert provenance["edited"] is True and provenance["seconds_to_accept"] is None
    assert provenance["slices"] == {f"{proposal.sop_instance_uid}:0": {"added": 8, "removed": 4}}
    assert provenance["dice"] == pytest.approx(2 * 12 / (16 + 20), abs=1e-4)
    annotation = Annotation.objects.get(pk=response.json()["annotation"]["id"])
    assert annotation.geometry == edited and annotation.source == "model"
    history = api_as("bob").get(f"/api/annotations/{annotation.pk}/history/").json()["results"]
    assert history[0]["provenance"]["slices"] == provenance["slices"]
    proposal.refresh_from_db()
    assert proposal.geometry == _mask(slice(2, 6), slice(2, 6))  # the proposal itself stays as proposed


def test_an_edit_is_validated_like_any_annotation(api_as: Any, read: dict[str, Any]) -> None:
    bad = {"rows": SIZE + 1, "columns": SIZE, "rle": [0, 3]}
    response = api_as("bob").post(_url(read, 0, "accept"), {"geometry": bad}, format="json")
    assert response.status_code == 400 and "geometry" in response.json()["fields"]
    assert not Annotation.objects.exists() and not ProposalDecision.objects.exists()


def test_accepting_never_changes_a_human_annotation(api_as: Any, read: dict[str, Any], cast: dict[str, Any]) -> None:
    nodule = read["proposals"][0].label
    human, _ = services.annotation_create(
        assignment=read["bob"],
        user=cast["bob"],
        label=nodule,
        sop_instance_uid=read["uids"][0],
        geometry=_mask(slice(0, 3), slice(0, 3)),
    )
    assert api_as("bob").post(_url(read, 0, "accept"), {}, format="json").status_code == 201
    human.refresh_from_db()
    assert human.revision == 1 and human.source == "human" and human.geometry == _mask(slice(0, 3), slice(0, 3))
    assert Annotation.objects.count() == 2


# --- reject and accept-above -----------------------------------------------------------------------


def test_reject_changes_no_annotation_and_each_read_decides_alone(api_as: Any, read: dict[str, Any]) -> None:
    response = api_as("bob").post(_url(read, 1, "reject"))
    assert response.status_code == 200 and response.json() == {"decision": "rejected"}
    assert not Annotation.objects.exists()
    mine = {p["id"]: p["decision"] for p in api_as("bob").get(_list(read)).json()["results"]}
    assert mine[str(read["proposals"][1].pk)] == "rejected"
    theirs = api_as("dave").get(f"/api/assignments/{read['dave'].pk}/proposals/").json()["results"]
    assert {p["decision"] for p in theirs} == {"pending"}
    assert api_as("bob").post(_url(read, 1, "reject")).status_code == 200  # idempotent
    # A rejected proposal can still be accepted; an accepted one is not rejected (delete its annotation).
    assert api_as("bob").post(_url(read, 1, "accept"), {}, format="json").status_code == 201
    refused = api_as("bob").post(_url(read, 1, "reject"))
    assert refused.status_code == 409 and refused.json()["error"] == "already_decided"


def test_accept_above_accepts_the_pending_proposals_at_or_above_the_score(api_as: Any, read: dict[str, Any]) -> None:
    assert api_as("bob").post(_url(read, 1, "reject")).status_code == 200
    url = f"/api/assignments/{read['bob'].pk}/proposals/accept-above/"
    response = api_as("bob").post(url, {"score": 0.8}, format="json")
    assert response.status_code == 200 and response.json() == {"accepted": 1}
    decisions = dict(ProposalDecision.objects.values_list("proposal__score", "status"))
    assert decisions == {0.9: "accepted", 0.85: "rejected"}
    assert api_as("bob").post(url, {"score": 0.0}, format="json").json() == {"accepted": 1}  # the 0.5 one
    assert Annotation.objects.filter(source="model").count() == 2
    assert api_as("bob").post(url, {"score": 2}, format="json").status_code == 400


# --- locks and roles --------------------------------------------------------------------------------


def test_a_locked_read_answers_409_like_the_annotations_api(api_as: Any, read: dict[str, Any]) -> None:
    read["bob"].status = AssignmentStatus.SUBMITTED
    read["bob"].save()
    for url, body in (
        (_url(read, 0, "accept"), {}),
        (_url(read, 0, "reject"), {}),
        (f"/api/assignments/{read['bob'].pk}/proposals/accept-above/", {"score": 0.1}),
    ):
        response = api_as("bob").post(url, body, format="json")
        assert response.status_code == 409 and response.json()["error"] == "locked", url
    assert not Annotation.objects.exists() and not ProposalDecision.objects.exists()


def test_who_may_decide(api_as: Any, read: dict[str, Any]) -> None:
    from rest_framework.test import APIClient

    assert APIClient().post(_url(read, 0, "reject")).status_code in (401, 403)
    assert api_as("charlie").post(_url(read, 0, "reject")).status_code == 404
    assert api_as("carol").post(_url(read, 0, "reject")).status_code == 404
    assert api_as("dave").post(_url(read, 0, "reject")).status_code == 404  # bob's read, not dave's
    assert api_as("alice").post(_url(read, 0, "reject")).status_code == 403  # admins see, readers decide
    assert api_as("erin").post(_url(read, 0, "reject")).status_code == 200  # reviewers write reads


def test_a_proposal_of_another_series_is_not_found_through_this_read(
    api_as: Any, read: dict[str, Any], project_a: Any, cast: dict[str, Any]
) -> None:
    other = make_series(project_a, instances=1, rows=SIZE, columns=SIZE)
    (elsewhere,) = services.assignment_create(series=other, readers=[cast["bob"]], user=cast["alice"])
    url = f"/api/assignments/{elsewhere.pk}/proposals/{read['proposals'][0].pk}/accept/"
    assert api_as("bob").post(url, {}, format="json").status_code == 404
    assert api_as("bob").get(f"/api/assignments/{elsewhere.pk}/proposals/").json()["count"] == 0


def test_a_human_annotation_has_no_provenance_in_its_history(
    api_as: Any, read: dict[str, Any], cast: dict[str, Any]
) -> None:
    human, _ = services.annotation_create(
        assignment=read["bob"],
        user=cast["bob"],
        label=read["proposals"][0].label,
        sop_instance_uid=read["uids"][0],
        geometry=_mask(slice(0, 3), slice(0, 3)),
    )
    history = api_as("bob").get(f"/api/annotations/{human.pk}/history/").json()["results"]
    assert history[0]["provenance"] is None


# --- runs -------------------------------------------------------------------------------------------


def _runs(project: Any) -> str:
    return f"/api/projects/{project.pk}/inference-runs/"


def test_ml_engineers_and_admins_start_runs(api_as: Any, read: dict[str, Any], project_a: Any) -> None:
    fresh = make_series(project_a, instances=3, rows=SIZE, columns=SIZE)
    body = {"model": read["model"].pk, "series": [str(fresh.pk)]}
    response = api_as("dave").post(_runs(project_a), body, format="json")
    assert response.status_code == 201, response.json()
    run = response.json()
    assert run["status"] == "queued" and run["series"] == [str(fresh.pk)] and run["slices_total"] == 3
    assert run["model"] == read["model"].pk and run["created_by"] == "dave" and run["proposals_count"] == 0
    assert api_as("alice").get(f"/api/inference-runs/{run['id']}/").json()["id"] == run["id"]
    # Without series: every CT series nobody has labelled (all three here: no annotations yet).
    everything = api_as("alice").post(_runs(project_a), {"model": read["model"].pk}, format="json")
    assert everything.status_code == 201 and set(everything.json()["series"]) == {
        str(read["series"].pk),
        str(fresh.pk),
    }
    assert api_as("dave").get(_runs(project_a)).json()["count"] == 3  # with the fixture's run


def test_a_series_with_annotations_is_left_out_by_default(
    api_as: Any, read: dict[str, Any], project_a: Any, cast: dict[str, Any]
) -> None:
    services.annotation_create(
        assignment=read["bob"],
        user=cast["bob"],
        label=read["proposals"][0].label,
        sop_instance_uid=read["uids"][0],
        geometry=_mask(slice(0, 3), slice(0, 3)),
    )
    response = api_as("alice").post(_runs(project_a), {"model": read["model"].pk}, format="json")
    assert response.status_code == 400 and "series" in response.json()["fields"]
    assert "labelled already" in response.json()["message"]


def test_runs_need_the_role_and_hide_other_projects(
    api_as: Any, read: dict[str, Any], project_a: Any, project_b: Any
) -> None:
    from rest_framework.test import APIClient

    body = {"model": read["model"].pk}
    run = InferenceRun.objects.get()
    assert APIClient().get(_runs(project_a)).status_code in (401, 403)
    assert APIClient().post(_runs(project_a), body, format="json").status_code in (401, 403)
    for who in ("bob", "carol", "erin"):
        assert api_as(who).post(_runs(project_a), body, format="json").status_code == 403, who
        assert api_as(who).get(_runs(project_a)).status_code == 403, who
        assert api_as(who).get(f"/api/inference-runs/{run.pk}/").status_code == 403, who
    assert api_as("charlie").get(_runs(project_a)).status_code == 404
    assert api_as("charlie").post(_runs(project_a), body, format="json").status_code == 404
    assert api_as("charlie").get(f"/api/inference-runs/{run.pk}/").status_code == 404
    assert api_as("alice").get("/api/inference-runs/00000000-0000-0000-0000-000000000000/").status_code == 404
    # Another project's model or series is refused by name, not run.
    assert api_as("charlie").post(_runs(project_b), body, format="json").status_code == 400
    elsewhere = make_series(project_b, instances=1)
    response = api_as("alice").post(_runs(project_a), {**body, "series": [str(elsewhere.pk)]}, format="json")
    assert response.status_code == 400 and "series" in response.json()["fields"]
    assert InferenceRun.objects.count() == 1


def test_a_model_whose_labels_the_schema_lacks_is_refused(api_as: Any, read: dict[str, Any], project_a: Any) -> None:
    ModelVersion.objects.filter(pk=read["model"].pk).update(labels=["Liver"])
    response = api_as("alice").post(_runs(project_a), {"model": read["model"].pk}, format="json")
    assert response.status_code == 400 and "Liver" in response.json()["message"]
    ModelVersion.objects.filter(pk=read["model"].pk).update(labels=["Lung"])  # a polygon label
    response = api_as("alice").post(_runs(project_a), {"model": read["model"].pk}, format="json")
    assert response.status_code == 400 and "polygon" in response.json()["message"]


def test_the_list_costs_the_same_queries_for_more_proposals(api_as: Any, read: dict[str, Any]) -> None:
    client = api_as("bob")
    client.get(_list(read))  # warm-up: token and role caches are per request, the rest is not

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get(_list(read), {"page_size": 1000}).status_code == 200
        return len(captured)

    few = queries()
    template = read["proposals"][0]
    Proposal.objects.bulk_create(
        Proposal(
            run=template.run,
            model=template.model,
            series=template.series,
            label=template.label,
            sop_instance_uid=template.sop_instance_uid,
            frame=0,
            kind="mask",
            geometry=template.geometry,
            score=0.3,
        )
        for _ in range(40)
    )
    assert queries() == few


def test_model_acceptance_sums_up_the_decisions_per_model(api_as: Any, read: dict[str, Any], project_a: Any) -> None:
    from inference.decisions import model_acceptance

    opened = (timezone.now() - dt.timedelta(seconds=10)).isoformat()
    api_as("bob").post(_url(read, 0, "accept"), {"opened_at": opened}, format="json")
    edited = _mask(slice(8, 12), slice(2, 7))
    api_as("bob").post(_url(read, 1, "accept"), {"geometry": edited}, format="json")
    api_as("bob").post(_url(read, 2, "reject"))
    (row,) = model_acceptance(project=project_a)
    assert row["model_version"] == read["model"].pk and row["name"] == "tiny"
    assert (row["accepted_unchanged"], row["edited"], row["rejected"]) == (1, 1, 1)
    assert row["share_accepted_unchanged"] == pytest.approx(1 / 3)
    assert row["mean_dice"] == pytest.approx((1.0 + 2 * 16 / 36) / 2, abs=1e-3)
    assert 10 <= row["mean_seconds_to_accept"] < 60


# --- the quality page: per model version ------------------------------------------------------------


def test_the_quality_page_reports_each_model_version(
    client: Any, api_as: Any, cast: dict[str, Any], project_a: Any, read: dict[str, Any]
) -> None:
    from datetime import timedelta

    from annotations.models import AnnotationRevision, Assignment

    reader = api_as("bob")
    opened = (timezone.now() - timedelta(seconds=30)).isoformat()
    assert reader.post(_url(read, 0, "accept"), {"opened_at": opened}, format="json").status_code == 201
    edited = _mask(slice(8, 12), slice(2, 8))  # 16 px proposed, 24 drawn: Dice 2*16/40 = 0.8
    assert reader.post(_url(read, 1, "accept"), {"geometry": edited}, format="json").status_code == 201
    assert reader.post(_url(read, 2, "reject"), {}, format="json").status_code == 200
    client.force_login(cast["erin"])
    page = client.get(f"/projects/{project_a.pk}/quality/").content.decode()
    row = page[page.index(f'data-model="{read["model"].pk}"') :]
    row = row[: row.index("</tr>")]
    assert "<td>3</td>" in row and "1 (33 %)" in row  # decided; accepted unchanged
    assert '<td class="proposal-dice">0.900</td>' in row  # mean of 1.0 and 0.8
    assert "30 s" in row or "29 s" in row or "31 s" in row
    # Reading time per label: bob's read (two model labels) against dave's (one drawn by hand).
    nodule = read["proposals"][0].label
    services.annotation_create(
        assignment=read["dave"], user=cast["dave"], label=nodule, sop_instance_uid=read["uids"][0], geometry=edited
    )
    start = timezone.now() - timedelta(seconds=100)
    AnnotationRevision.objects.filter(annotation__assignment__in=[read["bob"], read["dave"]]).update(at=start)
    Assignment.objects.filter(pk=read["bob"].pk).update(submitted_at=start + timedelta(seconds=40))  # 20 s a label
    Assignment.objects.filter(pk=read["dave"].pk).update(submitted_at=start + timedelta(seconds=90))  # 90 s a label
    page = client.get(f"/projects/{project_a.pk}/quality/").content.decode()
    assert "90 s without proposals" in page and "20 s with them" in page and "70 s saved" in page
    client.force_login(cast["bob"])
    assert client.get(f"/projects/{project_a.pk}/quality/").status_code == 403
