"""Free text under the Clean action: keep only what is known not to identify anyone.

A token of free text survives only if it is a word of the vocabulary (the generated
``data/vocabulary.txt`` plus the project's ``DeidOptions.extra_vocabulary``) or a number /
number with unit, *and* it is not part of an identifying value of the file
(:mod:`anonymizer.deid.identifiers`). E-mail addresses, phone numbers, dates in any written
form, times and ages over 89 are removed by rule first, and the word after a title ("Dr.
White") is a name whatever the vocabulary says. Everything else is removed. The result is never
longer than the input and keeps the input's characters, so it stays valid for its VR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .identifiers import FileIdentifiers, atom_spans

VOCABULARY_PATH = Path(__file__).with_name("data") / "vocabulary.txt"

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ORD = r"(?:st|nd|rd|th)?"
# (kind, pattern) in the order they are applied; the spans they match are removed whole.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("e-mail address", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("identifier", re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)),
    (
        "date",
        re.compile(
            rf"\b\d{{1,2}}{_ORD}[\s./-]*(?:of\s+)?{_MONTH}\b\.?,?(?:[\s./-]*\d{{4}}|[\s./-]+\d{{2}})?\b"
            rf"|\b{_MONTH}\b\.?[\s./-]*\d{{1,2}}{_ORD}\b(?:,?[\s./-]*\d{{2,4}}\b)?"
            rf"|\b{_MONTH}\b\.?,?[\s./-]*\d{{4}}\b",
            re.IGNORECASE,
        ),
    ),
    ("date", re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b")),
    ("date", re.compile(r"\b(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b")),
    # Ages over 89 identify (HIPAA Safe Harbor caps them; PatientAge is capped by the engine).
    ("identifier", re.compile(r"\b(?:9\d|1[0-4]\d)\s?-?(?:y/o|yo|yrs?|years?|y)\b(?:[\s-]?old)?", re.IGNORECASE)),
    ("time", re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s?[ap]\.?m\b\.?)?", re.IGNORECASE)),
    (
        "phone number",
        re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]*)?(?:\(\d{1,4}\)[\s.-]*)?\d{2,5}(?:[\s.-]\d{2,5}){1,3}(?![\w.])"),
    ),
)
_WORD = re.compile(r"[^\W_]+(?:['./+-][^\W_]+)*")
_JOINERS = re.compile(r"['./+-]")
_NUMBER = re.compile(r"[+-]?\d{1,4}(?:[.,]\d+)?")
_NUMBER_UNIT = re.compile(r"(\d{1,4}(?:[.,]\d+)?)([^\W\d_]+|%)")
_DIMENSIONS = re.compile(r"\d{1,4}x\d{1,4}(?:x\d{1,4})?", re.IGNORECASE)
_MIXED = re.compile(r"(?=.*\d)(?=.*[^\W\d_])[^\W_]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_KERNEL = re.compile(r"[^\W\d_]{1,2}\d{2}[^\W\d_]{0,2}")  # reconstruction kernels: B30f, H30s, Br40d
_UNIT_SUFFIXES = frozenset("g h m s t l d x st nd rd th".split())
_TIDY_EMPTY = re.compile(r"\(\s*\)|\[\s*\]")
_TIDY_SPACE = re.compile(r"[ \t]{2,}")
_EDGE = " ,;:-_^/|"
_MAX_PASSES = 4
_TITLES = frozenset("dr drs doctor prof professor mr mrs ms miss mx sir dame".split())


@cache
def shipped_vocabulary() -> frozenset[str]:
    """The generated vocabulary, loaded once per process."""
    lines = VOCABULARY_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@cache
def vocabulary(extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The shipped vocabulary plus a project's extra words (lower-cased, phrases split)."""
    words = {w.casefold() for phrase in extra for w in phrase.split()}
    return shipped_vocabulary() | frozenset(w for w in words if not w.replace(".", "").isdigit())


@dataclass(frozen=True)
class CleanedText:
    """A cleaned value and the kinds of content removed from it (never the content)."""

    text: str
    removed: tuple[str, ...]


def _atom_allowed(atom: str, words: frozenset[str]) -> bool:
    return atom.isdigit() or atom.casefold() in words


