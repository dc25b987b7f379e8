"""Throughput of ``manage.py deidentify`` against plain pydicom read+write, in the same run.

Builds a synthetic corpus (90 % CT 512x512 int16, 10 % US 480x640 RGB with burned-in text,
several patients), de-identifies it with the offline command on all cores (a subprocess,
so start-up, worker spawn and model loading count), then reads and writes the same files
with pydicom in one process as the baseline. Prints files/s for both, their ratio, the
verifier leak count from the report (must be 0) and how many US files had pixels cleaned.

    .venv/bin/python bench/deid_throughput.py [--files 400] [--workers N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom import dcmread  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from anonymizer.deid.tests.factory import make_ct, make_us  # noqa: E402

PATIENTS = 8


def build_corpus(folder: Path, files: int) -> tuple[int, int]:
    """Write ``files`` synthetic instances (10 % US); returns (ct, us) counts."""
    us_count = max(1, files // 10)
    ct_count = files - us_count
    studies = [(f"BENCH^PATIENT{p}", f"BENCHPID{p:04d}", generate_uid(), generate_uid()) for p in range(PATIENTS)]
    for i in range(ct_count):
        name, pid, study, series = studies[i % PATIENTS]
        ds = make_ct(patient_name=name, patient_id=pid, study_uid=study)
        ds.SeriesInstanceUID, ds.InstanceNumber = series, i // PATIENTS + 1
        ds.save_as(folder / f"ct_{pid}_{i:05d}.dcm", enforce_file_format=True)
    for i in range(us_count):
        name, pid, _, _ = studies[i % PATIENTS]
        make_us(patient_name=name, patient_id=pid).save_as(folder / f"us_{pid}_{i:05d}.dcm", enforce_file_format=True)
    return ct_count, us_count


def run_deidentify(in_dir: Path, out_dir: Path, key_file: Path, workers: int) -> float:
    """Wall-clock seconds of ``manage.py deidentify`` as a subprocess."""
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "deidentify",
        str(in_dir),
        str(out_dir),
        "--no-progress",
        "--key-file",
        str(key_file),
    ]
    if workers:
        command += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DEID_SECRET"}
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_baseline(in_dir: Path, out_dir: Path) -> float:
    """Seconds to read and write every file with plain pydicom in this one process."""
    out_dir.mkdir()
    start = time.perf_counter()
    for index, path in enumerate(sorted(in_dir.iterdir())):
        dcmread(path).save_as(out_dir / f"{index}.dcm", enforce_file_format=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--workers", type=int, default=0, help="default: all cores")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and outputs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="deid-bench-"))
    in_dir = work / "in"
    in_dir.mkdir()
    ct, us = build_corpus(in_dir, args.files)
    megabytes = sum(p.stat().st_size for p in in_dir.iterdir()) / 1e6
    print(
        f"corpus: {ct + us} files ({ct} CT 512x512 int16, {us} US 480x640 RGB), {megabytes:.0f} MB, "
        f"{PATIENTS} patients; cores: {os.cpu_count()}"
    )

    deid_s = run_deidentify(in_dir, work / "out", work / "bench.key", args.workers)
    base_s = run_baseline(in_dir, work / "baseline")
    report = json.loads((work / "out-report.json").read_text())
    files = ct + us
    deid_rate, base_rate = files / deid_s, files / base_s
    us_cleaned = sum(1 for f in report["files"] if f["modality"] == "US" and f["pixel_cleaned"])
    print(
        f"deidentify ({report['workers']} workers): {deid_s:6.1f} s  {deid_rate:7.1f} files/s "
        f"(inside the pool: {report['files_per_second']} files/s)"
    )
    print(f"baseline pydicom read+write (1 process): {base_s:6.1f} s  {base_rate:7.1f} files/s")
    print(f"ratio deidentify / baseline: {deid_rate / base_rate:.2f}")
    print(f"counts: {report['counts']}")
    print(f"verifier leaks: {report['verifier_leaks']}")
    print(f"US files with pixel cleaning: {us_cleaned} of {us}")
    if args.keep:
        print(f"kept: {work}")
    else:
        import shutil

        shutil.rmtree(work)


if __name__ == "__main__":
    main()
