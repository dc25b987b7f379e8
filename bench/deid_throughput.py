"""Throughput of ``manage.py deidentify`` against plain pydicom read+write, in the same run.

Three synthetic corpora (several patients, PHI planted in headers, sequences, private tags,
overlays; verification on in all three):

1. **CT only**: CT 512x512 int16. Nothing in the pixels must change, so de-identification
   touches headers only. Target: >= 1.0x the baseline, using both cores.
2. **Mixed**: 90 % of the CT above, 10 % US 480x640 RGB with burned-in text. Target >= 0.5x.
3. **Burned-in**: the US files alone, reported as burned-in frames per second.

Each corpus is de-identified with the offline command on all cores (a subprocess, so start-up,
worker spawn and model loading count), then read and written by one plain-pydicom process (also
a subprocess, so its start-up counts too) as the baseline. Prints files/s for both, their
ratio, and the verifier leak count from the report (must be 0).

    .venv/bin/python bench/deid_throughput.py [--files 1000] [--workers N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom.uid import generate_uid  # noqa: E402

from anonymizer.deid.tests.factory import make_ct, make_us  # noqa: E402

PATIENTS = 8


def write_ct(folder: Path, count: int) -> None:
    studies = [(f"BENCH^PATIENT{p}", f"BENCHPID{p:04d}", generate_uid(), generate_uid()) for p in range(PATIENTS)]
    for i in range(count):
        name, pid, study, series = studies[i % PATIENTS]
        ds = make_ct(patient_name=name, patient_id=pid, study_uid=study)
        ds.SeriesInstanceUID, ds.InstanceNumber = series, i // PATIENTS + 1
        ds.save_as(folder / f"ct_{pid}_{i:05d}.dcm", enforce_file_format=True)


def write_us(folder: Path, count: int) -> None:
    for i in range(count):
        name, pid = f"BENCH^PATIENT{i % PATIENTS}", f"BENCHPID{i % PATIENTS:04d}"
        make_us(patient_name=name, patient_id=pid).save_as(folder / f"us_{pid}_{i:05d}.dcm", enforce_file_format=True)


def run_deidentify(in_dir: Path, out_dir: Path, key_file: Path, workers: int) -> tuple[float, dict]:
    """Wall-clock seconds of ``manage.py deidentify`` as a subprocess, and its report."""
    report = out_dir.with_name(out_dir.name + "-report.json")
    command = [sys.executable, str(ROOT / "manage.py"), "deidentify", str(in_dir), str(out_dir)]
    command += ["--no-progress", "--key-file", str(key_file), "--report", str(report)]
    if workers:
        command += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DEID_SECRET"}
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, json.loads(report.read_text())


BASELINE = """
import sys
from pathlib import Path
from pydicom import dcmread
in_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
out_dir.mkdir()
for index, path in enumerate(sorted(in_dir.iterdir())):
    dcmread(path).save_as(out_dir / f"{index}.dcm", enforce_file_format=True)
"""


def run_baseline(in_dir: Path, out_dir: Path) -> float:
    """Wall-clock seconds of one plain-pydicom process reading and writing every file.

    A subprocess like the command it is compared with, so interpreter start-up counts on both
    sides; it does nothing else (no Django, no parse of the values, no checks).
    """
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BASELINE, str(in_dir), str(out_dir)], check=True)
    return time.perf_counter() - start


def measure(name: str, in_dir: Path, work: Path, workers: int) -> dict:
    files = sum(1 for _ in in_dir.iterdir())
    deid_s, report = run_deidentify(in_dir, work / f"{name}-out", work / "bench.key", workers)
    base_s = run_baseline(in_dir, work / f"{name}-baseline")
    deid_rate, base_rate = files / deid_s, files / base_s
    print(
        f"{name:9s} {files:4d} files  deidentify ({report['workers']} workers) {deid_rate:7.1f} files/s  "
        f"baseline (1 process) {base_rate:7.1f} files/s  ratio {deid_rate / base_rate:5.2f}  "
        f"leaks {report['verifier_leaks']}  counts {report['counts']}  pixel cleaned {report['pixel_cleaned']}"
    )
    return {"files": files, "deid_s": deid_s, "base_s": base_s, "ratio": deid_rate / base_rate, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="files in the CT and mixed corpora")
    parser.add_argument("--workers", type=int, default=0, help="default: all cores")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and outputs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="deid-bench-"))
    ct_dir, mixed_dir, us_dir = work / "ct", work / "mixed", work / "us"
    for folder in (ct_dir, mixed_dir, us_dir):
        folder.mkdir()
    us_count = max(1, args.files // 10)
    write_ct(ct_dir, args.files)
    write_us(us_dir, us_count)
    for path in sorted(ct_dir.iterdir())[: args.files - us_count]:
        shutil.copyfile(path, mixed_dir / path.name)
    for path in us_dir.iterdir():
        shutil.copyfile(path, mixed_dir / path.name)
    print(f"cores: {os.cpu_count()}; CT 512x512 int16, US 480x640 RGB with burned-in text; {PATIENTS} patients")

    ct = measure("CT only", ct_dir, work, args.workers)
    mixed = measure("mixed", mixed_dir, work, args.workers)
    us = measure("burned-in", us_dir, work, args.workers)
    frames_per_s = us["files"] / us["deid_s"]
    print()
    print(f"CT only ratio (target >= 1.0): {ct['ratio']:.2f}")
    print(f"mixed ratio (target >= 0.5):   {mixed['ratio']:.2f}")
    cleaned = us["report"]["pixel_cleaned"]
    print(f"burned-in frames per second:   {frames_per_s:.1f} ({cleaned} of {us['files']} cleaned)")
    leaks = sum(m["report"]["verifier_leaks"] for m in (ct, mixed, us))
    print(f"verifier leaks in all runs:    {leaks}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
