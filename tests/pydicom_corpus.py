"""pydicom's and pydicom-data's test files as a corpus for ``manage.py deidentify``.

Shared by ``tests/test_pydicom_corpus.py`` and ``bench/pydicom_corpus.py``. The leak check is
independent of the verifier: it reads the *inputs* with pydicom to list their names, IDs,
dates, institutions and UIDs, and searches the *raw bytes* of each output file (inflated when
deflated, pixel data cut out) for them, with boundaries so that "123" does not match "41234".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom import Dataset
from pydicom.data import get_testdata_files
from pydicom.multival import MultiValue
from pydicom.uid import UID_dictionary

from anonymizer.deid import DeidOptions

# pydicom builds its DICOMDIR fixtures from images whose pixel data it removed: such an
# image is not one a hospital would send, and it is rightly rejected ("no pixel data").
DICOMDIR_FIXTURES = "dicomdirtests"
ID_KEYWORDS = frozenset(
    {
        "PatientID",
        "OtherPatientIDs",
        "AccessionNumber",
        "StudyID",
        "MedicalRecordLocator",
        "PatientAddress",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "RequestedProcedureID",
        "ScheduledProcedureStepID",
        "PerformedProcedureStepID",
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
        "AdmissionID",
        "DeviceSerialNumber",
    }
)
# Values the profile keeps that are vocabulary, not identity: an input's name or ID equal to a
# word of them (a patient "Test" beside coding scheme "TEST", an institution "Here" beside the
# manufacturer "Manufacturer name here") cannot be told apart from them in the output.
VOCABULARY_KEYWORDS = frozenset(
    {"CodeValue", "CodingSchemeDesignator", "CodeMeaning", "Manufacturer", "ManufacturerModelName"}
)
MIN_NAME, MIN_ID = 3, 3


@dataclass(frozen=True)
class Corpus:
    files: dict[str, Path]  # name in IN_DIR -> source file
    sop: dict[str, str]  # name in IN_DIR -> SOPInstanceUID (readable inputs only)
    counted: frozenset[str]  # SOP instances the 90 % is measured on


@dataclass
class Identifiers:
    names: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)


def source_files() -> list[Path]:
    """Every regular file of pydicom's test data and of the pydicom-data package."""
    found = {Path(f) for f in get_testdata_files()}
    try:
        import data_store  # the pydicom-data package

        found.update((Path(data_store.__file__).parent / "data").glob("*"))
    except ImportError:
        pass
    return sorted(p for p in found if p.is_file())


def _read(path: Path, **kwargs: object) -> Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, **kwargs)  # type: ignore[arg-type]
    except Exception:
        return None


