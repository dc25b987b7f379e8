"""Independent check of a de-identified instance against its original.

The verifier does not trust the engine: it collects identifying values from the *input*
(everything the profile does not keep verbatim), then searches every string of the *output*,
at every depth and including private tags, file meta and overlay/curve bytes. Leaks report a
path and a kind, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import DataElement, Dataset
from pydicom.multival import MultiValue

from .engine import tag_str
from .options import DeidOptions
from .pixels import TextDetector
from .profile import Profile, effective_action, load_profile
from .render import pixel_leak_frames
from .uids import is_well_known_uid

MIN_TOKEN = 3
# Free text kept by the profile may still hold identifiers, so it never whitelists a token.
_FREE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UC"})
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_BYTES_VRS = frozenset({"OB", "OW", "UN", "OD", "OF", "OL", "OV"})
# Written by the engine from constants (method names and codes): words such as "Patient" or
# "Basic" in them must not match a patient whose name happens to be such a word.
_WRITTEN_BY_ENGINE = ("(0012,0062)", "(0012,0063)", "(0012,0064)", "(0028,0303)")
_IDENTIFYING_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "DA", "DT", "UI", "CS"})


@dataclass(frozen=True)
class Leak:
    """Something identifying found in the output: where, and what kind (never the value)."""

    path: str
    kind: str


def normalise(text: str) -> str:
    return " ".join(text.replace("^", " ").replace("=", " ").lower().split())


def _walk(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, DataElement]]:
    for elem in ds:
        path = prefix + tag_str(int(elem.tag))
        yield path, elem
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from _walk(item, f"{path}[{i}].")


def _strings(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None:
        return []
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    return [str(v) for v in values if str(v).strip()]


def _tokens(elem: DataElement) -> set[str]:
    found: set[str] = set()
    for text in _strings(elem):
        found.add(normalise(text))
        if elem.VR == "PN":
            found.update(normalise(part) for part in text.replace("=", "^").split("^"))
    return {t for t in found if len(t) >= MIN_TOKEN}


def _collect_action(elem: DataElement, profile: Profile, options: DeidOptions) -> str:
    """The action the profile gives an element (unlisted: PN/UI/dates are identifying)."""
    tag = int(elem.tag)
    if (tag >> 16) % 2 == 1:
        return "P"  # private values are checked by the private-tag rule, not as tokens
    if 0x5000 <= tag >> 16 <= 0x60FF:
        return "X"  # curve and overlay groups are removed whole
    rule = profile.rule_for(tag)
    if rule is not None:
        action = effective_action(rule, options, tag)
        if action == "C" and (not rule.is_date_rule or elem.VR not in ("DA", "DT")):
            return "C"  # cleaned text keeps its non-identifying words; times and offsets stay
        return "X" if action == "C" else action  # shifted or year-only dates: originals must go
    if elem.VR == "PN":
        return "X"
    if elem.VR == "UI":
        return "K" if all(is_well_known_uid(s) for s in _strings(elem)) else "U"
    if elem.VR in ("DA", "DT"):
        return "K" if options.date_mode == "full" else "X"
    return "K"


def collect_identifiers(original: Dataset, options: DeidOptions) -> dict[str, str]:
    """Normalised identifying tokens of the input -> keyword they came from."""
    profile = load_profile()
    identifiers: dict[str, str] = {}
    kept: set[str] = set()
    for _path, elem in _walk(original):
        if elem.VR not in _IDENTIFYING_VRS or elem.VR == "SQ":
            continue
        action = _collect_action(elem, profile, options)
        if elem.VR == "TM" or (elem.VR == "CS" and elem.keyword != "PatientID"):
            continue  # times and code strings are not identifying on their own
        if action in ("C", "P"):
            continue
        for token in _tokens(elem):
            if action == "K" and elem.VR not in _FREE_TEXT_VRS:
                kept.add(token)
            else:
                identifiers.setdefault(token, elem.keyword or "unknown")
    # A removed value that also sits inside a value the profile keeps (an institution named
    # like the manufacturer, say) cannot be told apart from the kept one: not a leak.
    return {t: k for t, k in identifiers.items() if not any(t in v for v in kept)}


def _output_texts(elem: DataElement) -> list[str]:
    if elem.VR in _TEXT_VRS:
        return [normalise(s) for s in _strings(elem)]
    if elem.VR in _BYTES_VRS and int(elem.tag) != 0x7FE00010 and isinstance(elem.value, bytes):
        return [normalise(elem.value.decode("latin-1"))]
    return []


def _structure_leaks(path: str, elem: DataElement, options: DeidOptions, allowed_private: set[int]) -> list[Leak]:
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


def verify(
    original: Dataset,
    deidentified: Dataset,
    *,
    options: DeidOptions,
    text_detector: TextDetector | None = None,
) -> list[Leak]:
    """Every leak found in ``deidentified``; an empty list means the checks passed."""
    identifiers = collect_identifiers(original, options)
    allowed = _allowed_private(deidentified, options)
    leaks: list[Leak] = []
    meta = getattr(deidentified, "file_meta", None)
    sources = [("", deidentified)] + ([("meta.", meta)] if meta is not None else [])
    for prefix, ds in sources:
        for path, elem in _walk(ds, prefix):
            leaks.extend(_structure_leaks(path, elem, options, allowed))
            if path.startswith(_WRITTEN_BY_ENGINE):
                continue
            for text in _output_texts(elem):
                leaks.extend(Leak(path, f"identifier from {kw}") for token, kw in identifiers.items() if token in text)
    if str(deidentified.get("PatientIdentityRemoved", "")).upper() != "YES":
        leaks.append(Leak("(0012,0062)", "patient_identity_removed_missing"))
    leaks.extend(_pixel_leaks(deidentified, options, text_detector))
    return leaks
