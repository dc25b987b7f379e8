"""De-identification options and their DICOM CID 7050 method codes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import InvalidOptions

PROFILE_EDITION = "DICOM PS3.15 Table E.1-1 (innolitics/dicom-standard export, 2026-11-24)"
PROFILE_EDITION_SHORT = "Table E.1-1 as exported 2026-11-24"

# Private attributes documented as safe in vendor conformance statements: diffusion b-values
# and gradient directions. They are acquisition physics, carry no identity, and research on MR
# diffusion needs them. Format: "PRIVATE CREATOR|GGGG|EE" (EE = element low byte, hex).
DEFAULT_SAFE_PRIVATE: tuple[str, ...] = (
    "SIEMENS MR HEADER|0019|0C",  # B value
    "SIEMENS MR HEADER|0019|0D",  # diffusion directionality
    "SIEMENS MR HEADER|0019|0E",  # diffusion gradient direction
    "GEMS_PARM_01|0043|39",  # slop_int_6..9 (b-value on GE)
    "Philips Imaging DD 001|2001|03",  # diffusion b-factor
)

CODE_BASIC = ("113100", "Basic Application Confidentiality Profile")
# option field -> (code value, code meaning); order is the order written to the output.
OPTION_CODES: tuple[tuple[str, str, str], ...] = (
    ("clean_pixel_data", "113101", "Clean Pixel Data Option"),
    ("clean_graphics", "113103", "Clean Graphics Option"),
    ("clean_structured_content", "113104", "Clean Structured Content Option"),
    ("clean_descriptors", "113105", "Clean Descriptors Option"),
    ("retain_longitudinal_full_dates", "113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("retain_longitudinal_modified_dates", "113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("retain_patient_characteristics", "113108", "Retain Patient Characteristics Option"),
    ("retain_device_identity", "113109", "Retain Device Identity Option"),
    ("retain_uids", "113110", "Retain UIDs Option"),
    ("retain_safe_private", "113111", "Retain Safe Private Option"),
    ("retain_institution_identity", "113112", "Retain Institution Identity Option"),
)


@dataclass(frozen=True)
class DeidOptions:
    """Which PS3.15 options to apply on top of the Basic Profile.

    Date options take precedence in this order: full dates > year only > modified dates.
    """

    retain_longitudinal_modified_dates: bool = True
    retain_longitudinal_full_dates: bool = False
    dates_year_only: bool = False
    retain_patient_characteristics: bool = True
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    clean_descriptors: bool = True
    clean_structured_content: bool = True
    clean_graphics: bool = True
    clean_pixel_data: bool = True
    retain_safe_private: bool = False
    retain_uids: bool = False
    ocr_all_images: bool = False
    safe_private_allowlist: tuple[str, ...] = DEFAULT_SAFE_PRIVATE
    # Words a project's compliance officer declared non-identifying, on top of the shipped
    # free-text vocabulary (lowercase tokens; see anonymizer/deid/data/README.md).
    extra_vocabulary: tuple[str, ...] = ()

    @classmethod
    def research_default(cls) -> DeidOptions:
        """The usual research setting: shifted dates, characteristics kept, everything cleaned."""
        return cls()

    @classmethod
    def safe_harbor_strict(cls) -> DeidOptions:
        """HIPAA Safe Harbor: dates reduced to the year, no longitudinal shift."""
        return cls(
            retain_longitudinal_modified_dates=False,
            retain_longitudinal_full_dates=False,
            dates_year_only=True,
        )

    @property
    def date_mode(self) -> str:
        """One of "full", "year", "shift", "remove" (see class docstring for precedence)."""
        if self.retain_longitudinal_full_dates:
            return "full"
        if self.dates_year_only:
            return "year"
        if self.retain_longitudinal_modified_dates:
            return "shift"
        return "remove"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the allow-list becomes a list)."""
        data = dataclasses.asdict(self)
        data["safe_private_allowlist"] = list(self.safe_private_allowlist)
        data["extra_vocabulary"] = list(self.extra_vocabulary)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeidOptions:
        """Inverse of :meth:`to_dict`; unknown keys or wrongly typed values raise ValueError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise InvalidOptions(f"unknown option keys: {', '.join(unknown)}")
        kwargs = dict(data)
        for key, value in kwargs.items():
            if key in ("safe_private_allowlist", "extra_vocabulary"):
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise InvalidOptions(f"{key} must be a list of strings")
                kwargs[key] = tuple(value)
            elif not isinstance(value, bool):
                raise InvalidOptions(f"option {key} must be a boolean")
        return cls(**kwargs)

    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 (code value, code meaning) pairs for the profile and options in force."""
        codes = [CODE_BASIC]
        for field, value, meaning in OPTION_CODES:
            if field == "retain_longitudinal_modified_dates" and self.date_mode not in ("shift", "year"):
                continue
            if field == "retain_longitudinal_full_dates" and self.date_mode != "full":
                continue
            if field not in ("retain_longitudinal_modified_dates", "retain_longitudinal_full_dates"):
                if not getattr(self, field):
                    continue
            codes.append((value, meaning))
        return codes

    def method_text(self) -> tuple[str, ...]:
        """Values for DeidentificationMethod (LO, each at most 64 characters)."""
        meanings = tuple(meaning[:64] for _, meaning in self.method_codes()[1:])
        return ("DICOM PS3.15 Annex E Basic Profile", *meanings, PROFILE_EDITION_SHORT)
