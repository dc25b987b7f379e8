"""``manage.py verify_audit``: check the audit log's keyed chain, head and checkpoints end to end."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workbench.audit import AuditReport, audit_verify_report
from workbench.audit_checkpoints import checkpoint_path, checkpoint_write

SHOWN = 50


class Command(BaseCommand):
    help = (
        "Verify the audit log: every event's MAC and link, the head row and the signed checkpoints. "
        "Names the first broken event and each problem (content-changed, deleted, truncated, link-broken, "
        "unknown-key, retired-key, checkpoint-*); exits non-zero on any. When all is well it appends a "
        "checkpoint of the head."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
        parser.add_argument("--no-checkpoint", action="store_true", help="do not append a checkpoint (read-only)")

    def handle(self, *args: Any, **opts: Any) -> None:
        report = audit_verify_report()
        if not report.problem_count and report.events and not opts["no_checkpoint"]:
            # Covers events whose own checkpoint write failed (full disk, a crash after commit).
            checkpoint_write(seq=report.head_seq, head_hash=report.head_hash)
        if opts["json"]:
            self.stdout.write(json.dumps(_as_json(report), indent=2))
        else:
            self._print(report)
        if report.problem_count:
            first = report.first_broken
            where = f"seq {first.seq}" if first and first.seq is not None else "the head or checkpoints"
            kind = first.kind if first else "?"
            raise CommandError(f"Audit chain broken: {report.problem_count} problem(s); first: {where} ({kind}).")

    def _print(self, report: AuditReport) -> None:
        for note in report.notes:
            self.stdout.write(note)
        cp = report.checkpoint
        if cp:
            self.stdout.write(f"Last checkpoint: seq {cp.seq} at {cp.at} ({checkpoint_path()}).")
        else:
            self.stdout.write(f"No checkpoint yet in {checkpoint_path()}.")
        first = report.first_broken
        if first is not None:
            where = f"event {first.seq}" if first.seq is not None else "head/checkpoints"
            self.stderr.write(f"FIRST BROKEN: {where}: [{first.kind}] {first.reason}")
        for problem in report.problems[:SHOWN]:
            where = f"event {problem.seq}" if problem.seq is not None else "chain"
            self.stderr.write(f"{where}: [{problem.kind}] {problem.reason}")
        if report.problem_count > SHOWN:
            self.stderr.write(f"... and {report.problem_count - SHOWN} more (--json lists up to 1000).")
        if not report.problem_count:
            self.stdout.write(f"OK: {report.events} events, chain intact (head seq {report.head_seq}).")


def _as_json(report: AuditReport) -> dict[str, Any]:
    first = report.first_broken
    return {
        "ok": report.problem_count == 0,
        "events": report.events,
        "head": {"seq": report.head_seq, "hash": report.head_hash},
        "checkpoint": asdict(report.checkpoint) if report.checkpoint else None,
        "checkpoint_path": str(checkpoint_path()),
        "first_broken": asdict(first) if first else None,
        "problem_count": report.problem_count,
        "problems": [asdict(p) for p in report.problems],
        "notes": report.notes,
    }
