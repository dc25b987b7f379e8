"""Django-free de-identification core (DICOM PS3.15 Annex E, Basic Profile plus options).

Public API: :func:`deidentify`, :class:`DeidOptions`, :class:`PseudonymKeys`, the result
dataclasses, :func:`verify`, the pixel-text detectors and the exceptions.

Guarantees of :func:`deidentify`:

- the input Dataset is not mutated (a new Dataset is built while walking; element values are
  copied, immutable bulk data such as PixelData bytes is shared, never decoded unless the image
  must be cleaned);
- every attribute of Table E.1-1 gets its action at every sequence depth, with option
  overrides (see :mod:`anonymizer.deid.profile`), plus the defence-in-depth rules of
  :mod:`anonymizer.deid.engine`;
- the same original UID maps to the same pseudonymous UID for a given secret, in every file and
  batch, so references between instances still resolve;
- exceptions and results carry tags and keywords, never values (except :class:`Identity`, meant
  for the encrypted vault).
"""

from __future__ import annotations

from .api import deidentify
from .errors import DeidError, InvalidOptions, PixelCleaningUnavailable, PixelDecodeError
from .keys import PseudonymKeys
from .options import DeidOptions
from .pixels import RapidOcrDetector, TextDetector, default_text_detector, is_at_risk
from .result import AttributeAction, DeidResult, Identity, Pseudonyms
from .verifier import Leak, verify

__all__ = [
    "AttributeAction",
    "DeidError",
    "DeidOptions",
    "DeidResult",
    "Identity",
    "InvalidOptions",
    "Leak",
    "PixelCleaningUnavailable",
    "PixelDecodeError",
    "PseudonymKeys",
    "Pseudonyms",
    "RapidOcrDetector",
    "TextDetector",
    "default_text_detector",
    "deidentify",
    "is_at_risk",
    "verify",
]
