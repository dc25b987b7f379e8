"""One file through de-identification and verification, with no Django.

Both the Celery pipeline and the offline ``deidentify`` command call
``process_file``. It never raises for bad input: every outcome is a typed
``Outcome`` whose message names tags and reasons, never values from the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom import config as pydicom_config
from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.errors import InvalidDicomError

from anonymizer.deid import (
    DeidError,
    DeidOptions,
    DeidResult,
    PixelCleaningUnavailable,
    PixelDecodeError,
    PseudonymKeys,
    deidentify,
)
from anonymizer.deid.part10 import part10_bytes
from anonymizer.deid.pixels import TextDetector
from anonymizer.deid.stored import RAW_COPY_VRS, converted, stored_elements
from anonymizer.deid.verifier import Leak, verify
from anonymizer.integrity import StreamError, TruncatedError, check_stream, value_problems

OK, REJECTED, QUARANTINED = "ok", "rejected", "quarantined"
_REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_DATA_DIR = Path(__file__).parent / "deid" / "data"

# pydicom's reading validation warns with the offending *value* in the message, and a
# warning reaches stderr and the logs: a PHI leak. Invalid values are handled, not reported.
pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE


@dataclass(frozen=True)
class Outcome:
    status: str
    code: str = ""
    message: str = ""
    result: DeidResult | None = None
    output: bytes | None = None
    leaks: tuple[Leak, ...] = ()


class InputError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def _table_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(_DATA_DIR.glob("*.csv")) + sorted(_DATA_DIR.glob("*.json")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def recipe_sha256(options: DeidOptions) -> str:
    """Checksum of the profile tables and the options: equal recipes, equal checksum."""
    body = json.dumps({"tables": _table_digest(), "options": options.to_dict()}, sort_keys=True, default=list)
    return hashlib.sha256(body.encode()).hexdigest()


def read_dataset(raw: bytes) -> pydicom.Dataset:
    """Parse and sanity-check one Part 10 file; raise InputError with a clear reason.

    A file is accepted only if its encoded data ends cleanly (every length within its
    container, every undefined-length sequence and item delimited) and its values agree with
    their own counts and lengths; see :mod:`anonymizer.integrity`.
    """
    if len(raw) < 132 or raw[128:132] != b"DICM":
        raise InputError(
            "not_dicom",
            "Not a DICOM Part 10 file: the 'DICM' marker after the 128-byte preamble is missing.",
        )
    broken = _stream_problem(raw)
    ds = _parse(raw, broken)
    meta = _checked_meta(ds, broken)
    if meta is not None and meta.get("MediaStorageSOPClassUID") == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        raise InputError("dicomdir", "This is a DICOMDIR (a media index), not an image; send the files it lists.")
    if broken is not None:
        raise broken
    if meta is None or "TransferSyntaxUID" not in meta:
        raise InputError("no_file_meta", "The file has no file meta information (transfer syntax unknown).")
    if not pydicom.uid.UID(str(meta.TransferSyntaxUID)).is_transfer_syntax:
        raise InputError(
            "unsupported_transfer_syntax", "The transfer syntax is not a standard one; it cannot be read safely."
        )
    missing = [kw for kw in _REQUIRED_UIDS if not str(ds.get(kw, "") or "").strip()]
    if missing:
        raise InputError("missing_uid", f"Required attribute(s) missing or empty: {', '.join(missing)}.")
    _check_pixel_length(ds)
    problems = list(value_problems(ds))
    if problems:
        more = f" ({len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError("inconsistent", f"The file contradicts itself: {problems[0]}{more}")
    return ds


def _checked_meta(ds: pydicom.Dataset, broken: InputError | None) -> pydicom.Dataset | None:
    """The file meta, every element converted and of its dictionary VR (UIDs as UIDs...)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return None
    try:
        wrong = [e.keyword or str(e.tag) for e in meta if e.tag in DicomDictionary and e.VR != dictionary_VR(e.tag)]
    except Exception as exc:  # a raw element pydicom cannot convert
        raise broken or InputError(
            "unreadable", f"The file meta information could not be parsed ({type(exc).__name__})."
        ) from None
    if wrong:
        raise broken or InputError(
            "unreadable", f"File meta element(s) with the wrong value representation: {', '.join(wrong)}."
        )
    return meta


def _stream_problem(raw: bytes) -> InputError | None:
    """Why the encoded bytes do not end cleanly, or None (pydicom stops silently at the end)."""
    try:
        check_stream(raw)
    except TruncatedError as exc:
        return InputError("truncated", f"The file does not end cleanly: {exc}")
    except StreamError as exc:
        return InputError("unreadable", f"The DICOM data is malformed: {exc}")
    except (struct.error, IndexError, UnicodeDecodeError):
        return InputError("unreadable", "The DICOM data could not be parsed (corrupt data).")
    return None


