"""Offline, multi-process de-identification of a folder tree (``manage.py deidentify``).

No Django here: worker processes import only the de-identification core. Guarantees:

- OUT_DIR receives de-identified ``.dcm`` files only, named from pseudonyms
  (``<patient>/<study uid>/<series uid>/<sop uid>.dcm``), never from input names;
- an output file is created once (atomically, with ``os.link``): a second input with the
  same output SOP Instance UID, in this run or an earlier one, is counted as a duplicate;
- every input that fails is copied to the quarantine folder as ``<index>.bin`` with
  ``<index>.json`` (status, reason code, message); the quarantine and the report are
  refused inside OUT_DIR, and neither OUT_DIR nor the quarantine may overlap IN_DIR;
- the JSON report names inputs by index (position in the sorted walk) and sha256 only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anonymizer.deid import DeidOptions, PseudonymKeys
from anonymizer.deid.options import PROFILE_EDITION
from anonymizer.deid.pixels import default_text_detector
from anonymizer.processing import OK, REJECTED, Outcome, process_file, recipe_sha256

SECRET_ENV = "WORKBENCH_DEID_SECRET"  # noqa: S105  # the variable's name, not a secret
DEFAULT_KEY_FILE = Path("~/.workbench/deid-secret.key")
DUPLICATE = "duplicate"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9.]{1,64}$")


class OfflineError(Exception):
    """A problem with the command's arguments (paths, key); the run did not start."""


@dataclass(frozen=True)
class Paths:
    in_dir: Path
    out_dir: Path
    quarantine_dir: Path
    report: Path


@dataclass(frozen=True)
class FileResult:
    """What happened to one input: no input name and no value read from the input."""

    index: int
    sha256: str
    status: str  # ok, duplicate, rejected, quarantined
    code: str = ""
    message: str = ""
    output: str = ""
    modality: str = ""
    pixel_cleaned: bool = False
    text_regions: int = 0
    verifier_leaks: int = 0


@dataclass(frozen=True)
class RunSummary:
    counts: dict[str, int]
    seconds: float
    report: dict[str, Any] = field(repr=False)


# --- paths and keys -----------------------------------------------------------------------


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def resolve_paths(in_dir: Path, out_dir: Path, quarantine_dir: Path | None, report: Path | None) -> Paths:
    """Absolute paths with defaults beside OUT_DIR; raises OfflineError on unsafe overlaps."""
    in_dir, out_dir = in_dir.expanduser().resolve(), out_dir.expanduser().resolve()
    quarantine = (quarantine_dir or out_dir.with_name(out_dir.name + "-quarantine")).expanduser().resolve()
    report_path = (report or out_dir.with_name(out_dir.name + "-report.json")).expanduser().resolve()
    if not in_dir.is_dir():
        raise OfflineError("IN_DIR is not a directory.")
    if _inside(out_dir, in_dir) or _inside(in_dir, out_dir):
        raise OfflineError("OUT_DIR and IN_DIR must not contain each other.")
    if _inside(quarantine, out_dir):
        raise OfflineError("The quarantine folder must not be inside OUT_DIR (OUT_DIR holds de-identified files only).")
    if _inside(quarantine, in_dir) or _inside(out_dir, quarantine):
        raise OfflineError("The quarantine folder must be outside IN_DIR and must not contain OUT_DIR.")
    if _inside(report_path, out_dir) or _inside(report_path, in_dir):
        raise OfflineError("The report must be written outside OUT_DIR and IN_DIR.")
    return Paths(in_dir, out_dir, quarantine, report_path)


def load_secret(key_file: Path | None = None) -> tuple[bytes, str]:
    """The pseudonym secret and where it came from: env WORKBENCH_DEID_SECRET (hex) or a key file.

    A missing key file is created (32 random bytes, hex, mode 0600) so that later runs with
    the same file give the same pseudonyms.
    """
    value = os.environ.get(SECRET_ENV, "").strip()
    if value:
        try:
            return bytes.fromhex(value), f"environment variable {SECRET_ENV}"
        except ValueError:
            raise OfflineError(f"{SECRET_ENV} must be hexadecimal.") from None
    path = (key_file or DEFAULT_KEY_FILE).expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    try:
        return bytes.fromhex(path.read_text().strip()), f"key file {path}"
    except ValueError:
        raise OfflineError(f"The key file {path} does not hold a hexadecimal secret.") from None


def key_id(secret: bytes) -> str:
    """A short fingerprint that tells two runs used the same secret, without revealing it."""
    return hashlib.sha256(b"workbench-deid-key-id\x00" + secret).hexdigest()[:16]


def input_files(in_dir: Path) -> list[str]:
    """Relative paths of every regular file under ``in_dir``, sorted (the order gives indexes)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(in_dir):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file():
                found.append(path.relative_to(in_dir).as_posix())
    return sorted(found)


# --- worker side ----------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def worker_init(
    options: dict[str, Any], secret: bytes, use_detector: bool, paths: Paths, ocr_threads: int | None = None
) -> None:
    """Run once per worker process: build options, keys and the text detector.

    pydicom warns about malformed input with the offending value in the message; a worker
    has no Django logging configuration, so those warnings are silenced here.
    """
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    _worker["options"] = DeidOptions.from_dict(options)
    _worker["keys"] = PseudonymKeys(secret=secret)
    _worker["detector"] = default_text_detector(ocr_threads) if use_detector else None
    _worker["paths"] = paths


def _safe(component: str) -> str:
    return component if _SAFE_NAME.match(component) else hashlib.sha256(component.encode()).hexdigest()[:32]


def _output_relpath(outcome: Outcome) -> str:
    assert outcome.result is not None
    pseudo = outcome.result.pseudonyms
    parts = [pseudo.patient_id, pseudo.study_instance_uid, pseudo.series_instance_uid]
    return "/".join(_safe(p) for p in parts) + f"/{_safe(pseudo.sop_instance_uid)}.dcm"


def _write_once(target: Path, data: bytes) -> bool:
    """Create ``target`` with ``data`` unless it exists; atomic. False when it already existed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return False
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _quarantine(paths: Paths, source: Path, result: FileResult) -> None:
    paths.quarantine_dir.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copyfile(source, paths.quarantine_dir / f"{result.index}.bin")
    body = {k: v for k, v in asdict(result).items() if k in ("index", "sha256", "status", "code", "message")}
    (paths.quarantine_dir / f"{result.index}.json").write_text(json.dumps(body, indent=2))


