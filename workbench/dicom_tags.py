"""The tag browser's view of a DICOM header: every element as tag, keyword, VR and a short
value, sequences nested. Pure (a pydicom Dataset in, plain data out); the API reads only the
de-identified stored file, never the raw upload."""

from __future__ import annotations

from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

# Bulk data is shown by its length only: pixels, overlays, waveforms, embedded documents.
BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
MAX_VALUE_CHARS = 256
MAX_DEPTH = 8


def _value(elem: DataElement) -> str:
    """A short, JSON-safe text for one element's value."""
    if elem.VR in BULK_VRS or elem.tag == 0x7FE00010:
        size = len(elem.value) if isinstance(elem.value, (bytes, bytearray)) else 0
        return f"<{size} bytes>"
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = "\\".join(str(v) for v in value) if elem.VM > 1 else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def header_tags(ds: Dataset, depth: int = 0) -> list[dict[str, Any]]:
    """Every element of ``ds`` (file meta first when present), items of sequences as nested lists."""
    rows: list[dict[str, Any]] = []
    elements: list[DataElement] = []
    meta = getattr(ds, "file_meta", None)
    if depth == 0 and meta is not None:
        elements.extend(meta)
    elements.extend(ds)
    for elem in elements:
        row: dict[str, Any] = {
            "tag": f"({elem.tag.group:04X},{elem.tag.element:04X})",
            "keyword": elem.keyword or ("Private" if elem.tag.is_private else ""),
            "vr": elem.VR,
        }
        if elem.VR == "SQ":
            row["value"] = f"{len(elem.value)} item{'' if len(elem.value) == 1 else 's'}"
            row["items"] = [header_tags(item, depth + 1) if depth < MAX_DEPTH else [] for item in elem.value]
        else:
            row["value"] = _value(elem)
        rows.append(row)
    return rows