def _parse(raw: bytes, broken: InputError | None) -> pydicom.Dataset:
    """The whole data set, every element converted now so that malformed input fails here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(raw))
            _convert(ds)
    except InvalidDicomError:
        raise broken or InputError("not_dicom", "Not a readable DICOM file.") from None
    except (EOFError, OSError):
        raise broken or InputError("truncated", "The file ends before its data set does (truncated upload?).") from None
    except Exception as exc:  # pydicom raises many types on malformed input
        raise broken or InputError(
            "unreadable", f"The DICOM data could not be parsed ({type(exc).__name__})."
        ) from None
    return ds


def _convert(ds: pydicom.Dataset) -> None:
    """Decode every element at every depth, except numbers and binary values left raw.

    Those (RAW_COPY_VRS) are copied undecoded when the profile keeps them, so decoding them
    here would only cost time; the byte walk (``check_stream``) has already checked that
    their lengths fit. Text, names, UIDs, dates and sequences are decoded, so that a value
    pydicom cannot read fails here, as a rejection, and not later in the engine.
    """
    for elem in stored_elements(ds):
        if isinstance(elem, RawDataElement) and elem.VR in RAW_COPY_VRS:
            continue
        done = converted(ds, elem)
        if done.VR == "SQ":
            for item in done.value or []:
                _convert(item)


def _check_pixel_length(ds: pydicom.Dataset) -> None:
    has_pixels = any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    is_image = "Rows" in ds or ds.SOPClassUID.name.endswith("Image Storage")
    if is_image and not has_pixels:
        raise InputError("truncated", "This image has no pixel data (the file is truncated or incomplete).")
    if "PixelData" not in ds:
        return
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        _check_fragments(ds)
        return
    try:
        bits = (
            int(ds.Rows)
            * int(ds.Columns)
            * int(ds.get("SamplesPerPixel", 1) or 1)
            * int(ds.get("NumberOfFrames", 1) or 1)
            * int(ds.BitsAllocated)
        )
        if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
            bits = bits * 2 // 3  # two chroma samples shared by each pair of pixels
        expected = (bits + 7) // 8  # BitsAllocated 1: bit-packed
    except (AttributeError, TypeError, ValueError):
        raise InputError(
            "invalid_value", "Image attributes (Rows, Columns, BitsAllocated) are missing or invalid."
        ) from None
    actual = len(ds.PixelData)
    if actual < expected:
        raise InputError("truncated", f"Pixel data holds {actual} bytes, the image needs {expected} (truncated).")


# --- every failure of the read ends as a reason (helper "ops": item 7 of issue 9) ---------------

# Attributes the catalog keeps verbatim, with the longest value their VR allows (PS3.5 6.2).
_VR_LIMITS = (
    ("Modality", "(0008,0060)", "CS", 16),
    ("SOPClassUID", "(0008,0016)", "UI", 64),
    ("SOPInstanceUID", "(0008,0018)", "UI", 64),
    ("StudyInstanceUID", "(0020,000D)", "UI", 64),
    ("SeriesInstanceUID", "(0020,000E)", "UI", 64),
)


def read_checked(raw: bytes) -> pydicom.Dataset:
    """``read_dataset`` that raises nothing but InputError, plus the value-length checks.

    A corrupt file meta (an unknown VR, a length running past the file) makes pydicom raise,
    sometimes only when the checks after the parse read it; such a file is rejected as
    ``bad_file_meta`` naming the element. Values longer than their VR allows in attributes
    kept verbatim are invalid DICOM, rejected as ``value_too_long`` (tag, VR and lengths only).
    """
    try:
        ds = read_dataset(raw)
        _check_value_lengths(ds)
    except InputError as exc:
        if exc.code in _META_SYMPTOMS:
            _raise_if_meta_corrupt(raw, "")
        raise
    except Exception as exc:
        _raise_if_meta_corrupt(raw, type(exc).__name__)
        raise InputError("unreadable", f"The DICOM data could not be parsed ({type(exc).__name__}).") from None
    return ds


# Reasons a corrupt file meta shows up as: the file meta is then named as the cause.
_META_SYMPTOMS = frozenset({"unreadable", "not_dicom", "missing_uid", "no_file_meta"})
_META_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_META_VRS = _META_LONG_VRS | {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM",
    "UI", "UL", "US",
}  # fmt: skip


def _raise_if_meta_corrupt(raw: bytes, cause: str) -> None:
    tag = corrupt_meta_element(raw)
    if tag:
        raise InputError(
            "bad_file_meta",
            f"The file meta information is corrupt: element {tag} has an invalid VR or length"
            + (f" ({cause})." if cause else "."),
        ) from None


def corrupt_meta_element(raw: bytes) -> str:
    """The tag of the first undecodable group 0002 element ("" when the file meta is sound).

    Scans the file meta as PS3.10 defines it (always Explicit VR Little Endian), without
    pydicom, so that a VR pydicom cannot parse is named instead of crashing the reader.
    """
    pos = 132
    while pos + 8 <= len(raw):
        group, element = struct.unpack_from("<HH", raw, pos)
        if group != 0x0002:
            return ""
        tag = f"({group:04X},{element:04X})"
        vr = raw[pos + 4 : pos + 6].decode("ascii", "replace")
        if vr not in _META_VRS:
            return tag
        if vr in _META_LONG_VRS:
            if pos + 12 > len(raw):
                return tag
            header, length = 12, struct.unpack_from("<I", raw, pos + 8)[0]
        else:
            header, length = 8, struct.unpack_from("<H", raw, pos + 6)[0]
        if length == 0xFFFFFFFF or pos + header + length > len(raw):
            return tag
        pos += header + length
    return ""


def _check_value_lengths(ds: pydicom.Dataset) -> None:
    for keyword, tag, vr, limit in _VR_LIMITS:
        elem = ds.get(keyword)
        value = elem if elem is None else str(elem)
        if value is not None and len(value.strip()) > limit:
            raise InputError(
                "value_too_long",
                f"{keyword} {tag} holds {len(value.strip())} characters; its VR {vr} allows at most {limit} "
                "(invalid DICOM).",
            )


def _check_fragments(ds: pydicom.Dataset) -> None:
    """Encapsulated frames: at least one fragment per frame, one offset per frame if any."""
    frames = int(ds.get("NumberOfFrames", 1) or 1) if str(ds.get("NumberOfFrames", "1")).strip().isdigit() else 1
    try:
        fragments, _ = parse_fragments(ds.PixelData)
        offsets = parse_basic_offsets(ds.PixelData)
    except (ValueError, struct.error):
        raise InputError("truncated", "The encapsulated pixel data is malformed (truncated or corrupt).") from None
    if fragments < frames:
        raise InputError("truncated", f"Pixel data holds {fragments} fragment(s) for {frames} frames (truncated).")
    if offsets and len(offsets) != frames:
        raise InputError(
            "inconsistent", f"The pixel data offset table lists {len(offsets)} frames, NumberOfFrames says {frames}."
        )


def serialize(ds: pydicom.Dataset) -> bytes:
    """The Part 10 bytes pydicom's ``save_as`` would write (:mod:`anonymizer.deid.part10`, faster)."""
    return part10_bytes(ds)


