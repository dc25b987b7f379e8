"""Burned-in text found as a viewer shows it, removed in every rendering, re-detected if left.

These run the real RapidOCR detector on small images (256 x 256, one or two frames).
"""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file

from anonymizer.deid import DeidOptions, default_text_detector, verify
from anonymizer.deid.pixels import TextDetector
from anonymizer.deid.render import (
    black_out,
    detect_in_frame,
    find_text_regions,
    pixel_leak_frames,
    render_frames,
)
from anonymizer.deid.tests import burned_in_factory as F
from anonymizer.deid.tests.conftest_helpers import run
from anonymizer.deid.tests.test_render import TEXT_BOX, _grey_cases, decode_frames, stored_photometric

DETECTOR = default_text_detector()
# About 100 s of real text detection, none of it touching the database: CI runs it once.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(DETECTOR is None, reason="rapidocr_onnxruntime not installed")]
PIXEL_MODULE = (
    "PixelData",
    "PhotometricInterpretation",
    "SamplesPerPixel",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)


def _cases() -> dict[str, Dataset]:
    cases = {
        "palette_8bit_lut": F.palette(),
        "palette_16bit_lut": F.palette(lut_bits=16),
        "palette_segmented": F.palette(segmented=True),
        "rgb_planar0": F.colour("RGB"),
        "rgb_planar1": F.colour("RGB", planar=1),
        "ybr_full": F.colour("YBR_FULL"),
        "ybr_full_422": F.colour("YBR_FULL_422"),
    }
    return cases | _grey_cases()


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _text_left(ds: Dataset, detector: TextDetector) -> list[tuple[int, int, int, int]]:
    """Boxes the cleaner's own setting still finds in any rendering of any frame of ``ds``."""
    renderings = render_frames(decode_frames(ds), ds, stored_photometric(ds))
    return [box for frame in renderings for box in detect_in_frame(frame, detector)]


def _with_original_pixels(out: Dataset, original: Dataset) -> Dataset:
    """A cleaning that forgot the pixels: the de-identified header over the input's pixel module."""
    leaky = copy.deepcopy(out)
    for keyword in PIXEL_MODULE:
        if keyword in original:
            setattr(leaky, keyword, original[keyword].value)
        elif keyword in leaky:
            delattr(leaky, keyword)
    return leaky


@pytest.mark.parametrize("name", list(_cases()))
def test_faint_text_is_found_removed_and_verified(name):
    ds = _cases()[name]
    assert DETECTOR is not None
    if name.startswith(("palette", "mono")):  # stored values alone hide it: the old blind spot
        stored = decode_frames(ds)
        assert not any(_overlaps(b, TEXT_BOX) for frame in stored for b in DETECTOR.detect(frame))
    result = run(ds, text_detector=DETECTOR)
    assert result.pixel_cleaned
    assert any(_overlaps(b, TEXT_BOX) for b in result.text_regions)
    out = result.dataset
    assert _text_left(out, DETECTOR) == []
    assert verify(ds, out, options=DeidOptions(), text_detector=DETECTOR) == []
    assert out.PhotometricInterpretation == ("RGB" if int(ds.SamplesPerPixel) == 3 else ds.PhotometricInterpretation)
    assert decode_frames(out)[0, 150:].tolist() == decode_frames(ds)[0, 150:].tolist() or name.startswith("ybr")


@pytest.mark.parametrize("name", ["palette_8bit_lut", "mono1_12bit_window", "mono2_16bit_voi_lut", "ybr_full"])
def test_incomplete_cleaning_is_caught_by_the_verifier(name):
    ds = _cases()[name]
    out = run(ds, text_detector=DETECTOR).dataset
    leaky = _with_original_pixels(out, ds)
    assert pixel_leak_frames(leaky, DETECTOR) == [0]
    leaks = verify(ds, leaky, options=DeidOptions(), text_detector=DETECTOR)
    assert [(leak.path, leak.kind) for leak in leaks] == [("(7FE0,0010)", "burned_in_text")]


def test_text_in_one_frame_of_several_is_removed_from_that_frame():
    ds = F.palette()
    first = decode_frames(ds)[0]
    blank = np.where(F.mask(), 10, first)
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([blank, first]).astype(np.uint8).tobytes()
    result = run(ds, text_detector=DETECTOR)
    assert any(_overlaps(b, TEXT_BOX) for b in result.text_regions)
    assert _text_left(result.dataset, DETECTOR) == []
    assert pixel_leak_frames(_with_original_pixels(result.dataset, ds), DETECTOR) == [1]


