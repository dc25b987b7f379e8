"""The identifying values of one file: the single definition the cleaner and verifier share.

:func:`collect` walks the *input* at every depth and gathers every value that names or
identifies someone: every person name of any role (the full name and each component), every
removed or replaced ID, number and UID, the dates the profile does not keep (with the ways
people write them), institution, department, station and address values and telephone
numbers. Values are compared as sequences of *atoms* (runs of letters or of digits,
case-folded, accents folded, leading zeros dropped), so a match is always whole-token: "Ede" never matches
inside "PREDECESSOR", "Post" matches the word "post" in "post-contrast".

Numbers of fewer than :data:`MIN_ID_DIGITS` digits are measurement values, never identifiers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from pydicom import DataElement, Dataset
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue

from .options import DeidOptions
from .profile import Profile, effective_action, load_profile
from .stored import RAW_COPY_VRS, converted, stored_elements
from .uids import is_well_known_uid

MIN_ID_DIGITS = 5
MAX_ATOMS = 16  # longer values are matched on their first atoms only (LO is 64 characters)
_ATOM = re.compile(r"[^\W\d_]+|\d+")
_WORD = re.compile(r"[^\W_]+")
FREE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UC"})
_STRING_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UR", "UT", "DA", "DT"})
_KEPT_VRS = _STRING_VRS | {"TM", "DS", "IS", "AS"}
# Words the engine itself writes (pseudonymous names, dummies): never evidence of a leak.
_ENGINE_WORDS = frozenset({("anon",), ("anonymous",), ("anonymized",), ("anonymised",), ("removed",)})
_ID_SUFFIXES = ("ID", "IDs", "Number", "Numbers", "Identifier", "UID", "UIDs")
_PLACE_WORDS = ("Institution", "Department", "Address", "Station", "Country", "Region", "Location")
_MONTHS = ("january february march april may june july august september october november december").split()

PERSON = "person name"
IDENTIFIER = "identifier"
DATE = "date"
PHONE = "phone number"
PLACE = "address or institution"


def atoms(text: str) -> tuple[str, ...]:
    """Whole-token comparison units of ``text`` (see module docstring)."""
    return tuple(_norm(a) for a in _ATOM.findall(text))


def _norm(atom: str) -> str:
    if atom.isdigit():
        return atom.lstrip("0") or "0"
    if atom.isascii():
        return atom.casefold()
    # "Müller" and "Muller" are the same name to a reader: fold accents, keep other scripts.
    return "".join(c for c in unicodedata.normalize("NFKD", atom) if not unicodedata.combining(c)).casefold()


def atom_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, atom) for every atom of ``text``, in order."""
    return [(m.start(), m.end(), _norm(m.group())) for m in _ATOM.finditer(text)]


@dataclass(frozen=True)
class FileIdentifiers:
    """Identifying atom sequences of one file, each with its kind (a REMOVAL_KINDS word).

    ``kept`` holds the sequences that also occur inside a value the profile keeps verbatim
    (an institution named like the manufacturer, a physician named like the body part): the
    cleaner removes them from free text, the verifier does not report them.
    """

    entries: dict[tuple[str, ...], str] = field(default_factory=dict, hash=False)
    kept: frozenset[tuple[str, ...]] = frozenset()

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, sequence: Sequence[str], *, verifier: bool = False) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, kind) atom ranges of ``sequence`` holding an identifier.

        Longest match first at each position; with ``verifier`` the ``kept`` ones are skipped.
        """
        found: list[tuple[int, int, str]] = []
        i, n = 0, len(sequence)
        while i < n:
            hit = self._longest(sequence, i, verifier)
            if hit is None:
                i += 1
                continue
            found.append((i, i + hit[0], hit[1]))
            i += hit[0]
        return found

    @cached_property
    def _firsts(self) -> frozenset[str]:
        return frozenset(key[0] for key in self.entries)

    @cached_property
    def _longest_key(self) -> int:
        return max((len(key) for key in self.entries), default=0)

    def _longest(self, sequence: Sequence[str], i: int, verifier: bool) -> tuple[int, str] | None:
        if sequence[i] not in self._firsts:
            return None
        for length in range(min(self._longest_key, len(sequence) - i), 0, -1):
            key = tuple(sequence[i : i + length])
            kind = self.entries.get(key)
            if kind is not None and not (verifier and key in self.kept):
                return length, kind
        return None

    def matches(self, text: str, *, verifier: bool = False, whole_words: bool = False) -> list[str]:
        """Kinds of the identifiers found in ``text`` as whole tokens (empty: none).

        With ``whole_words`` an identifier must equal a whole word of ``text`` (letters and
        digits together) or the whole text, not a run of letters or digits inside a word.
        """
        if not whole_words:
            return [kind for _, _, kind in self.find(atoms(text), verifier=verifier)]
        keys = [atoms(word) for word in _WORD.findall(text)] + [atoms(text)]
        return [self.entries[k] for k in keys if k in self.entries and not (verifier and k in self.kept)]


def _strings(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None or isinstance(value, bytes):
        return []
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    return [str(v) for v in values if str(v).strip()]


def walk(ds: Dataset) -> Iterator[DataElement]:
    """Every element of ``ds`` at every depth, sequences before their items.

    Numbers and binary values still raw are left out, unconverted: no identifier is ever
    a number of a binary VR, and converting them would cost their raw copy on write.
    """
    for stored in stored_elements(ds):
        if isinstance(stored, RawDataElement) and stored.VR in RAW_COPY_VRS:
            continue
        elem = converted(ds, stored)
        yield elem
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from walk(item)


def profile_action(elem: DataElement, profile: Profile, options: DeidOptions) -> str:
    """The action the engine gives an element (C only for cleaned text, never for dates)."""
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


def date_forms(value: str) -> list[tuple[str, ...]]:
    """The atom sequences of a DA/DT value's date written as people write it."""
    digits = value.strip()[:8]
    try:
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return []
    y, m, d = str(day.year), str(day.month), str(day.day)
    month = _MONTHS[day.month - 1]
    # Numeric two-digit-year forms ("3/2/01") are left to the cleaner's date rule: as atoms
    # they are three small numbers, too common in text to be told apart from measurements.
    # Years, months and days as str(int) and lower-case month names are already atoms; only the
    # value's own digits and the two-digit year ("05") need normalizing.
    short = _norm(y[2:])
    forms = [(_norm(digits),), (y, m, d), (d, m, y), (m, d, y)]
    for name in (month, month[:3], month[:4]):
        forms += [(d, name, y), (name, d, y), (d, name, short)]
    return forms


