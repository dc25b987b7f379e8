"""Ingest and de-identification services (write side).

Validate, then do, then notify after commit: tasks are enqueued with
``delay_on_commit`` so a worker never sees an item its transaction has not yet
written.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from anonymizer import claims, outbox, quarantine
from anonymizer.catalog_fit import CatalogValueError, catalog_fields, fit_float
from anonymizer.deid import DeidOptions, DeidResult, PseudonymKeys
from anonymizer.deid.pixels import TextDetector, default_text_detector
from anonymizer.intake import Incoming
from anonymizer.models import DeidReport, IngestBatch, IngestItem, ItemStatus, VaultKind
from anonymizer.processing import OK, QUARANTINED, REJECTED, Outcome, process_file, recipe_sha256
from anonymizer.vault import VaultError as VaultError  # re-exported
from anonymizer.vault import vault_lookup as vault_lookup  # re-exported
from anonymizer.vault import vault_put
from anonymizer.vocabulary import project_vocabulary
from anonymizer.vocabulary import vocabulary_term_add as vocabulary_term_add  # re-exported
from anonymizer.vocabulary import vocabulary_term_remove as vocabulary_term_remove  # re-exported
from workbench import crypto
from workbench.audit import audit_record
from workbench.models import Instance, Patient, Project, Series, Study

logger = logging.getLogger(__name__)


def project_options(project: Project) -> DeidOptions:
    """The project's options, with its compliance officer's vocabulary as ``extra_vocabulary``.

    The vocabulary table is the only source of those words: a stored ``extra_vocabulary``
    in ``project.deid_options`` is ignored, so the settings page cannot extend it.
    """
    stored = dict(project.deid_options or {})
    stored.pop("extra_vocabulary", None)
    base = DeidOptions.from_dict(stored) if stored else DeidOptions.research_default()
    return dataclasses.replace(base, extra_vocabulary=project_vocabulary(project))


def project_keys(project: Project) -> PseudonymKeys:
    return PseudonymKeys(secret=project.pseudonym_secret())


@functools.cache
def _detector() -> TextDetector | None:
    return default_text_detector()


def pipeline_detector() -> TextDetector | None:
    """The pipeline's text detector (loaded once), or None when none is installed."""
    return _detector()


def batch_create(*, project: Project, source: str, user: Any = None) -> IngestBatch:
    """Open a batch; audited as an ingest."""
    batch = IngestBatch.objects.create(project=project, source=source, created_by=user)
    audit_record(
        action="ingest_batch_created",
        actor=user,
        project=project,
        object_type="batch",
        object_id=batch.pk,
        details={"source": source},
    )
    return batch


def batch_add(*, batch: IngestBatch, incoming: Iterable[Incoming]) -> list[IngestItem]:
    """Store each incoming file encrypted and enqueue its de-identification.

    Files that are unusable as they arrive (too large, unsafe zip member) become
    REJECTED items with their reason; the others go through. Transactional per file.
    """
    items = []
    start = batch.items.count()
    for offset, entry in enumerate(incoming):
        item = IngestItem(batch=batch, index=start + offset, name_encrypted=crypto.encrypt(entry.name.encode()))
        if entry.data is None:
            item.status, item.reason_code, item.reason = ItemStatus.REJECTED, entry.error_code, entry.error
            item.processed_at = timezone.now()
            item.save()
        else:
            item.sha256 = hashlib.sha256(entry.data).hexdigest()
            item.size = len(entry.data)
            with transaction.atomic():
                item.save()
                item.raw_path = quarantine.raw_store(path=f"raw/{batch.pk}/{item.pk}.bin", data=entry.data)
                item.save(update_fields=["raw_path"])
                outbox.item_enqueue_on_commit(str(item.pk))
        items.append(item)
    return items


