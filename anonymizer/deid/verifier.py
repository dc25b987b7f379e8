"""Independent check of a de-identified instance against its original.

The verifier does not trust the engine. Every string of the *output*, at every depth and
including private tags, file meta and overlay/curve bytes, is searched for the identifying
values of the *input* (:mod:`anonymizer.deid.identifiers`, whole-token matches only; numeric
VRs hold measurements and are not searched). Every attribute the profile cleans is checked
again against the vocabulary rule (:mod:`anonymizer.deid.freetext`): a token the rule does
not allow there is a leak, whether or not it is a known value. Structure checks (private
tags, overlay and curve groups, Patient Identity Removed) and the pixel check stand beside
them. Leaks report a path and a kind, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import DataElement, Dataset
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue

from .engine import UNFORMATTED_TEXT, tag_str
from .freetext import clean_free_text, vocabulary
from .identifiers import FileIdentifiers, collect, profile_action
from .options import DeidOptions
from .pixels import TextDetector
from .profile import Profile, load_profile
from .render import pixel_leak_frames
from .stored import RAW_COPY_VRS, converted, stored_elements
from .values import shift_da, shift_dt

# Numeric VRs (DS, IS and the binary ones) hold measurements: never searched for identifiers.
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
_CLEANED_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT", "CS"})
_BYTES_VRS = frozenset({"OB", "OW", "UN", "OD", "OF", "OL", "OV"})
# Written by the engine from constants (method names and codes): words such as "Patient" or
# "Basic" in them must not match a patient whose name happens to be such a word.
_WRITTEN_BY_ENGINE = ("(0012,0062)", "(0012,0063)", "(0012,0064)", "(0028,0303)")
_NO_IDENTIFIERS = FileIdentifiers()
# Pseudonyms the engine writes ("ANON^P046F5AA1C9ADC318") split into letter and digit runs
# that may equal a short name ("ED"): there only whole words are compared, which still finds
# an original ID or name copied through.
_PSEUDONYM_PATHS = frozenset({"(0010,0010)", "(0010,0020)", "(0008,0050)"})
_GRAPHIC_ANNOTATIONS = "(0070,0001)"


@dataclass(frozen=True)
class Leak:
    """Something identifying found in the output: where, and what kind (never the value)."""

    path: str
    kind: str


Element = DataElement | RawDataElement


def _walk(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, Element]]:
    for raw in stored_elements(ds):
        # Binary values the engine copied undecoded stay undecoded: converting them here would
        # convert them in the output dataset too, which is then re-encoded on write. Their
        # bytes are searched as they are (_output_texts).
        elem = raw if isinstance(raw, RawDataElement) and raw.VR in RAW_COPY_VRS else converted(ds, raw)
        path = prefix + tag_str(int(elem.tag))
        yield path, elem
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from _walk(item, f"{path}[{i}].")


def _strings(elem: Element) -> list[str]:
    value = elem.value
    if value is None:
        return []
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    return [str(v) for v in values if str(v).strip()]


def collect_identifiers(original: Dataset, options: DeidOptions) -> FileIdentifiers:
    """The identifying values of the input, as the engine's cleaner sees them."""
    return collect(original, options, vocabulary(options.extra_vocabulary))


def _output_texts(elem: Element) -> list[str]:
    if elem.VR in _TEXT_VRS and not isinstance(elem, RawDataElement):  # text is never left raw
        return _strings(elem)
    if elem.VR in _BYTES_VRS and int(elem.tag) != 0x7FE00010 and isinstance(elem.value, bytes):
        return [elem.value.decode("latin-1")]
    return []


def _is_cleaned(path: str, elem: Element, profile: Profile, options: DeidOptions) -> bool:
    """Whether the engine applies the vocabulary rule to this attribute."""
    if isinstance(elem, RawDataElement) or elem.VR not in _CLEANED_VRS:
        return False
    if int(elem.tag) == UNFORMATTED_TEXT:  # cleaned inside graphic annotations only
        return options.clean_graphics and _GRAPHIC_ANNOTATIONS in path
    return profile_action(elem, profile, options) == "C"


def _text_leaks(
    path: str, elem: Element, identifiers: FileIdentifiers, words: frozenset[str], cleaned: bool
) -> list[Leak]:
    leaks: list[Leak] = []
    for text in _output_texts(elem):
        whole_words = path in _PSEUDONYM_PATHS
        kinds = sorted(set(identifiers.matches(text, verifier=True, whole_words=whole_words)))
        leaks.extend(Leak(path, f"identifier from {kind}") for kind in kinds)
        if cleaned and clean_free_text(text, _NO_IDENTIFIERS, words).removed:
            leaks.append(Leak(path, "free text outside the vocabulary"))
    return leaks


