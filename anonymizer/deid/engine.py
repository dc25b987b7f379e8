"""The attribute walker: applies Table E.1-1 at every depth and builds a new Dataset.

Rules beyond the table (defence in depth, documented in the package README section of
``__init__``): private tags removed unless allow-listed; whole 50xx (curve) and 60xx (overlay)
groups removed whatever the options, because overlay bitmaps can carry burned-in text; unlisted
PN attributes removed; unlisted UIDs that are not well-known DICOM UIDs replaced by keyed
pseudonymous UIDs; unlisted DA/DT/TM attributes treated like the table's date rows.

Free text under action C keeps only tokens known not to identify anyone, minus every
identifying value of the file (:mod:`anonymizer.deid.freetext`, :mod:`.identifiers`).
"""

from __future__ import annotations

import copy
import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydicom import DataElement, Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from .freetext import clean_free_text
from .identifiers import FileIdentifiers
from .keys import PseudonymKeys
from .options import DeidOptions
from .profile import (
    Profile,
    attribute_type,
    date_type_anywhere,
    effective_action,
    needs_attribute_type,
    reduce_basic,
)
from .result import TextRemoval
from .stored import RAW_COPY_VRS, converted, stored_elements
from .uids import is_well_known_uid
from .values import cap_age, dummy_value, shift_da, shift_dt, year_only_da, year_only_dt

PATIENT_AGE = 0x00101010
TEXT_VALUE = 0x0040A160
UNFORMATTED_TEXT = 0x00700006
DATE_VRS = frozenset({"DA", "DT", "TM"})
CODE_ITEM_KEYWORDS = ("CodeValue", "LongCodeValue", "URNCodeValue", "CodingSchemeDesignator")
_PATH_TAG = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)")


def tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _is_repeating_group(group: int) -> bool:
    return 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF


def _values(elem: DataElement) -> list[Any]:
    if elem.value is None or elem.value == "":
        return []
    return list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]


def _kept(elem: DataElement) -> DataElement:
    """A copy of ``elem`` for the output: its value is already converted, so it is not converted again."""
    value = elem.value
    if isinstance(value, MultiValue | list):
        value = copy.copy(value)
    return DataElement(elem.tag, elem.VR, value, already_converted=True)


@functools.cache
def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) or ""


def _rebuild(elem: DataElement, values: list[Any]) -> DataElement:
    value: Any = None if not values else values[0] if len(values) == 1 else values
    return DataElement(elem.tag, elem.VR, value)


def _is_code_sequence(elem: DataElement) -> bool:
    """True for a sequence of coded entries, whose code values could identify someone."""
    return any(kw in item for item in elem.value or [] for kw in CODE_ITEM_KEYWORDS)


def _dummy_code_item() -> Dataset:
    """One coded entry of a private (99-prefixed) scheme that says nothing about anyone."""
    item = Dataset()
    item.CodeValue = "ANONYMIZED"
    item.CodingSchemeDesignator = "99WBDEID"
    item.CodeMeaning = "Anonymized"
    return item


