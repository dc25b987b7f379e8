"""Typed results of :func:`anonymizer.deid.deidentify` (no values of the input leak here
except in :class:`Identity`, which exists to be stored encrypted in the pseudonym vault)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydicom import Dataset

if TYPE_CHECKING:
    from .identifiers import FileIdentifiers


@dataclass(frozen=True)
class AttributeAction:
    """What happened to one attribute: path like "(0040,A730)[0].(0040,A160)", never a value."""

    path: str
    keyword: str
    action: str


@dataclass(frozen=True)
class TextRemoval:
    """Content removed from one free-text value: where and what kind, in words, never the value.

    ``kind`` is one of :data:`REMOVAL_KINDS`.
    """

    path: str
    keyword: str
    kind: str


REMOVAL_KINDS = (
    "person name",
    "identifier",
    "date",
    "time",
    "phone number",
    "e-mail address",
    "address or institution",
    "unrecognised word",
)


@dataclass(frozen=True)
class Identity:
    """The original identifying values, for the encrypted vault only. Never log this."""

    patient_id: str
    patient_name: str
    birth_date: str
    study_instance_uid: str
    accession_number: str
    series_instance_uid: str
    sop_instance_uid: str

    def __repr__(self) -> str:  # keeps PHI out of tracebacks and debug logs
        return "Identity(<redacted>)"


@dataclass(frozen=True)
class Pseudonyms:
    """The pseudonyms written into the output."""

    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    accession_number: str
    date_shift_days: int


@dataclass(frozen=True)
class DeidResult:
    """Outcome of one de-identification; ``dataset`` is a new object, the input is untouched."""

    dataset: Dataset
    actions: dict[str, int]
    attributes: tuple[AttributeAction, ...]
    pixel_cleaned: bool
    text_regions: tuple[tuple[int, int, int, int], ...]
    identity: Identity
    pseudonyms: Pseudonyms
    text_removals: tuple[TextRemoval, ...] = ()
    # The input's identifying values as the cleaner collected them, for the verifier (PHI:
    # kept out of repr and comparisons, never stored).
    identifiers: FileIdentifiers | None = field(default=None, repr=False, compare=False)
