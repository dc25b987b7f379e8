"""Viewer-like renderings and the blackout in stored values (no text detector needed)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.sequence import Sequence

from anonymizer.deid.codec import decode_frames as _decode
from anonymizer.deid.pixels import MARGIN
from anonymizer.deid.render import (
    CLEAN_SHORT_SIDE,
    black_out,
    decoded_photometric,
    find_text_regions,
    is_text_line,
    palette_lut,
    pixel_leak_frames,
    render_frame,
    render_frames,
)
from anonymizer.deid.tests import burned_in_factory as F

TEXT_BOX = (12, 20, 200, 64)  # around TEXT at TEXT_AT in the 30 px font


def decode_frames(ds):
    """The stored values the renderers take (codec's Frames carry their colour space too)."""
    return _decode(ds).data


def stored_photometric(ds):
    """The colour space of what :func:`decode_frames` returns (YBR stays YBR)."""
    return _decode(ds).photometric


def _renderings(ds: Dataset) -> list[np.ndarray]:
    return render_frames(decode_frames(ds), ds, stored_photometric(ds))[0]


def _contrast(image: np.ndarray) -> float:
    """Mean brightness of the glyphs minus that of the background around them."""
    grey = image.astype(np.float64).mean(axis=-1)
    text = F.mask()
    x0, y0, x1, y1 = TEXT_BOX
    around = np.zeros_like(text)
    around[y0:y1, x0:x1] = True
    return float(grey[text].mean() - grey[around & ~text].mean())


@pytest.mark.parametrize("kind", [{}, {"lut_bits": 16}, {"segmented": True}])
def test_palette_text_renders_white_though_its_index_is_next_to_dark_ones(kind):
    ds = F.palette(**kind)
    stored = decode_frames(ds)[0]
    assert abs(int(stored[F.mask()].mean()) - 10) <= 1  # faint in the stored indices
    (image,) = _renderings(ds)
    assert image.dtype == np.uint8 and image.shape == (F.SIZE, F.SIZE, 3)
    assert (image[F.mask()] == 255).all()
    assert _contrast(image) > 200


def test_real_segmented_palette_renders_in_colour():
    ds = pydicom.dcmread(get_testdata_file("gdcm-US-ALOKA-16.dcm"))
    assert "SegmentedRedPaletteColorLookupTableData" in ds
    (image,) = _renderings(ds)
    assert image.shape == (480, 640, 3) and image.max() > 200
    assert (image[..., 0] != image[..., 2]).any()  # colour, not grey indices


def test_real_segmented_palette_blackout_renders_black():
    ds = pydicom.dcmread(get_testdata_file("gdcm-US-ALOKA-16.dcm"))
    data = decode_frames(ds)
    cleaned, stored_as = black_out(data, ds, "PALETTE COLOR", [(0, 0, 640, 30)])
    assert stored_as == "PALETTE COLOR" and cleaned.dtype == data.dtype == np.uint16
    (image,) = render_frames(cleaned, ds, stored_as)[0]
    assert image[:30].max() == 0 and (cleaned[0, 30:] == data[0, 30:]).all()


def test_examples_palette_banner_rendered_through_the_lut():
    ds = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    (image,) = _renderings(ds)
    banner = image[:60].astype(np.int64)
    assert banner.max() > 200 and banner.std() > 30


@pytest.mark.parametrize(("photometric", "planar"), [("RGB", 0), ("RGB", 1), ("YBR_FULL", 0), ("YBR_FULL_422", 0)])
def test_colour_forms_render_as_the_rgb_they_hold(photometric, planar):
    ds = F.colour(photometric, planar=planar)
    (image,) = _renderings(ds)
    assert np.abs(image.astype(int) - F.rgb_frame().astype(int)).max() <= 3 + (photometric == "YBR_FULL_422") * 60
    assert _contrast(image) > 150


def test_ybr_partial_renders_as_rgb():
    rgb = F.rgb_frame().astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    ybr = np.rint(np.stack([y, cb, cr], axis=-1)).astype(np.uint8)
    ds = F.colour("RGB")
    for photometric in ("YBR_PARTIAL_420", "YBR_PARTIAL_422"):
        (image,) = render_frame(ybr, ds, photometric)
        assert np.abs(image.astype(int) - F.rgb_frame().astype(int)).max() <= 3
        cleaned, stored_as = black_out(ybr[np.newaxis], ds, photometric, [TEXT_BOX])
        assert stored_as == "RGB" and cleaned[0, 30, 30].tolist() == [0, 0, 0]


def _grey_cases() -> dict[str, Dataset]:
    return {
        "mono1_12bit_window": F.grey(
            F.faint_grey(3000, 2950, 4000, 0), "MONOCHROME1", 12, WindowCenter=2975, WindowWidth=50
        ),
        "mono2_8bit_window": F.grey(
            F.faint_grey(100, 103, 250, 0), "MONOCHROME2", 8, WindowCenter=101.5, WindowWidth=4
        ),
        "mono2_12bit_rescale_window": F.grey(
            F.faint_grey(2000, 2010, 4095, 0),
            "MONOCHROME2",
            12,
            RescaleSlope=1,
            RescaleIntercept=-1024,
            WindowCenter=981,
            WindowWidth=10,
        ),
        "mono2_16bit_window": F.grey(
            F.faint_grey(30000, 30040, 65535, 0), "MONOCHROME2", 16, WindowCenter=30020, WindowWidth=40
        ),
        "mono2_16bit_voi_lut": _voi_lut_case(),
    }


def _voi_lut_case() -> Dataset:
    ds = F.grey(F.faint_grey(30000, 30040, 65535, 0), "MONOCHROME2", 16)
    item = Dataset()
    item.LUTDescriptor = [256, 29900, 8]
    item.LUTData = [0] * 120 + [255] * 136  # 30000 -> index 100 (black), 30040 -> 140 (white)
    ds.VOILUTSequence = Sequence([item])
    return ds


@pytest.mark.parametrize("name", list(_grey_cases()))
def test_grey_text_faint_in_stored_values_is_bright_in_some_rendering(name):
    ds = _grey_cases()[name]
    renderings = _renderings(ds)
    assert all(image.dtype == np.uint8 and image.shape == (F.SIZE, F.SIZE, 3) for image in renderings)
    assert _contrast(renderings[0]) > 150  # the file's own window or LUT comes first
    assert abs(_contrast(renderings[1])) < 20  # full range: the text is faint there


def test_monochrome1_low_stored_values_render_bright():
    ds = _grey_cases()["mono1_12bit_window"]
    image = _renderings(ds)[0]
    assert image[F.mask()].min() > 200  # text stored at 2950, below its 3000 background
    assert image[5, 128].max() < 30


def test_more_than_8_bits_get_extra_windows():
    assert len(_renderings(_grey_cases()["mono2_16bit_window"])) >= 5
    assert len(_renderings(_grey_cases()["mono2_8bit_window"])) <= 3


def test_per_frame_voi_of_enhanced_multiframe_is_used():
    ds = F.grey(np.stack([F.faint_grey(30000, 30040, 65535, 0)] * 2), "MONOCHROME2", 16)
    ds.NumberOfFrames = 2
    frames = []
    for center in (30020, 10000):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, 40
        group = Dataset()
        group.FrameVOILUTSequence = Sequence([voi])
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    first, second = render_frames(decode_frames(ds), ds, "MONOCHROME2")
    assert _contrast(first[0]) > 150
    assert abs(_contrast(second[0])) < 5  # frame 2's window sits far below the text


@pytest.mark.parametrize("name", list(_grey_cases()))
def test_grey_blackout_is_uniform_and_darkest_in_every_rendering(name):
    ds = _grey_cases()[name]
    data = decode_frames(ds)
    cleaned, stored_as = black_out(data, ds, "MONOCHROME1" if "mono1" in name else "MONOCHROME2", [TEXT_BOX])
    assert stored_as == ds.PhotometricInterpretation and cleaned.dtype == data.dtype
    x0, y0, x1, y1 = TEXT_BOX
    for image in render_frames(cleaned, ds, stored_as)[0]:
        region = image[y0:y1, x0:x1]
        assert region.min() == region.max() == image.min()
    assert (cleaned[0, 100:] == data[0, 100:]).all()  # outside the box nothing changes


@pytest.mark.parametrize("kind", [{}, {"lut_bits": 16}, {"segmented": True}])
def test_palette_blackout_uses_the_index_that_renders_black(kind):
    ds = F.palette(**kind)
    cleaned, stored_as = black_out(decode_frames(ds), ds, "PALETTE COLOR", [TEXT_BOX])
    assert stored_as == "PALETTE COLOR"
    first, lut = palette_lut(ds)
    assert lut[int(cleaned[0, 30, 30]) - first].tolist() == [0, 0, 0]
    (image,) = render_frames(cleaned, ds, stored_as)[0]
    assert image[20:64, 12:200].max() == 0


def test_colour_blackout_comes_back_rgb_and_zero():
    ds = F.colour("YBR_FULL")
    data = decode_frames(ds)
    assert decoded_photometric(ds) == "RGB"  # pydicom converts YBR_FULL on decode
    cleaned, stored_as = black_out(data, ds, "RGB", [TEXT_BOX])
    assert stored_as == "RGB" and cleaned[0, 20:64, 12:200].max() == 0
    assert (cleaned[0, 100:] == data[0, 100:]).all()


class _Recording:
    """A detector that finds one box, given as fractions of the image it is shown, and
    remembers the image sizes it was shown."""

    def __init__(self, box: tuple[float, float, float, float], text: str | None = None) -> None:
        self.box, self.text, self.shapes = box, text, []

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        self.shapes.append(image.shape)
        rows, cols = image.shape[:2]
        x0, y0, x1, y1 = self.box
        return [(int(x0 * cols), int(y0 * rows), int(x1 * cols), int(y1 * rows))]

    def read(self, image: np.ndarray) -> tuple[str, float]:
        return (self.text or "", 0.9)


LINE = (0.3, 0.3, 0.6, 0.36)


def test_verifier_detects_at_another_scale_than_the_cleaner():
    ds = F.palette()
    data = decode_frames(ds)
    cleaner = _Recording(LINE)
    assert find_text_regions(data, ds, "PALETTE COLOR", cleaner)
    verifier = _Recording(LINE, text="AB12")
    assert pixel_leak_frames(ds, verifier) == [0]
    # The whole frame first, then the band around the line it found, both at one scale.
    cleaner_widths = {shape[1] for shape in cleaner.shapes}
    verifier_sides = {shape[:2] for shape in verifier.shapes}
    assert len(cleaner_widths) == len(verifier_sides) == 1
    assert min(cleaner.shapes[0][:2]) >= CLEAN_SHORT_SIDE  # small images are scaled up...
    assert max(s[1] for s in verifier_sides) < min(cleaner_widths)  # ...and the verifier looks at another size


def test_verifier_boxes_must_read_as_characters_and_be_line_high():
    ds = F.palette()
    assert pixel_leak_frames(ds, _Recording(LINE, text="")) == []  # texture, not text
    assert pixel_leak_frames(ds, _Recording(LINE, text="x")) == []  # one character
    assert pixel_leak_frames(ds, _Recording((0.1, 0.1, 0.9, 0.9), text="AB12")) == []  # a drawn frame
    assert not is_text_line((0, 0, 100, 200), 256) and is_text_line((0, 0, 100, 30), 256)


def test_cleaner_detects_again_where_it_found_text():
    ds = F.palette()
    cleaner = _Recording(LINE)
    find_text_regions(decode_frames(ds), ds, "PALETTE COLOR", cleaner)
    assert len(cleaner.shapes) == 2  # a second look on the blacked-out frame finds nothing new
    (full, band) = cleaner.shapes
    assert band[1] == full[1] and band[0] < full[0] / 2  # only the band around the line, full width


class _NextToIt:
    """Finds a line in the frame; shown the band around it, a second line at the band's top."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        self.shapes.append(image.shape)
        rows, cols = image.shape[:2]
        if len(self.shapes) == 1:  # the frame: one line at 40-45 % of its height
            return [(int(0.2 * cols), int(0.40 * rows), int(0.6 * cols), int(0.45 * rows))]
        return [(int(0.2 * cols), 16, int(0.6 * cols), 16 + rows // 10)]  # just inside the padding


def test_cleaner_second_look_finds_a_line_next_to_a_found_one():
    ds = F.palette()
    rows, detector = int(ds.Rows), _NextToIt()
    upper, lower = sorted(find_text_regions(decode_frames(ds), ds, "PALETTE COLOR", detector), key=lambda b: b[1])
    assert len(detector.shapes) == 2 and detector.shapes[1][0] < detector.shapes[0][0] / 2
    # ``lower`` is the line of the first look (40 % down); the second look's line comes back in
    # frame coordinates at the top of the band: above it, within three line heights.
    line_top, line_height = lower[1] + MARGIN, lower[3] - lower[1] - 2 * MARGIN
    assert abs(line_top - 0.40 * rows) < 6
    assert line_top - 3 * max(line_height, 12) - MARGIN - 2 <= upper[1] < line_top