def item_deidentify(*, item_id: str, detector: TextDetector | None | bool = True) -> IngestItem | None:
    """De-identify one claimed item. Idempotent: finished or claimed items are skipped.

    Exactly once: the claim is a compare-and-set, kept alive by a heartbeat, and the outcome is
    recorded only while the claim is still this worker's (checked under a row lock in the same
    transaction), so a task delivered twice never stores an instance or an audit event twice.
    A file whose SOP Instance UID is already in the project is stored once
    (DUPLICATE). Failures keep the encrypted raw file for review (QUARANTINED)
    or drop it when the input is unusable (REJECTED). Whatever fails — the file, the
    engine, the catalog write, the audit — a claimed item ends in one of these four
    states with its reason (see ``_item_finish``). Should even recording the failure fail
    (the database gone), ``recovery.items_recover_stale`` sends the item again later.
    """
    claim = claims.item_claim(item_id)
    if claim is None:
        return None
    item = IngestItem.objects.select_related("batch__project").get(pk=item_id)
    with claims.claim_heartbeat(item.pk, claim):
        options, outcome = _item_outcome(item, detector)
    try:
        return _item_finish(item, outcome, options, claim=claim)
    except claims.ClaimLost:
        logger.warning("item %s: claim %d was taken over; its outcome is dropped", item_id, claim)
        return None


# --- nothing stuck (helper "ops": item 7 of issue 9) ---------------------------------------------


def item_options(item: IngestItem) -> DeidOptions:
    """The options this item is processed with: the project's, with its re-process overrides."""
    options = project_options(item.batch.project)
    if not item.options_override:
        return options
    return DeidOptions.from_dict({**options.to_dict(), **item.options_override})


def _item_outcome(item: IngestItem, detector: TextDetector | None | bool) -> tuple[DeidOptions, Outcome]:
    """Read, de-identify and verify; no database write. Never raises."""
    try:
        options = item_options(item)
    except Exception as exc:
        logger.error("item %s: options unusable (%s)", item.pk, type(exc).__name__)
        message = f"The options stored for this item are not valid ({type(exc).__name__})."
        return DeidOptions.research_default(), Outcome(QUARANTINED, "options_error", message)
    try:
        raw = quarantine.raw_read(item.raw_path)
    except Exception as exc:
        logger.error("item %s: raw file unreadable (%s)", item.pk, type(exc).__name__)
        message = f"The encrypted original could not be read back from the quarantine storage ({type(exc).__name__})."
        return options, Outcome(QUARANTINED, "raw_unreadable", message)
    text_detector = _detector() if detector is True else (detector or None)
    try:
        outcome = process_file(raw, options=options, keys=project_keys(item.batch.project), detector=text_detector)
    except Exception as exc:  # process_file promises not to raise; this is the net under it
        logger.error("item %s: processing raised (%s)", item.pk, type(exc).__name__)
        message = f"De-identification stopped on an unexpected error ({type(exc).__name__})."
        return options, Outcome(QUARANTINED, "internal_error", message)
    return options, outcome


def _item_finish(item: IngestItem, outcome: Outcome, options: DeidOptions, *, claim: int | None = None) -> IngestItem:
    """Record the outcome in one transaction; if any write fails, undo them all and quarantine.

    The first attempt runs inside ``transaction.atomic()`` (a savepoint when the caller holds
    a transaction), so a refused row on PostgreSQL leaves no aborted transaction behind, the
    catalog rows are rolled back and the de-identified file is deleted; the failure is then
    written in a fresh atomic block.
    """
    written: list[str] = []
    try:
        with transaction.atomic():
            claims.claim_check(item.pk, claim)
            if outcome.status != OK:
                return _item_fail(item, outcome, options)
            return _item_store(item, outcome, options, written=written)
    except claims.ClaimLost:
        raise
    except Exception as exc:
        logger.error("item %s: recording the outcome failed (%s)", item.pk, type(exc).__name__)
        for path in written:
            try:
                default_storage.delete(path)
            except Exception as cleanup:
                logger.error("item %s: output not deleted (%s)", item.pk, type(cleanup).__name__)
        item.instance = None
        with transaction.atomic():
            claims.claim_check(item.pk, claim)
            return _item_fail(item, _store_failure(exc), options)


def _store_failure(exc: Exception) -> Outcome:
    if isinstance(exc, CatalogValueError):
        return Outcome(REJECTED, exc.code, exc.message)
    if isinstance(exc, DatabaseError):
        message = (
            f"The catalog refused this instance ({type(exc).__name__}); nothing was stored. "
            "Re-process it once the cause is fixed."
        )
        return Outcome(QUARANTINED, "catalog_error", message)
    return Outcome(QUARANTINED, "store_error", f"Storing the de-identified file failed ({type(exc).__name__}).")


