"""Building one export archive from a frozen version's ExportInput. Imports no Django.

The export job (datasets.services) and the benchmark (bench/export_throughput.py) both build
through :func:`build_archive`, so what is measured is what users get.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from datasets import archive
from datasets.card import dataset_card
from datasets.exporters import get_exporter
from datasets.exporters.base import ExportInput, Progress, canonical_json

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
    get_exporter(export_format).export(data, root, progress=progress)
    (root / "manifest.json").write_bytes(manifest_bytes)
    card = dataset_card(data.manifest, version_id=data.version_id, export_format=export_format)
    (root / "README.md").write_text(card, encoding="utf-8")
    (root / "augmentation.json").write_bytes(canonical_json(data.manifest["augmentation"]) + b"\n")
    shutil.copyfile(AUGMENT_SOURCE, root / "workbench_augment.py")
    archive.write_checksums(root)
    archive.pack(root, out)
    return archive.file_sha256(out)
