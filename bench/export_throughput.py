"""Export throughput: a frozen version of >= 1,000 annotated 512x512 CT slices, per format,
against copying the same DICOM bytes with shutil.copyfile in the same run.

Each format goes through ``datasets.build.build_archive`` (the export job's own code: the
exporter, manifest, dataset card, SHA256SUMS and the deterministic zip), so the time is what
a user waits for after the worker picks the job up (database and storage upload aside).
Every slice carries a body contour (polygon); the middle third also carries a lesion mask, and
one slice per series a box. Prints slices/s and MB/s (of source DICOM) per format and the
ratio to the copy baseline.

    .venv/bin/python bench/export_throughput.py [--patients 20] [--slices 50] [--formats nifti,coco,dicom]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()  # the annotations geometry helpers live in a Django app package

from datasets.build import build_archive  # noqa: E402
from datasets.exporters import FORMATS  # noqa: E402
from datasets.exporters.base import ExportInput, canonical_json  # noqa: E402
from datasets.tests.factory import make_version  # noqa: E402

SIZE = 512


def annotated_version(folder: Path, patients: int, slices: int) -> ExportInput:
    """The factory's version, with a body contour on every slice so that every slice is annotated."""
    data = make_version(folder, patients=patients, slices=slices, size=SIZE)
    manifest = dict(data.manifest)
    c, rx, ry = SIZE / 2, SIZE * 0.42, SIZE * 0.32
    body = [
        [c - rx, c],
        [c - rx / 2, c - ry],
        [c + rx / 2, c - ry],
        [c + rx, c],
        [c + rx / 2, c + ry],
        [c - rx / 2, c + ry],
    ]
    samples = []
    for sample in manifest["samples"]:
        contours = [
            {"id": f"{i['sop_uid']}-body", "revision": 1, "label": "Organ", "sop_uid": i["sop_uid"], "frame": 0}
            | {"geometry": {"points": body}, "attributes": {}, "reader": "reader1"}
            for i in sample["instances"]
        ]
        samples.append({**sample, "annotations": sample["annotations"] + contours})
    manifest["samples"] = samples
    return ExportInput.from_manifest(manifest, version_id=data.version_id, path_of=data.path_of)


def copy_baseline(data: ExportInput, target: Path) -> float:
    target.mkdir()
    start = time.perf_counter()
    for sample in data.samples:
        for n, instance in enumerate(sample.instances):
            shutil.copyfile(data.path_of(instance.sop_uid), target / f"{sample.key}-{n:04d}.dcm")
    return time.perf_counter() - start


def export_once(data: ExportInput, fmt: str, work: Path) -> tuple[float, int]:
    work.mkdir()
    start = time.perf_counter()
    build_archive(
        data,
        fmt,
        manifest_bytes=canonical_json(data.manifest),
        work=work,
        out=work / "export.zip",
        progress=lambda done, total: None,
    )
    return time.perf_counter() - start, (work / "export.zip").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--slices", type=int, default=50, help="slices per series")
    parser.add_argument("--formats", default="nifti,nnunet,coco,yolo,dicomseg,dicom")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # highdicom logs every module it copies
    formats = [f for f in args.formats.split(",") if f]
    unknown = set(formats) - set(FORMATS)
    if unknown:
        parser.error(f"unknown format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="export-bench-") as scratch:
        work = Path(scratch)
        (work / "sources").mkdir()
        data = annotated_version(work / "sources", args.patients, args.slices)
        slices = sum(len(s.instances) for s in data.samples)
        annotated = sum(len({a.sop_uid for a in s.annotations if a.sop_uid}) for s in data.samples)
        megabytes = sum(i.size for s in data.samples for i in s.instances) / 1e6
        print(
            f"version: {len(data.samples)} series, {slices} slices {SIZE}x{SIZE} ({annotated} annotated), "
            f"{megabytes:.0f} MB of DICOM"
        )
        base_s = copy_baseline(data, work / "copy")
        rate = f"{slices / base_s:8.1f} slices/s  {megabytes / base_s:7.1f} MB/s"
        print(f"baseline shutil.copyfile: {base_s:7.2f} s  {rate}")
        for fmt in formats:
            seconds, size = export_once(data, fmt, work / fmt)
            print(
                f"{fmt:<9} {seconds:7.2f} s  {slices / seconds:8.1f} slices/s  {megabytes / seconds:7.1f} MB/s  "
                f"archive {size / 1e6:7.1f} MB  ratio to copy {base_s / seconds:.3f}"
            )
            shutil.rmtree(work / fmt)


if __name__ == "__main__":
    main()
