"""The PS3.15 Table E.1-1 profile: loading, tag lookup and effective actions.

Resolution of an attribute's action, given :class:`DeidOptions`:

1. **Options override the basic action.** Option columns are consulted in the order
   retain-safe-private, retain-UIDs, retain-device, retain-institution, retain-patient-
   characteristics, retain-full-dates, retain-modified-dates, clean-descriptors,
   clean-structured-content, clean-graphics; the first option that is on *and* has a value in
   the row wins. Date rows (those with a retain-dates column) are resolved by the date mode
   instead: full dates -> K, year-only -> C (reduce to year), modified -> C (shift),
   none -> the basic action.
2. **Combined basic codes** are resolved by the attribute's type in the IOD of the instance's
   SOP class (:func:`attribute_type`, from the generated ``iod_attribute_types.json``, PS3.3),
   following PS3.15 E.1.1: ``X/Z/D`` -> D for type 1/1C, Z for 2/2C, X otherwise; ``Z/D`` -> D
   for 1/1C, Z otherwise; ``X/D`` -> D for 1/1C/2/2C (X is not allowed and Z is not offered),
   X otherwise; ``X/Z`` -> Z for 2/2C, X for 3, and D for 1/1C, which the code does not name
   but an empty type 1 attribute would break the IOD (in PS3.3 only Referenced Study Sequence
   nested in two RT IODs, whose D keeps the items with their UIDs replaced). An attribute the
   IOD does not list at that place counts as type 3. For a SOP class the table does not know,
   the type is unknown and the reduction falls back to keeping the attribute present:
   ``X/Z``, ``X/Z/D``, ``Z/D`` -> Z, ``X/D`` -> X. ``X/Z/U*`` (reference sequences) -> U,
   meaning the sequence is kept and the UIDs inside it are replaced by keyed pseudonymous
   UIDs. A plain ``X`` on an attribute
   that is type 2/2C in the IOD becomes Z, and D on a type 1/1C one: removing it would break
   the IOD, and an empty or dummy value carries nothing either. (The engine also gives a
   dummy to a type 1 attribute whose cleaned text came out empty, and a date it cannot shift
   the basic action's Z or D instead of removal.)
3. Sequences that hold structured content (``Content Sequence`` etc.) have no meaningful dummy,
   so their basic D becomes Z when Clean Structured Content is off.

The returned code is one of ``K X Z D U C``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from pathlib import Path

from pydicom.tag import BaseTag

from .options import DeidOptions

CSV_PATH = Path(__file__).with_name("data") / "annex_e_profile.csv"
IOD_TYPES_PATH = CSV_PATH.with_name("iod_attribute_types.json")

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


@dataclass(frozen=True)
class ProfileRule:
    """One row of Table E.1-1."""

    tag: str
    name: str
    basic: str
    options: tuple[tuple[str, str], ...]  # (csv column, action) for non-empty option cells

    def option(self, column: str) -> str:
        return self._option_map.get(column, "")

    @cached_property
    def _option_map(self) -> dict[str, str]:  # looked up for every element of every file
        return dict(self.options)

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


@cache
def _iod_tables(path: Path = IOD_TYPES_PATH) -> tuple[dict[str, int], list[dict[str, str]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    iods: dict[str, int] = data["iods"]
    by_class = {uid: iods[name] for uid, name in data["sop_classes"].items() if name in iods}
    return by_class, data["tables"]


def attribute_type(sop_class_uid: str, path: Sequence[int]) -> str | None:
    """The strictest type (1, 1C, 2, 2C or 3) of an attribute in the SOP class's IOD.

    ``path`` is the tags of the enclosing sequences, outermost first, then the attribute's
    tag. Only attributes whose action can depend on their type are in the table (see
    :func:`needs_attribute_type`); any other attribute, or one the IOD does not have at that
    place, is reported as "3". None means the
    SOP class is not in the table, so the type is unknown.
    """
    by_class, tables = _iod_tables()
    index = by_class.get(str(sop_class_uid).strip())
    if index is None:
        return None
    return tables[index].get("/".join(f"{int(t):08X}" for t in path), "3")


def date_type_anywhere(sop_class_uid: str, tag: int) -> str | None:
    """The strictest type of a date or time attribute the profile does not list, at any depth
    of the SOP class's IOD (a conservative stand-in for its type at one place); None: unknown
    SOP class."""
    by_class, tables = _iod_tables()
    index = by_class.get(str(sop_class_uid).strip())
    return None if index is None else tables[index].get(f"*/{int(tag):08X}", "3")


COMBINED_CODES = frozenset({"X/Z", "X/Z/D", "Z/D", "X/D"})
_REQUIRED = frozenset({"1", "1C"})
_PRESENT = frozenset({"1", "1C", "2", "2C"})


def needs_attribute_type(rule: ProfileRule) -> bool:
    """True when the rule's action can depend on the attribute's type in the IOD."""
    return rule.basic in COMBINED_CODES or rule.basic == "X" or bool(rule.option("clean_descriptors"))


def reduce_basic(rule: ProfileRule, tag: int, attribute_type: str | None = None) -> str:
    """Reduce a (possibly combined) basic code to a single action; see module docstring."""
    code = rule.basic
    if code == "X" and attribute_type in _PRESENT:
        return "D" if attribute_type in _REQUIRED else "Z"
    if code in COMBINED_CODES:
        if attribute_type is None:
            return "X" if code == "X/D" else "Z"
        if attribute_type in (_PRESENT if code == "X/D" else _REQUIRED):
            return "D"  # for X/Z too: an empty type 1 would break the IOD (see docstring)
        if "Z" in code and (code == "Z/D" or attribute_type in _PRESENT):
            return "Z"
        return "X"
    if code == "X/Z/U*":
        return "U"
    if code == "D" and rule.is_structured_content:
        return "Z"
    return code


def _date_action(rule: ProfileRule, options: DeidOptions, tag: int, attribute_type: str | None) -> str:
    mode = options.date_mode
    if mode == "full":
        return rule.option("rtn_long_full_dates") or "K"
    if mode in ("shift", "year"):
        return "C"
    return reduce_basic(rule, tag, attribute_type)


@lru_cache(maxsize=8192)  # rules and options are immutable; every file asks the same questions
def effective_action(rule: ProfileRule, options: DeidOptions, tag: int, attribute_type: str | None = None) -> str:
    """The single action (K X Z D U C) for an attribute under the given options.

    ``attribute_type`` is the attribute's type in the instance's IOD (see
    :func:`attribute_type`); it only matters for the combined codes and plain X, and None
    (unknown) keeps the attribute present where a combined code allows it.
    """
    if rule.is_date_rule:
        return _date_action(rule, options, tag, attribute_type)
    for column, option_field in OPTION_ORDER:
        value = rule.option(column)
        if value and getattr(options, option_field):
            return value
    return reduce_basic(rule, tag, attribute_type)
