"""Writes for datasets: create, freeze a version, request and build exports.

Every service checks nothing about roles (views do, through datasets.access) and audits what it does.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from datasets import archive, claims
from datasets.augment import make_augmenter
from datasets.augment.recipe import validate_recipe
from datasets.build import build_archive
from datasets.exporters import get_exporter
from datasets.exporters.base import ExportError, ExportInput, canonical_json
from datasets.labelsource import InvalidLabelSource, LabelSource
from datasets.manifest import EmptySelection, manifest_build, manifest_id, manifest_load, manifest_store
from datasets.models import Dataset, DatasetVersion, Export, ExportStatus
from datasets.selection import Selection
from datasets.splits import SplitSpec, distribution, leakage
from workbench.audit import audit_record
from workbench.models import Instance, Project

logger = logging.getLogger(__name__)


class InvalidDataset(ValueError):
    """The request cannot make a dataset, version or export; the message says what to fix and
    ``field`` which input it is about (the API names it in its 400)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def dataset_create(*, project: Project, user: Any, name: str, selection: Any, description: str = "") -> Dataset:
    """Create a named selection. Raises InvalidDataset for a bad selection or a taken name."""
    try:
        chosen = Selection.from_dict(selection)
    except ValueError as exc:
        raise InvalidDataset(str(exc), field="selection") from exc
    name = (name or "").strip()
    if not name:
        raise InvalidDataset("A dataset needs a name.", field="name")
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                project=project, name=name, description=description, selection=chosen.to_dict(), created_by=user
            )
    except IntegrityError as exc:
        message = f"This project already has a dataset named {name!r}; choose another name."
        raise InvalidDataset(message, field="name") from exc
    audit_record(action="dataset_created", actor=user, project=project, object_type="dataset", object_id=dataset.pk)
    return dataset


def version_freeze(
    *,
    dataset: Dataset,
    user: Any,
    note: str = "",
    split: Any = None,
    augmentation: Any = None,
    label_source: str = "",
    reader: str = "",
) -> tuple[DatasetVersion, bool]:
    """Freeze what the dataset selects now into an immutable version; (version, created).

    ``label_source`` and ``reader`` choose which reads label the samples (datasets.labelsource:
    one read per series by default, one named reader's, or every reader's as separate sets).
    Idempotent: when nothing changed since the latest version (same samples, revisions, splits,
    recipe, label source and note), that version is returned and nothing is written. The new
    version's parent is the dataset's latest version.
    """
    try:
        source = LabelSource.from_request(label_source, reader)
    except InvalidLabelSource as exc:
        raise InvalidDataset(str(exc), field=exc.field) from exc
    try:
        spec = SplitSpec.from_dict(split)
    except ValueError as exc:
        raise InvalidDataset(str(exc), field="split") from exc
    try:
        recipe = validate_recipe(augmentation)
    except ValueError as exc:
        raise InvalidDataset(str(exc), field="augmentation") from exc
    latest = dataset.versions.order_by("-created_at").first()
    try:
        manifest = manifest_build(
            dataset=dataset,
            split=spec,
            augmentation=recipe,
            parent=latest.pk if latest else None,
            note=note,
            label_source=source,
        )
    except EmptySelection as exc:  # with one named reader, it is that reader who has no read
        raise InvalidDataset(str(exc), field="reader" if source.reader else "non_field_errors") from exc
    if latest is not None and manifest_id({**manifest, "parent": latest.parent_id}) == latest.pk:
        return latest, False
    version_id, path = manifest_store(manifest)
    samples = manifest["samples"]
    summary = {
        "splits": distribution(samples),
        "leakage": leakage(samples),
        "patients": len({s["patient"] for s in samples}),
        "labels": [
            {"name": one["name"], "color": one["color"], "kind": one["kind"]} for one in manifest["labels"]["labels"]
        ],
        "label_source": manifest["label_source"],
    }
    version, created = DatasetVersion.objects.get_or_create(
        pk=version_id,
        defaults={
            "dataset": dataset,
            "parent": latest,
            "note": note,
            "manifest_path": path,
            "samples": len(samples),
            "instances": sum(len(s["instances"]) for s in samples),
            "annotations": sum(len(s["annotations"]) for s in samples),
            "summary": summary,
            "label_source": source.mode,
            "created_by": user,
        },
    )
    if created:
        audit_record(
            action="dataset_version_frozen",
            actor=user,
            project=dataset.project,
            object_type="dataset_version",
            object_id=version_id,
            details={
                "dataset": str(dataset.pk),
                "samples": version.samples,
                "annotations": version.annotations,
                "label_source": source.mode,
            },
        )
    return version, created


