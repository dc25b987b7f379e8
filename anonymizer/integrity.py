"""Is a Part 10 file whole? A walk of the raw byte stream, independent of pydicom's reader.

pydicom stops silently at the end of the data: a value cut short comes back shorter than its
length field, a sequence with an undefined length ends where the file ends. This module walks
the encoded bytes itself, element by element, and reports the first place where a length runs
past the end of its container, a sequence or item misses its delimiter, or the data set does
not end exactly where the file (or a defined-length item) ends (:func:`check_stream`).
:func:`value_problems` then finds values that contradict their own counts and lengths in the
parsed data set: numbers whose text is not a number, count attributes of the standard (contour
points, beams, control points, wedges, blocks, waveform channels, frames...) that disagree
with what they count. Messages name tags, keywords and counts, never values.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.datadict import DicomDictionary, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.valuerep import DSfloat

from anonymizer.deid.stored import converted, stored_elements

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_ALL_VRS = _LONG_VRS | frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN"}
    | {b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
IMPLICIT_LE, EXPLICIT_BE, DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
_MAX_DEPTH = 64
_LE_TAG, _BE_TAG = struct.Struct("<HH"), struct.Struct(">HH")
_LE_U32, _BE_U32 = struct.Struct("<I"), struct.Struct(">I")
_LE_U16, _BE_U16 = struct.Struct("<H"), struct.Struct(">H")


class StreamError(Exception):
    """The encoded data is not a well-formed data set; ``str()`` says where, by tag."""


class TruncatedError(StreamError):
    """The data ends before a length or a delimiter says it should: the file was cut short."""


@dataclass
class _Reader:
    data: bytes
    implicit: bool
    big: bool

    def tag_at(self, pos: int) -> int:
        group, element = (_BE_TAG if self.big else _LE_TAG).unpack_from(self.data, pos)
        return (group << 16) | element

    def u32(self, pos: int) -> int:
        return int((_BE_U32 if self.big else _LE_U32).unpack_from(self.data, pos)[0])

    def u16(self, pos: int) -> int:
        return int((_BE_U16 if self.big else _LE_U16).unpack_from(self.data, pos)[0])


def _name(tag: int) -> str:
    keyword = keyword_for_tag(tag) if tag >> 16 != 0xFFFE else ""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})" + (f" {keyword}" if keyword else "")


def _need(pos: int, size: int, end: int, what: str, tag: int | None = None) -> None:
    """Raise unless ``size`` bytes from ``pos`` fit before ``end`` (the message is built lazily)."""
    if pos + size > end:
        subject = f"{what} {_name(tag)}" if tag is not None else what
        raise TruncatedError(f"{subject} runs past the end of the data (truncated).")


def _header(r: _Reader, pos: int, end: int, implicit: bool) -> tuple[int, str, int, int]:
    """(tag, VR or "", value length, position of the value) of the element at ``pos``."""
    if pos + 8 > end:
        raise TruncatedError(f"The element header at byte {pos} runs past the end of the data (truncated).")
    tag = r.tag_at(pos)
    if tag in (ITEM, ITEM_END, SEQUENCE_END) or implicit:
        vr = "" if tag >> 16 == 0xFFFE else _dictionary_vr(tag)
        return tag, vr, r.u32(pos + 4), pos + 8
    vr_bytes = r.data[pos + 4 : pos + 6]
    if vr_bytes not in _ALL_VRS:
        raise StreamError(f"Element {_name(tag)} has an invalid value representation (corrupt data).")
    if vr_bytes in _LONG_VRS:
        _need(pos, 12, end, "The header of", tag)
        return tag, vr_bytes.decode(), r.u32(pos + 8), pos + 12
    return tag, vr_bytes.decode(), r.u16(pos + 6), pos + 8


def _dictionary_vr(tag: int) -> str:
    entry = DicomDictionary.get(tag)
    return str(entry[0]) if entry is not None else "UN"  # private or repeating: skipped as bytes


def _items(r: _Reader, pos: int, end: int, implicit: bool, owner: int, depth: int, *, fragments: bool) -> int:
    """Walk the items of an undefined-length sequence (or pixel fragments) up to its delimiter."""
    while True:
        if pos + 8 > end:
            raise TruncatedError(f"{_name(owner)} has no sequence delimiter: the file ends inside it (truncated).")
        tag, _vr, length, value = _header(r, pos, end, True)
        if tag == SEQUENCE_END:
            return value
        if tag != ITEM:
            raise StreamError(f"Sequence {_name(owner)} holds something other than items (corrupt data).")
        pos = _item(r, value, length, end, implicit, owner, depth, fragments=fragments)


def _item(
    r: _Reader, pos: int, length: int, end: int, implicit: bool, owner: int, depth: int, *, fragments: bool
) -> int:
    if length == UNDEFINED:
        if fragments:
            raise StreamError(f"A fragment of {_name(owner)} has no length (corrupt data).")
        return _dataset(r, pos, end, implicit, depth + 1, owner=owner)
    if not fragments:  # walk what is there first, to name the innermost cut
        _dataset(r, pos, min(pos + length, end), implicit, depth + 1, owner=None)
    _need(pos, length, end, "An item of", owner)
    return pos + length


def _dataset(r: _Reader, pos: int, end: int, implicit: bool, depth: int, owner: int | None) -> int:
    """Walk elements from ``pos``; with an owner, up to its item delimiter, else exactly to ``end``."""
    if depth > _MAX_DEPTH:
        raise StreamError("Sequences are nested too deeply (corrupt data).")
    while pos < end or owner is not None:
        if owner is not None:
            if pos + 8 > end:
                raise TruncatedError(
                    f"An item of {_name(owner)} has no item delimiter: the file ends inside it (truncated)."
                )
        tag, vr, length, value = _header(r, pos, end, implicit)
        if tag == ITEM_END:
            if owner is None:
                raise StreamError("An item delimiter stands outside any item (corrupt data).")
            return value
        pos = _value(r, tag, vr, length, value, end, implicit, depth)
    return pos


def _value(r: _Reader, tag: int, vr: str, length: int, pos: int, end: int, implicit: bool, depth: int) -> int:
    if length != UNDEFINED:
        items_end = pos + length
        bound = min(items_end, end)  # walk what is there first, to name the innermost cut
        while vr == "SQ" and pos < bound:
            item_tag, _vr, item_length, value = _header(r, pos, bound, True)
            if item_tag != ITEM:
                raise StreamError(f"Sequence {_name(tag)} holds something other than items (corrupt data).")
            pos = _item(r, value, item_length, bound, implicit, tag, depth, fragments=False)
        _need(items_end, 0, end, "The value of", tag)
        return items_end
    if vr == "SQ" or (vr == "UN" and tag != 0x7FE00010):
        # An undefined-length UN is a sequence encoded in implicit VR little endian.
        return _items(r, pos, end, implicit or vr == "UN", tag, depth, fragments=False)
    if vr in ("OB", "OW", "UN") or tag == 0x7FE00010:
        return _items(r, pos, end, implicit, tag, depth, fragments=True)
    raise StreamError(f"Element {_name(tag)} has an undefined length it may not have (corrupt data).")


def _looks_implicit(data: bytes, pos: int) -> bool:
    return len(data) >= pos + 6 and data[pos + 4 : pos + 6] not in _ALL_VRS


def check_stream(raw: bytes) -> None:
    """Raise StreamError unless the Part 10 file ``raw`` (preamble and 'DICM' included) ends cleanly."""
    pos = 132
    meta_reader = _Reader(raw, implicit=_looks_implicit(raw, pos), big=False)
    syntax = ""
    while pos + 8 <= len(raw) and meta_reader.tag_at(pos) >> 16 == 0x0002:
        tag, vr, length, value = _header(meta_reader, pos, len(raw), meta_reader.implicit)
        if length == UNDEFINED:
            raise StreamError(f"File meta element {_name(tag)} has an undefined length (corrupt data).")
        _need(value, length, len(raw), "The value of", tag)
        if tag == 0x00020010:
            syntax = raw[value : value + length].decode("ascii", "replace").strip("\x00 ")
        pos = value + length
    data = raw[pos:]
    if syntax == DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data = inflater.decompress(data)
        except zlib.error:
            raise StreamError("The deflated data set cannot be inflated (corrupt data).") from None
        if not inflater.eof:
            raise TruncatedError("The deflated data set ends early (truncated).")
    # Like pydicom, trust the bytes over the declared syntax for implicit versus explicit VR.
    implicit = _looks_implicit(data, 0) if len(data) >= 6 else syntax == IMPLICIT_LE
    reader = _Reader(data, implicit=implicit, big=syntax == EXPLICIT_BE)
    _dataset(reader, 0, len(data), reader.implicit, 0, owner=None)


# (count attribute, what it counts, how many values per counted thing, extra values) checked
# wherever both sit in the same data set (top level or any sequence item).
COUNT_PAIRS: tuple[tuple[str, str, int, int], ...] = (
    ("NumberOfContourPoints", "ContourData", 3, 0),
    ("NumberOfBeams", "ReferencedBeamSequence", 1, 0),
    ("NumberOfBrachyApplicationSetups", "ReferencedBrachyApplicationSetupSequence", 1, 0),
    ("NumberOfControlPoints", "ControlPointSequence", 1, 0),
    ("NumberOfControlPoints", "BrachyControlPointSequence", 1, 0),
    ("NumberOfWedges", "WedgeSequence", 1, 0),
    ("NumberOfCompensators", "CompensatorSequence", 1, 0),
    ("NumberOfBoli", "ReferencedBolusSequence", 1, 0),
    ("NumberOfBlocks", "BlockSequence", 1, 0),
    ("NumberOfLeafJawPairs", "LeafPositionBoundaries", 1, 1),
    ("NumberOfWaveformChannels", "ChannelDefinitionSequence", 1, 0),
    ("NumberOfFrames", "GridFrameOffsetVector", 1, 0),
    ("NumberOfFrames", "FrameTimeVector", 1, 0),
    ("NumberOfDetectors", "DetectorInformationSequence", 1, 0),
    ("NumberOfRotations", "RotationInformationSequence", 1, 0),
    ("NumberOfEnergyWindows", "EnergyWindowInformationSequence", 1, 0),
    ("NumberOfPhases", "PhaseInformationSequence", 1, 0),
)


_COUNT_TAGS = frozenset({tag_for_keyword(kw) for kw, *_ in COUNT_PAIRS} | {tag_for_keyword("NumberOfWaveformSamples")})


def _count(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _length(value: object) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, str | bytes):
        return 1
    return len(value) if hasattr(value, "__len__") else 1


def value_problems(ds: Dataset, prefix: str = "") -> Iterator[str]:
    """Every malformed number and broken count of ``ds`` at any depth, named by keyword."""
    for raw in stored_elements(ds):
        if isinstance(raw, RawDataElement) and raw.VR not in ("IS", "DS", "SQ", None):
            continue  # numbers in binary and other raw values have no text to be cut short
        elem = converted(ds, raw)
        where = prefix + (elem.keyword or _name(int(elem.tag)))
        if elem.VR in ("IS", "DS") and not isinstance(elem.value, bytes):
            values = elem.value if isinstance(elem.value, MultiValue | list) else [elem.value]
            if any(isinstance(v, str) and not isinstance(v, DSfloat) and v.strip() for v in values):
                yield f"{where} is not a number (a value cut short or corrupt)."
        elif elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from value_problems(item, f"{where}[{i + 1}].")
    if _COUNT_TAGS.isdisjoint(ds.keys()):
        return
    for count_kw, target_kw, per, extra in COUNT_PAIRS:
        if count_kw in ds and target_kw in ds:
            expected = _count(ds[count_kw].value)
            actual = _length(ds[target_kw].value)
            if expected is not None and expected * per + extra != actual:
                yield (
                    f"{prefix}{count_kw} is {expected} but {prefix}{target_kw} holds {actual} "
                    f"{'items' if ds[target_kw].VR == 'SQ' else 'values'}."
                )
    yield from _waveform_problems(ds, prefix)


def _waveform_problems(ds: Dataset, prefix: str) -> Iterator[str]:
    if "WaveformData" not in ds:
        return
    channels = _count(ds.get("NumberOfWaveformChannels"))
    samples = _count(ds.get("NumberOfWaveformSamples"))
    bits = _count(ds.get("WaveformBitsAllocated"))
    if channels is None or samples is None or bits is None:
        return
    expected = channels * samples * bits // 8
    actual = len(ds.WaveformData or b"")
    if actual not in (expected, expected + 1):  # +1: padding to an even length
        yield f"{prefix}WaveformData holds {actual} bytes, its channels and samples need {expected}."
