"""``manage.py verify_audit`` detects and names every attack on the keyed audit chain.

Each attack is made as an attacker with write access to the database would
make it: raw SQL or ``QuerySet.update``, which bypass the model's append-only
guard. Checkpoints are written by executing the on-commit callbacks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from workbench.audit import audit_record, audit_verify, event_body_of
from workbench.audit_keys import audit_keyring, event_mac
from workbench.models import AuditEvent, AuditHead

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(cast: dict[str, Any], project_a, django_capture_on_commit_callbacks) -> list[AuditEvent]:
    with django_capture_on_commit_callbacks(execute=True):
        return [
            audit_record(
                action="test_event",
                actor=cast["alice"],
                project=project_a,
                object_type="n",
                object_id=i,
                details={"i": i},
            )
            for i in range(5)
        ]


def _sql(statement: str, params: list[object]) -> None:
    with connection.cursor() as cursor:  # raw SQL: the model refuses updates and deletes
        cursor.execute(statement.format(table=AuditEvent._meta.db_table), params)


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    with pytest.raises(CommandError, match="Audit chain broken"):
        call_command("verify_audit", *args)
    out = capsys.readouterr()
    return out.out, out.err


def _report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out, _ = _verify(capsys, "--json")
    return json.loads(out)


def _unkeyed(event: AuditEvent) -> str:
    """The old, unkeyed sha256 that anyone could recompute."""
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


def test_clean_chain_is_ok(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"OK: {AuditEvent.objects.count()} events" in out
    assert "Last checkpoint: seq 5" in out


def test_empty_log_is_ok(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("verify_audit")
    assert "OK: 0 events" in capsys.readouterr().out


def test_each_event_is_signed_and_numbered_without_gaps(chain: list[AuditEvent]) -> None:
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert {e.key_id for e in stored} == {audit_keyring().current.key_id}
    assert stored[0].prev_hash == "0" * 64 and all(
        b.prev_hash == a.hash for a, b in zip(stored, stored[1:], strict=False)
    )
    assert AuditHead.objects.get().seq == 5


def test_modified_details_are_detected(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    _sql("UPDATE {table} SET details = %s WHERE seq = %s", ['{"i": 99}', chain[2].seq])
    _, err = _verify(capsys)
    assert f"FIRST BROKEN: event {chain[2].seq}: [content-changed]" in err


def test_deleting_the_last_events_is_detected(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    _sql("DELETE FROM {table} WHERE seq >= %s", [chain[3].seq])
    _, err = _verify(capsys)
    assert "[truncated]" in err and "events 4..5 were deleted from the end" in err


def test_truncation_with_the_head_rolled_back_is_caught_by_the_checkpoint(
    chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    _sql("DELETE FROM {table} WHERE seq >= %s", [chain[3].seq])
    AuditHead.objects.update(seq=chain[2].seq, hash=chain[2].hash)
    report = _report(capsys)
    assert report["problem_count"] == 1
    assert report["first_broken"]["kind"] == "truncated"
    assert "records event 5, but the chain ends at 3" in report["first_broken"]["reason"]


def test_a_tail_cut_and_written_again_past_the_last_checkpoint_is_detected(
    chain: list[AuditEvent], cast: dict[str, Any], project_a, django_capture_on_commit_callbacks, capsys
) -> None:
    """Events 4 and 5 deleted, the head rolled back, and the app goes on writing: 4', 5', 6'
    carry good MACs and the newest checkpoint (6') matches; the old checkpoint of 5 does not."""
    _sql("DELETE FROM {table} WHERE seq >= %s", [chain[3].seq])
    AuditHead.objects.update(seq=chain[2].seq, hash=chain[2].hash)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            audit_record(action="after_the_cut", actor=cast["alice"], project=project_a, details={"i": i})
    report = _report(capsys)
    assert report["first_broken"]["kind"] == "checkpoint-mismatch"
    assert report["first_broken"]["seq"] == 5


def test_moving_an_event_to_another_project_is_detected(
    chain: list[AuditEvent], project_b, capsys: pytest.CaptureFixture[str]
) -> None:
    AuditEvent.objects.filter(seq=chain[1].seq).update(project=project_b, project_slug=project_b.slug)
    report = _report(capsys)
    assert report["first_broken"] == {
        "seq": chain[1].seq,
        "kind": "content-changed",
        "reason": "does not match its MAC: rewritten, or moved to another project or actor",
    }


def test_moving_only_the_project_id_is_detected(
    chain: list[AuditEvent], project_b, capsys: pytest.CaptureFixture[str]
) -> None:
    AuditEvent.objects.filter(seq=chain[1].seq).update(project=project_b)
    assert _report(capsys)["first_broken"]["kind"] == "content-changed"


def test_changing_the_actor_is_detected(
    chain: list[AuditEvent], cast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    AuditEvent.objects.filter(seq=chain[3].seq).update(actor=cast["bob"])
    report = _report(capsys)
    assert (report["first_broken"]["seq"], report["first_broken"]["kind"]) == (chain[3].seq, "content-changed")


def test_rewriting_and_rehashing_the_rest_unkeyed_is_detected(
    chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    previous = chain[1].hash
    for event in AuditEvent.objects.filter(seq__gte=chain[2].seq).order_by("seq"):
        event.details = {"i": "forged"} if event.seq == chain[2].seq else event.details
        event.prev_hash = previous
        event.hash = _unkeyed(event)
        AuditEvent.objects.filter(seq=event.seq).update(details=event.details, prev_hash=previous, hash=event.hash)
        previous = event.hash
    AuditHead.objects.update(hash=previous)
    report = _report(capsys)
    assert (report["first_broken"]["seq"], report["first_broken"]["kind"]) == (chain[2].seq, "content-changed")
    assert [p["seq"] for p in report["problems"] if p["kind"] == "content-changed"] == [3, 4, 5]


def test_rewriting_with_the_key_is_caught_by_the_checkpoint(
    chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    """An insider holding the audit key re-signs a rewritten chain; only the checkpoint file shows it."""
    key, previous = audit_keyring().current, chain[1].hash
    for event in AuditEvent.objects.filter(seq__gte=chain[2].seq).order_by("seq"):
        event.details = {"i": "forged"} if event.seq == chain[2].seq else event.details
        event.prev_hash = previous
        event.hash = event_mac(key, event_body_of(event))
        AuditEvent.objects.filter(seq=event.seq).update(details=event.details, prev_hash=previous, hash=event.hash)
        previous = event.hash
    AuditHead.objects.update(hash=previous)
    report = _report(capsys)
    assert report["problem_count"] == 1
    assert (report["first_broken"]["seq"], report["first_broken"]["kind"]) == (5, "checkpoint-mismatch")


def test_deleted_middle_row_is_detected(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    _sql("DELETE FROM {table} WHERE seq = %s", [chain[2].seq])
    _, err = _verify(capsys)
    assert f"FIRST BROKEN: event {chain[3].seq}: [deleted] events 3 before it are missing" in err


def test_unknown_key_is_named(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    AuditEvent.objects.filter(seq=1).update(key_id="0123456789abcdef")
    report = _report(capsys)
    assert report["first_broken"]["kind"] == "unknown-key" and "0123456789abcdef" in report["first_broken"]["reason"]


def test_replaced_mac_breaks_the_next_link(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    AuditEvent.objects.filter(seq=2).update(hash="f" * 64)
    kinds = {(p["seq"], p["kind"]) for p in _report(capsys)["problems"]}
    assert {(2, "content-changed"), (3, "link-broken")} <= kinds


def test_edited_checkpoint_line_is_detected(chain: list[AuditEvent], settings, capsys) -> None:
    path = settings.AUDIT_CHECKPOINT_PATH
    lines = path.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"seq": 2}  # claim a shorter chain
    path.write_text("\n".join([*lines, json.dumps(forged), "not json"]) + "\n")
    report = _report(capsys)
    assert {p["kind"] for p in report["problems"]} == {"checkpoint-forged", "checkpoint-unreadable"}
    assert "checkpoint file line 6: signature does not match" in report["problems"][0]["reason"]


def test_a_checkpoint_line_with_a_key_id_of_another_type_is_unreadable(
    chain: list[AuditEvent], settings, capsys
) -> None:
    path = settings.AUDIT_CHECKPOINT_PATH
    lines = path.read_text().splitlines()
    odd = json.loads(lines[-1]) | {"key_id": 7}
    path.write_text("\n".join([*lines, json.dumps(odd)]) + "\n")
    assert {p["kind"] for p in _report(capsys)["problems"]} == {"checkpoint-unreadable"}


def test_checkpoint_from_another_key_is_named(chain: list[AuditEvent], settings, capsys) -> None:
    lines = settings.AUDIT_CHECKPOINT_PATH.read_text().splitlines()
    other = json.loads(lines[0]) | {"key_id": "fedcba9876543210"}
    settings.AUDIT_CHECKPOINT_PATH.write_text("\n".join([*lines, json.dumps(other)]) + "\n")
    assert _report(capsys)["first_broken"]["kind"] == "checkpoint-unknown-key"


def test_a_clean_run_appends_a_checkpoint(chain: list[AuditEvent], settings, capsys) -> None:
    settings.AUDIT_CHECKPOINT_PATH.unlink()
    call_command("verify_audit", "--no-checkpoint")
    assert not settings.AUDIT_CHECKPOINT_PATH.exists()
    call_command("verify_audit")
    assert json.loads(settings.AUDIT_CHECKPOINT_PATH.read_text())["seq"] == 5


def test_a_rolled_back_event_leaves_no_gap_and_no_checkpoint(
    db: None, settings, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            audit_record(action="rolled_back")
            raise RuntimeError("the caller's transaction fails")
    assert callbacks == [] and not settings.AUDIT_CHECKPOINT_PATH.exists()
    assert audit_record(action="kept").seq == 1
    assert list(audit_verify()) == []


def test_deleting_the_actor_or_the_project_keeps_the_chain_valid(
    chain: list[AuditEvent], cast: dict[str, Any], project_a
) -> None:
    cast["alice"].delete()
    project_a.delete()
    assert list(audit_verify()) == []
    assert AuditEvent.objects.filter(seq=1).values_list("actor_id", flat=True).get() is not None


def test_an_unreadable_checkpoint_file_is_a_problem_not_a_crash(chain: list[AuditEvent], settings, capsys) -> None:
    settings.AUDIT_CHECKPOINT_PATH.unlink()
    settings.AUDIT_CHECKPOINT_PATH.mkdir()  # a directory where the file should be
    report = _report(capsys)
    assert report["first_broken"]["kind"] == "checkpoint-unreadable"
    assert "cannot read" in report["first_broken"]["reason"]


def test_a_deleted_head_row_is_named_and_recreated(chain: list[AuditEvent], capsys) -> None:
    AuditHead.objects.all().delete()
    assert _report(capsys)["first_broken"]["reason"] == "the chain-head row is missing"
    assert audit_record(action="after").seq == 6  # writers go on from the last event
    assert list(audit_verify()) == []
