"""The README's pydicom corpus figures: ``manage.py deidentify`` over every pydicom test file.

Copies every file of pydicom's test data and of pydicom-data into a temporary folder, runs
the offline command on it (a subprocess, as a user would), then prints files out, rejected,
quarantined and leaks (outputs holding a name, ID, date, institution or UID of an input,
searched in the raw output bytes), the share of distinct SOP instances that came out, and
the reason given for every file that did not.

    .venv/bin/python bench/pydicom_corpus.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pydicom_corpus import deidentify_args, evaluate, gather, write_fixed_key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it (default: a temp folder)")
    parser.add_argument("--quiet", action="store_true", help="print the summary line only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        in_dir, out_dir, report = work / "in", work / "out", work / "report.json"
        corpus = gather(in_dir)
        env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DEID_SECRET"}
        command = [sys.executable, str(ROOT / "manage.py"), "deidentify"]
        subprocess.run(  # noqa: S603
            command + deidentify_args(in_dir, out_dir, report, write_fixed_key(work / "k.key")),
            check=True,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        figures = evaluate(corpus, in_dir, out_dir, report)
    print(figures.summary())
    print(
        f"| pydicom corpus | {figures.out} out | {figures.rejected} rejected | {figures.quarantined} quarantined "
        f"| {figures.leaks} leaks | {figures.instances_out}/{figures.instances} instances |"
    )
    if not args.quiet:
        for name, status, code, message in figures.not_out:
            print(f"  {status:11} {code:20} {name}: {message}")
        for name, kinds in figures.leak_files:
            print(f"  LEAK {name}: {', '.join(kinds)}")


if __name__ == "__main__":
    main()
