"""Audit keys: rotation keeps old events verifiable, and the MAC covers every column."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from workbench.audit import audit_record, audit_verify, audit_verify_report, event_body_of
from workbench.audit_keys import _embedded_key, audit_keyring, key_id_of
from workbench.models import AuditEvent

pytestmark = pytest.mark.django_db

KEY_A = "a" * 20 + "-first-audit-key-0001"
KEY_B = "b" * 20 + "-second-audit-key-002"


def _write(n: int, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(n):
            audit_record(action="test_event", details={"i": i})


def test_rotation_keeps_old_events_verifiable(settings, django_capture_on_commit_callbacks, capsys) -> None:
    settings.AUDIT_KEY, settings.AUDIT_KEYS_OLD = KEY_A, []
    _write(3, django_capture_on_commit_callbacks)
    settings.AUDIT_KEY, settings.AUDIT_KEYS_OLD = KEY_B, [KEY_A]
    _write(2, django_capture_on_commit_callbacks)

    ids = list(AuditEvent.objects.order_by("seq").values_list("key_id", flat=True))
    assert ids == [key_id_of(KEY_A.encode())] * 3 + [key_id_of(KEY_B.encode())] * 2
    call_command("verify_audit")  # checkpoints signed with both keys verify too
    assert "OK: 5 events" in capsys.readouterr().out
    lines = [json.loads(line) for line in settings.AUDIT_CHECKPOINT_PATH.read_text().splitlines()]
    assert {line["key_id"] for line in lines} == set(ids)


def test_a_dropped_old_key_is_named(settings, django_capture_on_commit_callbacks) -> None:
    settings.AUDIT_KEY = KEY_A
    _write(2, django_capture_on_commit_callbacks)
    settings.AUDIT_KEY, settings.AUDIT_KEYS_OLD = KEY_B, []
    _write(1, django_capture_on_commit_callbacks)
    kinds = [(p.seq, p.kind) for p in audit_verify()]
    assert (1, "unknown-key") in kinds and (2, "unknown-key") in kinds
    assert {p.kind for p in audit_verify()} == {"unknown-key", "checkpoint-unknown-key"}


def test_a_retired_key_cannot_sign_after_rotation(settings, django_capture_on_commit_callbacks) -> None:
    """A leaked old key is not enough to append events once the new key has taken over."""
    settings.AUDIT_KEY = KEY_A
    _write(1, django_capture_on_commit_callbacks)
    settings.AUDIT_KEY, settings.AUDIT_KEYS_OLD = KEY_B, [KEY_A]
    _write(1, django_capture_on_commit_callbacks)
    settings.AUDIT_KEY, settings.AUDIT_KEYS_OLD = KEY_A, []  # the attacker's process
    _write(1, django_capture_on_commit_callbacks)
    settings.AUDIT_KEY, settings.AUDIT_KEYS_OLD = KEY_B, [KEY_A]
    assert [(p.seq, p.kind) for p in audit_verify()] == [(3, "retired-key")]
    with pytest.raises(CommandError, match=r"first: seq 3 \(retired-key\)"):
        call_command("verify_audit")


def test_a_short_key_is_refused(settings) -> None:
    settings.AUDIT_KEY = "too-short"
    with pytest.raises(ImproperlyConfigured, match="at least 32 characters"):
        audit_record(action="test_event")


def test_the_key_id_does_not_reveal_the_key() -> None:
    key_id = key_id_of(KEY_A.encode())
    assert len(key_id) == 16 and key_id not in KEY_A and key_id != key_id_of(KEY_B.encode())


def test_the_embedded_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "audit.key"
    first = _embedded_key(path)
    assert _embedded_key(path) == first and len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ["audit.key"]  # no temp file left behind


def test_the_mac_covers_every_column(project_a, cast) -> None:
    """A new column on AuditEvent fails here until it is added to the canonical form."""
    event = audit_record(action="test_event", actor=cast["bob"], project=project_a, object_id="x", details={"k": 1})
    body = event_body_of(event)
    covered = {"prev_hash": "prev", "actor": "actor_id", "project": "project_id"}
    columns = {f.name for f in AuditEvent._meta.concrete_fields} - {"hash"}
    assert {covered.get(name, name) for name in columns} <= set(body)
    assert body["project_id"] == str(project_a.pk) and body["actor_id"] == cast["bob"].pk
    assert audit_keyring().current.key_id == body["key_id"]


def test_types_are_explicit(db: None) -> None:
    """A number rewritten as the same digits in text does not verify (no silent coercion)."""
    event = audit_record(action="test_event", object_id=7, details={"n": 1})
    assert event_body_of(event)["object_id"] == "7" and event_body_of(event)["seq"] == 1
    AuditEvent.objects.filter(seq=1).update(details={"n": "1"})
    audit_record(action="test_event")
    assert [(p.seq, p.kind) for p in audit_verify_report().problems] == [(1, "content-changed")]


def test_details_verify_as_the_database_stores_them(db: None) -> None:
    """PostgreSQL's jsonb hands 1e+20 back as an integer; the MAC must cover what is stored."""
    details = {"x": 1e20, "y": 0.1, "z": 1.5e-10, "w": 1.2345678901234567e30, "u": "é\u2028", "big": 2**70}
    audit_record(action="test_event", details=details)
    assert list(audit_verify()) == []
