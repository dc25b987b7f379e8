"""What a project's compliance officer sees in its audit log: annotation writes, members' logins,
and never another project's events (the page and the API).

Cast (conftest.py): carol is project A's compliance officer, bob a radiologist there; charlie
is admin of project B only.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.test import Client

from annotations import services
from anonymizer.selectors import audit_events
from tests.annotation_factory import make_schema, make_series, sop_uids
from workbench.audit import audit_record
from workbench.models import AuditEvent, Project

pytestmark = pytest.mark.django_db


def events(api_as: Any, project: Project, **params: str) -> list[dict[str, Any]]:
    response = api_as("carol").get(f"/api/projects/{project.pk}/audit/", params)
    assert response.status_code == 200, response.json()
    body = response.json()
    return body["results"] if isinstance(body, dict) else body


def page(cast: dict[str, Any], project: Project, **params: str) -> str:
    client = Client()
    client.force_login(cast["carol"])
    response = client.get(f"/projects/{project.pk}/audit/", params)
    assert response.status_code == 200
    return response.content.decode()


def test_annotation_writes_are_audited_without_label_text(cast: Any, project_a: Project, api_as: Any) -> None:
    schema = make_schema(project_a)
    series = make_series(project_a)
    (read,) = services.assignment_create(series=series, readers=[cast["bob"]], user=cast["alice"])
    label = schema.labels.get(name="Lesion")
    annotation, _ = services.annotation_create(
        assignment=read,
        user=cast["bob"],
        label=label,
        sop_instance_uid=sop_uids(series)[0],
        geometry={"x0": 1, "y0": 1, "x1": 3, "y1": 2},
        attributes={"suspicious": True},
    )
    saved = services.annotation_update(
        annotation=annotation, user=cast["bob"], revision=1, geometry={"x0": 1, "y0": 1, "x1": 4, "y1": 2}
    )
    services.annotation_delete(annotation=saved, user=cast["bob"], revision=2)
    found = [e for e in events(api_as, project_a) if e["object_type"] == "annotation"]
    assert [e["action"] for e in reversed(found)] == ["annotation_created", "annotation_updated", "annotation_deleted"]
    for event in found:
        assert event["actor_name"] == "bob" and event["object_id"] == str(annotation.pk)
        assert event["details"]["assignment"] == str(read.pk) and event["details"]["kind"] == "box"
        assert event["details"]["label"] == str(label.pk)
        text = str(event["details"])
        assert "Lesion" not in text and "suspicious" not in text and "x0" not in text
    assert [e["details"]["revision"] for e in reversed(found)] == [1, 2, 3]
    assert next(e for e in found if e["action"] == "annotation_updated")["details"]["changes"] == ["geometry"]
    html = page(cast, project_a, action="annotation_updated")
    assert "<code>annotation_updated</code>" in html


def test_members_logins_show_and_other_projects_never(cast: Any, project_a: Project, project_b: Project) -> None:
    Client().force_login(cast["bob"])
    Client().force_login(cast["charlie"])  # project B only
    assert authenticate(username="bob", password="wrong") is None
    assert authenticate(username="charlie", password="wrong") is None
    audit_record(action="dataset_created", actor=cast["charlie"], project=project_b, object_type="dataset")
    client = Client()
    client.force_login(cast["carol"])
    shown = client.get(f"/projects/{project_a.pk}/audit/").content.decode()
    response = client.get(f"/api/projects/{project_a.pk}/audit/")
    body = response.json()
    listed = body["results"] if isinstance(body, dict) else body
    logins = {(e["action"], e["actor_name"], e["details"].get("username")) for e in listed if "login" in e["action"]}
    assert ("login", "bob", None) in logins and ("login", "carol", None) in logins
    assert ("login_failed", "anonymous", "bob") in logins
    assert not any("charlie" in str(entry) for entry in logins)
    assert all(e["action"] != "dataset_created" for e in listed)
    seqs = {e["seq"] for e in listed}
    others = AuditEvent.objects.filter(actor_name="charlie").values_list("seq", flat=True)
    assert not seqs & set(others)
    assert "<code>login</code>" in shown and "<code>login_failed</code>" in shown
    assert "charlie" not in shown and "beta" not in shown
    assert "a gap between two numbers is another project" in shown


def test_the_other_project_sees_its_own_logins_only(cast: Any, project_a: Project, project_b: Project) -> None:
    Client().force_login(cast["bob"])
    Client().force_login(cast["charlie"])
    assert set(audit_events(project=project_b).values_list("actor_name", flat=True)) == {"charlie"}
    assert "charlie" not in set(audit_events(project=project_a).values_list("actor_name", flat=True))
