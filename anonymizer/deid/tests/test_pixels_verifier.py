from __future__ import annotations

import time

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian

from anonymizer.deid import (
    DeidOptions,
    PixelCleaningUnavailable,
    PixelDecodeError,
    PseudonymKeys,
    default_text_detector,
    deidentify,
    is_at_risk,
    verify,
)
from anonymizer.deid.tests.conftest_helpers import run
from anonymizer.deid.tests.factory import make_ct, make_us

DETECTOR = default_text_detector()
needs_ocr = pytest.mark.skipif(DETECTOR is None, reason="rapidocr_onnxruntime not installed")


def test_at_risk_rules():
    assert is_at_risk(make_us())
    assert not is_at_risk(make_ct())
    assert is_at_risk(make_ct(), ocr_all_images=True)


def test_detector_missing_raises_for_at_risk_only():
    with pytest.raises(PixelCleaningUnavailable) as info:
        run(make_us())
    assert "DOE" not in str(info.value)
    assert run(make_ct()).pixel_cleaned is False  # CT is not at risk: no detector needed
    assert run(make_us(), DeidOptions(clean_pixel_data=False)).pixel_cleaned is False


def test_undecodable_pixels():
    us = make_us()
    us.PixelData = b"\x00" * 10
    with pytest.raises(PixelDecodeError):
        run(us, text_detector=DETECTOR or (lambda: None))


@needs_ocr
def test_burned_in_text_blacked_out():
    us = make_us()
    r = run(us, text_detector=DETECTOR)
    assert r.pixel_cleaned and r.text_regions
    out = r.dataset
    assert out.BurnedInAnnotation == "NO"
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    pixels = out.pixel_array
    assert pixels[40:70, 45:300].max() == 0  # the text area
    assert (0, 0, 640, 16) in r.text_regions  # the synthetic fixed-region rule
    assert pixels[300, 320].max() > 0  # the anatomy is untouched
    assert DETECTOR.detect(pixels) == []
    assert verify(us, out, options=DeidOptions(), text_detector=DETECTOR) == []


@needs_ocr
def test_multiframe_all_frames_cleaned():
    us = make_us(frames=3)
    out = run(us, text_detector=DETECTOR).dataset
    pixels = out.pixel_array
    assert pixels.shape == (3, 480, 640, 3)
    assert pixels[:, 40:70, 45:300].max() == 0


@needs_ocr
def test_jpeg_input_examined_without_text_keeps_its_bytes():
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))  # colour bars, no text
    r = run(ds, text_detector=DETECTOR)
    assert r.pixel_cleaned and r.text_regions == ()
    assert r.dataset.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert r.dataset.PixelData == ds.PixelData and r.dataset.BurnedInAnnotation == "NO"
    assert verify(ds, r.dataset, options=DeidOptions()) == []


@needs_ocr
def test_detection_time_on_us_frame():
    frame = make_us().pixel_array
    DETECTOR.detect(frame)  # model load
    start = time.perf_counter()
    DETECTOR.detect(frame)
    elapsed_ms = (time.perf_counter() - start) * 1000
    print(f"detection on 480x640 US frame: {elapsed_ms:.0f} ms")
    assert elapsed_ms < 5000


def test_verifier_finds_planted_leaks():
    ct = make_ct()
    out = run(ct).dataset
    assert verify(ct, out, options=DeidOptions()) == []
    out.SeriesDescription = "AXIAL for John Doe"  # re-inserted name, other case and order
    out.add_new(0x00291010, "LO", "x")
    out.add_new(0x60003000, "OW", b"\x00\x00")
    out.SourceImageSequence[0].ReferencedSeriesSequence[0].ReferencedImageSequence[0].add_new(
        0x00081155, "UI", ct.SOPInstanceUID
    )
    del out.PatientIdentityRemoved
    kinds = {(leak.path, leak.kind) for leak in verify(ct, out, options=DeidOptions())}
    assert any(p == "(0008,103E)" and k.startswith("identifier from") for p, k in kinds)
    assert ("(0029,1010)", "private_tag") in kinds
    assert ("(6000,3000)", "overlay_group") in kinds
    assert ("(0012,0062)", "patient_identity_removed_missing") in kinds
    assert any(p.endswith("(0008,1155)") and k.startswith("identifier") for p, k in kinds)
    assert all("doe" not in k.lower() for _, k in kinds)


def test_verifier_scans_file_meta_and_dates():
    ct = make_ct()
    out = run(ct).dataset
    out.file_meta.ImplementationVersionName = "PID12345"
    out.ContentDate = "20240115"
    kinds = {leak.path for leak in verify(ct, out, options=DeidOptions())}
    assert "meta.(0002,0013)" in kinds and "(0008,0023)" in kinds
    assert verify(ct, out, options=DeidOptions(retain_longitudinal_full_dates=True)) != []


def test_ct_performance_without_pixels():
    ct = make_ct()
    run(ct)
    start = time.perf_counter()
    for _ in range(20):
        run(ct)
    elapsed_ms = (time.perf_counter() - start) / 20 * 1000
    print(f"deidentify 512x512 CT: {elapsed_ms:.2f} ms")
    assert elapsed_ms < 50
    assert np.frombuffer(run(ct).dataset.PixelData, np.int16).shape == (512 * 512,)


def test_verifier_ignores_the_method_text_the_engine_writes():
    # "PATIENT" and "BASIC" are words of the de-identification method text; a patient
    # so named must not be quarantined for them.
    ds = make_ct(patient_name="BASIC^PATIENT", patient_id="PID-77")
    result = deidentify(ds, options=DeidOptions.research_default(), keys=PseudonymKeys(secret=b"s" * 32))
    assert verify(ds, result.dataset, options=DeidOptions.research_default()) == []
