"""Consensus reads and their routing (annotations.adjudication), through the services.

Cast (conftest.py): alice admin, bob radiologist, erin reviewer, dave ML engineer in project A;
fred is a second radiologist. bob and fred read; alice or erin adjudicates.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from annotations import adjudication, selectors, services
from annotations.models import (
    Annotation,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    ConsensusState,
    SeriesConsensus,
    Source,
)
from tests.annotation_factory import make_schema, make_series, sop_uids
from workbench.models import AuditEvent, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def fred(cast: dict[str, Any], project_a: Project) -> Any:
    user = get_user_model().objects.create_user(username="fred", password="x")
    Membership.objects.create(project=project_a, user=user, role=Role.RADIOLOGIST)
    cast["fred"] = user
    return user


@pytest.fixture
def world(cast: dict[str, Any], fred: Any, project_a: Project) -> dict[str, Any]:
    schema = make_schema(project_a)
    series = make_series(project_a, instances=3)
    bob_read, fred_read = services.assignment_create(series=series, readers=[cast["bob"], fred], user=cast["alice"])
    return {
        "schema": schema,
        "series": series,
        "bob": bob_read,
        "fred": fred_read,
        "sops": sop_uids(series),
        "label": lambda name: schema.labels.get(name=name),
    }


def _box(world: dict[str, Any], read: Assignment, box: tuple[float, float, float, float], slice_: int = 0) -> None:
    x0, y0, x1, y1 = box
    services.annotation_create(
        assignment=read,
        user=read.reader,
        label=world["label"]("Lesion"),
        sop_instance_uid=world["sops"][slice_],
        geometry={"x0": x0, "y0": y0, "x1": x1, "y1": y1},
    )


def _finish(world: dict[str, Any], run_tasks: Any) -> SeriesConsensus | None:
    with run_tasks():
        for name in ("bob", "fred"):
            services.assignment_submit(assignment=world[name], user=world[name].reader)
    return SeriesConsensus.objects.filter(series=world["series"]).first()


def _actions() -> list[str]:
    return list(AuditEvent.objects.filter(action__startswith="consensus_").values_list("action", flat=True))


def test_no_consensus_until_every_read_is_finished(world: dict[str, Any], run_tasks: Any) -> None:
    _box(world, world["bob"], (0, 0, 3, 3))
    with run_tasks():
        services.assignment_submit(assignment=world["bob"], user=world["bob"].reader)
    assert not SeriesConsensus.objects.exists()
    assert not Assignment.objects.filter(kind=AssignmentKind.CONSENSUS).exists()


def test_disagreement_goes_to_adjudication(world: dict[str, Any], run_tasks: Any) -> None:
    _box(world, world["bob"], (0, 0, 3, 3))
    _box(world, world["fred"], (4, 4, 7, 7))  # no overlap
    row = _finish(world, run_tasks)
    assert row is not None
    assert row.state == ConsensusState.NEEDS_ADJUDICATION
    assert row.agreement == 0.0
    assert row.details[str(world["label"]("Lesion").pk)]["measure"] == "matched_iou"
    assert _actions() == ["consensus_computed", "consensus_needs_adjudication"]
    assert row.assignment.status == AssignmentStatus.IN_PROGRESS


def test_agreement_above_threshold_is_proposed(world: dict[str, Any], run_tasks: Any) -> None:
    _box(world, world["bob"], (0, 0, 4, 4))
    _box(world, world["fred"], (0, 0, 4, 4))
    row = _finish(world, run_tasks)
    assert row is not None and row.state == ConsensusState.PROPOSED
    assert row.agreement == 1.0
    fused = Annotation.objects.get(assignment=row.assignment, deleted=False)
    assert fused.source == Source.FUSION
    assert fused.geometry == {"x0": 0.0, "y0": 0.0, "x1": 4.0, "y1": 4.0}
    assert fused.revisions.count() == 1  # written through the services: it has a history
    assert _actions() == ["consensus_computed", "consensus_proposed"]


def test_auto_accept_when_the_project_says_so(world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]) -> None:
    adjudication.consensus_settings_update(
        project=world["series"].study.project,
        user=cast["alice"],
        agreement_threshold=0.5,
        auto_accept=True,
        surface_tolerance_mm=2.0,
    )
    _box(world, world["bob"], (0, 0, 4, 4))
    _box(world, world["fred"], (0, 0, 4, 3))  # IoU 12/16 = 0.75
    row = _finish(world, run_tasks)
    assert row is not None and row.state == ConsensusState.ACCEPTED
    assert row.agreement == 0.75
    assert row.assignment.status == AssignmentStatus.ACCEPTED  # locked like an accepted read
    assert _actions()[-1] == "consensus_auto_accepted"


def test_threshold_routes_the_same_agreement_both_ways(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]
) -> None:
    adjudication.consensus_settings_update(
        project=world["series"].study.project,
        user=cast["alice"],
        agreement_threshold=0.9,
        auto_accept=True,
        surface_tolerance_mm=2.0,
    )
    _box(world, world["bob"], (0, 0, 4, 4))
    _box(world, world["fred"], (0, 0, 4, 3))
    row = _finish(world, run_tasks)
    assert row is not None and row.state == ConsensusState.NEEDS_ADJUDICATION


def test_masks_are_fused_with_staple_in_3d(world: dict[str, Any], run_tasks: Any) -> None:
    import numpy as np

    from annotations import geometry as geo

    nodule = world["label"]("Nodule")
    for read, rows in ((world["bob"], slice(0, 4)), (world["fred"], slice(1, 5))):
        for z in (0, 1):
            mask = np.zeros((8, 8), dtype=bool)
            mask[rows, 0:4] = True
            services.annotation_create(
                assignment=read,
                user=read.reader,
                label=nodule,
                sop_instance_uid=world["sops"][z],
                geometry={"rows": 8, "columns": 8, "rle": geo.rle_encode(mask)},
            )
    row = _finish(world, run_tasks)
    assert row is not None
    assert row.details[str(nodule.pk)]["measure"] == "dice_3d"
    assert row.details[str(nodule.pk)]["agreement"] == 0.75  # 2*12 / (16+16)
    fused = list(Annotation.objects.filter(assignment=row.assignment, deleted=False))
    assert sorted(a.sop_instance_uid for a in fused) == sorted(world["sops"][:2])


def test_update_is_idempotent(world: dict[str, Any], run_tasks: Any) -> None:
    _box(world, world["bob"], (0, 0, 4, 4))
    _box(world, world["fred"], (0, 0, 4, 4))
    row = _finish(world, run_tasks)
    assert row is not None
    again = adjudication.series_consensus_update(series=world["series"], user=None)
    assert again is not None and again.computed_at == row.computed_at
    assert Annotation.objects.filter(assignment=row.assignment).count() == 1


def test_readers_are_blinded_from_the_consensus(world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]) -> None:
    _box(world, world["bob"], (0, 0, 4, 4))
    _box(world, world["fred"], (0, 0, 4, 4))
    row = _finish(world, run_tasks)
    assert row is not None
    bob = cast["bob"]
    assert row.assignment not in selectors.assignment_list_mine(user=bob)
    assert row.assignment not in selectors.assignment_list(user=bob, project=row.project)
    assert row.assignment not in selectors.assignment_list(user=cast["alice"], project=row.project)
    assert not selectors.annotation_list(user=bob, assignment=str(row.assignment.pk)).exists()
    assert selectors.annotation_list(user=cast["erin"], assignment=str(row.assignment.pk)).exists()
    assert row.assignment not in selectors.assignment_list_finished(project=row.project)


def test_decide_a_readers_read(world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]) -> None:
    _box(world, world["bob"], (0, 0, 3, 3))
    _box(world, world["fred"], (4, 4, 7, 7))
    row = _finish(world, run_tasks)
    assert row is not None
    with pytest.raises(adjudication.InvalidDecision) as missing:
        adjudication.consensus_decide(consensus=row, user=cast["erin"], source="reader", reason=" ", read=world["fred"])
    assert missing.value.field == "reason"
    decided = adjudication.consensus_decide(
        consensus=row, user=cast["erin"], source="reader", reason="fred found it", read=world["fred"]
    )
    assert decided.state == ConsensusState.ADJUDICATED
    assert (decided.decided_by, decided.source_read, decided.decision_source) == (cast["erin"], world["fred"], "reader")
    live = Annotation.objects.get(assignment=row.assignment, deleted=False)
    assert live.geometry == {"x0": 4.0, "y0": 4.0, "x1": 7.0, "y1": 7.0}
    event = AuditEvent.objects.get(action="consensus_decided")
    assert event.details["reason"] == "fred found it" and event.details["reader"] == "fred"
    with pytest.raises(services.InvalidTransition):
        adjudication.consensus_decide(consensus=row, user=cast["erin"], source="consensus", reason="again")


def test_a_reader_of_the_series_does_not_adjudicate(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]
) -> None:
    from django.core.exceptions import PermissionDenied

    _box(world, world["bob"], (0, 0, 3, 3))
    row = _finish(world, run_tasks)
    assert row is not None
    with pytest.raises(PermissionDenied):
        adjudication.consensus_decide(consensus=row, user=cast["bob"], source="consensus", reason="mine")


def test_a_consensus_read_is_not_reviewed(world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]) -> None:
    _box(world, world["bob"], (0, 0, 3, 3))
    row = _finish(world, run_tasks)
    assert row is not None
    with pytest.raises(services.InvalidTransition):
        services.assignment_accept(assignment=row.assignment, user=cast["erin"])


def test_api_lists_and_decides(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any], api_as: Any, client: Any
) -> None:
    _box(world, world["bob"], (0, 0, 3, 3))
    _box(world, world["fred"], (4, 4, 7, 7))
    row = _finish(world, run_tasks)
    assert row is not None
    project, series = row.project, world["series"]
    listed = api_as("erin").get(f"/api/projects/{project.pk}/adjudication/")
    assert listed.status_code == 200 and listed.json()["results"][0]["state"] == "needs_adjudication"
    assert api_as("bob").get(f"/api/projects/{project.pk}/adjudication/").status_code == 403
    assert api_as("charlie").get(f"/api/series/{series.pk}/consensus/").status_code == 404
    url = f"/api/series/{series.pk}/consensus/decide/"
    missing = api_as("erin").post(url, {"source": "reader", "read": str(world["fred"].pk), "reason": ""}, format="json")
    assert missing.status_code == 400 and "reason" in str(missing.json())
    done = api_as("erin").post(url, {"source": "reader", "read": str(world["fred"].pk), "reason": "ok"}, format="json")
    assert done.status_code == 200, done.json()
    assert done.json()["decision"]["reader"] == "fred" and done.json()["state"] == "adjudicated"
    again = api_as("alice").post(url, {"source": "consensus", "reason": "no"}, format="json")
    assert again.status_code == 409 and again.json()["message"]


def test_page_shows_reads_and_heat_map(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any], client: Any
) -> None:
    _box(world, world["bob"], (0, 0, 3, 3))
    _box(world, world["fred"], (2, 2, 7, 7))
    row = _finish(world, run_tasks)
    assert row is not None
    client.force_login(cast["erin"])
    base = f"/projects/{row.project_id}/adjudication/{world['series'].pk}/"
    page = client.get(base)
    assert page.status_code == 200
    assert b"bob" in page.content and b"fred" in page.content and b"Heat map" in page.content
    assert b"Needs adjudication" in page.content and b"IoU of matched boxes" in page.content
    heat = client.get(base + "layer.png?slice=0&layer=heat")
    assert heat.status_code == 200 and heat["Content-Type"] == "image/png"
    posted = client.post(base, {"final": str(world["bob"].pk), "reason": "bob is right"})
    assert posted.status_code == 302
    row.refresh_from_db()
    assert row.state == ConsensusState.ADJUDICATED and row.source_read_id == world["bob"].pk


def test_a_dataset_frozen_after_the_decision_holds_the_final_read(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any], monkeypatch: Any
) -> None:
    from datasets import manifest as manifest_module
    from datasets import services as dataset_services
    from datasets.manifest import manifest_load

    monkeypatch.setattr(manifest_module, "_scanner", lambda instance: "")  # the factory's images have no file

    _box(world, world["bob"], (0, 0, 3, 3))
    _box(world, world["fred"], (4, 4, 7, 7))
    row = _finish(world, run_tasks)
    assert row is not None
    dataset = dataset_services.dataset_create(
        project=row.project, user=cast["dave"], name="Final", selection={"statuses": ["submitted", "accepted"]}
    )
    before, _ = dataset_services.version_freeze(dataset=dataset, user=cast["dave"])
    (sample,) = manifest_load(before.pk, before.manifest_path)["samples"]
    assert sample["label_basis"] == "first_accepted_fallback"
    adjudication.consensus_decide(consensus=row, user=cast["erin"], source="reader", reason="fred", read=world["fred"])
    after, _ = dataset_services.version_freeze(dataset=dataset, user=cast["dave"])
    manifest = manifest_load(after.pk, after.manifest_path)
    assert manifest["label_source"]["mode"] == "consensus"
    (sample,) = manifest["samples"]
    assert sample["label_basis"] == "consensus"
    assert [r["reader"] for r in sample["reads"]] == ["consensus"]
    assert [a["geometry"] for a in sample["annotations"]] == [{"x0": 4.0, "y0": 4.0, "x1": 7.0, "y1": 7.0}]


# --- a decided consensus whose reads change is reopened ---------------------------------------


def _decided(world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]) -> SeriesConsensus:
    """bob and fred disagree; erin picks fred's read."""
    _box(world, world["bob"], (0, 0, 3, 3))
    _box(world, world["fred"], (4, 4, 7, 7))
    row = _finish(world, run_tasks)
    assert row is not None and row.agreement == 0.0
    return adjudication.consensus_decide(
        consensus=row, user=cast["erin"], source="reader", reason="fred found it", read=world["fred"]
    )


