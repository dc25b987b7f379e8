"""``anonymizer.deid.stored`` converts elements exactly as ``Dataset.__getitem__`` does.

The oracle is pydicom itself: every file of pydicom's and pydicom-data's test corpus is read
twice, converted once through :func:`converted` and once through ``ds[tag]``, and every element
at every depth must come out with the same VR, value, type and private creator.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_charset_files, get_testdata_files

from anonymizer.deid.stored import converted, stored_elements


def _corpus() -> list[Path]:
    """Every test and character set file, Part 10 or not (most character set files have no preamble)."""
    names = set(get_testdata_files("*")) | set(get_charset_files("*"))
    return [Path(name) for name in sorted(names) if Path(name).is_file()]


def _ours(ds: Dataset) -> list[tuple]:
    found = []
    for elem in stored_elements(ds):
        done = converted(ds, elem)
        found.append(_shape(done))
        if done.VR == "SQ":
            for item in done.value or []:
                found += _ours(item)
    return found


def _pydicoms(ds: Dataset) -> list[tuple]:
    found = []
    for elem in ds:  # Dataset.__iter__ converts through __getitem__
        found.append(_shape(elem))
        if elem.VR == "SQ":
            for item in elem.value or []:
                found += _pydicoms(item)
    return found


def _shape(elem: pydicom.DataElement) -> tuple:
    value = elem.value
    if elem.VR == "SQ":
        value = len(value or [])
    return (int(elem.tag), elem.VR, type(value), value, elem.private_creator, elem.is_undefined_length)


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_conversion_equals_pydicoms_own(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theirs = _pydicoms(pydicom.dcmread(path, force=True))
        except Exception:
            pytest.skip("pydicom cannot read or convert this file itself")
        ours = _ours(pydicom.dcmread(path, force=True))
    assert ours == theirs
