"""``manage.py verify_audit``: check the audit log's hash chain end to end."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workbench.audit import audit_verify
from workbench.models import AuditEvent


class Command(BaseCommand):
    help = "Verify the hash chain of the audit log; exits non-zero when an event was changed or removed."

    def handle(self, *args: Any, **opts: Any) -> None:
        problems = list(audit_verify())
        for problem in problems:
            self.stderr.write(f"event {problem.seq}: {problem.reason}")
        if problems:
            raise CommandError(f"Audit chain broken: {len(problems)} problem(s).")
        self.stdout.write(f"OK: {AuditEvent.objects.count()} events, chain intact.")
