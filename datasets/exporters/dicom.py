"""The de-identified DICOM files themselves, with the frozen annotations beside them. Imports no Django.

Layout::

    {split}/{patient}/{study_uid}/{series_uid}/0000.dcm ...   # byte-for-byte copies, in spatial order
    annotations.json                                          # every sample's frozen annotations

Patient ids and UIDs in the paths are the store's pseudonyms, as everywhere in the manifest.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from datasets.exporters.base import Exporter, ExportError, ExportInput, Progress, Sample, register, write_json


def copy_sources(data: ExportInput, sample: Sample, folder: Path) -> list[Path]:
    """Copy the sample's instances to ``folder/NNNN.dcm`` in spatial order; each copy checked against the manifest.

    The checksum is taken of the copy, not the source, so what lands in the archive is what the
    version froze: a file changed in the store, or a torn copy, fails the export instead of shipping.
    """
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for number, instance in enumerate(sample.instances):
        target = folder / f"{number:04d}.dcm"
        shutil.copyfile(data.path_of(instance.sop_uid), target)
        with target.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
        if digest != instance.sha256:
            raise ExportError(
                f"the file of SOP Instance UID {instance.sop_uid} does not match the version's checksum "
                "(it changed since the version was frozen)",
                sample=sample.key,
            )
        copies.append(target)
    return copies


def sample_folder(sample: Sample) -> Path:
    """Where the dicom format puts a sample's files, relative to the export root."""
    return Path(sample.split, sample.patient, sample.study_uid, sample.series_uid)


@register
class DicomExporter(Exporter):
    name = "dicom"
    title = "DICOM (de-identified files with annotations.json)"

    def export(self, data: ExportInput, out: Path, *, progress: Progress) -> None:
        """Copy every sample's files and write ``annotations.json``; ExportError on a checksum mismatch."""
        described = []
        for done, sample in enumerate(data.samples, start=1):
            folder = sample_folder(sample)
            copies = copy_sources(data, sample, out / folder)
            described.append(_describe(sample, [(folder / one.name).as_posix() for one in copies]))
            progress(done, len(data.samples))
        labels = [{"index": one.index, "name": one.name, "color": one.color, "kind": one.kind} for one in data.labels]
        write_json(out / "annotations.json", {"version": data.version_id, "labels": labels, "samples": described})


def _describe(sample: Sample, files: list[str]) -> dict[str, Any]:
    file_of = {instance.sop_uid: path for instance, path in zip(sample.instances, files, strict=True)}
    return {
        "key": sample.key,
        "patient": sample.patient,
        "study_uid": sample.study_uid,
        "series_uid": sample.series_uid,
        "modality": sample.modality,
        "split": sample.split,
        "fold": sample.fold,
        "instances": [{"sop_uid": i.sop_uid, "file": file_of[i.sop_uid]} for i in sample.instances],
        "annotations": [
            {
                "id": a.id,
                "label": a.label,
                "sop_uid": a.sop_uid,
                # Series classifications have no image; everything else points at its copied file.
                "file": file_of.get(a.sop_uid),
                "frame": a.frame,
                "geometry": dict(a.geometry),
                "attributes": dict(a.attributes),
                "revision": a.revision,
                "reader": a.reader,
            }
            for a in sample.annotations
        ],
    }