def _pixel_flagged(outcome: Outcome) -> bool:
    if outcome.code in ("no_text_detector", "pixel_decode_error"):
        return True
    cleaned = outcome.result is not None and outcome.result.pixel_cleaned
    return cleaned or any(leak.path == "(7FE0,0010)" for leak in outcome.leaks)


# --- end of "nothing stuck" ----------------------------------------------------------------------


def _item_fail(item: IngestItem, outcome: Outcome, options: DeidOptions) -> IngestItem:
    item.status = ItemStatus.REJECTED if outcome.status == REJECTED else ItemStatus.QUARANTINED
    item.reason_code, item.reason = outcome.code, outcome.message
    item.processed_at = timezone.now()
    item.pixel_flagged = _pixel_flagged(outcome)
    item.save(update_fields=["status", "reason_code", "reason", "processed_at", "pixel_flagged", "updated_at"])
    if item.status == ItemStatus.REJECTED:
        raw_path = item.raw_path
        transaction.on_commit(lambda: quarantine.raw_delete(raw_path))  # not before the status is kept
    audit_record(
        action="deidentify_failed",
        project=item.batch.project,
        object_type="item",
        object_id=item.pk,
        details={
            "status": item.status,
            "code": outcome.code,
            "recipe": recipe_sha256(options),
            "verifier_leaks": len(outcome.leaks),
        },
    )
    return item


def _catalog_upsert(project: Project, result: DeidResult, storage_path: str, output: bytes) -> Instance:
    # Values are fitted to their columns first (catalog_fit): the database never sees one too long.
    fields = catalog_fields(result)
    patient_fields = dict(fields.patient)
    patient, _ = Patient.objects.get_or_create(
        project=project, pseudo_id=patient_fields.pop("pseudo_id"), defaults=patient_fields
    )
    study_fields = dict(fields.study)
    study, _ = Study.objects.get_or_create(
        project=project, study_uid=study_fields.pop("study_uid"), defaults={"patient": patient, **study_fields}
    )
    series_fields = dict(fields.series)
    series, _ = Series.objects.get_or_create(
        study=study, series_uid=series_fields.pop("series_uid"), defaults=series_fields
    )
    return Instance.objects.create(
        series=series,
        **fields.instance,
        slice_position=fit_float(slice_position(result.dataset)),
        sha256=hashlib.sha256(output).hexdigest(),
        size=len(output),
        storage_path=storage_path,
        pixel_cleaned=result.pixel_cleaned,
    )


def slice_position(ds: Any) -> float | None:
    """ImagePositionPatient along the normal of ImageOrientationPatient, or None without them."""
    try:
        position = [float(v) for v in ds.ImagePositionPatient]
        row, col = (
            [float(v) for v in ds.ImageOrientationPatient[:3]],
            [float(v) for v in ds.ImageOrientationPatient[3:]],
        )
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    if len(position) != 3 or len(row) != 3 or len(col) != 3:
        return None
    normal = (row[1] * col[2] - row[2] * col[1], row[2] * col[0] - row[0] * col[2], row[0] * col[1] - row[1] * col[0])
    return sum(p * n for p, n in zip(position, normal, strict=True))