@dataclass
class Walker:
    """Per-instance state of one de-identification (never shared between instances)."""

    options: DeidOptions
    keys: PseudonymKeys
    profile: Profile
    shift_days: int
    identifiers: FileIdentifiers
    vocabulary: frozenset[str]
    counts: Counter[str] = field(default_factory=Counter)
    records: list[tuple[str, str, str]] = field(default_factory=list)
    text_removals: list[TextRemoval] = field(default_factory=list)
    sop_class_uid: str = ""  # picks the IOD whose attribute types resolve the combined codes

    def walk(self, src: Dataset, prefix: str = "", in_sr: bool = False, in_graphics: bool = False) -> Dataset:
        """Return a new Dataset holding the de-identified elements of ``src``.

        The output keeps the source's encoding, so that binary values kept verbatim are
        written as the raw bytes they were read as (pydicom converts them when the output
        transfer syntax differs).
        """
        if not prefix and not self.sop_class_uid:
            self.sop_class_uid = str(src.get("SOPClassUID", "") or "")
        out = Dataset()
        implicit, little = src.original_encoding
        if implicit is not None and little is not None:
            out.set_original_encoding(implicit, little, src.original_character_set)
        for raw in stored_elements(src):
            tag = int(raw.tag)
            path = prefix + tag_str(tag)
            new: DataElement | RawDataElement | None = raw
            if isinstance(raw, RawDataElement) and self._raw_kept(raw, in_sr, in_graphics):
                action = "K"
            else:
                action, new = self._element(converted(src, raw), src, path, in_sr, in_graphics)
            self.counts[action] += 1
            self.records.append((path, _keyword(tag), action))
            if new is not None:
                out[tag] = new
        return out

    def _raw_kept(self, raw: RawDataElement, in_sr: bool, in_graphics: bool) -> bool:
        """True when the profile keeps this undecoded element verbatim and no rule reads it."""
        tag = int(raw.tag)
        if raw.VR not in RAW_COPY_VRS or tag & 0xFFFF == 0 or (tag >> 16) % 2 == 1 or in_sr or in_graphics:
            return False
        if _is_repeating_group(tag >> 16):
            return False
        rule = self.profile.rule_for(tag)
        return rule is None or effective_action(rule, self.options, tag) == "K"

    def _element(
        self, elem: DataElement, src: Dataset, path: str, in_sr: bool, in_graphics: bool
    ) -> tuple[str, DataElement | None]:
        tag = int(elem.tag)
        group = tag >> 16
        if tag & 0xFFFF == 0:  # group lengths go stale once elements change
            return "X", None
        if group % 2 == 1:
            return self._private(elem, src)
        if _is_repeating_group(group):
            return "X", None
        if in_sr and tag == TEXT_VALUE:
            return "D", DataElement(elem.tag, elem.VR, dummy_value(elem.VR))
        if in_graphics and tag == UNFORMATTED_TEXT:
            return "C", self._clean_text(elem, path)
        rule = self.profile.rule_for(tag)
        if rule is None:
            return self._unlisted(elem, path, in_sr, in_graphics)
        kind = None
        if needs_attribute_type(rule):
            kind = attribute_type(self.sop_class_uid, [int(g + e, 16) for g, e in _PATH_TAG.findall(path)])
        action = effective_action(rule, self.options, tag, kind)
        if action == "C":
            if rule.is_date_rule:
                done, shifted = self._date(elem)
                fallback = reduce_basic(rule, tag, kind)  # value gone: do what the basic profile does
                if (shifted is None or not _values(shifted)) and fallback in ("Z", "D"):
                    return self._apply(fallback, elem, path, in_sr, in_graphics)
                return done, shifted
            if elem.VR == "SQ":
                sr = in_sr or bool(rule.option("clean_structured_content"))
                graphics = in_graphics or bool(rule.option("clean_graphics"))
                return "C", self._sequence(elem, path, sr, graphics)
            cleaned = self._clean_text(elem, path, needs_value=rule.basic == "D")
            if kind in ("1", "1C") and not _values(cleaned):  # nothing safe left: keep the IOD valid
                return "D", DataElement(elem.tag, elem.VR, dummy_value(elem.VR))
            return "C", cleaned
        if action == "K" and tag == PATIENT_AGE:
            age = cap_age(str(elem.value or ""))
            return ("K", _rebuild(elem, [age])) if age else ("X", None)
        return self._apply(action, elem, path, in_sr, in_graphics)

    def _apply(
        self, action: str, elem: DataElement, path: str, in_sr: bool, in_graphics: bool
    ) -> tuple[str, DataElement | None]:
        if action == "X":
            return "X", None
        if action == "Z":
            return "Z", DataElement(elem.tag, elem.VR, Sequence() if elem.VR == "SQ" else None)
        if action == "D" and elem.VR == "SQ" and _is_code_sequence(elem):
            return "D", DataElement(elem.tag, "SQ", Sequence([_dummy_code_item()]))
        if elem.VR == "SQ":  # K, D and U on a sequence: keep it, de-identify its items
            return action, self._sequence(elem, path, in_sr, in_graphics)
        if action == "U":
            return self._uid(elem)
        if action == "D":
            if elem.VR == "UI":
                return self._uid(elem)
            return "D", DataElement(elem.tag, elem.VR, dummy_value(elem.VR))
        return "K", _kept(elem)

    def _unlisted(self, elem: DataElement, path: str, in_sr: bool, in_graphics: bool) -> tuple[str, DataElement | None]:
        vr = elem.VR
        if vr == "PN":
            return "X", None
        if vr == "UI":
            if all(is_well_known_uid(str(v)) for v in _values(elem)):
                return "K", _kept(elem)
            return self._uid(elem)
        if vr in DATE_VRS:
            mode = self.options.date_mode
            if mode == "full":
                return "K", _kept(elem)
            action, new = self._date(elem) if mode != "remove" else ("X", None)
            if new is None or not _values(new):  # the value is gone: keep the IOD valid
                kind = date_type_anywhere(self.sop_class_uid, int(elem.tag))
                if kind in ("1", "1C"):
                    return "D", DataElement(elem.tag, vr, dummy_value(vr))
                if kind in ("2", "2C"):
                    return "Z", DataElement(elem.tag, vr, None)
            return action, new
        return self._apply("K", elem, path, in_sr, in_graphics)

    def _sequence(self, elem: DataElement, path: str, in_sr: bool, in_graphics: bool) -> DataElement:
        items = [self.walk(item, f"{path}[{i}].", in_sr, in_graphics) for i, item in enumerate(elem.value or [])]
        return DataElement(elem.tag, "SQ", Sequence(items))

    def _uid(self, elem: DataElement) -> tuple[str, DataElement | None]:
        if elem.VR != "UI":
            return "X", None
        return "U", _rebuild(elem, [self.keys.uid(str(v)) for v in _values(elem)])

    def _clean_text(self, elem: DataElement, path: str, needs_value: bool = False) -> DataElement:
        """Positive-rule cleaning of free text (:mod:`anonymizer.deid.freetext`).

        Where the basic action is D (PS3.15: a non-zero-length replacement, the attribute is
        Type 1 somewhere) and nothing survives, the VR's dummy value is written instead.
        """
        if elem.VR not in ("LO", "LT", "SH", "ST", "UC", "UT", "CS"):
            return DataElement(elem.tag, elem.VR, None)
        keyword = elem.keyword or keyword_for_tag(int(elem.tag)) or ""
        kept: list[str] = []
        kinds: set[str] = set()
        for value in _values(elem):
            cleaned = clean_free_text(str(value), self.identifiers, self.vocabulary)
            kinds.update(cleaned.removed)
            if cleaned.text:
                kept.append(cleaned.text)
        self.text_removals.extend(TextRemoval(path, keyword, kind) for kind in sorted(kinds))
        if needs_value and not kept and _values(elem):
            kept = [str(dummy_value(elem.VR))]
        return _rebuild(elem, kept)

    def _date(self, elem: DataElement) -> tuple[str, DataElement | None]:
        """Action C on a date/time attribute under the shift or year-only mode."""
        vr, mode = elem.VR, self.options.date_mode
        if vr == "TM" or vr not in DATE_VRS:
            # Times carry no date; in year-only mode they are dropped (Safe Harbor).
            if mode == "year":
                return "Z", DataElement(elem.tag, vr, None)
            return "K", _kept(elem)
        if mode == "year":
            fn = year_only_da if vr == "DA" else year_only_dt
            new = [fn(str(v)) for v in _values(elem)]
        else:
            shift = shift_da if vr == "DA" else shift_dt
            new = [shift(str(v), self.shift_days) for v in _values(elem)]
        if any(v is None for v in new):
            return "X", None
        return "C", _rebuild(elem, new)

    def _private(self, elem: DataElement, src: Dataset) -> tuple[str, DataElement | None]:
        if not self.options.retain_safe_private:
            return "X", None
        tag = int(elem.tag)
        group, element = tag >> 16, tag & 0xFFFF
        allow = self.options.safe_private_allowlist
        if 0x0010 <= element <= 0x00FF:  # private creator: keep if it owns an allowed element
            creator = str(elem.value or "").strip()
            if any(entry.startswith(f"{creator}|{group:04X}|") for entry in allow):
                return "K", _kept(elem)
            return "X", None
        creator_elem = src.get((group << 16) | (element >> 8))
        creator = str(creator_elem.value).strip() if creator_elem is not None else ""
        if f"{creator}|{group:04X}|{element & 0xFF:02X}" in allow:
            return "K", _kept(elem)
        return "X", None
