"""Burned-in text as a viewer shows it: renderings of stored pixels, blackout in stored values.

Text detection must look at what a person looks at, not at stored values: text drawn in a
palette index next to dark indices, in a 16-bit value inside a narrow window, or in a low
MONOCHROME1 value is faint in the stored data and bright on screen. Every frame is rendered
the way a viewer would (colour LUTs, YBR to RGB, Modality LUT or rescale, the file's own
VOI windows and LUTs, MONOCHROME1 and Presentation LUT inversion) and, for grayscale, also
under windows no viewer default would pick (full range, histogram equalised, thirds of the
range for more than 8 bits), so that a value faint under one window is bright under another.

Every function takes ``data`` as (frames, rows, columns[, samples]) stored values and
``photometric``, the colour space of ``data`` (it differs from the file's attribute when a
decoder converted YBR to RGB; see :func:`decoded_photometric`).
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, convert_color_space

from .pixels import MARGIN, Box, TextDetector, decode_frames, load_pixel_rules

MAX_FILE_WINDOWS = 3  # a file lists its windows in order of preference; the rest are rarely used
# The cleaner scales a rendering up until its shorter side has CLEAN_SHORT_SIDE pixels (never
# down): burned-in ultrasound text is often 8-10 px high, which the detector misses at native
# size; 736 is RapidOCR's own default. The verifier detects at VERIFY_FACTOR times the
# cleaner's scale, so that the two never look at the same size.
CLEAN_SHORT_SIDE, VERIFY_FACTOR = 736, 0.85
# Where text was found the cleaner looks again, once its lines are black, this many line
# heights (at least MIN_LINE pixels each) above and below each line: a line next to it may
# show only then.
NEIGHBOUR_LINES, MIN_LINE = 3, 12
PAD = 16  # black border (detector pixels) added around a rendering before detection
MAX_UPSCALE = 4.0  # a thumbnail holds no legible text worth a detection at 736 px
MIN_READ_SCORE, MIN_READ_CHARS = 0.5, 2  # a single character identifies no one
MAX_LINE_HEIGHT, MAX_LINE_FRACTION = 40, 0.08  # taller boxes are drawn frames and structures
# Decoders (pydicom's as_rgb, JPEG 2000 multi-component transform) hand these back as RGB.
_DECODED_AS_RGB = frozenset({"YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})
_YBR_PARTIAL = frozenset({"YBR_PARTIAL_420", "YBR_PARTIAL_422"})
_COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"}) | _YBR_PARTIAL
# Functional groups whose first item holds frame-level rescale and VOI (enhanced multi-frame).
_FRAME_GROUPS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")


def decoded_photometric(ds: Dataset) -> str:
    """Colour space of ``ds.pixel_array`` under pydicom's defaults (YBR_FULL/_422, ICT, RCT: RGB)."""
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if int(ds.get("SamplesPerPixel", 1)) == 3 and pi in _DECODED_AS_RGB:
        return "RGB"
    return pi


def _frame_view(ds: Dataset, index: int) -> Dataset:
    """``ds`` with the shared and per-frame rescale/VOI of frame ``index`` laid on top."""
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    containers = list(shared[:1]) + ([per_frame[index]] if index < len(per_frame) else [])
    items = [c.get(name)[0] for c in containers for name in _FRAME_GROUPS if c.get(name)]
    if not items:
        return ds
    view = Dataset()
    for elem in ds:
        if elem.tag != 0x7FE00010:
            view[elem.tag] = elem
    for item in items:
        for elem in item:
            view[elem.tag] = elem
    return view


def _to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (values.astype(np.float64) - lo) * (255.0 / max(hi - lo, 1e-9))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2/3 windowing to 0..255 (LINEAR, LINEAR_EXACT, SIGMOID)."""
    if function == "SIGMOID":
        with np.errstate(over="ignore"):
            return _to_uint8(1.0 / (1.0 + np.exp(-4.0 * (values - center) / max(width, 1e-9))), 0.0, 1.0)
    if function == "LINEAR_EXACT":
        return _to_uint8(values, center - width / 2, center + width / 2)
    width = max(width, 1.0)
    return _to_uint8(values, center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2)


def _numbers(value: object) -> list[float]:
    """A DS/IS value or MultiValue as floats; [] for absent or unreadable values."""
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    try:
        return [float(v) for v in items]
    except (TypeError, ValueError):
        return []


def _file_windows(values: np.ndarray, view: Dataset) -> list[np.ndarray]:
    """The file's own VOI: its window(s), then its VOI LUT(s), each to 0..255."""
    centers, widths = _numbers(view.get("WindowCenter")), _numbers(view.get("WindowWidth"))
    function = str(view.get("VOILUTFunction", "LINEAR")).strip().upper()
    out = [_window(values, c, w, function) for c, w in zip(centers, widths, strict=False) if w > 0]
    for index, item in enumerate(view.get("VOILUTSequence") or []):
        try:
            n, first, _bits = (int(v) for v in item.LUTDescriptor)
            n = n or 65536
            lut = apply_voi(np.arange(first, first + n, dtype=np.int64), view, index=index).astype(np.float64)
        except Exception:  # noqa: S112 - a malformed LUT: the other renderings still show the frame
            continue
        idx = np.clip(np.rint(values).astype(np.int64) - first, 0, n - 1)
        out.append(_to_uint8(lut[idx], float(lut.min()), float(lut.max())))
    return out[:MAX_FILE_WINDOWS]