def process_one(task: tuple[int, str]) -> FileResult:
    """De-identify one input file (worker side); never raises for a bad input."""
    index, relpath = task
    paths: Paths = _worker["paths"]
    source = paths.in_dir / relpath
    try:
        raw = source.read_bytes()
    except OSError:
        result = FileResult(index, "", REJECTED, "unreadable_file", "The file could not be read.")
        _quarantine(paths, source, result)
        return result
    digest = hashlib.sha256(raw).hexdigest()
    try:
        outcome = process_file(raw, options=_worker["options"], keys=_worker["keys"], detector=_worker["detector"])
    except Exception as exc:  # process_file promises not to raise; one file never stops the run
        outcome = Outcome("quarantined", "internal_error", f"De-identification stopped ({type(exc).__name__}).")
    if outcome.status != OK or outcome.output is None or outcome.result is None:
        result = FileResult(
            index, digest, outcome.status, outcome.code, outcome.message, verifier_leaks=len(outcome.leaks)
        )
        _quarantine(paths, source, result)
        return result
    relative = _output_relpath(outcome)
    try:
        written = _write_once(paths.out_dir / relative, outcome.output)
    except OSError:
        result = FileResult(index, digest, "quarantined", "write_error", "The output file could not be written.")
        _quarantine(paths, source, result)
        return result
    deid = outcome.result
    return FileResult(
        index,
        digest,
        OK if written else DUPLICATE,
        output=relative,
        modality=str(deid.dataset.get("Modality", "") or "")[:16],
        pixel_cleaned=deid.pixel_cleaned,
        text_regions=len(deid.text_regions),
    )


# --- parent side ----------------------------------------------------------------------------


def _chunksize(files: int, workers: int) -> int:
    # Small chunks: a task costs ~10 ms (CT) to ~300 ms (OCR of an US frame) against ~0.1 ms of
    # pool overhead, and files sorted by name cluster by kind, so big chunks leave one worker
    # with all the OCR at the end.
    return max(1, min(4, files // (workers * 16)))


def _results(tasks: list[tuple[int, str]], init_args: tuple[Any, ...], workers: int) -> Iterator[FileResult]:
    if workers == 1:
        worker_init(*init_args)
        yield from map(process_one, tasks)
        return
    # fork, not spawn: workers start in milliseconds instead of re-importing pydicom and numpy
    # (~0.7 s of a folder run). The parent holds no ONNX session (the detector loads lazily in
    # each worker); the workers never touch the database and leave through os._exit, so an
    # inherited connection is neither used nor closed by them.
    context = multiprocessing.get_context("fork")
    # One onnxruntime thread pool per worker, sized so that the workers share the cores.
    ocr_threads = max(1, (os.cpu_count() or 1) // workers)
    with context.Pool(workers, initializer=worker_init, initargs=(*init_args, ocr_threads)) as pool:
        yield from pool.imap_unordered(process_one, tasks, chunksize=_chunksize(len(tasks), workers))


def run_offline(
    *,
    paths: Paths,
    options: DeidOptions,
    secret: bytes,
    key_source: str,
    workers: int | None = None,
    use_detector: bool = True,
    progress: Callable[[Iterable[FileResult], int], Iterable[FileResult]] | None = None,
) -> RunSummary:
    """De-identify every file under ``paths.in_dir``; write outputs, quarantine and the report."""
    started, clock = datetime.now(UTC), time.perf_counter()
    workers = max(1, workers or os.cpu_count() or 1)
    tasks = list(enumerate(input_files(paths.in_dir)))
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    stream: Iterable[FileResult] = _results(tasks, (options.to_dict(), secret, use_detector, paths), workers)
    if progress is not None:
        stream = progress(stream, len(tasks))
    results = sorted(stream, key=lambda r: r.index)
    seconds = time.perf_counter() - clock
    counts = Counter(r.status for r in results)
    summary = {"total": len(results), **{s: counts.get(s, 0) for s in (OK, DUPLICATE, REJECTED, "quarantined")}}
    report = {
        "tool": "workbench deidentify",
        "started_at": started.isoformat(),
        "seconds": round(seconds, 3),
        "files_per_second": round(len(results) / seconds, 2) if seconds else None,
        "workers": workers,
        "key": {"source": key_source, "key_id": key_id(secret)},
        "profile": list(options.method_text()),
        "profile_edition": PROFILE_EDITION,
        "options": options.to_dict(),
        "recipe_sha256": recipe_sha256(options),
        "output_dir": str(paths.out_dir),
        "quarantine_dir": str(paths.quarantine_dir),
        "counts": summary,
        "pixel_cleaned": sum(r.pixel_cleaned for r in results),
        "verifier_leaks": sum(r.verifier_leaks for r in results),
        "files": [asdict(r) for r in results],
    }
    paths.report.parent.mkdir(parents=True, exist_ok=True)
    paths.report.write_text(json.dumps(report, indent=1))
    return RunSummary(summary, seconds, report)