def _sop_instance_uid(path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _read(path, stop_before_pixels=True)
        try:
            return str(ds.get("SOPInstanceUID", "") or "").strip() if ds is not None else ""
        except Exception:
            return ""


def gather(in_dir: Path) -> Corpus:
    """Copy every test file into ``in_dir`` (numbered names: several share a base name)."""
    in_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    sop: dict[str, str] = {}
    counted: set[str] = set()
    for number, source in enumerate(source_files()):
        name = f"{number:03d}_{source.name}"
        shutil.copyfile(source, in_dir / name)
        files[name] = source
        uid = _sop_instance_uid(source)
        if uid:
            sop[name] = uid
            if DICOMDIR_FIXTURES not in source.parts:
                counted.add(uid)
    return Corpus(files, sop, frozenset(counted))


def _walk(ds: Dataset) -> Iterator[pydicom.DataElement]:
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from _walk(item)


def _values(elem: pydicom.DataElement) -> list[str]:
    value = elem.value
    if value is None or isinstance(value, bytes | bytearray):
        return []
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def identifiers(path: Path) -> Identifiers:
    """Names (each PN component), IDs, institutions, dates and non-standard UIDs of one input."""
    found = Identifiers()
    ds = _read(path, force=True)
    if ds is None:
        return found
    elements: list[pydicom.DataElement] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            elements.extend(_walk(ds))
        except Exception:  # a malformed input: what parsed before the fault still counts
            pass
    meta = getattr(ds, "file_meta", None)
    vocabulary: set[str] = set()
    for elem in elements + (list(meta) if meta is not None else []):
        if int(elem.tag) == 0x00020012:  # Implementation Class UID names software, not a patient
            continue
        try:
            values = _values(elem)
        except Exception:
            continue
        for text in values:
            if elem.VR == "CS" or elem.keyword in VOCABULARY_KEYWORDS:
                vocabulary.update(re.split(r"[^A-Z0-9_]+", text.upper()))
            if elem.VR == "PN":
                found.names.update(p.strip() for p in re.split(r"[\^=]", text) if len(p.strip()) >= MIN_NAME)
            elif elem.keyword in ID_KEYWORDS and len(text) >= MIN_ID:
                found.ids.add(text)
            elif elem.VR == "UI" and "." in text and len(text) >= 8 and text not in UID_dictionary:
                found.uids.add(text)
            elif elem.VR == "DA" and re.fullmatch(r"\d{8}", text):
                found.dates.add(text)
    found.names = {v for v in found.names if v.upper() not in vocabulary}
    found.ids = {v for v in found.ids if v.upper() not in vocabulary}
    return found


def output_bytes(path: Path) -> bytes:
    """The output file as its bytes on the wire, body inflated if deflated, pixel data cut out."""
    raw = path.read_bytes()
    ds = pydicom.dcmread(path)
    if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99":
        start = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
        raw = raw[:start] + zlib.decompress(raw[start:], -zlib.MAX_WBITS)
    pixels = ds.get("PixelData")
    if pixels:
        raw = raw.replace(pixels, b"")
    return raw


def _present(value: str, haystack: bytes, boundary: bytes) -> bool:
    pattern = rb"(?<![" + boundary + rb"])" + re.escape(value.upper().encode("latin-1", "replace"))
    return re.search(pattern + rb"(?![" + boundary + rb"])", haystack) is not None


def _engine_constants() -> list[bytes]:
    """Text the engine writes from constants (method names, the ANON^ name prefix): words such
    as "Patient" in them say nothing about a patient whose name happens to be such a word."""
    options = DeidOptions.research_default()
    texts = [*options.method_text(), *(meaning for _code, meaning in options.method_codes()), "ANON^"]
    return sorted((t.upper().encode() for t in texts), key=len, reverse=True)


def leaks(output: Path, own: Identifiers, everyone: Identifiers) -> list[str]:
    """Kinds of input values found in ``output`` (never the values): the names, IDs, dates and
    institutions of its own input, the UIDs of any input. (Another input's name or ID may be an
    ordinary word or a manufacturer kept here; a UID is never ambiguous.)"""
    haystack = output_bytes(output).upper()
    for constant in _engine_constants():
        haystack = haystack.replace(constant, b"\x00")
    found = []
    for kind, values, boundary in (
        ("name", own.names, rb"A-Z0-9_"),
        ("id", own.ids, rb"A-Z0-9_"),
        ("uid", everyone.uids, rb"0-9."),
        ("date", own.dates, rb"0-9"),
    ):
        found.extend(kind for value in values if _present(value, haystack, boundary))
    return found


@dataclass(frozen=True)
class Figures:
    files: int
    out: int
    duplicate: int
    rejected: int
    quarantined: int
    leaks: int
    instances: int  # distinct SOP instances counted
    instances_out: int
    not_out: tuple[tuple[str, str, str, str], ...]  # (file, status, code, message)
    leak_files: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def share_out(self) -> float:
        return self.instances_out / self.instances if self.instances else 0.0

    def summary(self) -> str:
        return (
            f"pydicom corpus: {self.files} files, {self.out} out, {self.duplicate} duplicates, "
            f"{self.rejected} rejected, {self.quarantined} quarantined, {self.leaks} leaks; "
            f"{self.instances_out}/{self.instances} distinct SOP instances out ({self.share_out:.0%})"
        )


def evaluate(corpus: Corpus, in_dir: Path, out_dir: Path, report_path: Path) -> Figures:
    """Read the command's report and outputs; count outcomes and search outputs for leaks."""
    report = json.loads(report_path.read_text())
    names = sorted(p.relative_to(in_dir).as_posix() for p in in_dir.rglob("*") if p.is_file())
    per_input = {name: identifiers(in_dir / name) for name in names}
    everyone = Identifiers()
    for found in per_input.values():
        everyone.names |= found.names
        everyone.ids |= found.ids
        everyone.uids |= found.uids
    out_sops: set[str] = set()
    not_out, leak_files = [], []
    for entry in report["files"]:
        name = names[entry["index"]]
        if entry["status"] in ("ok", "duplicate"):
            out_sops.add(corpus.sop.get(name, ""))
            if entry["status"] == "ok":
                kinds = leaks(out_dir / entry["output"], per_input[name], everyone)
                if kinds:
                    leak_files.append((name, tuple(sorted(set(kinds)))))
        else:
            not_out.append((name, entry["status"], entry["code"], entry["message"]))
    counts = report["counts"]
    return Figures(
        files=counts["total"],
        out=counts["ok"],
        duplicate=counts["duplicate"],
        rejected=counts["rejected"],
        quarantined=counts["quarantined"],
        leaks=len(leak_files),
        instances=len(corpus.counted),
        instances_out=len(corpus.counted & out_sops),
        not_out=tuple(not_out),
        leak_files=tuple(leak_files),
    )


def write_fixed_key(path: Path) -> Path:
    """A key file with a fixed test secret: pseudonyms, and so the figures, repeat run to run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("00" * 16 + "c0dec0dec0dec0dec0dec0dec0dec0de\n")
    return path


def deidentify_args(in_dir: Path, out_dir: Path, report: Path, key_file: Path) -> list[str]:
    """Arguments of ``manage.py deidentify`` for the corpus run."""
    workers = str(max(1, min(4, os.cpu_count() or 1)))
    return [str(in_dir), str(out_dir), "--report", str(report), "--no-progress", "--key-file", str(key_file)] + [
        "--workers",
        workers,
    ]
