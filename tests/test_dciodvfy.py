"""De-identification adds no IOD conformance error: Debian's ``dciodvfy`` (dicom3tools).

Each input and its de-identified output are checked; every "Error" line of the output, with
values stripped, must already be among the input's. Pixels are left alone (no text detector
here): conformance is a header matter.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file

from anonymizer.deid import DeidOptions, PseudonymKeys, deidentify
from anonymizer.deid.tests.factory import make_ct, make_us
from anonymizer.processing import serialize

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (Debian package dicom3tools; CI installs it)"
)
KEYS = PseudonymKeys(b"test-secret-0123456789abcdef")
OPTIONS = DeidOptions(clean_pixel_data=False)
PYDICOM_FILES = (
    "liver_1frame.dcm",  # Segmentation: Enhanced General Equipment's type 1 Device Serial Number
    "CT_small.dcm",
    "MR_small.dcm",
    "emri_small.dcm",  # Enhanced MR
    "rtplan.dcm",  # type 2 RT Plan Date/Time, Treatment Machine Name
    "rtstruct.dcm",  # type 1 Structure Set Label
    "rtdose_1frame.dcm",
    "reportsi.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
    "SC_rgb.dcm",
    "US1_J2KR.dcm",
    "examples_palette.dcm",
    "color-pl.dcm",
    "ExplVR_BigEnd.dcm",  # an ACR-NEMA style Study Date that cannot be shifted: emptied, type 2
    "eCT_Supplemental.dcm",  # Enhanced CT
)


def _normalised(line: str) -> str:
    """An error line without the values it quotes (they change on de-identification)."""
    line = re.sub(r"= <[^>]*>", "= <>", line)
    line = re.sub(r"(UID) [\d.]+", r"\1 #", line)
    return re.sub(r"\d+(\.\d+){2,}", "UID", line)


def errors(path: Path) -> set[str]:
    assert DCIODVFY is not None
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120, check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return {_normalised(line) for line in lines if line.startswith("Error")}


def _new_errors(original: Path, tmp_path: Path, options: DeidOptions = OPTIONS) -> set[str]:
    ds = pydicom.dcmread(original, force=True)
    out = tmp_path / f"deid-{original.name}"
    out.write_bytes(serialize(deidentify(ds, options=options, keys=KEYS).dataset))
    return errors(out) - errors(original)


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_pydicom_file_gains_no_iod_error(name: str, tmp_path: Path) -> None:
    assert _new_errors(Path(get_testdata_file(name)), tmp_path) == set()


DATE_MODES = {
    "dates removed": DeidOptions(clean_pixel_data=False, retain_longitudinal_modified_dates=False),
    "year only": DeidOptions(clean_pixel_data=False, dates_year_only=True),
}


@pytest.mark.parametrize("mode", sorted(DATE_MODES))
@pytest.mark.parametrize("name", ["test-SR.dcm", "reportsi.dcm", "waveform_ecg.dcm", "rtplan.dcm", "emri_small.dcm"])
def test_other_date_modes_gain_no_iod_error(name: str, mode: str, tmp_path: Path) -> None:
    """Removed or year-only dates: type 1 dates and times get dummies, type 2 ones stay empty."""
    assert _new_errors(Path(get_testdata_file(name)), tmp_path, DATE_MODES[mode]) == set()


@pytest.mark.parametrize("make", [make_ct, make_us])
def test_synthetic_file_gains_no_iod_error(make, tmp_path: Path) -> None:
    ds: Dataset = make()
    original = tmp_path / "original.dcm"
    ds.save_as(original, enforce_file_format=True)
    assert _new_errors(original, tmp_path) == set()


def test_normalising_keeps_element_names() -> None:
    line = "Error - Missing attribute Type 1 Required Element=<DeviceSerialNumber> Module=<X>"
    assert _normalised(line) == line
    quoted = "Error - bad - (0x0008,0x0080) LO  [1] = <SAINT EXAMPLE>"
    assert _normalised(quoted) == "Error - bad - (0x0008,0x0080) LO  [1] = <>"
