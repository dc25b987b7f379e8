"""Regenerate ``annex_e_profile.csv`` from a PS3.15 Table E.1-1 JSON export.

Usage::

    python anonymizer/deid/data/generate_profile.py path/to/confidentiality_profile_attributes.json

The input is the JSON list published as ``standard/confidentiality_profile_attributes.json``
by the innolitics/dicom-standard project (one object per table row with ``name``, ``tag``,
``basicProfile`` and optional option columns). Only the data is used; the CSV is written next
to this script, sorted by tag so that regenerating gives a stable diff.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

# JSON key -> CSV column, in the column order of Table E.1-1.
OPTION_COLUMNS: dict[str, str] = {
    "rtnSafePrivOpt": "rtn_safe_private",
    "rtnUIDsOpt": "rtn_uids",
    "rtnDevIdOpt": "rtn_device_identity",
    "rtnInstIdOpt": "rtn_institution_identity",
    "rtnPatCharsOpt": "rtn_patient_characteristics",
    "rtnLongFullDatesOpt": "rtn_long_full_dates",
    "rtnLongModifDatesOpt": "rtn_long_modified_dates",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}
FIELDNAMES: list[str] = ["tag", "name", "basic", *OPTION_COLUMNS.values()]
OUTPUT = Path(__file__).with_name("annex_e_profile.csv")


def row_from_entry(entry: dict[str, str]) -> dict[str, str]:
    """Map one JSON table entry to a CSV row (names have their line breaks collapsed)."""
    row = {
        "tag": entry["tag"].strip().upper(),
        "name": " ".join(entry["name"].split()),
        "basic": entry["basicProfile"].strip(),
    }
    for key, column in OPTION_COLUMNS.items():
        row[column] = entry.get(key, "").strip()
    return row


def generate(json_path: Path, output: Path = OUTPUT) -> int:
    """Write the CSV and return the number of rows written."""
    entries = json.loads(json_path.read_text(encoding="utf-8"))
    rows = sorted((row_from_entry(e) for e in entries), key=lambda r: r["tag"])
    with output.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDNAMES, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    count = generate(Path(argv[1]))
    print(f"wrote {count} rows to {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
