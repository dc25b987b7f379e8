"""Before/after preview of the pixel redaction of one file, with no Django.

The left half is the frame as received, the right half the same frame after the pixel
cleaning that de-identification does; the regions that were blacked out are outlined in
both. Built for a compliance officer deciding about a quarantined file: the left half shows
identifying pixels, so the caller must restrict, audit and never cache it.
"""

from __future__ import annotations

import dataclasses
import io

from PIL import Image, ImageDraw

from anonymizer.deid import DeidOptions, PixelCleaningUnavailable, PixelDecodeError, PseudonymKeys, deidentify
from anonymizer.deid.pixels import TextDetector
from anonymizer.processing import InputError, read_checked, serialize
from workbench.render import frame_png

MAX_SIDE = 768  # each half; large images are scaled down, the boxes with them
GAP, HEADER = 12, 22
OUTLINE = (255, 40, 40)


class PreviewUnavailable(Exception):
    """No preview can be drawn; the message says why (never with a value from the file)."""


@dataclasses.dataclass(frozen=True)
class Preview:
    png: bytes
    regions: int


def _frame(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(frame_png(io.BytesIO(data)))).convert("RGB")
    except Exception as exc:  # decoders raise many types
        raise PreviewUnavailable(f"The frame could not be rendered ({type(exc).__name__}).") from None


def redaction_preview(
    raw: bytes, *, options: DeidOptions, keys: PseudonymKeys, detector: TextDetector | None
) -> Preview:
    """Side-by-side PNG of the first frame before and after pixel cleaning.

    Cleaning runs as in the pipeline (with ``clean_pixel_data`` on, so that the preview shows
    what would be removed even where the project turned it off). Raises PreviewUnavailable
    when the file cannot be read, its pixels cannot be decoded or no detector is installed.
    """
    try:
        original = read_checked(raw)
        result = deidentify(
            original,
            options=dataclasses.replace(options, clean_pixel_data=True),
            keys=keys,
            text_detector=detector,
        )
    except InputError as exc:
        raise PreviewUnavailable(exc.message) from None
    except PixelCleaningUnavailable:
        raise PreviewUnavailable("No text detector is installed, so there is no cleaned frame to show.") from None
    except PixelDecodeError:
        raise PreviewUnavailable("The pixel data cannot be decoded, so no frame can be shown.") from None
    except Exception as exc:
        raise PreviewUnavailable(f"De-identification failed on this file ({type(exc).__name__}).") from None
    before = _frame(raw)
    after = _frame(serialize(result.dataset)) if result.pixel_cleaned else before.copy()
    return Preview(_compose(before, after, result.text_regions), len(result.text_regions))


def _compose(before: Image.Image, after: Image.Image, boxes: tuple[tuple[int, int, int, int], ...]) -> bytes:
    scale = min(1.0, MAX_SIDE / max(before.size))
    size = (max(1, round(before.width * scale)), max(1, round(before.height * scale)))
    halves = [before.resize(size), after.resize(size)]
    for half in halves:
        draw = ImageDraw.Draw(half)
        for x0, y0, x1, y1 in boxes:
            draw.rectangle([x0 * scale, y0 * scale, max(x0, x1 - 1) * scale, max(y0, y1 - 1) * scale], outline=OUTLINE)
    canvas = Image.new("RGB", (size[0] * 2 + GAP, size[1] + HEADER), (32, 32, 32))
    label = ImageDraw.Draw(canvas)
    for index, (half, title) in enumerate(zip(halves, ("As received", "After pixel cleaning"), strict=True)):
        left = index * (size[0] + GAP)
        canvas.paste(half, (left, HEADER))
        label.text((left + 4, 4), title, fill=(230, 230, 230))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
