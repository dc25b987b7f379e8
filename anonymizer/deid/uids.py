"""Which UIDs are well-known (defined by the standard) and therefore safe to keep."""

from __future__ import annotations

from functools import cache

from pydicom._uid_dict import UID_dictionary

# Roots of UIDs that are defined by the standard or registries rather than minted per
# instance: the DICOM root for SOP classes, transfer syntaxes, coding schemes, templates.
_WELL_KNOWN_PREFIXES: tuple[str, ...] = ("1.2.840.10008.",)


@cache
def is_well_known_uid(value: str) -> bool:
    """True for UIDs listed in the DICOM registry (PS3.6 Annex A) or under the DICOM root."""
    value = value.strip().rstrip("\x00")
    if value in UID_dictionary:
        return True
    # Instance UIDs under the DICOM root exist only in the standard's own examples, and
    # "1.2.840.10008.1.2.x" style private extensions do not identify patients either.
    return value.startswith(_WELL_KNOWN_PREFIXES)