def _equalised(values: np.ndarray) -> np.ndarray:
    """Histogram equalisation: values crowded together (a faint text on its background) spread out."""
    _uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    cdf = np.cumsum(counts) / values.size
    return _to_uint8(cdf[inverse.reshape(values.shape)], 0.0, 1.0)


def modality_values(frame: np.ndarray, view: Dataset) -> np.ndarray:
    """Modality LUT or rescale applied (raw values when the file's transform is unusable)."""
    try:
        return np.asarray(apply_modality_lut(frame, view), dtype=np.float64)
    except Exception:  # a malformed slope or LUT must not stop detection
        return frame.astype(np.float64)


def _inverted(view: Dataset, photometric: str) -> bool:
    """True when low values show bright: MONOCHROME1, unless a Presentation LUT inverts it back."""
    inverse = str(view.get("PresentationLUTShape", "")).strip().upper() == "INVERSE"
    return (photometric == "MONOCHROME1") != inverse


def _grey_renderings(frame: np.ndarray, view: Dataset, photometric: str) -> list[np.ndarray]:
    values = modality_values(frame, view)
    lo, hi = float(values.min()), float(values.max())
    greys = _file_windows(values, view) + [_to_uint8(values, lo, hi), _equalised(values)]
    if int(view.get("BitsStored", 8)) > 8:
        step = (hi - lo) / 3
        greys += [_to_uint8(values, lo + k * step, lo + (k + 1) * step) for k in range(3)]
    if _inverted(view, photometric):
        greys = [255 - g for g in greys]
    return [np.repeat(g[..., np.newaxis], 3, axis=-1) for g in greys]


def palette_lut(ds: Dataset) -> tuple[int, np.ndarray]:
    """(first mapped value, 8-bit RGB entries) of the palette, segmented or not."""
    n, first, _bits = (int(v) for v in ds.RedPaletteColorLookupTableDescriptor)
    n = n or 65536
    lut = np.asarray(apply_color_lut(np.arange(first, first + n, dtype=np.int64), ds))
    if int(lut.max()) > 255:  # 16-bit entries; some files declare 16 and hold 8-bit values
        lut = lut / 257.0
    return first, np.clip(np.rint(lut), 0, 255).astype(np.uint8)


