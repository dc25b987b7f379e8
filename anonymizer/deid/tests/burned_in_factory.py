"""Synthetic images whose burned-in text is faint in the stored values and bright on screen.

Each maker returns a US dataset (at risk of burned-in text) of SIZE x SIZE pixels with
TEXT drawn at TEXT_AT, in a stored value next to its background's, and a display transform
(palette, window, VOI LUT, MONOCHROME1) that shows it bright. ``mask`` is where the glyphs are.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom import Dataset
from pydicom.pixels import convert_color_space

from .factory import make_us

SIZE = 256
TEXT = "ID 4471 DOE"
TEXT_AT = (16, 24)


def mask(size: int = SIZE) -> np.ndarray:
    """Boolean glyph mask of TEXT at TEXT_AT, in a large font."""
    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).text(TEXT_AT, TEXT, fill=255, font=ImageFont.load_default(size=30))
    return np.asarray(image) > 127


def _anatomy(size: int = SIZE) -> np.ndarray:
    """Boolean disc in the lower half: something that is not text."""
    yy, xx = np.indices((size, size))
    return (yy - 170) ** 2 + (xx - 128) ** 2 < 60**2


def _us(rows: int = SIZE) -> Dataset:
    ds = make_us()
    for kw in ("PlanarConfiguration", "NumberOfFrames"):
        if kw in ds:
            delattr(ds, kw)
    ds.Rows = ds.Columns = rows
    return ds


def grey(values: np.ndarray, photometric: str, bits: int, **attrs: object) -> Dataset:
    """A one-sample image of ``values`` with extra attributes (windows, rescale, LUTs)."""
    ds = _us()
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = values.astype(np.uint8 if bits <= 8 else np.uint16).tobytes()
    return ds


def faint_grey(background: int, text: int, anatomy: int, corner: int) -> np.ndarray:
    """Background everywhere, TEXT one step away from it, a disc and a corner far from both."""
    values = np.full((SIZE, SIZE), background, dtype=np.int64)
    values[_anatomy()] = anatomy
    values[-8:, -8:] = corner
    values[mask()] = text
    return values


def palette(*, lut_bits: int = 8, segmented: bool = False) -> Dataset:
    """PALETTE COLOR: index 11 (the text) is white, every other index is a dark ramp."""
    indices = faint_grey(10, 11, 200, 255)
    ramp = (np.arange(256) // 4).astype(np.int64)
    ramp[11] = 255
    entries = ramp * 257 if lut_bits == 16 or segmented else ramp
    ds = grey(indices, "PALETTE COLOR", 8)
    for colour in ("Red", "Green", "Blue"):
        ds.add_new(_descriptor_tag(colour), "US", [256, 0, 16 if segmented else lut_bits])
        if segmented:  # one discrete segment (opcode 0) holding all 256 entries, PS3.3 C.7.9.2
            words = np.concatenate([[0, 256], entries]).astype(np.uint16)
            ds.add_new(_segmented_tag(colour), "OW", words.tobytes())
        else:
            ds.add_new(_data_tag(colour), "OW", entries.astype(np.uint16 if lut_bits == 16 else np.uint8).tobytes())
    return ds


_COLOURS = {"Red": 0, "Green": 1, "Blue": 2}


def _descriptor_tag(colour: str) -> int:
    return 0x00281101 + _COLOURS[colour]


def _data_tag(colour: str) -> int:
    return 0x00281201 + _COLOURS[colour]


def _segmented_tag(colour: str) -> int:
    return 0x00281221 + _COLOURS[colour]


def rgb_frame(size: int = SIZE) -> np.ndarray:
    """8-bit RGB: dark grey background, a brighter disc, white text."""
    frame = np.full((size, size, 3), 30, dtype=np.uint8)
    frame[_anatomy(size)] = (90, 60, 60)
    frame[mask(size)] = (255, 255, 255)
    return frame


def colour(photometric: str, *, planar: int = 0) -> Dataset:
    """RGB (planar 0 or 1), YBR_FULL or YBR_FULL_422 uncompressed, holding rgb_frame()."""
    ds = _us()
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = photometric
    ds.PlanarConfiguration = planar
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    frame = rgb_frame()
    if photometric == "RGB":
        ds.PixelData = (frame.transpose(2, 0, 1) if planar else frame).tobytes()
        return ds
    ybr = np.asarray(convert_color_space(frame, "RGB", "YBR_FULL"))
    if photometric == "YBR_FULL":
        ds.PixelData = ybr.tobytes()
        return ds
    # YBR_FULL_422: Y0 Y1 Cb Cr for each horizontal pair of pixels (PS3.3 C.7.6.3.1.2).
    pairs = ybr.reshape(SIZE, SIZE // 2, 2, 3)
    packed = np.stack([pairs[..., 0, 0], pairs[..., 1, 0], pairs[..., 0, 1], pairs[..., 0, 2]], axis=-1)
    ds.PixelData = packed.astype(np.uint8).tobytes()
    return ds