def _return_and_resubmit(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any], name: str, edit: Any = None
) -> SeriesConsensus:
    read = world[name]
    services.assignment_return(assignment=read, user=cast["erin"], comment="look again")
    if edit is not None:
        edit(read)
    with run_tasks():
        services.assignment_submit(assignment=read, user=read.reader)
    return SeriesConsensus.objects.get(series=world["series"])


def _move_box(world: dict[str, Any], read: Assignment, box: tuple[float, ...], user: Any = None) -> None:
    annotation = Annotation.objects.get(assignment=read, deleted=False)
    x0, y0, x1, y1 = box
    services.annotation_update(
        annotation=annotation,
        user=user or read.reader,
        revision=annotation.revision,
        geometry={"x0": x0, "y0": y0, "x1": x1, "y1": y1},
    )


def test_a_changed_read_reopens_a_decided_consensus(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]
) -> None:
    decided = _decided(world, run_tasks, cast)
    assert decided.state == ConsensusState.ADJUDICATED
    # bob's read comes back and is handed in again, now agreeing with fred's
    row = _return_and_resubmit(world, run_tasks, cast, "bob", lambda read: _move_box(world, read, (4, 4, 7, 7)))
    assert row.state == ConsensusState.PROPOSED  # recomputed: agreement 1.0, a person confirms it
    assert row.agreement == 1.0
    assert (row.decided_by, row.decided_at, row.reason, row.source_read) == (None, None, "", None)
    assert row.assignment.status == AssignmentStatus.IN_PROGRESS  # the consensus read is editable again
    reopened = adjudication.reopened_of(row)
    assert reopened is not None and reopened["reason"] == "reader bob's read changed after the decision"
    assert reopened["readers"] == ["bob"]
    assert reopened["previous"]["decided_by"] == "erin" and reopened["previous"]["reason"] == "fred found it"
    assert reopened["previous"]["state"] == "adjudicated" and reopened["previous"]["agreement"] == 0.0
    assert [h["event"] for h in row.history] == ["decided", "reopened"]
    event = AuditEvent.objects.get(action="consensus_reopened")
    assert event.details["reason"] == "reader bob's read changed after the decision"
    assert event.details["previous"]["decided_by"] == "erin" and event.details["state"] == "adjudicated"
    assert _actions()[-3:] == ["consensus_reopened", "consensus_computed", "consensus_proposed"]
    fused = Annotation.objects.get(assignment=row.assignment, deleted=False)
    assert fused.geometry == {"x0": 4.0, "y0": 4.0, "x1": 7.0, "y1": 7.0}
    # decided again: the history keeps both decisions and the reopening between them
    again = adjudication.consensus_decide(consensus=row, user=cast["alice"], source="consensus", reason="now agreed")
    assert again.state == ConsensusState.ADJUDICATED and adjudication.reopened_of(again) is None
    assert [h["event"] for h in again.history] == ["decided", "reopened", "decided"]