def _ybr_partial_to_rgb(ybr: np.ndarray) -> np.ndarray:
    """PS3.3 C.7.6.3.1.2 YBR_PARTIAL (ITU-R BT.601 studio range) to full-range RGB."""
    y = (ybr[..., 0].astype(np.float64) - 16) * (255 / 219)
    cb = (ybr[..., 1].astype(np.float64) - 128) * (255 / 224)
    cr = (ybr[..., 2].astype(np.float64) - 128) * (255 / 224)
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def to_rgb(data: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """Colour data (any frames shape ending in samples) as RGB in its stored bit depth."""
    if photometric in _YBR_PARTIAL:
        return _ybr_partial_to_rgb(data)
    if photometric in ("YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"):
        # ICT is YBR_FULL's matrix; an RCT stream not transformed by its decoder is close enough
        # to it for text to show, and the blackout converts it with the same function.
        if int(ds.get("BitsStored", 8)) > 8:
            return data
        return np.asarray(convert_color_space(data.astype(np.uint8), "YBR_FULL", "RGB"))
    return data


def _colour_renderings(frame: np.ndarray, ds: Dataset, photometric: str) -> list[np.ndarray]:
    if photometric == "PALETTE COLOR":
        first, lut = palette_lut(ds)
        return [lut[np.clip(frame.astype(np.int64) - first, 0, len(lut) - 1)]]
    rgb = to_rgb(frame, ds, photometric)
    bits = int(ds.get("BitsStored", 8))
    if rgb.dtype == np.uint8 and bits <= 8:
        return [rgb]
    return [_to_uint8(rgb, 0, 2**bits - 1), _to_uint8(rgb, float(rgb.min()), float(rgb.max()))]


def render_frame(frame: np.ndarray, ds: Dataset, photometric: str, index: int = 0) -> list[np.ndarray]:
    """Every rendering of one frame, each (rows, columns, 3) uint8, without duplicates."""
    if photometric == "PALETTE COLOR" or photometric in _COLOUR or frame.ndim == 3:
        images = _colour_renderings(frame, ds, photometric)
    else:
        images = _grey_renderings(frame, _frame_view(ds, index), photometric)
    unique: dict[bytes, np.ndarray] = {}
    for image in images:  # an 8-bit frame often renders the same under several windows
        unique.setdefault(hashlib.blake2b(image.tobytes(), digest_size=16).digest(), image)
    return list(unique.values())


def render_frames(data: np.ndarray, ds: Dataset, photometric: str) -> list[list[np.ndarray]]:
    """For each frame of ``data``, its renderings (see :func:`render_frame`)."""
    return [render_frame(frame, ds, photometric, i) for i, frame in enumerate(data)]


def _scale(rows: int, cols: int) -> float:
    """The cleaner's detection scale for a frame: its shorter side up to CLEAN_SHORT_SIDE."""
    return min(MAX_UPSCALE, max(1.0, CLEAN_SHORT_SIDE / max(1, min(rows, cols))))


def _detect_scaled(image: np.ndarray, detector: TextDetector, factor: float = 1.0, scale: float = 0.0) -> list[Box]:
    """Boxes in ``image`` coordinates, detected on ``image`` scaled and padded.

    The scale brings the shorter side up to CLEAN_SHORT_SIDE (never down), times ``factor``;
    ``scale`` overrides it (a crop is detected at the scale of its whole frame).
    The padding matters: banners are often drawn against the top edge, and the detector
    misses a line that touches the border of its input.
    """
    rows, cols = image.shape[:2]
    scale = (scale or _scale(rows, cols)) * factor
    pad = PAD
    size = (round(cols * scale), round(rows * scale))
    if size != (cols, rows):
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    return [
        (
            max(0, int((x0 - pad) / scale)),
            max(0, int((y0 - pad) / scale)),
            min(cols, int(np.ceil((x1 - pad) / scale))),
            min(rows, int(np.ceil((y1 - pad) / scale))),
        )
        for x0, y0, x1, y1 in detector.detect(padded)
        if x1 > pad and y1 > pad and x0 < pad + size[0] and y0 < pad + size[1]
    ]


def _expand(box: Box, rows: int, cols: int, margin: int) -> Box:
    x0, y0, x1, y1 = box
    return (max(0, x0 - margin), max(0, y0 - margin), min(cols, x1 + margin), min(rows, y1 + margin))


def is_text_line(box: Box, rows: int) -> bool:
    """Whether a detected box can be a line of text rather than a drawn frame or a structure.

    The DB detector also answers with boxes around rectangles and textured areas, hundreds
    of pixels tall; a line of burned-in text is far shorter than the image.
    """
    return box[3] - box[1] <= max(MAX_LINE_HEIGHT, rows * MAX_LINE_FRACTION)


def detect_in_frame(
    renderings: list[np.ndarray], detector: TextDetector, factor: float = 1.0, *, scale: float = 0.0, rows: int = 0
) -> list[Box]:
    """Text-line boxes found in any of one frame's renderings (the cleaner's detection).

    ``scale`` and ``rows`` are the whole frame's when the renderings are of a crop of it.
    """
    return [
        box
        for image in renderings
        for box in _detect_scaled(image, detector, factor, scale)
        if is_text_line(box, rows or image.shape[0])
    ]


def _reads_as_text(image: np.ndarray, box: Box, detector: TextDetector) -> bool:
    """Whether recognition reads characters in ``box`` (detectors that cannot read: always).

    Textured anatomy sometimes looks like a text line to the detector at a larger scale;
    recognition, a second model, tells it from characters.
    """
    read = getattr(detector, "read", None)
    if read is None:
        return True
    x0, y0, x1, y1 = box
    text, score = read(image[max(0, y0 - 2) : y1 + 2, max(0, x0 - 2) : x1 + 2])
    return score >= MIN_READ_SCORE and sum(c.isalnum() for c in text) >= MIN_READ_CHARS


def leak_boxes(renderings: list[np.ndarray], detector: TextDetector, factor: float = VERIFY_FACTOR) -> list[Box]:
    """The verifier's detection on one frame: another scale, and each box confirmed by reading it."""
    return [
        box
        for image in renderings
        for box in _detect_scaled(image, detector, factor)
        if is_text_line(box, image.shape[0]) and _reads_as_text(image, box, detector)
    ]


def _bands(boxes: list[Box], rows: int) -> list[tuple[int, int]]:
    """Row ranges around detected lines, merged where they touch: where a second look goes."""
    reach = [(y0, y1, NEIGHBOUR_LINES * max(y1 - y0, MIN_LINE)) for _x0, y0, _x1, y1 in boxes]
    spans = sorted((max(0, y0 - r), min(rows, y1 + r)) for y0, y1, r in reach)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def find_text_regions(data: np.ndarray, ds: Dataset, photometric: str, detector: TextDetector) -> list[Box]:
    """Union over every rendering of every frame of the detected boxes, plus fixed device regions.

    Where text was found, detection runs a second time on the blacked-out frame: text next
    to a detected line is sometimes found only once the line is gone. That second look
    covers the full-width bands of ``NEIGHBOUR_LINES`` line heights above and below each
    detected line, at the frame's scale, not the whole frame again: text far from any line
    was there for the first look to find, and the bands cost a fraction of a frame.
    """
    rows, cols = data.shape[1], data.shape[2]
    scale = _scale(rows, cols)
    boxes = {_expand(b, rows, cols, 0) for rule in load_pixel_rules() if rule.matches(ds) for b in rule.regions}
    found = {i: detect_in_frame(render_frame(data[i], ds, photometric, i), detector) for i in range(len(data))}
    new = {_expand(b, rows, cols, MARGIN) for lines in found.values() for b in lines} - boxes
    if not new:
        return sorted(boxes)
    boxes |= new
    current, current_pi = black_out(data, ds, photometric, sorted(boxes))
    for i, lines in found.items():
        for top, bottom in _bands(lines, rows):
            crop = current[i, top:bottom]
            again = detect_in_frame(render_frame(crop, ds, current_pi, i), detector, scale=scale, rows=rows)
            boxes |= {_expand((x0, y0 + top, x1, y1 + top), rows, cols, MARGIN) for x0, y0, x1, y1 in again}
    return sorted(boxes)


def _black_grey(data: np.ndarray, ds: Dataset, photometric: str) -> int | float:
    """The stored value of ``data`` that renders darkest (the brightest stored value for MONOCHROME1)."""
    lo, hi = data.min(), data.max()
    view = _frame_view(ds, 0)
    out = modality_values(np.array([lo, hi], dtype=data.dtype), view)
    lo_renders_lower = bool(out[0] <= out[1])  # a negative slope or a falling Modality LUT flips it
    return lo if lo_renders_lower != _inverted(view, photometric) else hi


def black_out(data: np.ndarray, ds: Dataset, photometric: str, boxes: list[Box]) -> tuple[np.ndarray, str]:
    """Copy of ``data`` with every box black in every rendering, in all frames, and its colour space.

    Grayscale and palette data keep their colour space (the box holds the stored value that
    renders darkest); colour data comes back as RGB with the boxes zero, so the caller must
    store it with PhotometricInterpretation RGB.
    """
    value: int | float
    if photometric == "PALETTE COLOR":
        first, lut = palette_lut(ds)
        out, value = data.copy(), first + int(np.argmin(lut.astype(np.int64) @ np.array([299, 587, 114])))
    elif photometric in _COLOUR or data.ndim == 4:
        out, photometric, value = np.array(to_rgb(data, ds, photometric)), "RGB", 0
    else:
        out, value = data.copy(), _black_grey(data, ds, photometric)
    for x0, y0, x1, y1 in boxes:
        out[:, y0:y1, x0:x1, ...] = value
    return out, photometric


def pixel_leak_frames(ds: Dataset, detector: TextDetector, *, factor: float = VERIFY_FACTOR) -> list[int]:
    """Frames of ``ds`` where text is detected in any rendering (the verifier's check).

    Decodes and renders ``ds`` itself, independently of what the cleaner decoded, and detects
    on renderings scaled to ``factor`` times the cleaner's size, each box
    confirmed by recognition, so that it does not share the cleaner's blind spots.
    """
    frames = decode_frames(ds)
    data, photometric = frames.data, frames.photometric
    return [i for i, frame in enumerate(data) if leak_boxes(render_frame(frame, ds, photometric, i), detector, factor)]
