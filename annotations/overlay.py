"""Pictures for the adjudication page: one read's labels over its image, and a disagreement heat
map (per pixel, how many readers marked it). Pure (numpy and Pillow)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

MIN_SIDE = 256  # small images are enlarged (nearest neighbour) so that a pixel can be seen
# From one reader (yellow) to every reader (red); 0 readers stays transparent.
_HEAT = [(255, 235, 59), (255, 152, 0), (244, 67, 54), (183, 28, 28)]


def _base(grey: Image.Image | None, rows: int, columns: int) -> Image.Image:
    if grey is None:
        return Image.new("RGB", (max(columns, 1), max(rows, 1)), (0, 0, 0))
    return grey.convert("RGB").resize((max(columns, 1), max(rows, 1)))


def _png(image: Image.Image) -> bytes:
    width, height = image.size
    scale = max(1, -(-MIN_SIDE // max(min(width, height), 1)))
    if scale > 1:
        image = image.resize((width * scale, height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _hex(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    try:
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    except (ValueError, IndexError):
        return (255, 0, 0)


def labels_png(grey: Image.Image | None, layers: Sequence[tuple[np.ndarray, str]], rows: int, columns: int) -> bytes:
    """The image with each (mask, "#rrggbb") layer blended over it at 45 %."""
    rgb = np.asarray(_base(grey, rows, columns), dtype=np.float64)
    for mask, color in layers:
        m = np.asarray(mask, dtype=bool)[: rgb.shape[0], : rgb.shape[1]]
        rgb[m] = rgb[m] * 0.55 + np.array(_hex(color)) * 0.45
    return _png(Image.fromarray(rgb.astype(np.uint8)))


def heat_png(grey: Image.Image | None, counts: np.ndarray, readers: int, rows: int, columns: int) -> bytes:
    """The image with each pixel tinted by how many of ``readers`` marked it (more: redder)."""
    rgb = np.asarray(_base(grey, rows, columns), dtype=np.float64)
    counts = np.asarray(counts)[: rgb.shape[0], : rgb.shape[1]]
    for n in range(1, max(readers, 1) + 1):
        step = round((n - 1) * (len(_HEAT) - 1) / max(readers - 1, 1))
        m = counts == n
        rgb[m] = rgb[m] * 0.35 + np.array(_HEAT[step]) * 0.65
    return _png(Image.fromarray(rgb.astype(np.uint8)))