def test_a_decided_consensus_whose_reads_did_not_change_stays_decided(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]
) -> None:
    decided = _decided(world, run_tasks, cast)
    before = _actions()

    def redraw_the_same(read: Assignment) -> None:
        # edited and edited back, then deleted and drawn again the same: new revisions, same content
        _move_box(world, read, (1, 1, 3, 3))
        _move_box(world, read, (0, 0, 3, 3))
        annotation = Annotation.objects.get(assignment=read, deleted=False)
        services.annotation_delete(annotation=annotation, user=read.reader, revision=annotation.revision)
        _box(world, read, (0, 0, 3, 3))

    row = _return_and_resubmit(world, run_tasks, cast, "bob", redraw_the_same)
    assert row.state == ConsensusState.ADJUDICATED
    assert (row.computed_at, row.decided_at, row.reason) == (decided.computed_at, decided.decided_at, "fred found it")
    # a reviewer accepting a read, and the update run again, change nothing either
    with run_tasks():
        services.assignment_accept(assignment=world["fred"], user=cast["erin"])
    assert adjudication.series_consensus_update(series=world["series"], user=None) is not None
    row.refresh_from_db()
    assert row.state == ConsensusState.ADJUDICATED and [h["event"] for h in row.history] == ["decided"]
    assert _actions() == before