def _item_store(item: IngestItem, outcome: Outcome, options: DeidOptions, *, written: list[str]) -> IngestItem:
    project, result = item.batch.project, outcome.result
    assert result is not None and outcome.output is not None
    pseudo = result.pseudonyms
    existing = Instance.objects.filter(series__study__project=project, sop_uid=pseudo.sop_instance_uid).first()
    if existing is None:
        parts = (str(project.pk), pseudo.patient_id, pseudo.study_instance_uid, pseudo.series_instance_uid)
        path = "/".join(parts) + f"/{pseudo.sop_instance_uid}.dcm"
        if default_storage.exists(path):
            default_storage.delete(path)
        path = default_storage.save(path, ContentFile(outcome.output))
        written.append(path)
        try:
            with transaction.atomic():
                instance = _catalog_upsert(project, result, path, outcome.output)
                _report_save(instance, result, options)
            status = ItemStatus.DONE
        except IntegrityError:  # the same instance arrived twice at once
            instance = Instance.objects.get(series__study__project=project, sop_uid=pseudo.sop_instance_uid)
            status = ItemStatus.DUPLICATE
    else:
        instance, status = existing, ItemStatus.DUPLICATE
    ident = result.identity
    vault_put(
        project,
        VaultKind.PATIENT,
        pseudo.patient_id,
        {"patient_id": ident.patient_id, "patient_name": ident.patient_name, "birth_date": ident.birth_date},
    )
    vault_put(
        project,
        VaultKind.STUDY,
        pseudo.study_instance_uid,
        {"study_instance_uid": ident.study_instance_uid, "accession_number": ident.accession_number},
    )
    item.status, item.instance, item.processed_at = status, instance, timezone.now()
    item.reason_code = item.reason = ""
    item.pixel_flagged = result.pixel_cleaned
    item.save(
        update_fields=["status", "instance", "processed_at", "reason_code", "reason", "pixel_flagged", "updated_at"]
    )
    if settings.QUARANTINE_RETENTION_DAYS == 0:
        raw_path = item.raw_path
        transaction.on_commit(lambda: quarantine.raw_delete(raw_path))  # kept if this transaction rolls back
    audit_record(
        action="deidentified",
        project=project,
        object_type="instance",
        object_id=instance.pk,
        details={
            "item": str(item.pk),
            "status": status,
            "profile": _method(result),
            "options": options.to_dict(),
            "recipe": recipe_sha256(options),
            "actions": result.actions,
            "pixel_cleaned": result.pixel_cleaned,
            "verifier": "pass",
        },
    )
    return item


def _method(result: DeidResult) -> str:
    return str(result.dataset.get("DeidentificationMethod", ""))[:200]


def _report_save(instance: Instance, result: DeidResult, options: DeidOptions) -> None:
    DeidReport.objects.create(
        instance=instance,
        profile=_method(result),
        options=options.to_dict(),
        recipe_sha256=recipe_sha256(options),
        action_counts=result.actions,
        attributes=[[a.path, a.keyword, a.action] for a in result.attributes],
        pixel_cleaned=result.pixel_cleaned,
        text_regions=len(result.text_regions),
        verifier_leaks=0,
        text_removals=[[r.path, r.keyword, r.kind] for r in result.text_removals],
    )


def quarantine_purge(*, now: Any = None) -> int:
    """Delete raw files of finished items past the retention period. Returns the count."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.QUARANTINE_RETENTION_DAYS)
    done = IngestItem.objects.filter(status__in=[ItemStatus.DONE, ItemStatus.DUPLICATE], processed_at__lt=cutoff)
    count = 0
    for item in done.exclude(raw_path=""):
        quarantine.raw_delete(item.raw_path)
        IngestItem.objects.filter(pk=item.pk).update(raw_path="")
        count += 1
    return count


def deid_report_rows_for_download(*, project: Project, user: Any, fmt: str) -> list[dict[str, Any]]:
    """The project's de-identification report rows; the download is audited."""
    from anonymizer.selectors import project_deid_rows

    rows = project_deid_rows(project)
    audit_record(
        action="report_downloaded",
        actor=user,
        project=project,
        object_type="project",
        object_id=project.pk,
        details={"format": fmt, "rows": len(rows)},
    )
    return rows


def project_options_update(*, project: Project, user: Any, options: DeidOptions) -> Project:
    """Set the project's de-identification options (project admins; audited).

    Applies to files de-identified from now on; what is already stored is not redone.
    """
    before = project_options(project).to_dict()
    # The vocabulary is the compliance officer's (anonymizer.vocabulary), never set from here.
    project.deid_options = {k: v for k, v in options.to_dict().items() if k != "extra_vocabulary"}
    project.save(update_fields=["deid_options"])
    changed = sorted(k for k, v in project.deid_options.items() if before.get(k) != v)
    options = project_options(project)
    audit_record(
        action="deid_options_changed",
        actor=user,
        project=project,
        object_type="project",
        object_id=project.pk,
        details={"changed": changed, "recipe": recipe_sha256(options)},
    )
    return project
