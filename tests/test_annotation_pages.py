"""Worklist, assignments, review and quality pages: who may see them and what they do.

Cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer in project A; charlie is an outsider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from annotations import services
from annotations.models import Assignment
from tests.annotation_factory import label_id, make_schema, make_series, sop_uids
from workbench.models import Project

MEMBERS = ("alice", "bob", "carol", "dave", "erin")
ALLOWED = {"assignments": {"alice"}, "review": {"alice", "erin"}, "quality": {"alice", "erin"}}


@pytest.fixture
def as_user(cast: dict[str, Any]) -> Callable[[str], Client]:
    def make(name: str) -> Client:
        client = Client()
        client.force_login(cast[name])
        return client

    return make


@pytest.mark.parametrize("page", sorted(ALLOWED))
def test_page_answers_by_role(page: str, as_user: Any, project_a: Project) -> None:
    for name in MEMBERS:
        expected = 200 if name in ALLOWED[page] else 403
        assert as_user(name).get(f"/projects/{project_a.pk}/{page}/").status_code == expected, (page, name)


@pytest.mark.parametrize("page", sorted(ALLOWED))
def test_page_hides_from_outsider(page: str, as_user: Any, project_a: Project) -> None:
    assert as_user("charlie").get(f"/projects/{project_a.pk}/{page}/").status_code == 404


@pytest.mark.parametrize(
    "url", ["/worklist/", "/projects/{p}/assignments/", "/projects/{p}/review/", "/projects/{p}/quality/"]
)
def test_pages_require_login(url: str, client: Client, project_a: Project) -> None:
    response = client.get(url.format(p=project_a.pk))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize(
    ("name", "links"),
    [("alice", ["assignments", "review", "quality"]), ("erin", ["review", "quality"]), ("bob", []), ("carol", [])],
)
def test_navigation_links(name: str, links: list[str], as_user: Any, project_a: Project) -> None:
    html = as_user(name).get(f"/projects/{project_a.pk}/").content.decode()
    assert [k for k in ("assignments", "review", "quality") if f'data-nav="{k}"' in html] == links
    assert 'href="/worklist/"' in html


def test_admin_assigns_through_the_form(as_user: Any, project_a: Project, cast: dict[str, Any]) -> None:
    series = make_series(project_a)
    url = f"/projects/{project_a.pk}/assignments/"
    html = as_user("alice").get(url).content.decode()
    assert series.study.patient.pseudo_id in html
    assert "carol" not in html.split("Readers", 1)[1].split("</fieldset>")[0]  # compliance does not read
    response = as_user("alice").post(url, {"series": series.pk, "readers": [cast["bob"].pk, cast["erin"].pk]})
    assert response.status_code == 302
    assert sorted(Assignment.objects.values_list("reader__username", flat=True)) == ["bob", "erin"]
    listed = as_user("alice").get(url).content.decode()
    assert listed.count('data-status="todo"') == 2
    bad = as_user("alice").post(url, {"series": series.pk, "readers": [cast["carol"].pk]})
    assert bad.status_code == 200 and Assignment.objects.count() == 2


def test_worklist_shows_own_assignments_with_links(as_user: Any, project_a: Project, cast: dict[str, Any]) -> None:
    series = make_series(project_a)
    mine, theirs = services.assignment_create(series=series, readers=[cast["bob"], cast["erin"]], user=cast["alice"])
    html = as_user("bob").get("/worklist/").content.decode()
    assert f'href="/assignments/{mine.pk}/"' in html
    assert str(theirs.pk) not in html
    assert "To do" in html and series.study.patient.pseudo_id in html
    assert "Nothing is assigned to you." in as_user("charlie").get("/worklist/").content.decode()


def test_review_accepts_and_returns(as_user: Any, project_a: Project, cast: dict[str, Any]) -> None:
    one, two = make_series(project_a), make_series(project_a)
    (first,) = services.assignment_create(series=one, readers=[cast["bob"]], user=cast["alice"])
    (second,) = services.assignment_create(series=two, readers=[cast["bob"]], user=cast["alice"])
    for assignment in (first, second):
        services.assignment_submit(assignment=assignment, user=cast["bob"])
    url = f"/projects/{project_a.pk}/review/"
    html = as_user("erin").get(url).content.decode()
    assert str(first.pk) in html and str(second.pk) in html
    assert as_user("erin").post(url, {"assignment": first.pk, "action": "accept"}).status_code == 302
    as_user("erin").post(url, {"assignment": second.pk, "action": "return", "comment": "Missed a nodule"})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status, second.comment) == ("accepted", "returned", "Missed a nodule")
    assert "Nothing is waiting for review." in as_user("erin").get(url).content.decode()
    assert as_user("bob").post(url, {"assignment": first.pk, "action": "accept"}).status_code == 403


def test_review_keeps_decided_reads_with_decision_who_and_when(
    as_user: Any, project_a: Project, cast: dict[str, Any]
) -> None:
    one, two, three = make_series(project_a), make_series(project_a), make_series(project_a)
    reads = [
        services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])[0]
        for series in (one, two, three)
    ]
    for assignment in reads:
        services.assignment_submit(assignment=assignment, user=cast["bob"])
    url = f"/projects/{project_a.pk}/review/"
    erin = as_user("erin")
    erin.post(url, {"assignment": reads[0].pk, "action": "accept"})
    erin.post(url, {"assignment": reads[1].pk, "action": "return", "comment": "Missed a nodule"})
    html = erin.get(url).content.decode()
    waiting, decided = html.split('id="decided"', 1)
    assert str(reads[2].pk) in waiting and str(reads[0].pk) not in waiting and str(reads[1].pk) not in waiting
    for assignment, decision in ((reads[0], "accepted"), (reads[1], "returned")):
        assignment.refresh_from_db()
        row = decided.split(f'data-assignment="{assignment.pk}" data-decision="{decision}"', 1)[1].split("</tr>")[0]
        assert "<td>erin</td>" in row
        assert assignment.reviewed_at is not None
        assert assignment.reviewed_at.strftime("%Y-%m-%d %H:%M") in row
    assert "Missed a nodule" in decided
    only_accepted = erin.get(url, {"decided": "accepted"}).content.decode().split('id="decided"', 1)[1]
    assert str(reads[0].pk) in only_accepted and str(reads[1].pk) not in only_accepted
    only_returned = erin.get(url, {"decided": "returned"}).content.decode().split('id="decided"', 1)[1]
    assert str(reads[1].pk) in only_returned and str(reads[0].pk) not in only_returned
    # Submitted again, the returned read waits for review once more and leaves the decided list.
    services.assignment_submit(assignment=reads[1], user=cast["bob"])
    waiting, decided = erin.get(url).content.decode().split('id="decided"', 1)
    assert str(reads[1].pk) in waiting and str(reads[1].pk) not in decided


def test_review_page_query_count_is_flat(
    as_user: Any, project_a: Project, cast: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    for _ in range(6):
        (read,) = services.assignment_create(series=make_series(project_a), readers=[cast["bob"]], user=cast["alice"])
        services.assignment_submit(assignment=read, user=cast["bob"])
        services.assignment_accept(assignment=read, user=cast["erin"])
    erin = as_user("erin")
    with django_assert_max_num_queries(10):
        html = erin.get(f"/projects/{project_a.pk}/review/").content.decode()
    assert html.count('data-decision="accepted"') == 6


def test_review_without_comment_is_refused(as_user: Any, project_a: Project, cast: dict[str, Any]) -> None:
    (assignment,) = services.assignment_create(series=make_series(project_a), readers=[cast["bob"]], user=cast["alice"])
    services.assignment_submit(assignment=assignment, user=cast["bob"])
    response = as_user("erin").post(
        f"/projects/{project_a.pk}/review/", {"assignment": assignment.pk, "action": "return"}, follow=True
    )
    assert "comment is required" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.status == "submitted"


def test_quality_page_shows_agreement(as_user: Any, project_a: Project, cast: dict[str, Any]) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a)
    reads = services.assignment_create(series=series, readers=[cast["bob"], cast["erin"]], user=cast["alice"])
    for assignment, x1 in zip(reads, (2, 3), strict=True):
        services.annotation_create(
            assignment=assignment,
            user=assignment.reader,
            label=schema.labels.get(pk=label_id(schema, "Lesion")),
            sop_instance_uid=sop_uids(series)[0],
            geometry={"x0": 0, "y0": 0, "x1": x1, "y1": 0},
        )
        services.assignment_submit(assignment=assignment, user=assignment.reader)
    html = as_user("alice").get(f"/projects/{project_a.pk}/quality/").content.decode()
    # 3 px against 4 px, overlapping 3: Dice 6/7, IoU 3/4.
    assert "0.857" in html and "0.750" in html
    assert f'data-series="{series.pk}"' in html
    # the series is a volume (one size, 0.5 mm pixels): the 3-D figures are there, not dashes
    assert 'class="hd95">0.' in html and 'class="surface-dice">' in html and "mm³" in html
    assert "<td>Box</td>" in html  # the kind in words


def test_quality_page_calls_a_label_one_reader_used_not_comparable(
    as_user: Any, project_a: Project, cast: dict[str, Any]
) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a)
    reads = services.assignment_create(series=series, readers=[cast["bob"], cast["erin"]], user=cast["alice"])
    bob_read = next(a for a in reads if a.reader == cast["bob"])
    services.annotation_create(
        assignment=bob_read,
        user=cast["bob"],
        label=schema.labels.get(pk=label_id(schema, "Lesion")),
        sop_instance_uid=sop_uids(series)[0],
        geometry={"x0": 0, "y0": 0, "x1": 3, "y1": 3},
    )
    for assignment in reads:
        services.assignment_submit(assignment=assignment, user=assignment.reader)
    html = as_user("alice").get(f"/projects/{project_a.pk}/quality/").content.decode()
    lesion = html.split('data-label="Lesion"', 1)[1].split("</tr>", 1)[0]
    assert "not comparable" in lesion and "0.000" not in lesion
    assert "1 pair (one reader only)" in lesion
    row = html.split(f'data-series="{series.pk}"', 1)[1].split("</tr>", 1)[0]
    assert 'Lesion <span class="not-comparable">not comparable</span>' in row and "0.00" not in row
    api = as_user("alice").get(f"/api/projects/{project_a.pk}/agreement/").json()
    assert next(one for one in api["labels"] if one["label"] == "Lesion")["dice"] is None


def _classify(assignment: Assignment, schema: Any, sop: str, value: str) -> None:
    services.annotation_create(
        assignment=assignment,
        user=assignment.reader,
        label=schema.labels.get(pk=label_id(schema, "Quality")),
        sop_instance_uid=sop,
        geometry={},
        attributes={"value": value},
    )


def test_quality_page_shows_fleiss_kappa_with_three_readers(
    as_user: Any, project_a: Project, cast: dict[str, Any]
) -> None:
    from django.contrib.auth import get_user_model

    from workbench.models import Membership, Role

    fred = get_user_model().objects.create_user(username="fred", password="x")
    Membership.objects.create(project=project_a, user=fred, role=Role.RADIOLOGIST)
    schema = make_schema(project_a)
    series = make_series(project_a, instances=2)
    first, second = sop_uids(series)
    reads = services.assignment_create(series=series, readers=[cast["bob"], cast["erin"], fred], user=cast["alice"])
    # image 1: good, good, good; image 2: good, good, poor.
    # P-bar (1 + 1/3)/2 = 2/3; shares good 5/6, poor 1/6 -> P_e 26/36; kappa (2/3 - 26/36)/(10/36) = -0.2.
    for assignment, second_value in zip(reads, ("good", "good", "poor"), strict=True):
        _classify(assignment, schema, first, "good")
        _classify(assignment, schema, second, second_value)
        services.assignment_submit(assignment=assignment, user=assignment.reader)
    html = as_user("alice").get(f"/projects/{project_a.pk}/quality/").content.decode()
    quality = html.split('data-label="Quality"', 1)[1].split("</tr>", 1)[0]
    assert 'class="fleiss"><span title="over 2 items' in quality and ">-0.200<" in quality
    finding = html.split('data-label="Finding"', 1)[1].split("</tr>", 1)[0]
    assert 'class="fleiss"><span class="not-comparable"' in finding  # nobody classified it
    api = as_user("alice").get(f"/api/projects/{project_a.pk}/agreement/").json()
    row = next(one for one in api["labels"] if one["label"] == "Quality")
    assert (row["fleiss_kappa"], row["fleiss_items"]) == (-0.2, 2)


def test_quality_page_calls_fleiss_kappa_not_comparable_with_two_readers(
    as_user: Any, project_a: Project, cast: dict[str, Any]
) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a, instances=1)
    reads = services.assignment_create(series=series, readers=[cast["bob"], cast["erin"]], user=cast["alice"])
    for assignment, value in zip(reads, ("good", "poor"), strict=True):
        _classify(assignment, schema, sop_uids(series)[0], value)
        services.assignment_submit(assignment=assignment, user=assignment.reader)
    html = as_user("alice").get(f"/projects/{project_a.pk}/quality/").content.decode()
    quality = html.split('data-label="Quality"', 1)[1].split("</tr>", 1)[0]
    assert 'class="fleiss"><span class="not-comparable"' in quality
    lesion = html.split('data-label="Lesion"', 1)[1].split("</tr>", 1)[0]
    assert 'class="fleiss">—' in lesion  # not a class label: no kappa at all


def test_list_pages_query_counts_are_flat(
    as_user: Any, project_a: Project, cast: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    for _ in range(6):
        services.assignment_create(series=make_series(project_a), readers=[cast["bob"]], user=cast["alice"])
    bob, alice = as_user("bob"), as_user("alice")
    with django_assert_max_num_queries(6):
        assert bob.get("/worklist/").content.decode().count("data-assignment=") == 6
    with django_assert_max_num_queries(14):
        assert alice.get(f"/projects/{project_a.pk}/assignments/").content.decode().count("data-assignment=") == 6


def test_task_page_answers_its_reader_reviewers_and_admins_only(
    as_user: Any, project_a: Project, cast: dict[str, Any]
) -> None:
    series = make_series(project_a)
    [task] = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    url = f"/assignments/{task.pk}/"
    for name, expected in (("bob", 200), ("erin", 200), ("alice", 200), ("dave", 404), ("charlie", 404)):
        assert as_user(name).get(url).status_code == expected, name
    assert Client().get(url).status_code == 302  # to the login page
    assert as_user("bob").get("/assignments/not-a-uuid/").status_code == 404
