"""Rendering a de-identified frame to an 8-bit PNG for thumbnails, the simple image page and
the quarantine's before/after preview: grey through the modality and VOI LUTs, palette colour
through its colour LUTs, YBR converted to RGB."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

MAX_SIZE = 4096  # the largest thumbnail side a caller may ask for


class RenderError(ValueError):
    """The file holds no frame that can be drawn; the message says why, never with a value from it."""


def frame_png(path_or_file: object, *, frame: int = 0, size: int | None = None) -> bytes:
    """The frame as a PNG, scaled to fit ``size`` pixels square when given.

    Raises IndexError for a frame out of range and RenderError when the file cannot be read
    or its pixels cannot be decoded (no pixel data, Rows or Columns of 0, truncated data).
    """
    if size is not None and not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be from 1 to {MAX_SIZE}")
    try:
        ds = pydicom.dcmread(path_or_file)  # type: ignore[arg-type]
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        # Values convert lazily: a malformed Rows or Columns raises here, not in the check below.
        empty = "PixelData" not in ds or not int(ds.get("Rows", 0) or 0) or not int(ds.get("Columns", 0) or 0)
    except Exception as exc:  # pydicom raises many types on damaged files
        raise RenderError(f"The file could not be read as DICOM ({type(exc).__name__}).") from None
    if not 0 <= frame < frames:
        raise IndexError(f"Frame {frame} is out of range (the image has {frames}).")
    if empty:
        raise RenderError("The image has no pixels to draw (no pixel data, or Rows or Columns is 0).")
    try:
        image = _image(ds, frame, frames)
    except Exception as exc:  # decoders raise many types
        raise RenderError(f"The image's pixels could not be decoded ({type(exc).__name__}).") from None
    if size:
        image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _image(ds: pydicom.Dataset, frame: int, frames: int) -> Image.Image:
    pixels = ds.pixel_array if frames == 1 else ds.pixel_array[frame]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        return _palette(ds, pixels)
    if int(ds.get("SamplesPerPixel", 1) or 1) == 1:
        pixels = apply_modality_lut(pixels, ds)
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            pixels = apply_voi_lut(pixels, ds)
        pixels = pixels.astype(np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) / (high - low or 1.0) * 255.0
        if photometric == "MONOCHROME1":
            scaled = 255.0 - scaled
        return Image.fromarray(scaled.astype(np.uint8), mode="L")
    if photometric.startswith("YBR"):
        from pydicom.pixels import convert_color_space

        pixels = convert_color_space(pixels, photometric, "RGB")
    return Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode="RGB")


def _palette(ds: pydicom.Dataset, indices: np.ndarray) -> Image.Image:
    """Palette indices through the file's colour LUTs, as a viewer shows them (PS3.3 C.7.6.3.1.5)."""
    rgb = np.asarray(apply_color_lut(indices, ds))
    if rgb.dtype != np.uint8:  # 16-bit LUT entries
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        rgb = rgb.astype(np.float64) * (255.0 / float((1 << bits) - 1))
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), mode="RGB")