def export_send(export_id: str) -> bool:
    """Publish an export's build; a broker that cannot be reached is logged, not raised (the
    export stays QUEUED, and asking for it again sends it). True once the broker took it."""
    from datasets.tasks import export_build as task

    try:
        task.delay(export_id)
    except (OperationalError, OSError) as exc:
        logger.error("export %s: the broker did not take its build (%s); ask for it again", export_id, exc)
        return False
    return True


def export_request(
    *, version: DatasetVersion, user: Any, export_format: str, options: Any = None
) -> tuple[Export, bool]:
    """Ask for an archive; (export, newly queued). Built once per (version, format, options):
    asking again returns the same export, and a failed one is queued again. An unknown format,
    an option the format lacks or a value it cannot use raises InvalidDataset before any job."""
    try:
        exporter = get_exporter(export_format)
    except ExportError as exc:
        raise InvalidDataset(str(exc), field="format") from exc
    options = dict(options or {})
    unknown = set(options) - set(exporter.options)
    if unknown:
        accepted = ", ".join(sorted(exporter.options)) or "none"
        raise InvalidDataset(
            f"Unknown option(s) for {export_format}: {', '.join(sorted(unknown))}. Accepted: {accepted}.",
            field="options",
        )
    try:
        exporter.check_options(options)
    except ExportError as exc:
        raise InvalidDataset(f"{exc.args[0][:1].upper()}{exc.args[0][1:]}.", field="options") from exc
    key = hashlib.sha256(canonical_json(options)).hexdigest()
    with transaction.atomic():
        export, created = Export.objects.get_or_create(
            version=version, format=export_format, options_key=key, defaults={"options": options, "created_by": user}
        )
        requeue = created or Export.objects.filter(pk=export.pk, status=ExportStatus.FAILED).update(
            status=ExportStatus.QUEUED, error="", done=0, lost_claims=0
        )
        # A QUEUED export is sent again too: its message may never have reached the broker
        # (down at the first request), and a second copy is harmless (the build claims first).
        if requeue or export.status == ExportStatus.QUEUED:
            transaction.on_commit(functools.partial(export_send, str(export.pk)))
    audit_record(
        action="export_requested",
        actor=user,
        project=version.dataset.project,
        object_type="export",
        object_id=export.pk,
        details={"version": version.pk, "format": export_format, "options": options, "queued": bool(requeue)},
    )
    export.refresh_from_db()
    return export, bool(requeue)


def export_build(*, export_id: str) -> Export | None:
    """Build the archive (idempotent: a claimed, running or finished export is left alone).

    Exactly once: the claim is a compare-and-set kept alive by a heartbeat (``datasets.claims``),
    and the outcome — the archive in the store, status, audit event — is recorded only while the
    claim is still this worker's, so a worker whose claim was taken over writes nothing (the
    archive it already stored is deleted). Failures that a person must fix (geometry, a changed
    file) end as status "failed" with the message; anything else is re-raised after marking the
    export failed.
    """
    claim = claims.export_claim(export_id)
    if claim is None:
        return None
    export = Export.objects.select_related("version__dataset__project").get(pk=export_id)
    try:
        with claims.claim_heartbeat(export.pk, claim):
            built = _build(export, claim)
        return _export_record(export, claim, built)
    except claims.ClaimLost:
        logger.warning("export %s: claim %d was taken over; its outcome is dropped", export_id, claim)
        return None
    except Exception as exc:
        message = str(exc) if isinstance(exc, ExportError) else f"Internal error ({type(exc).__name__}); see the logs."
        with transaction.atomic():
            failed = claims.held(export.pk, claim).update(
                status=ExportStatus.FAILED, error=message, finished_at=timezone.now()
            )
            if failed:
                audit_record(
                    action="export_failed",
                    project=export.version.dataset.project,
                    object_type="export",
                    object_id=export.pk,
                    details={"error": message[:500]},
                )
        if not failed:
            logger.warning("export %s: claim %d was taken over; its failure is dropped", export_id, claim)
            return None
        if isinstance(exc, ExportError):
            export.refresh_from_db()
            return export
        raise


