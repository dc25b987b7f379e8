"""Where a header-only de-identification spends its time, stage by stage, beside plain pydicom.

One process, in memory (no file I/O, no pool): the bench's synthetic CT (512x512 int16, PHI in
headers, sequences, private tags, overlays) goes through each stage of
``anonymizer.processing.process_file`` separately, and plain pydicom reads and writes the same
bytes in the same loop. Prints milliseconds per file for each stage and each stage's share of
the baseline's read+write, so that the stage worth rewriting shows. ``bench/deid_throughput.py``
gives the end-to-end figures that the README reports; this one says why they are what they are.

    .venv/bin/python bench/deid_stages.py [--files 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom import dcmread  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from anonymizer import processing  # noqa: E402
from anonymizer.deid import DeidOptions, PseudonymKeys  # noqa: E402
from anonymizer.deid.api import deidentify  # noqa: E402
from anonymizer.deid.tests.factory import make_ct  # noqa: E402
from anonymizer.deid.verifier import verify  # noqa: E402
from anonymizer.integrity import check_stream, value_problems  # noqa: E402

BASELINE = ("baseline read", "baseline write")


def corpus(count: int) -> list[bytes]:
    files = []
    for _ in range(count):
        buffer = io.BytesIO()
        make_ct(patient_name="BENCH^PATIENT1", patient_id="BENCHPID0001", study_uid=generate_uid()).save_as(
            buffer, enforce_file_format=True
        )
        files.append(buffer.getvalue())
    return files


def _verify_all(original: Any, cleaned: Any, **kwargs: Any) -> list[Any]:
    return list(verify(original, cleaned, text_detector=None, **kwargs))


def one_round(files: list[bytes], options: DeidOptions, keys: PseudonymKeys) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)

    def timed(stage: str, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        value = work(*args, **kwargs)
        seconds[stage] += time.perf_counter() - start
        return value

    for raw in files:
        plain = timed("baseline read", dcmread, io.BytesIO(raw))
        timed("baseline write", plain.save_as, io.BytesIO(), enforce_file_format=True)
        timed("byte walk (check_stream)", check_stream, raw)
        ds = timed("parse and convert", processing._parse, raw, None)
        timed("value checks", lambda d: list(value_problems(d)), ds)
        result = timed("deidentify", deidentify, ds, options=options, keys=keys, text_detector=None)
        timed(
            "verify",
            _verify_all,
            ds,
            result.dataset,
            options=options,
            identifiers=result.identifiers,
            date_shift_days=result.pseudonyms.date_shift_days,
        )
        timed("write", processing.serialize, result.dataset)
    return {stage: total / len(files) * 1000 for stage, total in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="the fastest round is reported")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    files = corpus(args.files)
    options, keys = DeidOptions(), PseudonymKeys(secret=b"bench" * 8)
    rounds = [one_round(files, options, keys) for _ in range(args.rounds)]
    best = min(rounds, key=lambda r: sum(r.values()))
    base = sum(best[stage] for stage in BASELINE)
    ours = sum(ms for stage, ms in best.items() if stage not in BASELINE)
    print(f"{args.files} CT files, fastest of {args.rounds} rounds, one process, in memory")
    for stage, ms in best.items():
        print(f"  {stage:26s} {ms:6.2f} ms/file  {ms / base:5.2f}x the baseline's read+write")
    print(f"  {'de-identification, total':26s} {ours:6.2f} ms/file  ratio (baseline / ours) {base / ours:.2f} per core")


if __name__ == "__main__":
    main()
