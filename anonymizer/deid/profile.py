"""The PS3.15 Table E.1-1 profile: loading, tag lookup and effective actions.

Resolution of an attribute's action, given :class:`DeidOptions`:

1. **Options override the basic action.** Option columns are consulted in the order
   retain-safe-private, retain-UIDs, retain-device, retain-institution, retain-patient-
   characteristics, retain-full-dates, retain-modified-dates, clean-descriptors,
   clean-structured-content, clean-graphics; the first option that is on *and* has a value in
   the row wins. Date rows (those with a retain-dates column) are resolved by the date mode
   instead: full dates -> K, year-only -> C (reduce to year), modified -> C (shift),
   none -> the basic action.
2. **Combined basic codes** are reduced to the least destructive action that still removes
   identity: ``X/Z``, ``X/Z/D``, ``Z/D`` -> Z (emptied, so type 2 attributes stay valid);
   ``X/D`` -> X, except the attributes in :data:`DUMMY_FOR_VALIDITY` (type 1/2 in their IODs)
   which get a dummy (D); ``X/Z/U*`` (reference sequences) -> U, meaning the sequence is kept and
   the UIDs inside it are replaced by keyed pseudonymous UIDs.
3. Sequences that hold structured content (``Content Sequence`` etc.) have no meaningful dummy,
   so their basic D becomes Z when Clean Structured Content is off.

The returned code is one of ``K X Z D U C``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydicom.tag import BaseTag

from .options import DeidOptions

CSV_PATH = Path(__file__).with_name("data") / "annex_e_profile.csv"

OPTION_ORDER: tuple[tuple[str, str], ...] = (
    ("rtn_safe_private", "retain_safe_private"),
    ("rtn_uids", "retain_uids"),
    ("rtn_device_identity", "retain_device_identity"),
    ("rtn_institution_identity", "retain_institution_identity"),
    ("rtn_patient_characteristics", "retain_patient_characteristics"),
    ("clean_descriptors", "clean_descriptors"),
    ("clean_structured_content", "clean_structured_content"),
    ("clean_graphics", "clean_graphics"),
)

# X/D attributes whose removal would break IOD validity (type 1 or 2 somewhere).
DUMMY_FOR_VALIDITY: frozenset[int] = frozenset(
    {
        0x300A0006,  # RT Plan Date (type 2)
        0x300A0007,  # RT Plan Time (type 2)
        0x30060009,  # Structure Set Time (type 2)
        0x30080250,  # Treatment Date (type 2)
        0x30080251,  # Treatment Time (type 2)
        0x00081072,  # Operator Identification Sequence (type 1C in some IODs)
    }
)


@dataclass(frozen=True)
class ProfileRule:
    """One row of Table E.1-1."""

    tag: str
    name: str
    basic: str
    options: tuple[tuple[str, str], ...]  # (csv column, action) for non-empty option cells

    def option(self, column: str) -> str:
        return dict(self.options).get(column, "")

    @property
    def is_date_rule(self) -> bool:
        return bool(self.option("rtn_long_modified_dates") or self.option("rtn_long_full_dates"))

    @property
    def is_structured_content(self) -> bool:
        return bool(self.option("clean_structured_content"))


@dataclass(frozen=True)
class Profile:
    """The loaded table: exact tags, plus the 50xx/60xx repeating-group rows."""

    exact: dict[int, ProfileRule]
    masked: tuple[tuple[int, int, ProfileRule], ...]  # (mask, value, rule)
    private: ProfileRule

    def rule_for(self, tag: BaseTag | int) -> ProfileRule | None:
        """The rule for a tag, resolving repeating groups; None if the tag is not listed."""
        tag = int(tag)
        rule = self.exact.get(tag)
        if rule is not None:
            return rule
        if (tag >> 16) % 2 == 1:
            return self.private
        for mask, value, masked_rule in self.masked:
            if tag & mask == value:
                return masked_rule
        return None

    def __len__(self) -> int:
        return len(self.exact) + len(self.masked) + 1


def _parse_mask(tag: str) -> tuple[int, int]:
    """Turn "(60XX,4000)" into (mask, value); X digits are wildcards."""
    digits = tag.strip("()").replace(",", "")
    mask = int("".join("0" if c == "X" else "F" for c in digits), 16)
    value = int(digits.replace("X", "0"), 16)
    return mask, value


def _rule_from_row(row: dict[str, str]) -> ProfileRule:
    options = tuple(
        (column, row[column].strip())
        for column, _ in (*OPTION_ORDER, ("rtn_long_full_dates", ""), ("rtn_long_modified_dates", ""))
        if row.get(column, "").strip()
    )
    return ProfileRule(tag=row["tag"], name=row["name"], basic=row["basic"], options=options)


@cache
def load_profile(path: Path = CSV_PATH) -> Profile:
    """Load the CSV once per process."""
    exact: dict[int, ProfileRule] = {}
    masked: list[tuple[int, int, ProfileRule]] = []
    private: ProfileRule | None = None
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            rule = _rule_from_row(row)
            tag = row["tag"]
            if tag.startswith("(GGGG"):
                private = rule
            elif "X" in tag:
                mask, value = _parse_mask(tag)
                masked.append((mask, value, rule))
            else:
                exact[int(tag.strip("()").replace(",", ""), 16)] = rule
    if private is None:
        raise ValueError("profile table has no private-attributes row")
    return Profile(exact=exact, masked=tuple(masked), private=private)


def reduce_basic(rule: ProfileRule, tag: int) -> str:
    """Reduce a (possibly combined) basic code to a single action; see module docstring."""
    code = rule.basic
    if code in ("X/Z", "X/Z/D", "Z/D"):
        return "Z"
    if code == "X/D":
        return "D" if tag in DUMMY_FOR_VALIDITY else "X"
    if code == "X/Z/U*":
        return "U"
    if code == "D" and rule.is_structured_content:
        return "Z"
    return code


def _date_action(rule: ProfileRule, options: DeidOptions, tag: int) -> str:
    mode = options.date_mode
    if mode == "full":
        return rule.option("rtn_long_full_dates") or "K"
    if mode in ("shift", "year"):
        return "C"
    return reduce_basic(rule, tag)


def effective_action(rule: ProfileRule, options: DeidOptions, tag: int) -> str:
    """The single action (K X Z D U C) for an attribute under the given options."""
    if rule.is_date_rule:
        return _date_action(rule, options, tag)
    for column, option_field in OPTION_ORDER:
        value = rule.option(column)
        if value and getattr(options, option_field):
            return value
    return reduce_basic(rule, tag)
