"""Which read of a series gives a dataset sample its labels: the label source of a version.

Readers of one series never see each other's work, so a series read by two readers holds two
independent label sets. A dataset version says which it takes (``LabelSource.mode``):

- ``consensus`` (the default): the series' decided consensus read (adjudicated, or accepted
  automatically; annotations.adjudication); a series read by one reader only takes that read; a
  series read by several without a decided consensus falls back to the ``first_accepted`` rule,
  and its sample's ``label_basis`` says so.
- ``first_accepted``: ONE read per series. The read a reviewer accepted; when
  several were accepted, the one accepted first (earliest ``reviewed_at``); when none was
  accepted, the submitted read with the earliest submission; when none was submitted either
  (a selection that admits unfinished work), the read assigned first. Ties go to the earliest
  assignment. The mode names the rule, so a version keeps saying which rule made it.
- ``reader``: one named reader's read; series that reader did not read (with a selected
  status) are left out.
- ``all_readers``: every selected read, each as its own label set (label-noise research).
  Exports write one label set per reader (``datasets.build``).
- ``merged``: what versions frozen before label sources did, every reader's labels on a
  series together. Not chosen any more; it only describes those versions.

Only the selection's statuses count (accepted reads by default). Imports no Django (the dataset
card and the archive builder read it); the reads it picks from are Assignment rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from annotations.models import Assignment

CONSENSUS = "consensus"
FIRST_ACCEPTED = "first_accepted"
READER = "reader"
ALL_READERS = "all_readers"
MERGED = "merged"
MODES = (CONSENSUS, FIRST_ACCEPTED, READER, ALL_READERS)
DEFAULT = CONSENSUS

RULES = {
    CONSENSUS: (
        "the decided consensus read of each series (adjudicated or accepted automatically); a series one reader "
        "read takes that read; one several read without a decided consensus falls back to first_accepted"
    ),
    FIRST_ACCEPTED: (
        "one read per series: the accepted read (the earliest accepted when several were); "
        "without one, the earliest submitted read; without one, the read assigned first"
    ),
    READER: "one named reader's read of each series; series that reader did not read are left out",
    ALL_READERS: "every reader's read, each as a separate label set",
    MERGED: "every reader's labels on a series together (versions frozen before label sources)",
}
_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


class InvalidLabelSource(ValueError):
    """The label source asked for does not exist or lacks its reader; ``field`` is the one at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LabelSource:
    mode: str = DEFAULT
    reader: str = ""

    @classmethod
    def from_request(cls, mode: Any, reader: Any = "") -> LabelSource:
        """Validate what a request asks for; InvalidLabelSource says what to fix."""
        mode = mode or DEFAULT
        reader = (reader or "").strip() if isinstance(reader, str) else reader
        if mode not in MODES:
            raise InvalidLabelSource(
                f"label_source must be one of: {', '.join(MODES)} (default {DEFAULT}).", field="label_source"
            )
        if not isinstance(reader, str):
            raise InvalidLabelSource("reader must be a username.", field="reader")
        if mode == READER and not reader:
            raise InvalidLabelSource("label_source reader needs the reader's username in reader.", field="reader")
        if mode != READER and reader:
            raise InvalidLabelSource(
                f"reader is only for label_source {READER!r}; leave it empty for {mode!r}.", field="reader"
            )
        return cls(mode=mode, reader=reader)

    def to_dict(self, readers: Iterable[str] = ()) -> dict[str, Any]:
        """The manifest's ``label_source`` block: the mode, its rule in words, the readers used."""
        return {"mode": self.mode, "reader": self.reader or None, "rule": RULES[self.mode], "readers": sorted(readers)}


def _first_accepted(reads: list[Assignment]) -> Assignment:
    def key(read: Assignment) -> tuple[int, dt.datetime, dt.datetime, str]:
        if read.status == "accepted":
            return (0, read.reviewed_at or _NEVER, read.created_at, str(read.pk))
        if read.status == "submitted" and read.submitted_at:
            return (1, read.submitted_at, read.created_at, str(read.pk))
        return (2, read.created_at, read.created_at, str(read.pk))

    return min(reads, key=key)


def chosen_reads(source: LabelSource, reads: Iterable[Assignment]) -> dict[Any, list[Assignment]]:
    """series id -> the reads whose labels the samples take (empty lists are left out)."""
    by_series: dict[Any, list[Assignment]] = {}
    for read in reads:
        by_series.setdefault(read.series_id, []).append(read)
    out: dict[Any, list[Assignment]] = {}
    for series_id, everything in by_series.items():
        decided = [read for read in everything if read.kind == "consensus" and read.status == "accepted"]
        group = [read for read in everything if read.kind != "consensus"]
        if source.mode == CONSENSUS and decided:
            out[series_id] = decided[:1]
        elif not group:
            continue
        elif source.mode in (FIRST_ACCEPTED, CONSENSUS):
            out[series_id] = [_first_accepted(group)]
        elif source.mode == READER:
            mine = [read for read in group if read.reader_name == source.reader]
            if mine:
                out[series_id] = mine
        else:
            out[series_id] = sorted(group, key=lambda read: read.reader_name)
    return out


def label_basis(source: LabelSource, chosen: list[Assignment], readers: int) -> str:
    """Per sample, what its labels are under ``consensus``: "consensus", "single_read", or
    "first_accepted_fallback" (``readers`` of the series, no decided consensus); the mode otherwise."""
    if source.mode != CONSENSUS:
        return source.mode
    if any(read.kind == "consensus" for read in chosen):
        return "consensus"
    return "single_read" if readers <= 1 else "first_accepted_fallback"


def mode_of(manifest: Mapping[str, Any]) -> str:
    """The label source of a frozen manifest; those frozen before label sources merged every reader."""
    block = manifest.get("label_source") or {}
    return str(block.get("mode") or MERGED)