def _export_record(export: Export, claim: int, built: tuple[str, int, str]) -> Export:
    """Mark the export DONE under its claim, or delete the stored archive and raise ClaimLost."""
    archive_path, size, sha256 = built
    try:
        with transaction.atomic():
            claims.claim_check(export.pk, claim)
            claims.held(export.pk, claim).update(
                status=ExportStatus.DONE,
                archive_path=archive_path,
                size=size,
                sha256=sha256,
                finished_at=timezone.now(),
            )
            audit_record(
                action="export_built",
                project=export.version.dataset.project,
                object_type="export",
                object_id=export.pk,
                details={"sha256": sha256, "size": size},
            )
    except BaseException:
        default_storage.delete(archive_path)  # named by this claim: no other worker's archive
        raise
    export.refresh_from_db()
    return export


def _build(export: Export, claim: int) -> tuple[str, int, str]:
    """Pack the archive in a scratch folder and store it under a name of this claim."""
    with tempfile.TemporaryDirectory(prefix="export-") as scratch:
        packed, sha256 = _pack(export, Path(scratch), progress=_progress(export, claim))
        # A worker whose claim was taken over stores nothing; one that loses it while storing
        # wrote under a name of its own claim, which it deletes (see _export_record), so a
        # stalled worker never overwrites, truncates or duplicates the new worker's archive.
        claims.claim_check(export.pk, claim, lock=False)
        key = export.options_key[:16]
        name = f"datasets/exports/{export.version_id}/{export.format}-{key}-{sha256[:16]}-{claim}.zip"
        with packed.open("rb") as stream:
            name = default_storage.save(name, File(stream))
        return name, packed.stat().st_size, sha256


def _pack(export: Export, scratch: Path, *, progress: Callable[[int, int], None]) -> tuple[Path, str]:
    """The archive of the export, written under ``scratch``, and its sha256 (deterministic)."""
    version = export.version
    manifest = manifest_load(version.pk, version.manifest_path)
    recipe = manifest["augmentation"]
    data = ExportInput.from_manifest(
        manifest,
        version_id=version.pk,
        path_of=_local_files(version, manifest, scratch / "sources"),
        options=export.options,
        augment=make_augmenter(recipe) if recipe.get("materialize") else None,
    )
    with default_storage.open(version.manifest_path, "rb") as stream:
        manifest_bytes = stream.read()
    packed = scratch / "export.zip"
    sha256 = build_archive(
        data, export.format, manifest_bytes=manifest_bytes, work=scratch, out=packed, progress=progress
    )
    return packed, sha256


def _progress(export: Export, claim: int) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        claims.held(export.pk, claim).update(done=done, total=total)

    return report


def _local_files(version: DatasetVersion, manifest: dict[str, Any], scratch: Path) -> Callable[[str], Path]:
    """sop_uid -> a local copy (or the stored file itself on local storage), checked against the manifest."""
    expected = {i["sop_uid"]: i["sha256"] for s in manifest["samples"] for i in s["instances"]}
    stored = dict(
        Instance.objects.filter(series__study__project=version.dataset.project, sop_uid__in=list(expected)).values_list(
            "sop_uid", "storage_path"
        )
    )
    checked: dict[str, Path] = {}

    def path_of(sop_uid: str) -> Path:
        if sop_uid in checked:
            return checked[sop_uid]
        if sop_uid not in stored:
            raise ExportError(f"the image {sop_uid} of this version is no longer in the store")
        try:
            path = Path(default_storage.path(stored[sop_uid]))
        except NotImplementedError:  # object storage: fetch a copy
            scratch.mkdir(parents=True, exist_ok=True)
            path = scratch / f"{len(checked):08d}.dcm"
            with default_storage.open(stored[sop_uid], "rb") as stream, path.open("wb") as out:
                shutil.copyfileobj(stream, out)
        if archive.file_sha256(path) != expected[sop_uid]:
            raise ExportError(f"the stored file of image {sop_uid} changed since the version was frozen")
        checked[sop_uid] = path
        return path

    return path_of
