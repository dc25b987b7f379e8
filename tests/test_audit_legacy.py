"""An install with the old unkeyed chain migrates to the keyed chain and still verifies."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from workbench.audit import audit_record, audit_verify_report

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("workbench", "0002_instance_slice_position")]
GENESIS = "0" * 64


def _migrate(targets: list[tuple[str, str]] | None = None) -> Any:
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def _unkeyed(event: Any) -> str:
    """The old code's hash (workbench/audit.py before the keyed chain), copied independently."""
    body = {
        "at": event.at.isoformat(),
        "action": event.action,
        "actor": event.actor_name,
        "project": event.project_slug,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": event.details,
        "prev": event.prev_hash,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _legacy_events(apps: Any, seqs: list[int], tamper: int | None = None) -> None:
    event_model = apps.get_model("workbench", "AuditEvent")
    prev = GENESIS
    for seq in seqs:
        event = event_model(
            seq=seq, at=timezone.now(), action="legacy", actor_name="alice", details={"i": seq}, prev_hash=prev
        )
        event.hash = _unkeyed(event)
        if seq == tamper:
            event.details = {"i": "edited before the upgrade"}
        event.save()
        prev = event.hash


@pytest.fixture
def legacy_db(db: None) -> Any:
    apps = _migrate(BEFORE)
    yield apps
    _migrate()


def test_an_intact_legacy_chain_is_adopted(legacy_db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _legacy_events(legacy_db, [1, 2, 4])  # 3 was a rolled-back transaction: the old autoincrement skipped it
    _migrate()
    report = audit_verify_report()
    assert report.problems == [] and report.events == 4
    assert report.notes == ["Legacy chain of 3 unkeyed events adopted at seq 5 (intact: yes)."]
    assert audit_record(action="after_upgrade").seq == 6
    call_command("verify_audit")
    assert "OK: 5 events" in capsys.readouterr().out


def test_a_broken_legacy_chain_is_adopted_with_its_verdict(legacy_db: Any) -> None:
    _legacy_events(legacy_db, [1, 2, 3], tamper=2)
    _migrate()
    report = audit_verify_report()
    assert report.problems == []
    assert "intact: NO" in report.notes[0]
    from workbench.models import AuditEvent

    marker = AuditEvent.objects.get(action="audit_chain_adopted")
    assert marker.details["legacy_first_problem_seq"] == 2 and marker.details["legacy_chain_intact"] is False


def test_deleting_an_adopted_event_is_detected(legacy_db: Any) -> None:
    _legacy_events(legacy_db, [1, 2, 4])
    _migrate()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workbench_auditevent WHERE seq = 2")
    kinds = {(p.seq, p.kind) for p in audit_verify_report().problems}
    assert kinds == {(None, "deleted"), (4, "link-broken")}


def test_the_migration_reverses_to_the_unkeyed_chain(legacy_db: Any) -> None:
    _legacy_events(legacy_db, [1, 2])
    _migrate()
    apps = _migrate(BEFORE)
    events = list(apps.get_model("workbench", "AuditEvent").objects.order_by("seq"))
    assert [e.action for e in events] == ["legacy", "legacy", "audit_chain_adopted"]
    prev = GENESIS
    for event in events:
        assert event.prev_hash == prev and event.hash == _unkeyed(event)
        prev = event.hash