def process_file(raw: bytes, *, options: DeidOptions, keys: PseudonymKeys, detector: TextDetector | None) -> Outcome:
    """De-identify and verify one file. Never raises for bad input."""
    try:
        original = read_checked(raw)
    except InputError as exc:
        return Outcome(REJECTED, exc.code, exc.message)
    try:
        result = deidentify(original, options=options, keys=keys, text_detector=detector)
    except PixelCleaningUnavailable as exc:
        return Outcome(QUARANTINED, "no_text_detector", f"{exc} Install a text detector (see the README).")
    except PixelDecodeError as exc:
        return Outcome(QUARANTINED, "pixel_decode_error", str(exc))
    except DeidError as exc:
        return Outcome(QUARANTINED, "deid_error", str(exc))
    except Exception as exc:  # a value pydicom could not convert, an odd VR...
        return Outcome(QUARANTINED, "deid_error", f"De-identification failed on this file ({type(exc).__name__}).")
    # Cleaned pixels are checked again with the detector: a region it missed is a leak.
    recheck = detector if result.pixel_cleaned else None
    try:
        leaks = tuple(
            verify(
                original,
                result.dataset,
                options=options,
                text_detector=recheck,
                identifiers=result.identifiers,
                date_shift_days=result.pseudonyms.date_shift_days,
            )
        )
    except Exception as exc:  # a check that cannot run is not a pass
        return Outcome(QUARANTINED, "verify_error", f"Verification could not run on this file ({type(exc).__name__}).")
    if leaks:
        paths = ", ".join(sorted({leak.path for leak in leaks})[:10])
        return Outcome(
            QUARANTINED,
            "verifier_leak",
            f"Verification found identifying content left in {len(leaks)} place(s): {paths}.",
            result=result,
            leaks=leaks,
        )
    try:
        output = serialize(result.dataset)
    except Exception as exc:
        return Outcome(
            QUARANTINED, "write_error", f"The de-identified file could not be written ({type(exc).__name__})."
        )
    return Outcome(OK, result=result, output=output)
