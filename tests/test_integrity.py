"""Truncated or self-contradicting files are rejected by ``read_dataset`` with a reason."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.data import data_manager, get_testdata_file
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian

from anonymizer.deid.tests.factory import make_ct
from anonymizer.integrity import COUNT_PAIRS, StreamError, check_stream, value_problems
from anonymizer.processing import InputError, read_dataset

# pydicom's test files that really are cut short or contradict themselves.
BROKEN = {
    "rtplan_truncated.dcm": "truncated",  # a number cut in the middle, a sequence short of its count
    "MR_truncated.dcm": "truncated",  # pixel data shorter than its length field
    "emri_small_jpeg_2k_lossless_too_short.dcm": "truncated",  # no delimiter after the fragments
}


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _code(raw: bytes) -> str:
    try:
        read_dataset(raw)
    except InputError as exc:
        assert exc.message
        return exc.code
    return "ok"


def test_rtplan_truncated_is_rejected_naming_the_cut_attribute() -> None:
    with pytest.raises(InputError) as caught:
        read_dataset(Path(get_testdata_file("rtplan_truncated.dcm")).read_bytes())
    assert caught.value.code == "truncated"
    assert "(300A,012C) IsocenterPosition" in caught.value.message


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_pydicom_files_are_rejected(name: str) -> None:
    assert _code(Path(get_testdata_file(name)).read_bytes()) == BROKEN[name]


def _pydicom_files() -> list[Path]:
    """pydicom's and pydicom-data's ``*.dcm`` test files, listed locally (the lookup goes online).

    (The DICOMDIR fixtures under ``dicomdirtests/`` are header-only stubs without pixel data
    and are rejected as such; they are not ``*.dcm`` and not part of this corpus.)
    """
    roots = [Path(data_manager.DATA_ROOT) / "test_files"]
    roots += [Path(source.data_path) for source in data_manager.get_external_sources().values()]
    return sorted(p for root in roots for p in root.rglob("*.dcm") if p.is_file())


def test_no_clean_pydicom_file_is_called_truncated_or_inconsistent() -> None:
    wrongly: list[str] = []
    paths = _pydicom_files()
    for path in paths:
        raw = Path(path).read_bytes()
        if os.path.basename(path) in BROKEN or raw[128:132] != b"DICM":
            continue
        if _code(raw) in ("truncated", "inconsistent", "unreadable"):
            wrongly.append(os.path.basename(path))
    assert len(paths) > 100 and wrongly == []


def test_every_cut_of_a_ct_is_rejected() -> None:
    """Cut in the file meta, the header, a sequence or the pixels: never read as whole."""
    raw = _bytes(make_ct())
    pixels = raw.index(b"\xe0\x7f\x10\x00")
    offsets = [*range(133, pixels + 12, 3), *range(pixels + 12, len(raw), 50_000), len(raw) - 1]
    accepted = [cut for cut in offsets if _code(raw[:cut]) == "ok"]
    assert accepted == []
    assert _code(raw) == "ok"


def test_cuts_inside_defined_length_sequences_are_rejected() -> None:
    """rtplan.dcm (implicit VR) gives its sequences defined lengths: a cut inside one shows."""
    raw = Path(get_testdata_file("rtplan.dcm")).read_bytes()
    beams = raw.index(b"\x0a\x30\xb0\x00")  # Beam Sequence
    length = int.from_bytes(raw[beams + 4 : beams + 8], "little")
    assert length != 0xFFFFFFFF
    end = beams + 8 + length
    accepted = [cut for cut in range(beams + 1, end, 7) if _code(raw[:cut]) == "ok"]
    assert accepted == []


def test_undefined_length_sequence_without_delimiter_is_truncated() -> None:
    ds = make_ct()
    ds["ContentSequence"].is_undefined_length = True
    raw = _bytes(ds)
    delimiter = raw.index(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    check_stream(raw)
    with pytest.raises(StreamError, match=r"\(0040,A730\) ContentSequence has no sequence delimiter"):
        check_stream(raw[:delimiter])


def test_deflated_file_cut_short_is_truncated() -> None:
    ds = make_ct()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    raw = _bytes(ds)
    check_stream(raw)
    assert _code(raw[: len(raw) - 40]) == "truncated"
    assert zlib  # deflate support comes from the standard library


def test_contour_points_must_match_contour_data() -> None:
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    contour = ds.ROIContourSequence[0].ContourSequence[0]
    contour.NumberOfContourPoints = int(contour.NumberOfContourPoints) + 1
    with pytest.raises(InputError) as caught:
        read_dataset(_bytes(ds))
    assert caught.value.code == "inconsistent"
    assert "NumberOfContourPoints" in caught.value.message and "ContourData" in caught.value.message


def test_beam_and_control_point_counts_must_match() -> None:
    ds = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    ds.FractionGroupSequence[0].NumberOfBeams = 7
    with pytest.raises(InputError, match="NumberOfBeams is 7 but .*ReferencedBeamSequence holds"):
        read_dataset(_bytes(ds))
    ds = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    ds.BeamSequence[0].ControlPointSequence = Sequence(list(ds.BeamSequence[0].ControlPointSequence)[:1])
    with pytest.raises(InputError, match="NumberOfControlPoints"):
        read_dataset(_bytes(ds))


def test_number_cut_in_the_middle_is_rejected_without_its_value() -> None:
    ds = make_ct()
    ds.SliceThickness = "1.234"
    raw = _bytes(ds)
    assert raw.count(b"1.234") == 1
    with pytest.raises(InputError) as caught:
        read_dataset(raw.replace(b"1.234", b"1.2. "))  # same length: only the text is cut
    assert caught.value.code == "inconsistent" and "SliceThickness" in caught.value.message
    assert "1.2." not in caught.value.message


def test_fewer_fragments_than_frames_is_truncated() -> None:
    ds = pydicom.dcmread(get_testdata_file("emri_small_RLE.dcm"))
    ds.NumberOfFrames = int(ds.NumberOfFrames) + 5
    assert _code(_bytes(ds)) in ("truncated", "inconsistent")


@pytest.mark.parametrize("vr", [b"US", b"LO", b"ZZ"])
def test_file_meta_with_a_corrupt_vr_is_rejected_not_raised(vr: bytes) -> None:
    raw = _bytes(make_ct())
    at = raw.index(b"\x02\x00\x10\x00UI") + 4  # Transfer Syntax UID
    with pytest.raises(InputError) as caught:
        read_dataset(raw[:at] + vr + raw[at + 2 :])
    assert caught.value.code == "unreadable" and "TransferSyntaxUID" in caught.value.message


def test_defined_length_item_longer_than_its_sequence_is_caught() -> None:
    raw = bytearray(Path(get_testdata_file("rtplan.dcm")).read_bytes())
    beams = raw.index(b"\x0a\x30\xb0\x00")
    item = beams + 8
    assert raw[item : item + 4] == b"\xfe\xff\x00\xe0"
    length = int.from_bytes(raw[item + 4 : item + 8], "little")
    raw[item + 4 : item + 8] = (length + 400).to_bytes(4, "little")  # the item now overruns the sequence
    assert _code(bytes(raw)) in ("truncated", "unreadable")


def _counted(target_kw: str, n: int) -> pydicom.DataElement:
    tag = pydicom.datadict.tag_for_keyword(target_kw)
    vr = pydicom.datadict.dictionary_VR(tag)
    if vr == "SQ":
        return pydicom.DataElement(tag, vr, Sequence([pydicom.Dataset() for _ in range(n)]))
    return pydicom.DataElement(tag, vr, [1.0] * n if vr in ("DS", "FD", "FL") else list(range(n)))


@pytest.mark.parametrize(("count_kw", "target_kw", "per", "extra"), COUNT_PAIRS)
def test_every_count_pair_is_checked(count_kw: str, target_kw: str, per: int, extra: int) -> None:
    item = pydicom.Dataset()
    setattr(item, count_kw, 2)
    item.add(_counted(target_kw, 2 * per + extra))
    outer = pydicom.Dataset()
    outer.BeamSequence = Sequence([item])  # nested: the check runs at every depth
    assert list(value_problems(outer)) == []
    item.add(_counted(target_kw, 2 * per + extra + 1))
    [problem] = value_problems(outer)
    assert problem.startswith(f"BeamSequence[1].{count_kw} is 2 but BeamSequence[1].{target_kw} holds")


def test_waveform_data_must_fit_its_channels_and_samples() -> None:
    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    assert list(value_problems(ds)) == []
    ds.WaveformSequence[0].NumberOfWaveformSamples += 10
    [problem] = value_problems(ds)
    assert problem.startswith("WaveformSequence[1].WaveformData holds")


@pytest.mark.parametrize("syntax", ["1.2.3.4.5", "garbage"])
def test_unknown_transfer_syntax_is_rejected_not_raised(syntax: str) -> None:
    ds = make_ct()
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True, implicit_vr=False, little_endian=True)
    assert _code(buffer.getvalue()) == "unsupported_transfer_syntax"
