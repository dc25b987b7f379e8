"""Building one export archive from a frozen version's ExportInput. Imports no Django.

The export job (datasets.services) and the benchmark (bench/export_throughput.py) both build
through :func:`build_archive`, so what is measured is what users get.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from datasets import archive
from datasets.card import dataset_card
from datasets.exporters import get_exporter
from datasets.exporters.base import ExportError, ExportInput, Progress, canonical_json, write_json
from datasets.labelsource import ALL_READERS, mode_of

AUGMENT_SOURCE = Path(__file__).resolve().parent / "augment" / "transforms.py"


def build_archive(
    data: ExportInput, export_format: str, *, manifest_bytes: bytes, work: Path, out: Path, progress: Progress
) -> str:
    """Export ``data`` as ``export_format`` into the zip ``out``; returns the zip's sha256.

    The archive holds the format's files, ``manifest.json`` (the frozen bytes, whose sha256 is
    the version id), the dataset card ``README.md``, the augmentation recipe and the code that
    applies it on the fly (``workbench_augment.py``), and ``SHA256SUMS`` over all of them.
    ``work`` is an empty scratch folder.
    """
    root = work / "archive"
    root.mkdir()
    if mode_of(data.manifest) == ALL_READERS:
        export_label_sets(data, export_format, root, progress=progress)
    else:
        get_exporter(export_format).export(data, root, progress=progress)
    (root / "manifest.json").write_bytes(manifest_bytes)
    card = dataset_card(data.manifest, version_id=data.version_id, export_format=export_format)
    (root / "README.md").write_text(card, encoding="utf-8")
    (root / "augmentation.json").write_bytes(canonical_json(data.manifest["augmentation"]) + b"\n")
    shutil.copyfile(AUGMENT_SOURCE, root / "workbench_augment.py")
    archive.write_checksums(root)
    archive.pack(root, out)
    return archive.file_sha256(out)


def label_set(data: ExportInput, reader: str) -> ExportInput:
    """The version as one reader labeled it: every sample, only that reader's annotations."""
    samples = tuple(
        dataclasses.replace(sample, annotations=tuple(a for a in sample.annotations if a.reader == reader))
        for sample in data.samples
    )
    return dataclasses.replace(data, samples=samples)


def export_label_sets(data: ExportInput, export_format: str, root: Path, *, progress: Progress) -> None:
    """An ``all_readers`` version: one complete export per reader under ``label_sets/reader-NN/``.

    Each label set is the format's ordinary layout (so every tool that reads the format reads
    it), holding that reader's labels only; the images repeat in each set. ``label_sets/readers.json``
    maps each folder to its reader's username (folders are numbered: a username need not be a safe
    file name). A format that cannot hold a label set per reader refuses (``label_sets`` False).
    """
    exporter = get_exporter(export_format)
    if not getattr(exporter, "label_sets", True):
        raise ExportError(
            f"the {export_format} format cannot hold one label set per reader, which this version's label "
            "source all_readers asks for; export another format, or freeze a version with one read per series"
        )
    readers = list((data.manifest.get("label_source") or {}).get("readers") or [])
    folders = {f"reader-{n:02d}": reader for n, reader in enumerate(readers, start=1)}
    total = len(readers) * len(data.samples)
    for n, (folder, reader) in enumerate(folders.items()):
        out = root / "label_sets" / folder
        out.mkdir(parents=True)

        def step(done: int, _total: int, offset: int = n * len(data.samples)) -> None:
            progress(offset + done, total)

        exporter.export(label_set(data, reader), out, progress=step)
    write_json(root / "label_sets" / "readers.json", folders)
