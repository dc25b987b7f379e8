"""The append-only audit log, chained by keyed MACs (see workbench.audit_keys)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One audited action. Rows are only ever inserted (see workbench.audit).

    ``seq`` is the position in the chain, handed out under the lock of the
    ``AuditHead`` row, so it has no gaps (an autoincrement would skip the ids
    of rolled-back transactions). ``hash`` is HMAC-SHA256 under the key
    ``key_id`` over every column, the previous event's ``hash`` included, so
    editing, moving or deleting any row breaks the chain at that point.

    ``actor`` and ``project`` are covered by the MAC, so they must keep their
    value when a user or project is deleted: no database constraint and no
    ``SET_NULL``; the log remembers the id of what is gone.
    """

    seq = models.BigIntegerField(primary_key=True, editable=False)
    at = models.DateTimeField()
    action = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    project = models.ForeignKey(
        "workbench.Project",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    project_slug = models.CharField(max_length=100, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self._state.adding is False:
            raise RuntimeError("Audit events are append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise RuntimeError("Audit events are append-only.")


class AuditHead(models.Model):
    """The chain's head: one row, locked by every writer, so that all processes append to one chain.

    It also remembers the last ``seq`` and ``hash`` written, so that deleting
    the last events without also rewriting this row shows as truncation.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"
