"""Exceptions of the de-identification core.

Messages carry tags, keywords and counts only, never a value read from the input file.
"""

from __future__ import annotations


class DeidError(Exception):
    """Base class: the instance could not be de-identified and must be quarantined."""


class PixelCleaningUnavailable(DeidError):
    """The image is at risk of burned-in text but no text detector is available."""


class PixelDecodeError(DeidError):
    """The pixel data of an at-risk image could not be decoded, so it cannot be cleaned."""


class InvalidOptions(DeidError, ValueError):
    """A serialised options dict holds unknown keys or values of the wrong type."""
