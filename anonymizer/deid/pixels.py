"""Burned-in text: at-risk detection, OCR text detection, fixed device regions, blackout."""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydicom import Dataset

from .codec import Frames, decode_frames, store_frames  # noqa: F401  # re-exported: callers import them here

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)
RULES_PATH = Path(__file__).with_name("data") / "pixel_rules.json"
MARGIN = 4  # pixels added around each detected box: OCR boxes hug the glyphs tightly

AT_RISK_MODALITIES = frozenset({"US", "XA", "RF", "ES", "XC", "OT", "DOC", "SC", "GM", "SM", "IVUS"})
AT_RISK_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
        "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
        "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
        "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image
        "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic Image
        "1.2.840.10008.5.1.4.1.1.77.1.1.1",  # Video Endoscopic
        "1.2.840.10008.5.1.4.1.1.77.1.2.1",  # Video Microscopic
        "1.2.840.10008.5.1.4.1.1.77.1.4.1",  # Video Photographic
    }
)


class TextDetector(Protocol):
    """Finds text in one frame; returns (x0, y0, x1, y1) boxes in pixel coordinates."""

    def detect(self, image: np.ndarray) -> list[Box]: ...


def is_at_risk(ds: Dataset, *, ocr_all_images: bool = False) -> bool:
    """True when the image may carry burned-in text and must go through detection."""
    if "PixelData" not in ds:
        return False
    if ocr_all_images or str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        return True
    return (
        str(ds.get("Modality", "")).upper() in AT_RISK_MODALITIES
        or str(ds.get("SOPClassUID", "")) in AT_RISK_SOP_CLASSES
    )


def to_display_rgb(frame: np.ndarray) -> np.ndarray:
    """8-bit RGB rendering of one frame, min-max scaled (what OCR models expect)."""
    data = frame.astype(np.float32)
    if data.ndim == 3 and data.shape[-1] == 3:
        lo, hi = float(data.min()), float(data.max())
    else:
        lo, hi = np.percentile(data, [0.5, 99.5]).tolist()
    scaled = np.clip((data - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    return scaled if scaled.ndim == 3 else np.stack([scaled] * 3, axis=-1)


class RapidOcrDetector:
    """Text detection with RapidOCR's DB detector, and recognition of a detected line.

    The detector is given images at the size it should work at (:mod:`.render` scales
    small renderings up: text 8-10 px high is missed at native size); only images with a
    longer side above ``max_side`` are scaled down. ``read`` lets the verifier confirm
    that a box holds characters. ``threads``
    bounds onnxruntime's intra-op threads so that several worker processes don't
    oversubscribe the cores.
    """

    _lock = threading.Lock()

    def __init__(self, *, threads: int | None = None, max_side: int = 2048) -> None:
        self._engine: Any = None
        self._threads = threads
        self._max_side = max_side

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR

                kwargs: dict[str, Any] = {"det_limit_side_len": self._max_side, "det_limit_type": "max"}
                if self._threads:
                    kwargs["intra_op_num_threads"] = self._threads
                self._engine = RapidOCR(**kwargs)
        return self._engine

    def detect(self, image: np.ndarray) -> list[Box]:
        boxes, _elapsed = self._load()(to_display_rgb(image), use_det=True, use_cls=False, use_rec=False)
        result: list[Box] = []
        for quad in boxes or []:
            pts = np.asarray(quad, dtype=np.float32)
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            result.append((int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))))
        return result

    def read(self, image: np.ndarray) -> tuple[str, float]:
        """Text recognised in a crop holding one line, and its confidence ("" and 0.0 when none)."""
        crop = np.ascontiguousarray(to_display_rgb(image))
        result, _elapsed = self._load()(crop, use_det=False, use_cls=False, use_rec=True)
        text, score = (result or [["", 0.0]])[0]
        return str(text), float(score)


@cache
def default_text_detector(threads: int | None = None) -> TextDetector | None:
    """The process-wide RapidOCR detector, or None when the package is not installed.

    Only looks the package up: importing it (and onnxruntime) costs ~0.2 s, paid on first use
    by a process that meets an image at risk, not by every process that might.
    """
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        return None
    return RapidOcrDetector(threads=threads)


@dataclass(frozen=True)
class PixelRule:
    manufacturer: str
    model: str
    rows: int
    columns: int
    regions: tuple[Box, ...]

    def matches(self, ds: Dataset) -> bool:
        return (
            str(ds.get("Manufacturer", "")).strip().upper() == self.manufacturer.upper()
            and (self.model == "*" or str(ds.get("ManufacturerModelName", "")).strip().upper() == self.model.upper())
            and int(ds.get("Rows", 0)) == self.rows
            and int(ds.get("Columns", 0)) == self.columns
        )


@cache
def load_pixel_rules(path: Path = RULES_PATH) -> tuple[PixelRule, ...]:
    """The fixed-region rules of ``data/pixel_rules.json``."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        PixelRule(
            r["manufacturer"],
            r.get("model", "*"),
            int(r["rows"]),
            int(r["columns"]),
            tuple(tuple(b) for b in r["regions"]),
        )
        for r in raw
    )