def word_allowed(word: str, words: frozenset[str]) -> bool:
    """Whether one token is known non-identifying: a vocabulary word or a number (with unit)."""
    low = word.casefold()
    if low in words or _NUMBER.fullmatch(word) or _DIMENSIONS.fullmatch(word) or _KERNEL.fullmatch(word):
        return True
    unit = _NUMBER_UNIT.fullmatch(low)
    if unit is not None:
        return unit.group(2) in words or unit.group(2) in _UNIT_SUFFIXES
    if _JOINERS.search(word):
        parts = [p for p in _JOINERS.split(word) if p]
        digits = sum(c.isdigit() for c in word)
        mixed = any(_MIXED.fullmatch(p) and p.casefold() not in words for p in parts)
        if sum(p.isdigit() for p in parts) >= 3 or digits > 6 or (mixed and digits > 4):
            return False  # dotted or dashed number groups: UIDs, record numbers ("A77-1234")
        return all(word_allowed(p, words) for p in parts)
    camel = _CAMEL.split(word)
    if len(camel) > 1:  # "SpinalCord", "ScoutHead"
        return all(word_allowed(p, words) for p in camel)
    # letters and digits mixed ("T1", "Series2", "1HCT"): known words, at most two digits
    runs = re.findall(r"[^\W\d_]+|\d+", word)
    return sum(len(r) for r in runs if r.isdigit()) <= 2 and all(_atom_allowed(r, words) for r in runs)


def _rule_spans(text: str) -> tuple[list[tuple[int, int, str]], bytearray]:
    """Spans the rules remove, and a mask of the characters they cover."""
    spans: list[tuple[int, int, str]] = []
    taken = bytearray(len(text))
    for kind, pattern in _RULES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "phone number" and not _phone_like(match.group()):
                continue
            if not any(taken[start:end]):
                spans.append((start, end, kind))
                taken[start:end] = b"\x01" * (end - start)
    return spans, taken


def _phone_like(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    spaced_only = not re.search(r"[+()\-.]", candidate)
    return digits >= 7 and not spaced_only


def _is_title(text: str, start: int, end: int) -> bool:
    """ "Dr", "Mrs.", "Prof" before a name; all-caps "DR" or "MS" only with a full stop,
    since without one they are modalities and diagnoses (digital radiography, sclerosis)."""
    word = text[start:end]
    if word.casefold() not in _TITLES:
        return False
    return not word.isupper() or text[end : end + 1] == "."


def _mark_titled_names(text: str, free: list[tuple[int, int]], marked: dict[int, str]) -> None:
    """The word after a title is a name whatever the vocabulary says ("Dr. White"), and so
    is the one after that when the first is an initial ("Dr. J. Long")."""
    for i, (start, end) in enumerate(free):
        if not _is_title(text, start, end):
            continue
        marked.setdefault(start, "person name")
        for j in range(i + 1, min(i + 3, len(free))):
            name_start, name_end = free[j]
            marked.setdefault(name_start, "person name")
            if name_end - name_start > 1:
                break


def _removals(text: str, identifiers: FileIdentifiers, words: frozenset[str]) -> list[tuple[int, int, str]]:
    spans, taken = _rule_spans(text)
    free = [m.span() for m in _WORD.finditer(text) if not any(taken[m.start() : m.end()])]
    atoms = [(a, start) for start, end in free for a in atom_spans(text[start:end])]
    marked: dict[int, str] = {}  # word start -> kind of the identifier inside it
    sequence = [a[2] for a, _ in atoms]
    for first, last, kind in identifiers.find(sequence):
        for (_, _, _), word_start in atoms[first:last]:
            marked.setdefault(word_start, kind)
    _mark_titled_names(text, free, marked)
    for start, end in free:
        word = text[start:end]
        if start in marked:
            spans.append((start, end, marked[start]))
        elif not word_allowed(word, words):
            spans.append((start, end, "identifier" if any(c.isdigit() for c in word) else "unrecognised word"))
    return sorted(spans)


def _rebuild(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Remove the spans with the separators before them, then tidy what is left."""
    pieces: list[str] = []
    pos = 0
    for start, end, _ in spans:
        if start < pos:
            continue
        keep = text[pos:start]
        pieces.append(keep.rstrip(" ,;:^_/-.") if pieces or keep.strip(_EDGE) else "")
        pos = end
    pieces.append(text[pos:])
    joined = "".join(pieces)
    joined = _TIDY_SPACE.sub(" ", _TIDY_EMPTY.sub(" ", joined)).strip(_EDGE)
    return joined if any(c.isalnum() for c in joined) else ""


def clean_free_text(value: str, identifiers: FileIdentifiers, words: frozenset[str]) -> CleanedText:
    """Apply the positive rule to one value (see module docstring); unchanged if all is safe.

    Cleaning a cleaned text changes nothing: removal can bring tokens together ("1 X Mar"
    becomes the date "1 Mar"), so the rule is applied again until nothing more is removed.
    """
    kinds: set[str] = set()
    text = value
    for _ in range(_MAX_PASSES):
        spans = _removals(text, identifiers, words)
        if not spans:
            break
        kinds.update(kind for _, _, kind in spans)
        text = _rebuild(text, spans)
    else:
        if _removals(text, identifiers, words):
            text = ""
    return CleanedText(text, tuple(sorted(kinds)))
