"""What a compliance officer sees of and does to a quarantined item, beyond re-process/discard.

The original file name and the redaction preview show identifying content: callers check
the compliance role (workbench.access) first; the preview is audited and never cached.
Nothing here logs a name or a value from a file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import transaction
from django.utils import timezone

from anonymizer import outbox, quarantine, services
from anonymizer.deid import DeidOptions
from anonymizer.deid.pixels import TextDetector
from anonymizer.models import IngestItem, ItemStatus
from anonymizer.preview import PreviewUnavailable, redaction_preview
from anonymizer.processing import recipe_sha256
from workbench import crypto
from workbench.audit import audit_record
from workbench.models import Project

BOOLEAN_OPTIONS = tuple(
    f.name for f in dataclasses.fields(DeidOptions) if isinstance(getattr(DeidOptions(), f.name), bool)
)


def item_original_name(item: IngestItem) -> str:
    """The name the file arrived with, decrypted (compliance officers only; "" when none)."""
    if not item.name_encrypted:
        return ""
    try:
        return crypto.decrypt(bytes(item.name_encrypted)).decode("utf-8", "replace")
    except Exception:  # a rotated-out key: the name is lost, the item is not
        return ""


def reprocess_overrides(project: Project, requested: dict[str, Any]) -> dict[str, bool]:
    """Validate option overrides for one item; returns those differing from the project's.

    Only the on/off options of DeidOptions can be changed per item, as booleans; the merged
    options must pass ``DeidOptions.from_dict``. Raises ValueError with a reason otherwise.
    """
    if not isinstance(requested, dict):
        raise ValueError("Options must be an object of option names to true or false.")
    unknown = sorted(str(k) for k in requested if k not in BOOLEAN_OPTIONS)
    if unknown:
        raise ValueError(f"These are not on/off de-identification options: {', '.join(unknown)[:300]}.")
    wrong = sorted(k for k, v in requested.items() if not isinstance(v, bool))
    if wrong:
        raise ValueError(f"Give true or false for: {', '.join(wrong)}.")
    base = services.project_options(project).to_dict()
    DeidOptions.from_dict({**base, **requested})
    return {k: v for k, v in sorted(requested.items()) if base[k] != v}


def changed_options(before: DeidOptions, after: DeidOptions) -> list[str]:
    """Names of the options whose values differ."""
    old, new = before.to_dict(), after.to_dict()
    return sorted(k for k in new if old.get(k) != new[k])


def item_redaction_preview(*, item: IngestItem, user: Any, detector: TextDetector | None | bool = True) -> bytes:
    """The before/after PNG of an item whose pixels were cleaned or flagged; audited.

    Raises PreviewUnavailable when the item has no such pixels, no raw file any more, or
    the preview cannot be drawn. Each preview shown writes a ``quarantine_preview`` event.
    """
    if not item.raw_path:
        raise PreviewUnavailable("The original file is no longer kept, so there is nothing to preview.")
    if not item.pixel_flagged and not (item.instance is not None and item.instance.pixel_cleaned):
        raise PreviewUnavailable("This item's pixels were not flagged for burned-in text.")
    project = item.batch.project
    text_detector = services.pipeline_detector() if detector is True else (detector or None)
    preview = redaction_preview(
        quarantine.raw_read(item.raw_path),
        options=services.item_options(item),
        keys=services.project_keys(project),
        detector=text_detector,
    )
    audit_record(
        action="quarantine_preview",
        actor=user,
        project=project,
        object_type="item",
        object_id=item.pk,
        details={"frame": 0, "regions": preview.regions},
    )
    return preview.png


def item_reprocess(*, item: IngestItem, user: Any, options: dict[str, Any] | None = None) -> IngestItem:
    """Send a quarantined item through the pipeline again (compliance officers).

    ``options`` (on/off DeidOptions fields -> bool, see :func:`reprocess_overrides`)
    replaces the item's own overrides of the project's options; None keeps them. Audited
    with the names of the options that changed, never a value from the file.
    """
    if item.status != ItemStatus.QUARANTINED or not item.raw_path:
        raise ValueError("Only quarantined items that still hold their file can be re-processed.")
    project = item.batch.project
    overrides = dict(item.options_override) if options is None else reprocess_overrides(project, options)
    try:
        before = services.item_options(item)
    except ValueError:
        before = services.project_options(project)
    after = DeidOptions.from_dict({**services.project_options(project).to_dict(), **overrides})
    with transaction.atomic():
        # A compare-and-set on the row, not the caller's copy: of a reprocess and a discard
        # racing for one item, one wins and the other is told so.
        claimed = IngestItem.objects.filter(pk=item.pk, status=ItemStatus.QUARANTINED).exclude(raw_path="")
        if not claimed.update(
            status=ItemStatus.RECEIVED, options_override=overrides, updated_at=timezone.now(), enqueued_at=None
        ):
            raise ValueError("Only quarantined items that still hold their file can be re-processed.")
        audit_record(
            action="quarantine_reprocess",
            actor=user,
            project=project,
            object_type="item",
            object_id=item.pk,
            details={
                "changed": changed_options(before, after),
                "overrides": sorted(overrides),
                "recipe": recipe_sha256(after),
            },
        )
        outbox.item_enqueue_on_commit(str(item.pk))
    item.refresh_from_db()
    return item


def item_discard(*, item: IngestItem, user: Any) -> IngestItem:
    """Delete a quarantined item's raw file for good (compliance officers).

    The file goes only once the discard has committed: a rolled-back transaction keeps both
    the quarantined row and the file it points at.
    """
    if item.status != ItemStatus.QUARANTINED:
        raise ValueError("Only quarantined items can be discarded.")
    raw_path = item.raw_path
    with transaction.atomic():
        claimed = IngestItem.objects.filter(pk=item.pk, status=ItemStatus.QUARANTINED, raw_path=raw_path)
        if not claimed.update(status=ItemStatus.DISCARDED, raw_path="", updated_at=timezone.now()):
            raise ValueError("Only quarantined items can be discarded.")
        audit_record(
            action="quarantine_discard", actor=user, project=item.batch.project, object_type="item", object_id=item.pk
        )
        transaction.on_commit(lambda: quarantine.raw_delete(raw_path))
    item.refresh_from_db()
    return item
