"""A shifted date that lands on another date of the input is the shift, not a leak."""

from __future__ import annotations

import copy

import pydicom
from pydicom.data import get_testdata_file

from anonymizer.deid import DeidOptions, PseudonymKeys, deidentify, verify

# A secret whose date shift moves CT_small's study date onto another date the file holds
# (found by trying random secrets: about one in 130 does this).
COLLIDING_SECRET = bytes.fromhex("728f98e12378f0be0e815870809089d6e94436f8b9639dedc34c9a43c99fcb3a")


def test_a_shift_onto_another_input_date_is_not_a_leak() -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    result = deidentify(ds, options=DeidOptions(), keys=PseudonymKeys(secret=COLLIDING_SECRET))
    days = result.pseudonyms.date_shift_days
    assert verify(ds, result.dataset, options=DeidOptions()), "the collision this test is about is gone"
    assert verify(ds, result.dataset, options=DeidOptions(), date_shift_days=days) == []


def test_a_date_left_unshifted_is_still_a_leak() -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    result = deidentify(ds, options=DeidOptions(), keys=PseudonymKeys(secret=COLLIDING_SECRET))
    out = copy.deepcopy(result.dataset)
    out.StudyDate = ds.StudyDate  # the engine forgot to shift it
    leaks = verify(ds, out, options=DeidOptions(), date_shift_days=result.pseudonyms.date_shift_days)
    assert any(leak.path == "(0008,0020)" for leak in leaks)
