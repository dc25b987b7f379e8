"""Every encoding of pydicom's test files: decoded like a reference, kept when clean, stored when cleaned."""

from __future__ import annotations

import io
import shutil
import subprocess
import zlib

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import ExplicitVRLittleEndian

from anonymizer.deid import DeidOptions, PixelDecodeError
from anonymizer.deid.codec import Frames, decode_frames, store_frames
from anonymizer.deid.render import PAD, black_out
from anonymizer.deid.tests.conftest_helpers import run
from anonymizer.processing import serialize


class NoText:
    """A detector that finds nothing."""

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        return []


class TopLeftText:
    """A detector that 'finds' a line of text in the top-left quarter of every frame it is shown.

    Line-shaped, because the cleaner drops boxes taller than a text line (rectangles and
    texture, not text); sized from the image it is given, which may be a scaled rendering.
    """

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        rows, cols = image.shape[0] - 2 * PAD, image.shape[1] - 2 * PAD  # the cleaner pads renderings
        return [(PAD, PAD, PAD + max(1, cols // 2), PAD + max(1, rows // 40))]


def _read(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file(name))


def _reread(ds: pydicom.Dataset) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(serialize(ds)))


def _inflated(name: str) -> pydicom.Dataset:
    """A deflated file read without pydicom's deflate path: the body inflated here."""
    raw = open(get_testdata_file(name), "rb").read()  # noqa: SIM115
    meta = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).file_meta
    body = zlib.decompress(raw[132 + 12 + int(meta.FileMetaInformationGroupLength) :], -zlib.MAX_WBITS)
    ds = read_dataset(io.BytesIO(body), is_implicit_VR=False, is_little_endian=True)
    ds.file_meta = FileMetaDataset(meta)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _upsampled_422(name: str) -> np.ndarray:
    """Native YBR_FULL_422 expanded by hand: Y0 Y1 Cb Cr for each pair of pixels."""
    ds = _read(name)
    rows, cols = int(ds.Rows), int(ds.Columns)
    raw = np.frombuffer(ds.PixelData, dtype=np.uint8)[: rows * cols * 2].reshape(rows, cols // 2, 4)
    out = np.empty((rows, cols, 3), dtype=np.uint8)
    out[:, 0::2, 0], out[:, 1::2, 0] = raw[..., 0], raw[..., 1]
    for channel in (1, 2):
        out[:, 0::2, channel] = out[:, 1::2, channel] = raw[..., channel + 1]
    return out


def _plugin(name: str, plugin: str) -> np.ndarray:
    return pixel_array(get_testdata_file(name), decoding_plugin=plugin, as_rgb=False)


# (file, reference values, tolerance): the reference is the uncompressed / little-endian twin
# of the same image or another decoder plugin than the one pydicom tries first.
REFERENCES = {
    "MR_small_bigendian.dcm": (lambda: _read("MR_small.dcm").pixel_array, 0),
    "SC_rgb_expb_32bit.dcm": (lambda: _read("SC_rgb_32bit.dcm").pixel_array, 0),
    "SC_rgb_32bit.dcm": (lambda: _read("SC_rgb_rle_32bit.dcm").pixel_array, 0),
    "SC_rgb_32bit_2frame.dcm": (lambda: _read("SC_rgb_rle_32bit_2frame.dcm").pixel_array, 0),
    "SC_rgb_16bit.dcm": (lambda: _read("SC_rgb_rle_16bit.dcm").pixel_array, 0),
    "SC_rgb_expb_16bit.dcm": (lambda: _read("SC_rgb_16bit.dcm").pixel_array, 0),
    "SC_rgb_small_odd_big_endian.dcm": (lambda: _read("SC_rgb_small_odd.dcm").pixel_array, 0),
    "OBXXXX1A_expb.dcm": (lambda: _read("OBXXXX1A.dcm").pixel_array, 0),
    "gdcm-US-ALOKA-16_big.dcm": (lambda: _read("gdcm-US-ALOKA-16.dcm").pixel_array, 0),
    "rtdose_expb.dcm": (lambda: _read("rtdose.dcm").pixel_array, 0),
    "liver_expb_1frame.dcm": (lambda: _read("liver_1frame.dcm").pixel_array, 0),
    # 12-bit JPEG Extended: JPGExtended.dcm is the repaired copy of JPEG-lossy.dcm (lossy: +-1).
    "JPEG-lossy.dcm": (lambda: _plugin("JPGExtended.dcm", "pylibjpeg"), 1),
    "JPGExtended.dcm": (lambda: _plugin("JPGExtended.dcm", "pylibjpeg"), 0),
    "JPEG-LL.dcm": (lambda: _plugin("JPEG-LL.dcm", "gdcm"), 0),
    "JPGLosslessP14SV1_1s_1f_8b.dcm": (lambda: _plugin("JPGLosslessP14SV1_1s_1f_8b.dcm", "gdcm"), 0),
    "MR_small_jpeg_ls_lossless.dcm": (lambda: _read("MR_small.dcm").pixel_array, 0),
    "emri_small_jpeg_ls_lossless.dcm": (lambda: _read("emri_small.dcm").pixel_array, 0),
    "MR_small_RLE.dcm": (lambda: _read("MR_small.dcm").pixel_array, 0),
    "SC_rgb_rle_16bit.dcm": (lambda: _read("SC_rgb_16bit.dcm").pixel_array, 0),
    "JPEGLSNearLossless_16.dcm": (lambda: _plugin("JPEGLSNearLossless_16.dcm", "gdcm"), 0),
    "RG1_J2KR.dcm": (lambda: _read("RG1_UNCR.dcm").pixel_array, 0),
    "US1_J2KR.dcm": (lambda: _read("US1_UNCR.dcm").pixel_array, 0),
    "emri_small_jpeg_2k_lossless.dcm": (lambda: _read("emri_small.dcm").pixel_array, 0),
    "J2K_pixelrep_mismatch.dcm": (lambda: _plugin("J2K_pixelrep_mismatch.dcm", "gdcm"), 0),
    "GDCMJ2K_TextGBR.dcm": (lambda: _plugin("GDCMJ2K_TextGBR.dcm", "gdcm"), 0),
    "image_dfl.dcm": (lambda: _inflated("image_dfl.dcm").pixel_array, 0),
    "SC_ybr_full_422_uncompressed.dcm": (lambda: _upsampled_422("SC_ybr_full_422_uncompressed.dcm"), 0),
    "examples_ybr_color.dcm": (lambda: _plugin("examples_ybr_color.dcm", "gdcm"), 0),
    "SC_rgb_dcmtk_+eb+cy+np.dcm": (lambda: _plugin("SC_rgb_dcmtk_+eb+cy+np.dcm", "gdcm"), 0),
}
ENCODINGS = sorted(REFERENCES)
AT_RISK_OPTIONS = DeidOptions(ocr_all_images=True)  # every image goes through detection


@pytest.mark.parametrize("name", ENCODINGS)
def test_decode_frames_matches_a_reference_decoder(name: str) -> None:
    reference, tolerance = REFERENCES[name]
    frames = decode_frames(_read(name))
    expected = reference()
    expected = expected.reshape(frames.data.shape)
    assert frames.data.shape[0] == int(_read(name).get("NumberOfFrames", 1) or 1)
    difference = np.abs(frames.data.astype(np.int64) - expected.astype(np.int64))
    assert difference.max() <= tolerance


def test_photometric_names_what_the_decoder_returned() -> None:
    assert decode_frames(_read("US1_J2KR.dcm")).photometric == "RGB"  # YBR_RCT: inverse transform applied
    assert decode_frames(_read("examples_ybr_color.dcm")).photometric == "YBR_FULL"  # upsampled 422
    assert decode_frames(_read("SC_rgb_jpeg_dcmtk.dcm")).photometric == "YBR_FULL"
    assert decode_frames(_read("SC_ybr_full_422_uncompressed.dcm")).photometric == "YBR_FULL"
    assert decode_frames(_read("OBXXXX1A_expb.dcm")).photometric == "PALETTE COLOR"
    assert decode_frames(_read("RG1_J2KR.dcm")).photometric == "MONOCHROME1"


@pytest.mark.parametrize("name", ENCODINGS)
def test_examined_image_without_text_keeps_its_bytes_and_transfer_syntax(name: str) -> None:
    ds = _read(name)
    result = run(ds, AT_RISK_OPTIONS, text_detector=NoText())
    out = _reread(result.dataset)
    assert result.pixel_cleaned and result.text_regions == ()
    assert out.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert out.PixelData == ds.PixelData
    assert np.array_equal(decode_frames(out).data, decode_frames(ds).data)


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "MR_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm"])
def test_image_not_at_risk_is_never_decoded(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _read(name)

    def refuse(_ds: pydicom.Dataset) -> Frames:
        raise AssertionError("decoded")

    monkeypatch.setattr("anonymizer.deid.api.decode_frames", refuse)
    result = run(ds)
    out = _reread(result.dataset)
    assert not result.pixel_cleaned
    assert (out.file_meta.TransferSyntaxUID, out.PixelData) == (ds.file_meta.TransferSyntaxUID, ds.PixelData)


def test_deflated_output_is_deflated_again_with_the_same_pixels() -> None:
    ds = _read("image_dfl.dcm")
    raw = serialize(run(ds, DeidOptions(clean_pixel_data=False)).dataset)
    out = pydicom.dcmread(io.BytesIO(raw))
    assert out.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert ds.PixelData not in raw  # the body is compressed on disk
    assert out.PixelData == ds.PixelData


def test_encapsulated_output_keeps_its_basic_offset_table() -> None:
    ds = _read("emri_small_jpeg_2k_lossless.dcm")
    out = _reread(run(ds).dataset)
    assert out.PixelData[:8] == ds.PixelData[:8] and out.PixelData == ds.PixelData
    assert out["PixelData"].is_undefined_length


def _consistent(out: pydicom.Dataset, data: np.ndarray) -> None:
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    samples = data.shape[-1] if data.ndim == 4 else 1
    assert int(out.SamplesPerPixel) == samples
    assert int(out.BitsAllocated) in (1, data.dtype.itemsize * 8)
    assert int(out.HighBit) == int(out.BitsStored) - 1 and int(out.BitsStored) <= int(out.BitsAllocated)
    assert int(out.PixelRepresentation) == (1 if data.dtype.kind == "i" else 0)
    assert ("PlanarConfiguration" in out) == (samples > 1)
    assert out.BurnedInAnnotation == "NO"


@pytest.mark.parametrize("name", ENCODINGS)
def test_image_with_text_is_cleaned_and_stored_consistently(name: str) -> None:
    ds = _read(name)
    before = decode_frames(ds)
    result = run(ds, AT_RISK_OPTIONS, text_detector=TopLeftText())
    assert result.text_regions
    out = _reread(result.dataset)
    after = decode_frames(out)
    # Colour comes back as RGB: YBR_FULL is not valid uncompressed in every IOD.
    expected, _stored_as = black_out(before.data, ds, before.photometric, list(result.text_regions))
    assert after.photometric == out.PhotometricInterpretation
    assert after.photometric == ("RGB" if before.photometric == "YBR_FULL" else before.photometric)
    assert np.array_equal(after.data, expected)
    _consistent(out, after.data)


@pytest.mark.parametrize(
    ("name", "twin"), [("OBXXXX1A_expb.dcm", "OBXXXX1A.dcm"), ("gdcm-US-ALOKA-16_big.dcm", "gdcm-US-ALOKA-16.dcm")]
)
def test_big_endian_palette_keeps_its_colours(name: str, twin: str) -> None:
    # Compared with the little-endian twin: pydicom misreads OBXXXX1A_expb.dcm's LUT itself.
    ds, reference = _read(name), _read(twin)
    out = _reread(run(ds, text_detector=TopLeftText()).dataset)
    x0, y0, x1, y1 = (0, 0, int(ds.Columns) // 2 + 4, int(ds.Rows) // 2 + 4)
    shown_in, shown_out = apply_color_lut(reference.pixel_array, reference), apply_color_lut(out.pixel_array, out)
    mask = np.ones(shown_in.shape[:2], dtype=bool)
    mask[y0:y1, x0:x1] = False
    assert np.array_equal(shown_in[mask], shown_out[mask])


def test_store_frames_writes_32_bit_rgb_little_endian() -> None:
    ds = _read("SC_rgb_expb_32bit_2frame.dcm")
    frames = decode_frames(ds)
    store_frames(ds, frames)
    out = _reread(ds)
    assert out.pixel_array.dtype == np.uint32 and np.array_equal(out.pixel_array, frames.data)
    _consistent(out, frames.data)


def test_damaged_stream_is_a_decode_error_without_values() -> None:
    ds = _read("JPEG2000-embedded-sequence-delimiter.dcm")
    with pytest.raises(PixelDecodeError) as info:
        decode_frames(ds)
    assert "1.2.840.10008.1.2.4.91" in str(info.value) and str(ds.PatientName) not in str(info.value)


def _dciodvfy_pixel_errors(path) -> set[str]:
    text = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False).stderr
    words = ("Pixel", "Bits", "Photometric", "Planar", "Samples", "Rows", "Columns")
    return {line for line in text.splitlines() if line.startswith("Error") and any(w in line for w in words)}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
@pytest.mark.parametrize("name", ["US1_J2KR.dcm", "examples_ybr_color.dcm", "OBXXXX1A_expb.dcm", "SC_rgb_32bit.dcm"])
def test_cleaned_output_has_no_new_pixel_module_errors(name: str, tmp_path) -> None:
    out = run(_read(name), text_detector=TopLeftText()).dataset
    (tmp_path / "out.dcm").write_bytes(serialize(out))
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert _dciodvfy_pixel_errors(tmp_path / "out.dcm") <= _dciodvfy_pixel_errors(get_testdata_file(name))
