"""The fast Part 10 writer writes exactly the bytes pydicom's own writer does.

The oracle is pydicom's ``save_as(buffer, enforce_file_format=True)``, run on a second, separate
read of the same input, so that nothing the writer under test does to its dataset can reach it.
Every file of pydicom's and pydicom-data's test corpus is written three ways: as read (raw
elements), fully converted, and de-identified (the output the product writes).
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_charset_files, get_testdata_files
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from anonymizer import processing
from anonymizer.deid import DeidOptions, PseudonymKeys, deidentify
from anonymizer.deid.part10 import part10_bytes
from anonymizer.deid.tests.factory import make_ct

KEYS = PseudonymKeys(secret=b"part10-oracle" * 3)


def _corpus() -> list[Path]:
    found = []
    for name in sorted(set(get_testdata_files("*")) | set(get_charset_files("*"))):
        path = Path(name)
        try:
            with path.open("rb") as handle:
                head = handle.read(132)
        except OSError:
            continue
        if len(head) == 132 and head[128:] == b"DICM":
            found.append(path)
    return found


CORPUS = _corpus()


def _pydicom(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _both(make: object) -> tuple[bytes | None, bytes | None]:
    """(ours, pydicom's) for two independent builds; None where that writer raises."""
    results: list[bytes | None] = []
    for writer in (part10_bytes, _pydicom):
        try:
            results.append(writer(make()))  # type: ignore[operator]
        except Exception:
            results.append(None)
    return results[0], results[1]


def _read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


def _converted(path: Path) -> Dataset:
    ds = _read(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in ds.iterall():
            pass
    return ds


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 80, "pydicom-data is installed in the dev requirements"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_file_as_read_and_converted_is_written_as_pydicom_writes_it(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for build in (lambda: _read(path), lambda: _converted(path)):
            ours, theirs = _both(build)
            assert ours == theirs


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_deidentified_file_is_written_as_pydicom_writes_it(path: Path) -> None:
    raw = path.read_bytes()
    try:
        processing.read_checked(raw)
    except processing.InputError:
        pytest.skip("rejected on input: never written")

    def build() -> Dataset:
        original = processing.read_checked(raw)
        return deidentify(original, options=DeidOptions(clean_pixel_data=False), keys=KEYS).dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _both(build)
    assert theirs is not None, "pydicom writes every de-identified output"
    assert ours == theirs


def _synthetic(syntax: str, charset: str | None, text: str) -> Dataset:
    ds = make_ct(patient_name="ORACLE^ONE", patient_id="ORACLE1")
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.StudyDescription = text
    ds.ImageComments = text + " odd"
    ds.SliceThickness = "2.50"  # DS written from its original string
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ReferencedImageSequence = Sequence([Dataset(), Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedImageSequence[1].is_undefined_length_sequence_item = True
    ds.ReferencedImageSequence[1].ReferencedSOPInstanceUID = "1.2.3.45"
    ds["ReferencedImageSequence"].is_undefined_length = True
    ds.add(DataElement(0x00091010, "UN", b"\x01\x02\x03"))  # odd UN: no padding
    ds.file_meta.TransferSyntaxUID = syntax
    # Read back, as the writer meets datasets in the product: raw elements in the file's own
    # encoding beside elements set since (the engine's output).
    read = pydicom.dcmread(io.BytesIO(_pydicom(ds)))
    read.SeriesDescription = text
    read.PatientName = "NEW^NAME"
    assert read[0x00091010].value  # converted: an odd binary value written from a DataElement
    return read


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian, "1.2.840.10008.1.2.1"])
@pytest.mark.parametrize(
    ("charset", "text"),
    [(None, "AX T1 5mm"), ("ISO_IR 100", "Müller café"), ("ISO_IR 192", "Ελληνικά 日本"), ("ISO_IR 6", "Müller")],
)
def test_synthetic_encodings_character_sets_and_sequences_match_pydicom(syntax: str, charset: str, text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = _synthetic(syntax, charset, text)  # random UIDs: both writers get copies of one build
        ours, theirs = _both(lambda: copy.deepcopy(template))
    assert theirs is not None
    assert ours == theirs
    assert pydicom.dcmread(io.BytesIO(ours)).StudyDescription == text
