"""Value transforms: date shifting, year-only dates, age capping, dummies (free text: :mod:`anonymizer.deid.freetext`).

Every function returns None when the input cannot be parsed: the caller then removes the
value, because an unparseable date or age might still be identifying.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_DT_RE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{0,6}(?:\.\d{1,6})?)?([+-]\d{4})?$")

DUMMY_BY_VR: dict[str, str] = {
    "PN": "ANONYMOUS",
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
    "CS": "ANONYMIZED",
}
TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UT", "PN"})


def dummy_value(vr: str) -> str | bytes:
    """A non-identifying value valid for the VR (PS3.15 action D)."""
    if vr in DUMMY_BY_VR:
        return DUMMY_BY_VR[vr]
    if vr in TEXT_VRS:
        return "ANONYMIZED"
    return b""


def _shift_day(yyyymmdd: str, days: int) -> str | None:
    try:
        day = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None
    try:
        return (day + timedelta(days=days)).strftime("%Y%m%d")
    except OverflowError:
        return None


def shift_da(value: str, days: int) -> str | None:
    """Shift a DA value, including ranges ("A-B", "-B", "A-")."""
    value = value.strip()
    if "-" in value:
        parts = [shift_da(p, days) if p else "" for p in value.split("-", 1)]
        return None if None in parts else "-".join(parts)  # type: ignore[arg-type]
    if len(value) != 8 or not value.isdigit():
        return None
    return _shift_day(value, days)


def shift_dt(value: str, days: int) -> str | None:
    """Shift a DT value by whole days, keeping time, fraction and UTC offset untouched.

    Partial DTs (year or year-month only) are shifted from the first of the period and then
    cut back to their original precision.
    """
    value = value.strip()
    if "-" in value[1:] and not _DT_RE.match(value):
        left, _, right = value.partition("-")
        parts = [shift_dt(p, days) if p else "" for p in (left, right)]
        return None if None in parts else "-".join(parts)  # type: ignore[arg-type]
    match = _DT_RE.match(value)
    if not match:
        return None
    year, month, day, rest, offset = match.groups()
    precision = 4 + len(month or "") + len(day or "")
    shifted = _shift_day(year + (month or "01") + (day or "01"), days)
    if shifted is None:
        return None
    return shifted[:precision] + (rest or "") + (offset or "")


def year_only_da(value: str) -> str | None:
    """YYYYMMDD -> YYYY0101 (HIPAA Safe Harbor keeps the year only)."""
    value = value.strip()
    return value[:4] + "0101" if len(value) >= 4 and value[:4].isdigit() else None


def year_only_dt(value: str) -> str | None:
    """Any DT -> YYYY0101000000 (offset dropped: it narrows down the location)."""
    value = value.strip()
    return value[:4] + "0101000000" if len(value) >= 4 and value[:4].isdigit() else None


def cap_age(value: str) -> str | None:
    """Ages over 89 years become "090Y" (Safe Harbor); months, weeks and days are kept."""
    value = value.strip()
    if len(value) != 4 or not value[:3].isdigit() or value[3] not in "DWMY":
        return None
    if value[3] == "Y" and int(value[:3]) > 89:
        return "090Y"
    return value
