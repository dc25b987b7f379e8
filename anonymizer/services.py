"""Ingest and de-identification services (write side).

Validate, then do, then notify after commit: tasks are enqueued with
``delay_on_commit`` so a worker never sees an item its transaction has not yet
written.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from anonymizer import quarantine
from anonymizer.deid import DeidOptions, DeidResult, PseudonymKeys
from anonymizer.deid.pixels import TextDetector, default_text_detector
from anonymizer.intake import Incoming
from anonymizer.models import DeidReport, IngestBatch, IngestItem, ItemStatus, VaultEntry, VaultKind
from anonymizer.processing import OK, REJECTED, Outcome, process_file, recipe_sha256
from anonymizer.vocabulary import project_vocabulary
from anonymizer.vocabulary import vocabulary_term_add as vocabulary_term_add  # re-exported
from anonymizer.vocabulary import vocabulary_term_remove as vocabulary_term_remove  # re-exported
from workbench import crypto
from workbench.audit import audit_record
from workbench.models import Instance, Patient, Project, Series, Study

STALE_CLAIM = timedelta(minutes=15)


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
    from anonymizer.tasks import item_deidentify

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
                item_deidentify.delay_on_commit(str(item.pk))
        items.append(item)
    return items


def _claim(item_id: str) -> bool:
    stale = timezone.now() - STALE_CLAIM
    claimable = Q(status=ItemStatus.RECEIVED) | Q(status=ItemStatus.PROCESSING, updated_at__lt=stale)
    return bool(
        IngestItem.objects.filter(claimable, pk=item_id).update(
            status=ItemStatus.PROCESSING, attempts=F("attempts") + 1, updated_at=timezone.now()
        )
    )


def item_deidentify(*, item_id: str, detector: TextDetector | None | bool = True) -> IngestItem | None:
    """De-identify one claimed item. Idempotent: finished or claimed items are skipped.

    A file whose SOP Instance UID is already in the project is stored once
    (DUPLICATE). Failures keep the encrypted raw file for review (QUARANTINED)
    or drop it when the input is unusable (REJECTED).
    """
    if not _claim(item_id):
        return None
    item = IngestItem.objects.select_related("batch__project").get(pk=item_id)
    project = item.batch.project
    options = project_options(project)
    text_detector = _detector() if detector is True else (detector or None)
    outcome = process_file(
        quarantine.raw_read(item.raw_path), options=options, keys=project_keys(project), detector=text_detector
    )
    if outcome.status != OK:
        return _item_fail(item, outcome, options)
    return _item_store(item, outcome, options)


def _item_fail(item: IngestItem, outcome: Outcome, options: DeidOptions) -> IngestItem:
    item.status = ItemStatus.REJECTED if outcome.status == REJECTED else ItemStatus.QUARANTINED
    item.reason_code, item.reason = outcome.code, outcome.message
    item.processed_at = timezone.now()
    item.save(update_fields=["status", "reason_code", "reason", "processed_at", "updated_at"])
    if item.status == ItemStatus.REJECTED:
        quarantine.raw_delete(item.raw_path)
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
    ds, pseudo = result.dataset, result.pseudonyms
    patient, _ = Patient.objects.get_or_create(
        project=project,
        pseudo_id=pseudo.patient_id,
        defaults={"sex": str(ds.get("PatientSex", "") or ""), "age": str(ds.get("PatientAge", "") or "")},
    )
    study, _ = Study.objects.get_or_create(
        project=project,
        study_uid=pseudo.study_instance_uid,
        defaults={
            "patient": patient,
            "study_date": str(ds.get("StudyDate", "") or ""),
            "accession_pseudonym": pseudo.accession_number or "",
            "description": str(ds.get("StudyDescription", "") or "")[:64],
        },
    )
    series, _ = Series.objects.get_or_create(
        study=study,
        series_uid=pseudo.series_instance_uid,
        defaults={
            "modality": str(ds.get("Modality", "") or ""),
            "number": _int(ds.get("SeriesNumber")),
            "description": str(ds.get("SeriesDescription", "") or "")[:64],
        },
    )
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    return Instance.objects.create(
        series=series,
        sop_uid=pseudo.sop_instance_uid,
        sop_class_uid=str(ds.SOPClassUID),
        number=_int(ds.get("InstanceNumber")),
        rows=_int(ds.get("Rows")),
        columns=_int(ds.get("Columns")),
        frames=_int(ds.get("NumberOfFrames")) or 1,
        pixel_spacing=[float(v) for v in spacing] if spacing else None,
        slice_thickness=_float(ds.get("SliceThickness")),
        slice_position=slice_position(ds),
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


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _vault_put(project: Project, kind: str, pseudonym: str, identity: dict[str, str]) -> None:
    if not VaultEntry.objects.filter(project=project, kind=kind, pseudonym=pseudonym).exists():
        blob = crypto.encrypt(json.dumps(identity, sort_keys=True).encode())
        try:
            with transaction.atomic():
                VaultEntry.objects.create(project=project, kind=kind, pseudonym=pseudonym, identity_encrypted=blob)
        except IntegrityError:
            pass  # another worker stored the same mapping first


def _item_store(item: IngestItem, outcome: Outcome, options: DeidOptions) -> IngestItem:
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
    _vault_put(
        project,
        VaultKind.PATIENT,
        pseudo.patient_id,
        {"patient_id": ident.patient_id, "patient_name": ident.patient_name, "birth_date": ident.birth_date},
    )
    _vault_put(
        project,
        VaultKind.STUDY,
        pseudo.study_instance_uid,
        {"study_instance_uid": ident.study_instance_uid, "accession_number": ident.accession_number},
    )
    item.status, item.instance, item.processed_at = status, instance, timezone.now()
    item.reason_code = item.reason = ""
    item.save(update_fields=["status", "instance", "processed_at", "reason_code", "reason", "updated_at"])
    if settings.QUARANTINE_RETENTION_DAYS == 0:
        quarantine.raw_delete(item.raw_path)
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


def item_reprocess(*, item: IngestItem, user: Any) -> IngestItem:
    """Send a quarantined item through the pipeline again (compliance officers)."""
    from anonymizer.tasks import item_deidentify as task

    if item.status != ItemStatus.QUARANTINED or not item.raw_path:
        raise ValueError("Only quarantined items that still hold their file can be re-processed.")
    with transaction.atomic():
        IngestItem.objects.filter(pk=item.pk).update(status=ItemStatus.RECEIVED, updated_at=timezone.now())
        audit_record(
            action="quarantine_reprocess", actor=user, project=item.batch.project, object_type="item", object_id=item.pk
        )
        task.delay_on_commit(str(item.pk))
    item.refresh_from_db()
    return item


def item_discard(*, item: IngestItem, user: Any) -> IngestItem:
    """Delete a quarantined item's raw file for good (compliance officers)."""
    if item.status != ItemStatus.QUARANTINED:
        raise ValueError("Only quarantined items can be discarded.")
    quarantine.raw_delete(item.raw_path)
    item.status, item.raw_path = ItemStatus.DISCARDED, ""
    item.save(update_fields=["status", "raw_path", "updated_at"])
    audit_record(
        action="quarantine_discard", actor=user, project=item.batch.project, object_type="item", object_id=item.pk
    )
    return item


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


class VaultError(Exception):
    pass


def vault_lookup(*, project: Project, user: Any, pseudonym: str, reason: str) -> dict[str, Any]:
    """Reveal the identity behind a pseudonym. Compliance officers only (checked by the caller
    through workbench.access); a written reason is required and every look-up is audited."""
    if len(reason.strip()) < 10:
        raise VaultError("Give a written reason for this look-up (at least 10 characters).")
    entries = list(VaultEntry.objects.filter(project=project, pseudonym=pseudonym.strip()))
    audit_record(
        action="vault_lookup",
        actor=user,
        project=project,
        object_type="pseudonym",
        object_id=pseudonym.strip()[:64],
        details={"reason": reason.strip(), "found": bool(entries)},
    )
    if not entries:
        raise VaultError("No identity is recorded for this pseudonym in this project.")
    return {e.kind: json.loads(crypto.decrypt(e.identity_encrypted)) for e in entries}


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