def _structure_leaks(path: str, elem: Element, options: DeidOptions, allowed_private: set[int]) -> list[Leak]:
    tag = int(elem.tag)
    group = tag >> 16
    if group % 2 == 1 and tag not in allowed_private:
        return [Leak(path, "private_tag")]
    if 0x6000 <= group <= 0x60FF and group % 2 == 0:
        return [Leak(path, "overlay_group")]
    if 0x5000 <= group <= 0x50FF and group % 2 == 0:
        return [Leak(path, "curve_group")]
    return []


def _allowed_private(ds: Dataset, options: DeidOptions) -> set[int]:
    if not options.retain_safe_private:
        return set()
    allowed: set[int] = set()
    for elem in ds:
        tag = int(elem.tag)
        group, element = tag >> 16, tag & 0xFFFF
        if group % 2 == 1 and element >= 0x1000:
            creator = ds.get((group << 16) | (element >> 8))
            name = str(creator.value).strip() if creator is not None else ""
            if f"{name}|{group:04X}|{element & 0xFF:02X}" in options.safe_private_allowlist:
                allowed.update({tag, (group << 16) | (element >> 8)})
    return allowed


def _pixel_leaks(deidentified: Dataset, options: DeidOptions, detector: TextDetector | None) -> list[Leak]:
    # A detector is passed when the input was at risk and went through the cleaner; the output
    # cannot tell that itself (its Burned In Annotation now says NO), so it is checked whenever
    # a detector is given, including where the cleaner found nothing.
    if detector is None or "PixelData" not in deidentified:
        return []
    # Rendered and detected again independently, at another scale and confirmed by reading.
    return [Leak("(7FE0,0010)", "burned_in_text")] if pixel_leak_frames(deidentified, detector) else []


def _shifted_dates(original: Dataset, options: DeidOptions, days: int | None) -> dict[str, list[str]]:
    """Path -> the input's DA/DT values there, shifted by ``days`` (empty unless shifting)."""
    if days is None or days == 0 or options.date_mode != "shift":
        return {}
    found: dict[str, list[str]] = {}
    for path, elem in _walk(original):
        if elem.VR in ("DA", "DT"):
            shift = shift_da if elem.VR == "DA" else shift_dt
            values = [shift(v.strip(), days) for v in _strings(elem)]
            if values and None not in values:
                found[path] = [v for v in values if v is not None]
    return found


def verify(
    original: Dataset,
    deidentified: Dataset,
    *,
    options: DeidOptions,
    text_detector: TextDetector | None = None,
    identifiers: FileIdentifiers | None = None,
    date_shift_days: int | None = None,
) -> list[Leak]:
    """Every leak found in ``deidentified``; an empty list means the checks passed.

    ``identifiers`` may be the cleaner's own :func:`collect` of ``original`` (the one shared
    definition, computed once); without it they are collected here. ``date_shift_days`` is
    the patient's shift under the modified-dates option: a date that is exactly the shift of
    the input's date at the same place is not a leak, even when the shifted value happens to
    equal another date of the input (a birth date 3,000 days before the study, say).
    """
    if identifiers is None:
        identifiers = collect_identifiers(original, options)
    shifted = _shifted_dates(original, options, date_shift_days)
    words = vocabulary(options.extra_vocabulary)
    profile = load_profile()
    allowed = _allowed_private(deidentified, options)
    leaks: list[Leak] = []
    meta = getattr(deidentified, "file_meta", None)
    sources = [("", deidentified)] + ([("meta.", meta)] if meta is not None else [])
    for prefix, ds in sources:
        for path, elem in _walk(ds, prefix):
            leaks.extend(_structure_leaks(path, elem, options, allowed))
            if path.startswith(_WRITTEN_BY_ENGINE):
                continue
            if prefix == "" and path in shifted and _strings(elem) == shifted[path]:
                continue  # the input's own date at this place, moved by the patient's shift
            cleaned = prefix == "" and _is_cleaned(path, elem, profile, options)
            leaks.extend(_text_leaks(path, elem, identifiers, words, cleaned))
    if str(deidentified.get("PatientIdentityRemoved", "")).upper() != "YES":
        leaks.append(Leak("(0012,0062)", "patient_identity_removed_missing"))
    leaks.extend(_pixel_leaks(deidentified, options, text_detector))
    return leaks