def _kind(elem: DataElement) -> str:
    keyword = elem.keyword or ""
    if elem.VR == "PN":
        return PERSON
    if "Telephone" in keyword:
        return PHONE
    if any(word in keyword for word in _PLACE_WORDS):
        return PLACE
    return IDENTIFIER


def _significant(seq: tuple[str, ...], kind: str) -> bool:
    """Too short or a measurement-sized number: not an identifier (see module docstring)."""
    text = "".join(seq)
    if text.isdigit():
        return kind == DATE or len(text) >= MIN_ID_DIGITS
    return len(text) >= (2 if kind == PERSON else 3)


def _value_entries(elem: DataElement, text: str, vocabulary: frozenset[str]) -> Iterator[tuple[tuple[str, ...], str]]:
    kind = _kind(elem)
    whole = atoms(text)[:MAX_ATOMS]
    if kind == PERSON:
        yield whole, kind
        for part in re.split(r"[\^=\s,]+", text):
            yield atoms(part)[:MAX_ATOMS], kind
            yield from (((a,), kind) for a in atoms(part) if not a.isdigit())
        return
    is_id = elem.VR == "UI" or (elem.keyword or "").endswith(_ID_SUFFIXES)
    if kind == IDENTIFIER and not (is_id or any(a.isdigit() for a in whole)):
        if all(a in vocabulary for a in whole):
            return  # a removed description made of known words identifies no one
    yield whole, kind
    if kind == PLACE:
        yield from (((a,), kind) for a in whole if not a.isdigit() and a not in vocabulary)
    elif elem.VR != "UI":
        yield from (((a,), kind) for a in whole if a.isdigit())


def collect(ds: Dataset, options: DeidOptions, vocabulary: frozenset[str] = frozenset()) -> FileIdentifiers:
    """Every identifying value of ``ds`` at every depth (see module docstring).

    ``vocabulary`` lets removed descriptions made only of known words be ignored; names,
    IDs, dates and places are collected whatever their words.
    """
    profile = load_profile()
    entries: dict[tuple[str, ...], str] = {}
    kept_values: list[tuple[str, ...]] = []
    for elem in walk(ds):
        if elem.VR not in _KEPT_VRS:
            continue
        action = profile_action(elem, profile, options)
        if elem.VR == "TM" and action == "C" and options.date_mode != "year":
            action = "K"  # times carry no date: the engine keeps them when dates are shifted
        if action in ("C", "P"):
            continue
        if action == "K" and elem.VR != "PN":  # every name is identifying, kept or not
            if elem.VR not in FREE_TEXT_VRS:
                kept_values.extend(atoms(s) for s in _strings(elem))
            continue
        if elem.VR not in _STRING_VRS:
            continue
        if elem.VR == "CS" and elem.keyword != "PatientID":
            continue  # code strings are enumerated values, not identifying on their own
        for text in _strings(elem):
            if elem.VR in ("DA", "DT") and options.date_mode == "year" and text.strip()[4:8] in ("0101", ""):
                continue  # year only writes YYYY0101: a 1 January original is told apart by nothing
            found = (
                [(f, DATE) for f in date_forms(text)]
                if elem.VR in ("DA", "DT")
                else list(_value_entries(elem, text, vocabulary))
            )
            for seq, kind in found:
                if seq and _significant(seq, kind) and seq not in _ENGINE_WORDS:
                    entries.setdefault(seq, kind)
    return FileIdentifiers(entries=entries, kept=_inside(entries, kept_values))


def _inside(entries: dict[tuple[str, ...], str], kept_values: list[tuple[str, ...]]) -> frozenset[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    longest = max((len(k) for k in entries), default=0)
    for value in kept_values:
        for i in range(len(value)):
            for j in range(i + 1, min(len(value), i + longest) + 1):
                grams.add(value[i:j])
    return frozenset(k for k in entries if k in grams)
