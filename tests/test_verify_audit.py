"""``manage.py verify_audit``: the hash chain detects edited and deleted events."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from workbench.audit import audit_record
from workbench.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(project_a) -> list[AuditEvent]:
    return [
        audit_record(action="test_event", project=project_a, object_type="n", object_id=i, details={"i": i})
        for i in range(5)
    ]


def _sql(statement: str, params: list[object]) -> None:
    with connection.cursor() as cursor:  # raw SQL: the model refuses updates and deletes
        cursor.execute(statement.format(table=AuditEvent._meta.db_table), params)


def test_clean_chain_is_ok(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    call_command("verify_audit")
    assert f"OK: {AuditEvent.objects.count()} events" in capsys.readouterr().out


def test_empty_log_is_ok(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("verify_audit")
    assert "OK: 0 events" in capsys.readouterr().out


def test_modified_details_are_detected(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    _sql("UPDATE {table} SET details = %s WHERE seq = %s", ['{"i": 99}', chain[2].seq])
    with pytest.raises(CommandError, match="1 problem"):
        call_command("verify_audit")
    assert f"event {chain[2].seq}: content does not match" in capsys.readouterr().err


def test_deleted_middle_row_is_detected(chain: list[AuditEvent], capsys: pytest.CaptureFixture[str]) -> None:
    _sql("DELETE FROM {table} WHERE seq = %s", [chain[2].seq])
    with pytest.raises(CommandError, match="problem"):
        call_command("verify_audit")
    assert f"event {chain[3].seq}: previous-hash link broken" in capsys.readouterr().err