def test_a_reviewers_edit_of_a_read_reopens_an_auto_accepted_consensus(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]
) -> None:
    adjudication.consensus_settings_update(
        project=world["series"].study.project,
        user=cast["alice"],
        agreement_threshold=0.5,
        auto_accept=True,
        surface_tolerance_mm=2.0,
    )
    _box(world, world["bob"], (0, 0, 4, 4))
    _box(world, world["fred"], (0, 0, 4, 4))
    row = _finish(world, run_tasks)
    assert row is not None and row.state == ConsensusState.ACCEPTED
    # erin (a reviewer) edits fred's returned read a little; fred hands it in again
    row = _return_and_resubmit(
        world, run_tasks, cast, "fred", lambda read: _move_box(world, read, (0, 0, 4, 3), user=cast["erin"])
    )
    assert row.agreement == 0.75  # above the threshold, but a reopened consensus is not accepted automatically
    assert row.state == ConsensusState.PROPOSED
    assert adjudication.reopened_of(row)["reason"] == "reader fred's read changed after the decision"  # type: ignore[index]
    assert adjudication.reopened_of(row)["previous"]["decided_by"] is None  # type: ignore[index]
    assert [h["event"] for h in row.history] == ["auto_accepted", "reopened"]


def test_a_consensus_decided_before_fingerprints_adopts_the_reads_as_they_are(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any]
) -> None:
    decided = _decided(world, run_tasks, cast)
    SeriesConsensus.objects.filter(pk=decided.pk).update(read_inputs={})  # as a row from before migration 0004
    assert adjudication.series_consensus_update(series=world["series"], user=None) is not None
    decided.refresh_from_db()
    assert decided.state == ConsensusState.ADJUDICATED and set(decided.read_inputs) == {
        str(world["bob"].pk),
        str(world["fred"].pk),
    }
    row = _return_and_resubmit(world, run_tasks, cast, "bob", lambda read: _move_box(world, read, (2, 2, 5, 5)))
    assert row.state == ConsensusState.NEEDS_ADJUDICATION and adjudication.reopened_of(row) is not None