def test_ybr_partial_text_is_found_and_blacked_out_as_rgb():
    rgb = F.rgb_frame().astype(np.float64)
    y = 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255
    cb = 128 + (-37.797 * rgb[..., 0] - 74.203 * rgb[..., 1] + 112.0 * rgb[..., 2]) / 255
    cr = 128 + (112.0 * rgb[..., 0] - 93.786 * rgb[..., 1] - 18.214 * rgb[..., 2]) / 255
    data = np.rint(np.stack([y, cb, cr], axis=-1))[np.newaxis].astype(np.uint8)
    ds = F.colour("RGB")
    boxes = find_text_regions(data, ds, "YBR_PARTIAL_420", DETECTOR)
    assert any(_overlaps(b, TEXT_BOX) for b in boxes)
    cleaned, stored_as = black_out(data, ds, "YBR_PARTIAL_420", boxes)
    assert stored_as == "RGB"
    assert [detect_in_frame(r, DETECTOR) for r in render_frames(cleaned, ds, "RGB")] == [[]]


def test_examples_palette_banner_found_and_gone():
    ds = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    banner = (0, 0, 800, 60)  # patient ID, exam date and time
    stored = decode_frames(ds)[0]
    assert not any(_overlaps(b, banner) for b in DETECTOR.detect(stored))  # the reported leak
    result = run(ds, text_detector=DETECTOR)
    assert sum(_overlaps(b, banner) for b in result.text_regions) >= 4
    out = result.dataset
    assert out.PhotometricInterpretation == "PALETTE COLOR"
    assert _text_left(out, DETECTOR) == []
    assert verify(ds, out, options=DeidOptions(), text_detector=DETECTOR) == []
    assert verify(ds, _with_original_pixels(out, ds), options=DeidOptions(), text_detector=DETECTOR)


@pytest.mark.parametrize("name", ["US1_J2KR.dcm", "examples_ybr_color.dcm"])
def test_real_colour_ultrasound_cleaned_and_verified(name):
    ds = pydicom.dcmread(get_testdata_file(name))
    if int(ds.get("NumberOfFrames", 1) or 1) > 2:
        ds = _first_frames(ds, 2)
    result = run(ds, text_detector=DETECTOR)
    assert result.text_regions
    out = result.dataset
    assert out.PhotometricInterpretation == "RGB"
    assert _text_left(out, DETECTOR) == []
    assert verify(ds, out, options=DeidOptions(), text_detector=DETECTOR) == []


def _first_frames(ds: Dataset, count: int) -> Dataset:
    """An uncompressed copy of ``ds`` holding its first ``count`` frames (keeps the test small)."""
    frames = decode_frames(ds)[:count]
    small = copy.deepcopy(ds)
    small.NumberOfFrames = count
    small.set_pixel_data(frames, photometric_interpretation="RGB", bits_stored=8, generate_instance_uid=False)
    return small


@pytest.mark.parametrize("name", ["SC_rgb.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"])
def test_images_without_text_pass_untouched(name):
    ds = pydicom.dcmread(get_testdata_file(name))
    options = DeidOptions(ocr_all_images=True)
    result = run(ds, options, text_detector=DETECTOR)
    assert result.pixel_cleaned and result.text_regions == ()  # went through, found nothing
    assert (decode_frames(result.dataset) == decode_frames(ds)).all()
    assert verify(ds, result.dataset, options=options, text_detector=DETECTOR) == []


def test_verifier_checks_an_image_at_risk_only_by_its_burned_in_flag():
    ds = _grey_cases()["mono2_16bit_window"]
    ds.Modality, ds.SOPClassUID = "CT", "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.BurnedInAnnotation = "YES"
    result = run(ds, text_detector=DETECTOR)
    assert result.pixel_cleaned and result.dataset.BurnedInAnnotation == "NO"
    assert verify(ds, result.dataset, options=DeidOptions(), text_detector=DETECTOR) == []
    leaky = _with_original_pixels(result.dataset, ds)
    assert verify(ds, leaky, options=DeidOptions(), text_detector=DETECTOR)[-1].kind == "burned_in_text"
