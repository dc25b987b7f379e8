"""What the catalog stores of a de-identified instance, fitted to its columns before any write.

SQLite ignores column lengths and PostgreSQL refuses the whole row, so nothing here relies on
the database: every CharField fed from a DICOM value is checked against the model's own
``max_length``. Where shortening keeps the meaning (cleaned free-text descriptions) the value
is truncated; where a shortened value would be a different value (UIDs, Modality) the item is
refused with :class:`CatalogValueError`; display-only values that do not fit (an odd date or
age) are left blank in the catalog, the stored file keeps them. Integers outside the
database's 32-bit columns and non-finite floats become None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db import models
from pydicom.multival import MultiValue

from anonymizer.deid import DeidResult
from workbench.models import Instance, Patient, Series, Study

_INT_MAX = 2**31 - 1


class CatalogValueError(Exception):
    """A value the catalog cannot hold without changing its meaning; the item is rejected."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CatalogFields:
    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):  # several values: their DICOM form
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _limit(model: type[models.Model], field: str) -> int:
    column = model._meta.get_field(field)
    assert isinstance(column, models.CharField) and column.max_length is not None
    return int(column.max_length)


def _exact(model: type[models.Model], field: str, value: str, label: str) -> str:
    limit = _limit(model, field)
    if len(value) > limit:
        raise CatalogValueError(
            "value_too_long",
            f"{label} holds {len(value)} characters; at most {limit} are allowed (invalid DICOM). "
            "Shortening it would make it a different value, so the file was not stored.",
        )
    return value


def _truncated(model: type[models.Model], field: str, value: str) -> str:
    return value[: _limit(model, field)]


def _or_blank(model: type[models.Model], field: str, value: str) -> str:
    return value if len(value) <= _limit(model, field) else ""


def fit_int(value: Any) -> int | None:
    """An integer the database's integer columns hold, or None."""
    try:
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is not None and -_INT_MAX <= number <= _INT_MAX else None


def fit_float(value: Any) -> float | None:
    """A finite float, or None (NaN and infinities break JSON and comparisons)."""
    try:
        number = float(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is not None and math.isfinite(number) else None


def catalog_fields(result: DeidResult) -> CatalogFields:
    """The catalog's values for one result, every one fitting its column.

    Raises CatalogValueError (code ``value_too_long``) for a UID or Modality longer than its
    column; messages name the attribute and lengths, never the value.
    """
    ds, pseudo = result.dataset, result.pseudonyms
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    floats = [fit_float(v) for v in spacing] if spacing else []
    sop_class = _exact(Instance, "sop_class_uid", _text(ds, "SOPClassUID"), "SOP Class UID (0008,0016)")
    return CatalogFields(
        patient={
            "pseudo_id": _exact(Patient, "pseudo_id", pseudo.patient_id, "The patient pseudonym"),
            "sex": _or_blank(Patient, "sex", _text(ds, "PatientSex")),
            "age": _or_blank(Patient, "age", _text(ds, "PatientAge")),
        },
        study={
            "study_uid": _exact(Study, "study_uid", pseudo.study_instance_uid, "Study Instance UID (0020,000D)"),
            "study_date": _or_blank(Study, "study_date", _text(ds, "StudyDate")),
            "accession_pseudonym": _exact(
                Study, "accession_pseudonym", pseudo.accession_number or "", "The accession pseudonym"
            ),
            "description": _truncated(Study, "description", _text(ds, "StudyDescription")),
        },
        series={
            "series_uid": _exact(Series, "series_uid", pseudo.series_instance_uid, "Series Instance UID (0020,000E)"),
            "modality": _exact(Series, "modality", _text(ds, "Modality"), "Modality (0008,0060)"),
            "number": fit_int(ds.get("SeriesNumber")),
            "description": _truncated(Series, "description", _text(ds, "SeriesDescription")),
        },
        instance={
            "sop_uid": _exact(Instance, "sop_uid", pseudo.sop_instance_uid, "SOP Instance UID (0008,0018)"),
            "sop_class_uid": sop_class,
            "number": fit_int(ds.get("InstanceNumber")),
            "rows": fit_int(ds.get("Rows")),
            "columns": fit_int(ds.get("Columns")),
            "frames": fit_int(ds.get("NumberOfFrames")) or 1,
            "pixel_spacing": floats if floats and None not in floats else None,
            "slice_thickness": fit_float(ds.get("SliceThickness")),
        },
    )