def test_pages_and_api_show_a_reopened_consensus(
    world: dict[str, Any], run_tasks: Any, cast: dict[str, Any], api_as: Any, client: Any
) -> None:
    _decided(world, run_tasks, cast)
    row = _return_and_resubmit(world, run_tasks, cast, "bob", lambda read: _move_box(world, read, (3, 3, 7, 7)))
    assert row.state == ConsensusState.NEEDS_ADJUDICATION
    project, series = row.project, world["series"]
    listed = api_as("erin").get(f"/api/projects/{project.pk}/adjudication/").json()["results"]
    assert listed[0]["reopened"]["reason"] == "reader bob's read changed after the decision"
    detail = api_as("erin").get(f"/api/series/{series.pk}/consensus/").json()
    assert detail["state"] == "needs_adjudication" and detail["decision"] is None
    assert detail["reopened"]["previous"]["reader"] == "fred"
    assert [h["event"] for h in detail["history"]] == ["decided", "reopened"]
    client.force_login(cast["erin"])
    page = client.get(f"/projects/{project.pk}/adjudication/").content.decode()
    assert "Reopened: reader bob&#x27;s read changed after the decision" in page
    detail_page = client.get(f"/projects/{project.pk}/adjudication/{series.pk}/").content.decode()
    assert 'class="reopened"' in detail_page and "reader bob&#x27;s read changed after the decision" in detail_page
    assert "fred found it" in detail_page  # the decision it replaced, in the history
    assert 'name="final"' in detail_page  # and it can be decided again
